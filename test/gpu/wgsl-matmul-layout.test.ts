// The WGSL kernels that consume packed layouts (src/core/layout), on WebGPU in Node (Dawn):
// the matmul over GPU tile-major weights (f32, and q8_0 with scales beside each tile; workgroup
// and register variants) and the linear as a 1×1 convolution over channels-first activations,
// each against the reference linear on awkward shapes and every epilogue. Neither kernel has a
// subgroup path, so there is no with/without-subgroups split to test.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MurmurError } from '../../src/core/errors.ts';
import { encodeTensor } from '../../src/core/model/dtype.ts';
import type { WeightDType } from '../../src/core/model/weights.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import { packChannelsFirst, packGpuTiles, packGpuTilesQ8, unpackChannelsFirst } from '../../src/core/layout/index.ts';
import { uploadLinearWeights } from '../../src/kernels-wgsl/matmul.ts';
import { runConv1x1ChannelsFirst } from '../../src/kernels-wgsl/conv1x1-channels-first.ts';
import { runTiledWeightsMatmul, tiledWeightsVariant, uploadTiledLinear, type TiledWeightsVariant } from '../../src/kernels-wgsl/matmul-tiled-weights.ts';
import { setKernelVariants, CPU_KERNEL_VARIANTS, DEFAULT_KERNEL_VARIANTS } from '../../src/kernels-wgsl/variants.ts';
import { acquireNodeGpu, deviceOrSkip, type NodeGpu } from './node-gpu.ts';
import { ALL_EPILOGUES, describeEpilogue, matmulCase, matmulMismatch, type MatmulCase } from './matmul-cases.ts';

/** [M, N, K]: tile edges ±1, primes, a decoder row, a slice of Whisper base's MLP. */
const SHAPES: readonly (readonly [number, number, number])[] = [
  [1, 1, 1],
  [3, 5, 7],
  [37, 61, 83],
  [17, 33, 65],
  [64, 64, 64],
  [65, 129, 31],
  [1, 384, 1001],
  [150, 256, 384],
];
const Q8_SHAPES: readonly (readonly [number, number, number])[] = [
  [1, 1, 32],
  [37, 61, 96],
  [9, 130, 64],
  [65, 64, 32],
  [150, 256, 384],
];
const VARIANTS: readonly TiledWeightsVariant[] = [
  { kind: 'workgroup' },
  { kind: 'register', rowsPerThread: 4, colsPerThread: 8, workgroup: 64 },
  { kind: 'register', rowsPerThread: 1, colsPerThread: 1, workgroup: 256 },
  { kind: 'register', rowsPerThread: 8, colsPerThread: 2, workgroup: 128 },
];
const describeVariant = (v: TiledWeightsVariant) => (v.kind === 'workgroup' ? 'workgroup' : `register ${v.rowsPerThread}×${v.colsPerThread}/${v.workgroup}`);

function reference(c: MatmulCase, dtype: WeightDType): Float32Array {
  const { ops } = createReferenceBackend();
  const x = ops.upload(c.x, c.m, c.k);
  const residual = c.residual ? ops.upload(c.residual, c.m, c.n) : undefined;
  const y = ops.linear(x, { weight: encodeTensor(c.weight, [c.n, c.k], dtype), bias: c.bias ? encodeTensor(c.bias, [c.n], 'f32') : undefined }, { gelu: c.gelu, residual });
  return Float32Array.from(y.data ?? []);
}

describe('WGSL kernels over packed layouts on WebGPU in Node (Dawn)', () => {
  let gpu: NodeGpu | undefined;
  before(async () => {
    gpu = await acquireNodeGpu();
  });
  after(() => gpu?.context?.device.destroy());

  async function tiled(device: GPUDevice, c: MatmulCase, format: 'f32' | 'q8_0', variant?: TiledWeightsVariant): Promise<Float32Array> {
    const tiles = format === 'f32' ? packGpuTiles(c.weight, c.n, c.k) : packGpuTilesQ8(encodeTensor(c.weight, [c.n, c.k], 'q8_0'));
    const weights = uploadTiledLinear(device, tiles, c.bias);
    try {
      return await runTiledWeightsMatmul(device, weights, c.x, c.m, { gelu: c.gelu, residual: c.residual, variant });
    } finally {
      weights.destroy();
    }
  }

  test('f32 tile-major weights: every variant matches the reference on every shape (all epilogues on two)', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    for (const [m, n, k] of SHAPES) {
      const epilogues = m === 37 || m === 65 ? ALL_EPILOGUES : [ALL_EPILOGUES[7]!, ALL_EPILOGUES[0]!];
      for (const epilogue of epilogues) {
        const c = matmulCase(m, n, k, epilogue, 11);
        const expected = reference(c, 'f32');
        for (const variant of VARIANTS) {
          const what = `${m}×${n}×${k} ${describeEpilogue(epilogue)} ${describeVariant(variant)}`;
          assert.equal(matmulMismatch(await tiled(context.device, c, 'f32', variant), expected), undefined, what);
        }
      }
    }
  });

  test('q8_0 tile-major weights with their scales beside each tile match the reference on every shape', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    for (const [m, n, k] of Q8_SHAPES) {
      const epilogues = m === 37 ? ALL_EPILOGUES : [ALL_EPILOGUES[7]!];
      for (const epilogue of epilogues) {
        const c = matmulCase(m, n, k, epilogue, 12);
        const expected = reference(c, 'q8_0');
        for (const variant of VARIANTS) {
          const what = `${m}×${n}×${k} q8_0 ${describeEpilogue(epilogue)} ${describeVariant(variant)}`;
          assert.equal(matmulMismatch(await tiled(context.device, c, 'q8_0', variant), expected), undefined, what);
        }
      }
    }
  });

  test("the default variant follows the device's many-rows matmul choice, and runs", async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const { device } = context;
    try {
      setKernelVariants(device, { ...CPU_KERNEL_VARIANTS });
      assert.deepEqual(tiledWeightsVariant(device), { kind: 'register', rowsPerThread: 4, colsPerThread: 8, workgroup: 64 });
      const c = matmulCase(20, 70, 40, ALL_EPILOGUES[5]!, 13);
      assert.equal(matmulMismatch(await tiled(device, c, 'f32'), reference(c, 'f32')), undefined);
      setKernelVariants(device, { ...DEFAULT_KERNEL_VARIANTS });
      assert.deepEqual(tiledWeightsVariant(device), { kind: 'workgroup' });
      assert.equal(matmulMismatch(await tiled(device, c, 'f32'), reference(c, 'f32')), undefined);
    } finally {
      setKernelVariants(device, { ...DEFAULT_KERNEL_VARIANTS });
    }
  });

  test('tiles of another shape, a misfit bias and short buffers are refused, naming the problem', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const { device } = context;
    const refused = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof MurmurError && pattern.test(e.message), String(pattern));
    refused(() => uploadTiledLinear(device, packGpuTiles(new Float32Array(6), 2, 3, { tileN: 16 })), /reads 64 × 32 tiles, these are 16 × 32/);
    refused(() => uploadTiledLinear(device, packGpuTiles(new Float32Array(6), 2, 3), new Float32Array(3)), /a bias of 3 values for 2 outputs/);
    const weights = uploadTiledLinear(device, packGpuTiles(new Float32Array(6), 2, 3));
    try {
      await assert.rejects(runTiledWeightsMatmul(device, weights, new Float32Array(5), 2), (e: unknown) => e instanceof MurmurError && /5 values of x are not \[2, 3\]/.test(e.message));
      await assert.rejects(
        runTiledWeightsMatmul(device, weights, new Float32Array(6), 2, { variant: { kind: 'register', rowsPerThread: 3 as 1, colsPerThread: 1, workgroup: 64 } }),
        (e: unknown) => e instanceof MurmurError && /register blocks 3×1 in workgroups of 64 are not a supported variant/.test(e.message),
      );
    } finally {
      weights.destroy();
    }
  });

  for (const [batch, sequence, k, n] of [[1, 37, 83, 61], [2, 17, 5, 7], [1, 1, 1, 1], [3, 40, 64, 130], [1, 1500, 24, 12], [1, 64, 384, 96]] as const) {
    test(`the 1×1 convolution over channels-first (B ${batch}, C ${k} → ${n}, S ${sequence}) matches the reference linear, padding zero`, async (t) => {
      const context = deviceOrSkip(gpu, t);
      if (!context) return;
      const { device } = context;
      const dtypes = context.features.has('shader-f16') ? (['f32', 'f16'] as const) : (['f32'] as const);
      const epilogues = batch === 1 && sequence === 37 ? ALL_EPILOGUES : [ALL_EPILOGUES[7]!, ALL_EPILOGUES[0]!];
      for (const epilogue of epilogues) {
        const c = matmulCase(batch * sequence, n, k, epilogue, 14);
        const input = packChannelsFirst(c.x, batch, sequence, k);
        const residual = c.residual ? packChannelsFirst(c.residual, batch, sequence, n).data : undefined;
        for (const dtype of dtypes) {
          const weights = uploadLinearWeights(device, c.weight, n, k, c.bias, { dtype });
          try {
            const shape = { batch, sequence, paddedSequence: input.paddedSequence };
            const out = await runConv1x1ChannelsFirst(device, weights, input.data, shape, { gelu: c.gelu, residual });
            const y = { data: out, batch, channels: n, sequence, paddedSequence: input.paddedSequence };
            const what = `${describeEpilogue(epilogue)} ${dtype}`;
            assert.equal(matmulMismatch(unpackChannelsFirst(y), reference(c, dtype)), undefined, what);
            for (let row = 0; row < batch * n; row++) {
              for (let s = sequence; s < input.paddedSequence; s++) assert.equal(out[row * input.paddedSequence + s], 0, `${what}: padding of row ${row} at ${s}`);
            }
          } finally {
            weights.destroy();
          }
        }
      }
    });
  }

  test('the 1×1 convolution refuses a sequence padded off the 64-byte boundary', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const weights = uploadLinearWeights(context.device, new Float32Array(6), 2, 3);
    try {
      await assert.rejects(
        runConv1x1ChannelsFirst(context.device, weights, new Float32Array(3 * 20), { batch: 1, sequence: 17, paddedSequence: 20 }),
        (e: unknown) => e instanceof MurmurError && /padded sequence must be a multiple of 16 holding 17 positions, got 20/.test(e.message),
      );
    } finally {
      weights.destroy();
    }
  });
});
