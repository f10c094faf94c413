// Shared by the layout-*.test.ts files: seeded data, the reference linear on row-major inputs
// (the oracle every packed layout's matmul must equal), and the awkward shapes they all cover.
import { encodeTensor } from '../../src/core/model/dtype.ts';
import type { WeightTensor } from '../../src/core/model/weights.ts';
import { referenceOps } from '../../src/core/reference/backend.ts';
import { RefTensor } from '../../src/core/reference/tensor.ts';
import { randomSource } from './wasm-ops-fixture.ts';

/** [m, k, n]: single elements, one short of / one past every tile side, primes, Whisper-base subsets. */
export const LAYOUT_SHAPES: readonly (readonly [number, number, number])[] = [
  [1, 1, 1],
  [3, 5, 7],
  [37, 83, 61],
  [4, 31, 15],
  [9, 33, 17],
  [16, 64, 64],
  [5, 65, 129],
  [150, 384, 96],
  [12, 384, 1536],
  [1500, 384, 24],
];

export function layoutProblem(m: number, k: number, n: number, seed = 1): { x: Float32Array; w: Float32Array; bias: Float32Array } {
  const random = randomSource(seed * 1000 + m * 7 + k * 11 + n * 13);
  return { x: random.values(m * k), w: random.values(n * k), bias: random.values(n) };
}

/** The reference backend's x · Wᵀ (+ bias) with W stored as `weight`. */
export function referenceLinear(x: Float32Array, m: number, k: number, weight: WeightTensor, bias?: Float32Array): Float32Array {
  const n = weight.shape[0]!;
  return referenceOps.linear(new RefTensor(x, m, k), { weight, ...(bias ? { bias: encodeTensor(bias, [n], 'f32') } : {}) }, {}).data;
}

export function referenceLinearF32(x: Float32Array, m: number, k: number, w: Float32Array, n: number, bias?: Float32Array): Float32Array {
  return referenceLinear(x, m, k, encodeTensor(w, [n, k], 'f32'), bias);
}

/** With the unpacked values all checked in place, equal counts of non-zeros leave only zeros in the padding. */
export function nonZeros(values: ArrayLike<number>): number {
  let count = 0;
  for (let i = 0; i < values.length; i++) if (values[i] !== 0) count++;
  return count;
}
