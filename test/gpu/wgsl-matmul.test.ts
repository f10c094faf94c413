import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MurmurError } from '../../src/core/errors.ts';
import { gelu } from '../../src/core/reference/math.ts';
import { GpuUnavailableError, readFloat32 } from '../../src/kernels-wgsl/device.ts';
import {
  GEMV_MAX_ROWS,
  matmul,
  matmulPipelineCount,
  matmulVariant,
  uploadLinearWeights,
  WEIGHT_K_ALIGNMENT,
  WEIGHT_N_ALIGNMENT,
  type MatmulVariant,
} from '../../src/kernels-wgsl/matmul.ts';
import { acquireNodeGpu, dawnGpu, deviceOrSkip, type NodeGpu } from './node-gpu.ts';
import {
  ALL_EPILOGUES,
  describeEpilogue,
  MATMUL_SHAPES,
  matmulCase,
  matmulMismatch,
  referenceMatmul,
  runGpuMatmul,
  type MatmulCase,
} from './matmul-cases.ts';

// K = 64 adds vec4 x loads.
const GEMV_SHAPES = [...MATMUL_SHAPES.filter(([m]) => m <= GEMV_MAX_ROWS), [4, 70, 64] as const];

function gemv(m: number, k: number, reduction: 'workgroup' | 'subgroup'): MatmulVariant {
  return { kind: 'gemv', rows: m, reduction, vectorX: k % 4 === 0 };
}

describe('WGSL matmul on WebGPU in Node (Dawn)', () => {
  let gpu: NodeGpu | undefined;
  before(async () => {
    gpu = await acquireNodeGpu();
  });
  after(() => gpu?.context?.device.destroy());

  async function expectReference(device: GPUDevice, c: MatmulCase, variant: MatmulVariant | undefined, what: string): Promise<void> {
    const actual = await runGpuMatmul(device, c, { variant });
    assert.equal(matmulMismatch(actual, referenceMatmul(c)), undefined, what);
  }

  test('matmulVariant: gemv for up to 8 rows (subgroups when present), tiled beyond; vec4 x loads when K % 4 == 0', () => {
    const none = new Set<string>();
    const subgroups = new Set(['subgroups']);
    assert.deepEqual(matmulVariant(1, 384, 1001, none), { kind: 'gemv', rows: 1, reduction: 'workgroup', vectorX: false });
    assert.deepEqual(matmulVariant(5, 384, 384, subgroups), { kind: 'gemv', rows: 5, reduction: 'subgroup', vectorX: true });
    assert.deepEqual(matmulVariant(8, 384, 384, subgroups), { kind: 'gemv', rows: 8, reduction: 'subgroup', vectorX: true });
    assert.deepEqual(matmulVariant(9, 384, 384, subgroups), { kind: 'tiled', vectorX: true });
    assert.deepEqual(matmulVariant(1500, 384, 77, none), { kind: 'tiled', vectorX: false });
  });

  test('uploadLinearWeights pads K and N with zeros and stores a zero bias when there is none', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const [n, k] = [3, 5];
    const values = Float32Array.from({ length: n * k }, (_, i) => i + 1);
    const weights = uploadLinearWeights(context.device, values, n, k);
    try {
      assert.equal(weights.paddedInFeatures, WEIGHT_K_ALIGNMENT);
      assert.equal(weights.paddedOutFeatures, WEIGHT_N_ALIGNMENT);
      const stored = await readFloat32(context.device, weights.weight, WEIGHT_N_ALIGNMENT * WEIGHT_K_ALIGNMENT);
      for (let row = 0; row < WEIGHT_N_ALIGNMENT; row++) {
        for (let col = 0; col < WEIGHT_K_ALIGNMENT; col++) {
          const expected = row < n && col < k ? values[row * k + col] : 0;
          assert.equal(stored[row * WEIGHT_K_ALIGNMENT + col], expected, `weight [${row}, ${col}]`);
        }
      }
      assert.deepEqual([...(await readFloat32(context.device, weights.bias, WEIGHT_N_ALIGNMENT))], new Array(WEIGHT_N_ALIGNMENT).fill(0));
      assert.equal(weights.hasBias, false);
    } finally {
      weights.destroy();
    }
  });

  test('uploadLinearWeights refuses values or a bias that do not fit [n, k], naming the sizes', (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    assert.throws(() => uploadLinearWeights(context.device, new Float32Array(14), 3, 5), (e: unknown) => e instanceof MurmurError && /14 weight values cannot be \[3, 5\]/.test(e.message));
    assert.throws(() => uploadLinearWeights(context.device, new Float32Array(15), 3, 5, new Float32Array(4)), (e: unknown) => e instanceof MurmurError && /bias of 4 values for 3 outputs/.test(e.message));
  });

  test('the tiled kernel matches the reference on every shape and epilogue', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    for (const [m, n, k] of MATMUL_SHAPES) {
      for (const epilogue of ALL_EPILOGUES) {
        const variant: MatmulVariant = { kind: 'tiled', vectorX: k % 4 === 0 };
        await expectReference(context.device, matmulCase(m, n, k, epilogue), variant, `${m}×${n}×${k} ${describeEpilogue(epilogue)}`);
      }
    }
  });

  test('the tiled kernel with scalar x loads matches where vec4 loads would be chosen', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const c = matmulCase(70, 65, 64, ALL_EPILOGUES[7]!);
    await expectReference(context.device, c, { kind: 'tiled', vectorX: false }, '70×65×64 scalar x');
  });

  test("matmulVariant's choice matches the reference on every shape", async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    for (const [m, n, k] of MATMUL_SHAPES) {
      const epilogue = ALL_EPILOGUES[7]!;
      const variant = matmulVariant(m, n, k, context.features);
      await expectReference(context.device, matmulCase(m, n, k, epilogue, 2), undefined, `${m}×${n}×${k} as ${JSON.stringify(variant)}`);
    }
  });

  test('gemv with a workgroup tree reduction matches the reference on every epilogue', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    for (const [m, n, k] of GEMV_SHAPES) {
      for (const epilogue of ALL_EPILOGUES) {
        const variant = gemv(m, k, 'workgroup');
        await expectReference(context.device, matmulCase(m, n, k, epilogue, 3), variant, `${m}×${n}×${k} ${describeEpilogue(epilogue)}`);
      }
    }
  });

  test('gemv with subgroupAdd matches the reference on every epilogue', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    if (!context.features.has('subgroups')) {
      t.skip('this adapter has no "subgroups" feature');
      return;
    }
    for (const [m, n, k] of GEMV_SHAPES) {
      for (const epilogue of ALL_EPILOGUES) {
        const variant = gemv(m, k, 'subgroup');
        await expectReference(context.device, matmulCase(m, n, k, epilogue, 4), variant, `${m}×${n}×${k} ${describeEpilogue(epilogue)}`);
      }
    }
  });

  test('f16 weights (f32 accumulation) match the reference on f16-rounded weights', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    if (!context.features.has('shader-f16')) {
      t.skip(`this adapter has no "shader-f16" feature (it has: ${[...context.features].join(', ')}), so the f16 path cannot run here`);
      return;
    }
    for (const [m, n, k] of [[3, 5, 7], [17, 33, 65], [1, 384, 1001], [5, 130, 77]] as const) {
      const c = matmulCase(m, n, k, ALL_EPILOGUES[7]!, 5);
      const expected = referenceMatmul(c, 'f16');
      for (const variant of [undefined, { kind: 'tiled', vectorX: k % 4 === 0 } as const]) {
        const actual = await runGpuMatmul(context.device, c, { dtype: 'f16', variant });
        assert.equal(matmulMismatch(actual, expected), undefined, `${m}×${n}×${k} f16 ${variant?.kind ?? 'chosen'}`);
      }
    }
  });

  test('the GELU epilogue follows exact GELU (erf) across both tails', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    // Identity weights: y = gelu(x), one column per probe value.
    const k = 64;
    const identity = Float32Array.from({ length: k * k }, (_, i) => (i % (k + 1) === 0 ? 1 : 0));
    const m = 3;
    const x = Float32Array.from({ length: m * k }, (_, i) => -12 + (24 * i) / (m * k - 1));
    const actual = await runGpuMatmul(context.device, { m, n: k, k, x, weight: identity, gelu: true });
    const expected = Float32Array.from(x, gelu);
    for (let i = 0; i < x.length; i++) {
      assert.ok(Math.abs(actual[i]! - expected[i]!) <= 2e-6 * Math.max(1, Math.abs(expected[i]!)), `gelu(${x[i]}) = ${actual[i]}, expected ${expected[i]}`);
    }
  });

  test('a device without subgroups or shader-f16 refuses those variants, naming the feature', async (t) => {
    if (!deviceOrSkip(gpu, t)) return;
    const adapter = await (await dawnGpu()).requestAdapter();
    assert.ok(adapter, 'a second adapter');
    const bare = await adapter.requestDevice();
    try {
      assert.throws(() => uploadLinearWeights(bare, new Float32Array(4), 2, 2, undefined, { dtype: 'f16' }), (e: unknown) => e instanceof GpuUnavailableError && /"shader-f16"/.test(e.message));
      const c = matmulCase(2, 3, 4, ALL_EPILOGUES[0]!);
      await assert.rejects(runGpuMatmul(bare, c, { variant: { kind: 'gemv', rows: 2, reduction: 'subgroup', vectorX: true } }), (e: unknown) => e instanceof GpuUnavailableError && /"subgroups"/.test(e.message));
      // What matmulVariant picks for it runs.
      assert.equal(matmulMismatch(await runGpuMatmul(bare, c), referenceMatmul(c)), undefined);
    } finally {
      bare.destroy();
    }
  });

  test('buffers of the wrong size and mismatched variants are refused, naming what is wrong', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const { device } = context;
    const storage = (bytes: number) => device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE });
    const weights = uploadLinearWeights(device, new Float32Array(5 * 7), 5, 7);
    const x = storage(3 * 7 * 4);
    const output = storage(3 * 5 * 4);
    const small = storage(3 * 5 * 4 - 4);
    const refuse = (args: Partial<Parameters<typeof matmul>[1]>, pattern: RegExp) =>
      assert.rejects(matmul(device, { x, m: 3, weights, output, ...args }), (e: unknown) => e instanceof MurmurError && pattern.test(e.message), String(pattern));
    try {
      await refuse({ m: 4 }, /x holds 84 bytes, fewer than the 112/);
      await refuse({ output: small }, /output holds 56 bytes, fewer than the 60/);
      await refuse({ residual: small }, /residual holds 56 bytes/);
      await refuse({ output: x, weights: uploadLinearWeights(device, new Float32Array(7 * 7), 7, 7) }, /must not also be an input/);
      await refuse({ variant: { kind: 'gemv', rows: 2, reduction: 'workgroup', vectorX: false } }, /gemv variant for 2 rows cannot multiply 3 rows/);
      await refuse({ m: 9, x: storage(9 * 7 * 4), output: storage(9 * 5 * 4), variant: { kind: 'gemv', rows: 16, reduction: 'workgroup', vectorX: false } }, /16 rows cannot multiply 9 rows \(it takes 8 at most\)/);
      await refuse({ variant: { kind: 'tiled', vectorX: true } }, /vec4 loads of x need K % 4 == 0, K is 7/);
      await refuse({ m: 1.5 }, /m must be a non-negative integer, got 1.5/);
    } finally {
      weights.destroy();
      for (const b of [x, output, small]) b.destroy();
    }
  });

  test('pipelines are compiled once per variant, whatever the shape and epilogue', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    // Two rows: no other test here compiles a kernel for them. One row runs on it too (rows ≥ m).
    const variant: MatmulVariant = { kind: 'gemv', rows: 2, reduction: 'workgroup', vectorX: false };
    const c = matmulCase(2, 10, 11, { bias: true, gelu: true, residual: false });
    await runGpuMatmul(context.device, c, { variant });
    const compiled = matmulPipelineCount(context.device);
    const other = matmulCase(1, 30, 7, { bias: false, gelu: false, residual: true });
    assert.equal(matmulMismatch(await runGpuMatmul(context.device, other, { variant }), referenceMatmul(other)), undefined);
    assert.equal(matmulPipelineCount(context.device), compiled, 'same variant, another shape and epilogue: no new pipeline');
    await runGpuMatmul(context.device, matmulCase(2, 10, 12, ALL_EPILOGUES[0]!), { variant: { ...variant, vectorX: true } });
    assert.equal(matmulPipelineCount(context.device), compiled + 1, 'vec4 x loads: one new pipeline');
  });

  test('zero rows is a no-op', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const c = { ...matmulCase(0, 5, 7, ALL_EPILOGUES[0]!), m: 0 };
    assert.equal((await runGpuMatmul(context.device, c)).length, 0);
  });
});
