// Plain TypeScript versions of the smoke kernels (src/kernels-wgsl/smoke.ts), shared by the Node
// and browser GPU tests.
import { SMOKE_WORKGROUP_SIZE, type AffineParams } from '../../src/kernels-wgsl/smoke.ts';

export function affineReference(input: ArrayLike<number>, { scale, offset }: AffineParams): Float32Array {
  return Float32Array.from(input, (x) => Math.fround(scale * x + offset));
}

export function blockSumsReference(input: ArrayLike<number>): Float32Array {
  const sums = new Float32Array(Math.ceil(input.length / SMOKE_WORKGROUP_SIZE));
  for (let i = 0; i < input.length; i++) sums[Math.floor(i / SMOKE_WORKGROUP_SIZE)] += input[i];
  return sums;
}

/** Deterministic values in [-range, range); integers when `integers` is set, so sums are exact in f32. */
export function testValues(length: number, { seed = 1, range = 8, integers = false } = {}): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const unit = state / 2 ** 32;
    return integers ? Math.floor(unit * 2 * range) - range : (unit * 2 - 1) * range;
  });
}

/** Index and values of the first element where `actual` differs from `expected` by more than `tolerance` (relative, floored at 1). */
export function firstMismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 0): string | undefined {
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  for (let i = 0; i < expected.length; i++) {
    const allowed = tolerance * Math.max(1, Math.abs(expected[i]));
    if (!(Math.abs(actual[i] - expected[i]) <= allowed)) return `index ${i}: got ${actual[i]}, expected ${expected[i]}`;
  }
  return undefined;
}
