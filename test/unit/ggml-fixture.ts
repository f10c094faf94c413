/** A small Whisper-shaped model for the ggml tests, and helpers to find things inside a written file. */
import { existsSync, readFileSync } from 'node:fs';
import type { WhisperDims } from '../../src/core/model/dims.ts';
import { elementCount, weightSlots } from '../../src/core/model/weights.ts';

export const GPT2_TIKTOKEN = '../shared/data/whisper-assets/gpt2.tiktoken';

/** English-only vocabulary (51864) around a tiny network. */
export const TEST_DIMS: WhisperDims = {
  nMels: 80,
  nAudioCtx: 16,
  nAudioState: 64,
  nAudioHead: 2,
  nAudioLayer: 2,
  nTextCtx: 8,
  nTextState: 64,
  nTextHead: 2,
  nTextLayer: 2,
  nVocab: 51864,
};

export const hasGpt2Vocab = existsSync(GPT2_TIKTOKEN);

/** The 50256 BPE ranks of gpt2.tiktoken, or distinct synthetic byte strings when the file is absent. */
export function testVocab(): Uint8Array[] {
  if (hasGpt2Vocab) {
    return readFileSync(GPT2_TIKTOKEN, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => new Uint8Array(Buffer.from(line.split(' ')[0]!, 'base64')));
  }
  return Array.from({ length: 50256 }, (_, i) => (i < 256 ? Uint8Array.of(i) : Uint8Array.of(0x61 + (i % 26), i >> 8, i & 0xff)));
}

export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export function testMelFilters(dims: WhisperDims = TEST_DIMS): Float32Array {
  return Float32Array.from({ length: dims.nMels * 201 }, (_, i) => ((i * 7) % 13) / 100);
}

/** Every weight of the schema with small pseudo-random values, in checkpoint order. */
export function testTensors(dims: WhisperDims = TEST_DIMS, seed = 1): { name: string; shape: number[]; values: Float32Array }[] {
  const random = seeded(seed);
  return weightSlots(dims).map((slot) => ({
    name: slot.name,
    shape: slot.shape,
    values: Float32Array.from({ length: elementCount(slot.shape) }, () => (random() - 0.5) * 0.2),
  }));
}

export function readI32(file: Uint8Array, offset: number): number {
  return new DataView(file.buffer, file.byteOffset, file.byteLength).getInt32(offset, true);
}

export function writeI32(file: Uint8Array, offset: number, value: number): void {
  new DataView(file.buffer, file.byteOffset, file.byteLength).setInt32(offset, value, true);
}

/** Where a tensor's header (n_dims, name length, type, ne[], name) and data start in a written file. */
export function locateTensor(file: Uint8Array, name: string): { header: number; nDims: number; ne: number[]; type: number; data: number } {
  const nameBytes = Buffer.from(name, 'utf8');
  const at = Buffer.from(file.buffer, file.byteOffset, file.byteLength).indexOf(nameBytes);
  if (at < 0) throw new Error(`${name} is not in the file`);
  for (let nDims = 1; nDims <= 4; nDims++) {
    const header = at - 12 - 4 * nDims;
    if (header >= 0 && readI32(file, header) === nDims && readI32(file, header + 4) === nameBytes.length) {
      const ne = Array.from({ length: nDims }, (_, i) => readI32(file, header + 12 + 4 * i));
      return { header, nDims, ne, type: readI32(file, header + 8), data: at + nameBytes.length };
    }
  }
  throw new Error(`no tensor header before ${name}`);
}

/** Offset of the vocabulary count: after magic, 11 hparams, n_mel, n_fft and the filters. */
export function vocabOffset(file: Uint8Array): number {
  return 48 + 8 + readI32(file, 48) * readI32(file, 52) * 4;
}
