// Backend-against-reference parity: a random spectrogram, a greedy decode that keeps every step's
// logits, and the comparison of two such decodes. Chromium pages import this (through
// test/gpu/webgpu-backend-cases.ts), so it imports nothing from Node and its checks throw plain Errors.
import { createLogitsSource, encode, type MelInput, type ModelParameters } from '../src/core/model/whisper.ts';
import type { WhisperOps } from '../src/core/model/ops.ts';
import type { WhisperDims } from '../src/core/model/dims.ts';
import { argmax } from '../src/core/decoding/math.ts';
import { createRandom } from '../scripts/synthetic/weights.ts';

export { argmax };

/** 2·nAudioCtx frames of uniform noise in [-1, 1): the encoder's input size, deterministic per seed. */
export function randomMel(dims: WhisperDims, seed: number): MelInput {
  const random = createRandom(seed);
  const nFrames = 2 * dims.nAudioCtx;
  return { data: Float32Array.from({ length: dims.nMels * nFrames }, () => random.uniform() * 2 - 1), nMels: dims.nMels, nFrames };
}

/** Largest |a - b|; a NaN anywhere makes it Infinity, so no tolerance can pass it. */
export function maxDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`cannot compare ${a.length} values with ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const difference = Math.abs(a[i]! - b[i]!);
    if (!(difference <= worst)) worst = Number.isNaN(difference) ? Infinity : difference;
  }
  return worst;
}

export interface Decoded {
  /** The greedy tokens after the prompt. */
  tokens: number[];
  /** Every step's logits. */
  logits: Float32Array[];
  /** The encoder's output. */
  features: Float32Array;
  /** The encode call alone. */
  encoderMs: number;
  /** Mean per decoder step. */
  decodeMs: number;
  /** The whole run, reading the features back included. */
  ms: number;
}

/** Encode, then `steps` greedy (argmax) tokens after `prompt`, keeping every step's logits. */
export async function greedy<T, W>(ops: WhisperOps<T, W>, model: ModelParameters<W>, mel: MelInput, prompt: number[], steps: number): Promise<Decoded> {
  const start = performance.now();
  const features = encode(ops, model, mel);
  const encoderMs = performance.now() - start;
  const source = createLogitsSource(ops, model, features);
  const tokens = [...prompt];
  const logits: Float32Array[] = [];
  try {
    const decodeStart = performance.now();
    for (let i = 0; i < steps; i++) {
      const row = await source.next(tokens);
      logits.push(row);
      tokens.push(argmax(row));
    }
    const decodeMs = (performance.now() - decodeStart) / steps;
    return { tokens: tokens.slice(prompt.length), logits, features: await ops.read(features), encoderMs, decodeMs, ms: performance.now() - start };
  } finally {
    source.dispose();
    ops.release(features);
  }
}

export interface ParityTolerances {
  /** Largest difference allowed in any step's logits. */
  logits?: number;
  /** Largest difference allowed in the encoder's output (default: `logits`); false leaves it unchecked. */
  features?: number | false;
  /** Prefixes every failure message. */
  label?: string;
}

/** Throws unless every step's logits (and the features) are within tolerance and the tokens are the same; returns the worst logit difference. */
export function assertParity(actual: Decoded, expected: Decoded, { logits = 1e-3, features = logits, label }: ParityTolerances = {}): number {
  const prefix = label ? `${label}: ` : '';
  if (features !== false) {
    const difference = maxDifference(actual.features, expected.features);
    if (!(difference < features)) throw new Error(`${prefix}encoder features differ by ${difference}`);
  }
  let worst = 0;
  actual.logits.forEach((row, step) => {
    const difference = maxDifference(row, expected.logits[step]!);
    worst = Math.max(worst, difference);
    if (!(difference < logits)) throw new Error(`${prefix}step ${step}: logits differ by ${difference}`);
  });
  const same = actual.tokens.length === expected.tokens.length && actual.tokens.every((token, i) => token === expected.tokens[i]);
  if (!same) throw new Error(`${prefix}tokens differ: ${JSON.stringify(actual.tokens)} vs the expected ${JSON.stringify(expected.tokens)}`);
  return worst;
}
