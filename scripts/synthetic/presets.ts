/**
 * Model shapes for synthetic (random-weight) Whisper models: the real small checkpoints' dims,
 * and 'mini' ones with the real vocabulary, mel bins and context lengths but a narrow, shallow
 * network, so whole-model tests run in seconds.
 */
import { KNOWN_DIMS, type WhisperDims } from '../../src/core/model/dims.ts';

const mini: WhisperDims = {
  nMels: 80,
  nAudioCtx: 1500,
  nAudioState: 64,
  nAudioHead: 2,
  nAudioLayer: 2,
  nTextCtx: 448,
  nTextState: 64,
  nTextHead: 2,
  nTextLayer: 2,
  nVocab: 51864,
};

export const SYNTHETIC_PRESETS = {
  'tiny.en': KNOWN_DIMS['tiny.en'],
  tiny: KNOWN_DIMS.tiny,
  base: KNOWN_DIMS.base,
  mini,
  'mini-multilingual': { ...mini, nVocab: 51865 },
} as const satisfies Record<string, WhisperDims>;

export type SyntheticPreset = keyof typeof SYNTHETIC_PRESETS;

export function isSyntheticPreset(name: string): name is SyntheticPreset {
  return Object.hasOwn(SYNTHETIC_PRESETS, name);
}

export function presetDims(name: SyntheticPreset): WhisperDims {
  return { ...SYNTHETIC_PRESETS[name] };
}
