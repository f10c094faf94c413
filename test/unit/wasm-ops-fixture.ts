// Shared by the wasm-ops*.test.ts files: both builds of the kernels module, seeded random data and
// a tolerance check scaled by the expected values' magnitude.
import assert from 'node:assert/strict';
import { createWasmKernels, type WasmKernels } from '../../src/kernels-wasm/ops.ts';
import { createRandom } from '../../scripts/synthetic/weights.ts';

export async function loadVariants(): Promise<{ variants: [string, WasmKernels | undefined][]; relaxedMissing: string }> {
  const simd = await createWasmKernels({ relaxed: false });
  let relaxed: WasmKernels | undefined;
  let relaxedMissing = '';
  try {
    relaxed = await createWasmKernels({ relaxed: true });
  } catch (error) {
    relaxedMissing = `relaxed SIMD is not enabled in this Node (${(error as Error).message}); npm test passes --experimental-wasm-relaxed-simd`;
  }
  return { variants: [['simd', simd], ['relaxed-simd', relaxed]], relaxedMissing };
}

export function randomSource(seed: number): { values(length: number, scale?: number): Float32Array; uniform(): number } {
  const random = createRandom(seed);
  return {
    values: (length, scale = 1) => Float32Array.from({ length }, () => random.normal() * scale),
    uniform: () => random.uniform(),
  };
}

/** Largest |actual − expected| ≤ relative × max(1, max |expected|). */
export function assertClose(actual: Float32Array, expected: Float32Array, relative: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let magnitude = 1;
  for (const v of expected) magnitude = Math.max(magnitude, Math.abs(v));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(worst <= relative * magnitude, `${what}: max difference ${worst} at ${at} (got ${actual[at]}, expected ${expected[at]}, magnitude ${magnitude})`);
}
