/**
 * The ten numbers that fix a Whisper model's shapes, named as in OpenAI's ModelDimensions
 * (and, in the same order, the hparams of a whisper.cpp ggml file).
 */
export interface WhisperDims {
  nMels: number;
  nAudioCtx: number;
  nAudioState: number;
  nAudioHead: number;
  nAudioLayer: number;
  nTextCtx: number;
  nTextState: number;
  nTextHead: number;
  nTextLayer: number;
  nVocab: number;
}

/** Multilingual vocabularies have 51865 (or, for large-v3, 51866) entries; `.en` ones 51864. */
export function isMultilingual(dims: Pick<WhisperDims, 'nVocab'>): boolean {
  return dims.nVocab >= 51865;
}

/** How many language tokens the vocabulary holds (99, or 100 from large-v3 on), as OpenAI counts. */
export function languageCount(dims: Pick<WhisperDims, 'nVocab'>): number {
  return dims.nVocab - 51765 - (isMultilingual(dims) ? 1 : 0);
}

/** Shapes of the published checkpoints; distil variants differ only in nTextLayer. */
export const KNOWN_DIMS = {
  'tiny.en': { nMels: 80, nAudioCtx: 1500, nAudioState: 384, nAudioHead: 6, nAudioLayer: 4, nTextCtx: 448, nTextState: 384, nTextHead: 6, nTextLayer: 4, nVocab: 51864 },
  tiny: { nMels: 80, nAudioCtx: 1500, nAudioState: 384, nAudioHead: 6, nAudioLayer: 4, nTextCtx: 448, nTextState: 384, nTextHead: 6, nTextLayer: 4, nVocab: 51865 },
  'base.en': { nMels: 80, nAudioCtx: 1500, nAudioState: 512, nAudioHead: 8, nAudioLayer: 6, nTextCtx: 448, nTextState: 512, nTextHead: 8, nTextLayer: 6, nVocab: 51864 },
  base: { nMels: 80, nAudioCtx: 1500, nAudioState: 512, nAudioHead: 8, nAudioLayer: 6, nTextCtx: 448, nTextState: 512, nTextHead: 8, nTextLayer: 6, nVocab: 51865 },
  'small.en': { nMels: 80, nAudioCtx: 1500, nAudioState: 768, nAudioHead: 12, nAudioLayer: 12, nTextCtx: 448, nTextState: 768, nTextHead: 12, nTextLayer: 12, nVocab: 51864 },
  small: { nMels: 80, nAudioCtx: 1500, nAudioState: 768, nAudioHead: 12, nAudioLayer: 12, nTextCtx: 448, nTextState: 768, nTextHead: 12, nTextLayer: 12, nVocab: 51865 },
  'medium.en': { nMels: 80, nAudioCtx: 1500, nAudioState: 1024, nAudioHead: 16, nAudioLayer: 24, nTextCtx: 448, nTextState: 1024, nTextHead: 16, nTextLayer: 24, nVocab: 51864 },
  medium: { nMels: 80, nAudioCtx: 1500, nAudioState: 1024, nAudioHead: 16, nAudioLayer: 24, nTextCtx: 448, nTextState: 1024, nTextHead: 16, nTextLayer: 24, nVocab: 51865 },
  'large-v2': { nMels: 80, nAudioCtx: 1500, nAudioState: 1280, nAudioHead: 20, nAudioLayer: 32, nTextCtx: 448, nTextState: 1280, nTextHead: 20, nTextLayer: 32, nVocab: 51865 },
  'large-v3': { nMels: 128, nAudioCtx: 1500, nAudioState: 1280, nAudioHead: 20, nAudioLayer: 32, nTextCtx: 448, nTextState: 1280, nTextHead: 20, nTextLayer: 32, nVocab: 51866 },
  'large-v3-turbo': { nMels: 128, nAudioCtx: 1500, nAudioState: 1280, nAudioHead: 20, nAudioLayer: 32, nTextCtx: 448, nTextState: 1280, nTextHead: 20, nTextLayer: 4, nVocab: 51866 },
} as const satisfies Record<string, WhisperDims>;
