import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CPU_KERNEL_VARIANTS, DEFAULT_KERNEL_VARIANTS, deviceAdapterFacts, isCpuAdapter, kernelVariants, selectVariants, setKernelVariants } from '../../src/kernels-wgsl/variants.ts';
import { autotuneKernels, clearAutotuneCache } from '../../src/kernels-wgsl/autotune.ts';
import { acquireNodeGpu, deviceOrSkip, type NodeGpu } from './node-gpu.ts';
import { describeEpilogue, matmulCase, matmulMismatch, referenceMatmul, runGpuMatmul } from './matmul-cases.ts';
import {
  ATTENTION_CASES,
  CONV_CASES,
  LAYER_NORM_CASES,
  referenceAttention,
  referenceConv,
  referenceLayerNorm,
  runGpuAttention,
  runGpuConv,
  runGpuLayerNorm,
  scaledMismatch,
} from './wgsl-kernel-cases.ts';
import { describeMatmulVariant, forK, VARIANT_ATTENTION, VARIANT_LAYER_NORM, VARIANT_MATMULS, variantMatmulCases } from './wgsl-variants-cases.ts';

describe('kernel variants on WebGPU in Node (Dawn) against the reference backend', () => {
  let gpu: NodeGpu | undefined;
  before(async () => {
    gpu = await acquireNodeGpu();
  });
  after(() => gpu?.context?.device.destroy());

  for (const variant of VARIANT_ATTENTION) {
    test(`attention '${variant}' on every attention case`, async (t) => {
      const context = deviceOrSkip(gpu, t);
      if (!context) return;
      for (const c of ATTENTION_CASES) {
        const actual = await runGpuAttention(context.device, c, variant);
        const expected = referenceAttention(c);
        assert.equal(scaledMismatch(actual.output, expected.output), undefined, `${c.name}: output`);
        assert.equal(actual.weights === undefined, expected.weights === undefined, `${c.name}: weights only when asked for`);
        if (expected.weights) assert.equal(scaledMismatch(actual.weights!, expected.weights), undefined, `${c.name}: weights`);
      }
    });
  }

  for (const variant of VARIANT_LAYER_NORM) {
    test(`layer norm '${variant}' on every layer-norm case`, async (t) => {
      const context = deviceOrSkip(gpu, t);
      if (!context) return;
      for (const c of [...LAYER_NORM_CASES, { rows: 130, cols: 64, offset: 5 }]) {
        assert.equal(scaledMismatch(await runGpuLayerNorm(context.device, c, variant), referenceLayerNorm(c)), undefined, `[${c.rows}, ${c.cols}] + ${c.offset}`);
      }
    });
  }

  test("conv1d 'blocked' on every conv case", async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    for (const c of CONV_CASES) {
      assert.equal(scaledMismatch(await runGpuConv(context.device, c, 'blocked'), referenceConv(c)), undefined, c.name);
    }
  });

  for (const variant of VARIANT_MATMULS) {
    test(`matmul ${describeMatmulVariant(variant)} on awkward shapes`, async (t) => {
      const context = deviceOrSkip(gpu, t);
      if (!context) return;
      for (const { m, n, k, epilogue } of variantMatmulCases()) {
        const c = matmulCase(m, n, k, epilogue);
        const actual = await runGpuMatmul(context.device, c, { variant: forK(variant, k) });
        assert.equal(matmulMismatch(actual, referenceMatmul(c)), undefined, `[${m}, ${n}, ${k}] ${describeEpilogue(epilogue)}`);
      }
    });
  }

  test('selectVariants gives CPU emulations the barrier-free variants and GPUs the defaults', () => {
    assert.equal(isCpuAdapter({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader driver' }), true);
    assert.equal(isCpuAdapter({ vendor: 'apple', architecture: 'metal-3' }), false);
    assert.deepEqual(selectVariants({ vendor: 'google', architecture: 'swiftshader' }), { ...CPU_KERNEL_VARIANTS });
    assert.deepEqual(selectVariants({ vendor: 'nvidia', architecture: 'ampere', type: 'discrete GPU' }), { ...DEFAULT_KERNEL_VARIANTS });
    assert.deepEqual(selectVariants(undefined), { ...DEFAULT_KERNEL_VARIANTS });
  });

  test('autotuneKernels sets the device variants and caches them; a spent budget measures nothing and keeps the guesses', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const { device } = context;
    clearAutotuneCache();
    const shapes = { rows: 150, width: 64, heads: 2 };
    const tuned = await autotuneKernels(device, shapes, { budgetMs: 0 });
    const guess = selectVariants(deviceAdapterFacts(device));
    assert.equal(tuned.variants.source, 'tuned');
    assert.deepEqual(tuned.timings, [], 'no time, no measurement');
    assert.deepEqual([...new Set(tuned.skipped.map((skipped) => skipped.op))], ['matmul', 'layerNorm', 'attention', 'fewRows'], 'every op reported as skipped');
    assert.deepEqual({ ...tuned.variants, source: guess.source }, guess, 'with nothing measured, the guesses stay');
    assert.deepEqual(kernelVariants(device), tuned.variants, 'the device runs what was picked');
    const again = await autotuneKernels(device, shapes, { budgetMs: 0 });
    assert.equal(again.cached, true, 'the second call is served from the cache');
    assert.equal(again.timings.length, 0);
    setKernelVariants(device, { ...DEFAULT_KERNEL_VARIANTS });
  });
});
