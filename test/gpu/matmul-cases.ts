// Inputs, the reference result and a GPU runner for the WGSL matmul (src/kernels-wgsl/matmul.ts),
// shared by the Node and browser tests (so nothing here imports node:*).
import { encodeTensor } from '../../src/core/model/dtype.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import { readFloat32 } from '../../src/kernels-wgsl/device.ts';
import { matmul, uploadLinearWeights, type MatmulVariant, type MatmulWeightDType } from '../../src/kernels-wgsl/matmul.ts';
import { testValues } from './smoke-reference.ts';

/** [M, N, K]: odd sizes cross every tile and vec4 edge; 1×384×1001 is a decoder-step GEMV. */
export const MATMUL_SHAPES: readonly (readonly [number, number, number])[] = [
  [1, 1, 1],
  [3, 5, 7],
  [17, 33, 65],
  [64, 64, 64],
  [1, 384, 1001],
  [5, 130, 77],
];

export interface MatmulEpilogue {
  bias: boolean;
  gelu: boolean;
  residual: boolean;
}

export const ALL_EPILOGUES: readonly MatmulEpilogue[] = [false, true].flatMap((bias) =>
  [false, true].flatMap((gelu) => [false, true].map((residual) => ({ bias, gelu, residual }))),
);

export function describeEpilogue(e: MatmulEpilogue): string {
  return ['x·Wᵀ', e.bias && '+ bias', e.gelu && '→ gelu', e.residual && '+ residual'].filter(Boolean).join(' ');
}

export interface MatmulCase {
  m: number;
  n: number;
  k: number;
  x: Float32Array;
  weight: Float32Array;
  bias?: Float32Array;
  residual?: Float32Array;
  gelu: boolean;
}

/** Deterministic inputs in [-1, 1); GELU cases scale x up so both tails and the bend are hit. */
export function matmulCase(m: number, n: number, k: number, epilogue: MatmulEpilogue, seed = 1): MatmulCase {
  const spread = epilogue.gelu ? 4 / Math.sqrt(Math.max(k, 1)) : 1;
  return {
    m,
    n,
    k,
    x: testValues(m * k, { seed: seed * 7 + 1, range: 1 }).map((v) => v * spread * 3),
    weight: testValues(n * k, { seed: seed * 7 + 2, range: 1 }),
    bias: epilogue.bias ? testValues(n, { seed: seed * 7 + 3, range: 1 }) : undefined,
    residual: epilogue.residual ? testValues(m * n, { seed: seed * 7 + 4, range: 2 }) : undefined,
    gelu: epilogue.gelu,
  };
}

/** The reference backend's linear, with the weight stored in `dtype` as a model would hold it. */
export function referenceMatmul(c: MatmulCase, dtype: MatmulWeightDType = 'f32'): Float32Array {
  const { ops } = createReferenceBackend();
  const x = ops.upload(c.x, c.m, c.k);
  const residual = c.residual ? ops.upload(c.residual, c.m, c.n) : undefined;
  const weights = {
    weight: encodeTensor(c.weight, [c.n, c.k], dtype),
    bias: c.bias ? encodeTensor(c.bias, [c.n], 'f32') : undefined,
  };
  const y = ops.linear(x, weights, { gelu: c.gelu, residual });
  const values = Float32Array.from(y.data ?? []);
  for (const t of [x, residual, y]) if (t) ops.release(t);
  return values;
}

/** Uploads a case, runs the GPU matmul once and reads the output back; frees every buffer. */
export async function runGpuMatmul(
  device: GPUDevice,
  c: MatmulCase,
  options: { variant?: MatmulVariant; dtype?: MatmulWeightDType } = {},
): Promise<Float32Array> {
  const weights = uploadLinearWeights(device, c.weight, c.n, c.k, c.bias, { dtype: options.dtype });
  const created: GPUBuffer[] = [];
  const upload = (values: Float32Array) => {
    const buffer = device.createBuffer({ size: Math.max(values.byteLength, 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(buffer, 0, values.buffer, values.byteOffset, values.byteLength);
    created.push(buffer);
    return buffer;
  };
  try {
    const x = upload(c.x);
    const residual = c.residual ? upload(c.residual) : undefined;
    const output = device.createBuffer({ size: Math.max(c.m * c.n * 4, 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    created.push(output);
    await matmul(device, { x, m: c.m, weights, output, residual, gelu: c.gelu, variant: options.variant });
    return await readFloat32(device, output, c.m * c.n);
  } finally {
    weights.destroy();
    for (const buffer of created) buffer.destroy();
  }
}

/**
 * The first output off by more than `tolerance` × max(1, |expected|), with the worst error seen,
 * or undefined when all match. NaN never matches.
 */
export function matmulMismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-4): string | undefined {
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
