// Inputs, the reference result and a GPU runner for the quantized WGSL matmul
// (src/kernels-wgsl/matmul-quant.ts), shared by the Node and browser tests (nothing here imports node:*).
import { encodeTensor } from '../../src/core/model/dtype.ts';
import type { WeightTensor } from '../../src/core/model/weights.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import {
  runQuantizedMatmul,
  uploadQuantizedWeights,
  type QuantizedDType,
  type QuantizedMatmulVariant,
} from '../../src/kernels-wgsl/matmul-quant.ts';
import { testValues } from './smoke-reference.ts';
import { ALL_EPILOGUES, describeEpilogue, type MatmulEpilogue } from './matmul-cases.ts';

export const QUANT_M = [1, 3, 17, 70] as const;
export const QUANT_N = [1, 7, 33, 130] as const;
export const QUANT_K = [32, 96, 416] as const;

export type QuantEpilogue = MatmulEpilogue;
export const QUANT_EPILOGUES = ALL_EPILOGUES;
export const describeQuantEpilogue = describeEpilogue;

/** A quantized weight [n, k] with an all-zero block and a constant block among random ones. */
export function quantWeight(n: number, k: number, dtype: QuantizedDType, seed = 1): WeightTensor {
  const values = testValues(n * k, { seed: seed * 11 + 5, range: 1 });
  // Per-row offsets so the _1 types' m is not always near -1.
  for (let row = 0; row < n; row++) for (let i = 0; i < k; i++) values[row * k + i] += ((row % 5) - 2) * 0.3;
  if (n * k >= 64) {
    values.fill(0, 0, 32);
    values.fill(0.75, 32, 64);
  }
  return encodeTensor(values, [n, k], dtype);
}

export interface QuantCase {
  m: number;
  x: Float32Array;
  weight: WeightTensor;
  bias?: Float32Array;
  residual?: Float32Array;
  gelu: boolean;
}

export function quantCase(m: number, weight: WeightTensor, epilogue: QuantEpilogue, seed = 1): QuantCase {
  const [n, k] = weight.shape as [number, number];
  const spread = epilogue.gelu ? 3 / Math.sqrt(k) : 1;
  return {
    m,
    x: testValues(m * k, { seed: seed * 7 + 1, range: 1 }).map((v) => v * spread),
    weight,
    bias: epilogue.bias ? testValues(n, { seed: seed * 7 + 3, range: 1 }) : undefined,
    residual: epilogue.residual ? testValues(m * n, { seed: seed * 7 + 4, range: 2 }) : undefined,
    gelu: epilogue.gelu,
  };
}

/** The reference backend's linear with the same WeightTensor (it widens the blocks itself). */
export function referenceQuantMatmul(c: QuantCase): Float32Array {
  const { ops } = createReferenceBackend();
  const [n, k] = c.weight.shape as [number, number];
  const x = ops.upload(c.x, c.m, k);
  const residual = c.residual ? ops.upload(c.residual, c.m, n) : undefined;
  const y = ops.linear(x, { weight: c.weight, bias: c.bias ? encodeTensor(c.bias, [n], 'f32') : undefined }, { gelu: c.gelu, residual });
  const values = Float32Array.from(y.data);
  for (const t of [x, residual, y]) if (t) ops.release(t);
  return values;
}

/** Uploads the weight, runs the GPU kernel once, reads y back and frees everything. */
export async function runGpuQuantMatmul(device: GPUDevice, c: QuantCase, variant?: QuantizedMatmulVariant): Promise<Float32Array> {
  const weights = uploadQuantizedWeights(device, c.weight, c.bias);
  try {
    return await runQuantizedMatmul(device, weights, c.x, c.m, { gelu: c.gelu, residual: c.residual, variant });
  } finally {
    weights.destroy();
  }
}

/**
 * The first output off by more than `tolerance` × max(1, |expected|), with the worst error, or
 * undefined when all match. NaN never matches.
 */
export function quantMismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-4): string | undefined {
  if (actual.length !== expected.length) return `${actual.length} outputs, expected ${expected.length}`;
  let worst = 0;
  let first: string | undefined;
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(actual[i]! - expected[i]!) / Math.max(1, Math.abs(expected[i]!));
    if (!(error <= tolerance)) {
      first ??= `output ${i}: got ${actual[i]}, expected ${expected[i]}`;
      worst = Number.isNaN(error) ? NaN : Math.max(worst, error);
    }
  }
  return first && `${first} (worst scaled error ${worst.toExponential(2)})`;
}

/**
 * Every (M, N, K) of the awkward shapes for one dtype, with the epilogue rotating so each one
 * meets tiled and gemv shapes, plus every epilogue on one gemv and one tiled shape.
 */
export function quantSweep(dtype: QuantizedDType): { what: string; c: QuantCase }[] {
  const cases: { what: string; c: QuantCase }[] = [];
  let turn = 0;
  for (const k of QUANT_K) {
    for (const n of QUANT_N) {
      const weight = quantWeight(n, k, dtype, n + k);
      for (const m of QUANT_M) {
        const epilogue = QUANT_EPILOGUES[turn++ % QUANT_EPILOGUES.length]!;
        cases.push({ what: `${dtype} ${m}×${n}×${k} ${describeQuantEpilogue(epilogue)}`, c: quantCase(m, weight, epilogue, turn) });
      }
    }
  }
  for (const [m, n, k] of [[3, 33, 96], [70, 130, 96]] as const) {
    const weight = quantWeight(n, k, dtype, 99);
    for (const epilogue of QUANT_EPILOGUES) {
      cases.push({ what: `${dtype} ${m}×${n}×${k} ${describeQuantEpilogue(epilogue)}`, c: quantCase(m, weight, epilogue, 5) });
    }
  }
  return cases;
}
