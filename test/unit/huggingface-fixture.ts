/**
 * Shared by the Hugging Face loader tests: small-dims synthetic models with the real Whisper
 * vocabulary (from ../shared/data), written as real-format folders.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WhisperDims } from '../../src/core/model/dims.ts';
import { isMultilingual } from '../../src/core/model/dims.ts';
import type { WhisperModel } from '../../src/core/model/model.ts';
import { decodeTensor, encodeTensor } from '../../src/core/model/dtype.ts';
import { weightSlots } from '../../src/core/model/weights.ts';
import { WhisperTokenizer } from '../../src/core/tokenizer/tokenizer.ts';
import { writeHuggingFaceFolder, type HuggingFaceFolderOptions } from '../../scripts/synthetic/hf-writer.ts';
import { syntheticTensors } from '../../scripts/synthetic/weights.ts';
import { writeHuggingFaceTokenizerJson } from '../../scripts/synthetic/tokenizer-json.ts';

export const ASSETS = join(process.cwd(), '..', 'shared', 'data', 'whisper-assets');
export const ASSETS_MISSING = existsSync(join(ASSETS, 'gpt2.tiktoken')) && existsSync(join(ASSETS, 'multilingual.tiktoken'))
  ? undefined
  : `Whisper vocabularies not found at ${ASSETS} (../shared/data); the Hugging Face model tests need them`;

/** Real vocabulary and context sizes do not matter to the loader; narrow, shallow layers keep the files small. */
export const SMALL_EN: WhisperDims = { nMels: 80, nAudioCtx: 6, nAudioState: 16, nAudioHead: 2, nAudioLayer: 2, nTextCtx: 5, nTextState: 16, nTextHead: 2, nTextLayer: 2, nVocab: 51864 };
export const SMALL_MULTI: WhisperDims = { ...SMALL_EN, nVocab: 51865 };
/** large-v3's vocabulary (100 languages) and 128 mel bins, with a distilled (shallower) decoder. */
export const SMALL_V3_DISTIL: WhisperDims = { ...SMALL_EN, nMels: 128, nVocab: 51866, nAudioLayer: 3, nTextLayer: 1 };

const tokenizerCache = new Map<number, WhisperTokenizer>();
const tokenizerJsonCache = new Map<number, object>();

/** The real Whisper tokenizer of this vocabulary size, from OpenAI's tiktoken files. */
export function tokenizerFor(nVocab: number): WhisperTokenizer {
  let tokenizer = tokenizerCache.get(nVocab);
  if (!tokenizer) {
    const file = isMultilingual({ nVocab }) ? 'multilingual.tiktoken' : 'gpt2.tiktoken';
    tokenizer = WhisperTokenizer.fromTiktoken(readFileSync(join(ASSETS, file), 'utf8'), { nVocab, source: file });
    tokenizerCache.set(nVocab, tokenizer);
  }
  return tokenizer;
}

/** tokenizer.json as the openai/whisper-* repositories ship it. */
export function tokenizerJsonFor(nVocab: number): object {
  let json = tokenizerJsonCache.get(nVocab);
  if (!json) {
    json = writeHuggingFaceTokenizerJson(tokenizerFor(nVocab));
    tokenizerJsonCache.set(nVocab, json);
  }
  return json;
}

export function tensorsFor(dims: WhisperDims, seed = 7) {
  return syntheticTensors(dims, seed);
}

const folderCache = new Map<string, Record<string, Uint8Array>>();

/** A written folder; cached, so callers must copy a file's bytes before changing them. */
export function folderFor(dims: WhisperDims, options: Partial<HuggingFaceFolderOptions> = {}): Record<string, Uint8Array> {
  const key = JSON.stringify([dims, options]);
  let folder = folderCache.get(key);
  if (!folder) {
    folder = writeHuggingFaceFolder({ dims, tensors: tensorsFor(dims), tokenizerJson: tokenizerJsonFor(dims.nVocab), dtype: 'f32', ...options });
    folderCache.set(key, folder);
  }
  return { ...folder };
}

/** Every weight of the model equals the synthetic values after a round trip through `dtype`. */
export function assertWeightsMatch(model: WhisperModel, dims: WhisperDims, dtype: 'f32' | 'f16' | 'bf16' = 'f32'): void {
  const byName = new Map(tensorsFor(dims).map((t) => [t.name, t]));
  for (const slot of weightSlots(dims)) {
    const tensor = slot.get(model.weights);
    assert.equal(tensor.dtype, dtype, slot.name);
    assert.deepEqual(tensor.shape, slot.shape, slot.name);
    const source = byName.get(slot.name)!;
    const expected = decodeTensor(encodeTensor(source.values, source.shape, dtype));
    assert.deepEqual(decodeTensor(tensor), expected, slot.name);
  }
}

export function json(bytes: Uint8Array | undefined): Record<string, unknown> {
  assert.ok(bytes, 'file present');
  return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
}

export function jsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}
