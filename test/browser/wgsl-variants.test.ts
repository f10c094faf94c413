import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEpilogue, matmulCase, matmulMismatch, referenceMatmul } from '../gpu/matmul-cases.ts';
import { ATTENTION_CASES, CONV_CASES, LAYER_NORM_CASES, referenceAttention, referenceConv, referenceLayerNorm, scaledMismatch } from '../gpu/wgsl-kernel-cases.ts';
import { describeMatmulVariant, forK, VARIANT_ATTENTION, VARIANT_LAYER_NORM, VARIANT_MATMULS, variantMatmulCases } from '../gpu/wgsl-variants-cases.ts';
import { useBrowserSession, type RemoteApi, type TestPage } from './harness.ts';
import type { wgslVariantsPageApi } from './pages/wgsl-variants.ts';

describe('WGSL kernel variants on WebGPU in headless Chromium against the reference backend', () => {
  const session = useBrowserSession();
  let page: TestPage;
  let api: RemoteApi<typeof wgslVariantsPageApi>;
  before(async () => {
    page = await session().openPage('/test/browser/pages/wgsl-variants.html');
    api = page.api<typeof wgslVariantsPageApi>();
  });

  for (const variant of VARIANT_ATTENTION) {
    test(`attention '${variant}' on every attention case`, async () => {
      for (const c of ATTENTION_CASES) {
        const actual = await api.attention(c, variant);
        const expected = referenceAttention(c);
        assert.equal(scaledMismatch(actual.output, expected.output), undefined, `${c.name}: output`);
        assert.equal(actual.weights === undefined, expected.weights === undefined, `${c.name}: weights only when asked for`);
        if (expected.weights) assert.equal(scaledMismatch(actual.weights!, expected.weights), undefined, `${c.name}: weights`);
      }
    });
  }

  for (const variant of VARIANT_LAYER_NORM) {
    test(`layer norm '${variant}' on every layer-norm case`, async () => {
      for (const c of LAYER_NORM_CASES) {
        assert.equal(scaledMismatch(await api.layerNorm(c, variant), referenceLayerNorm(c)), undefined, `[${c.rows}, ${c.cols}] + ${c.offset}`);
      }
    });
  }

  test("conv1d 'blocked' on every conv case", async () => {
    for (const c of CONV_CASES) {
      assert.equal(scaledMismatch(await api.conv(c, 'blocked'), referenceConv(c)), undefined, c.name);
    }
  });

  for (const variant of VARIANT_MATMULS) {
    test(`matmul ${describeMatmulVariant(variant)} on awkward shapes`, async () => {
      for (const { m, n, k, epilogue } of variantMatmulCases()) {
        const c = matmulCase(m, n, k, epilogue);
        assert.equal(matmulMismatch(await api.matmul(c, forK(variant, k)), referenceMatmul(c)), undefined, `[${m}, ${n}, ${k}] ${describeEpilogue(epilogue)}`);
      }
    });
  }

  test('the page adapter gets variants, and autotuning applies what it measured', async () => {
    const picked = await api.adapterVariants();
    assert.ok(['default', 'cpu'].includes(picked.source), `source ${picked.source}`);
    const tuned = await api.autotune(1000);
    assert.equal(tuned.variants.source, 'tuned');
    assert.deepEqual(tuned.applied, tuned.variants);
    assert.ok(tuned.timings.some((t) => t.op === 'matmul'), 'matmul was timed');
    assert.ok(tuned.timings.length + tuned.skipped.length >= 5, 'every candidate was timed or reported as skipped');
  });

  test('the autotune cache: a reloaded page reads the winners from IndexedDB and runs no micro-benchmark', async (t) => {
    const database = `murmur-autotune-test-${Date.now()}`;
    const first = await api.autotuneStored(1000, database);
    t.diagnostic(`first start: ${first.spentMs.toFixed(0)} ms, ${first.timings.length} measured, ${first.skipped.length} skipped`);
    assert.equal(first.cached, false);
    await page.page.reload();
    const second = await api.autotuneStored(1000, database);
    assert.equal(second.cached, true, 'served from IndexedDB after the reload');
    assert.deepEqual(second.timings, [], 'no micro-benchmark on the second start');
    assert.deepEqual(second.variants, first.variants);
  });

  test('the page reported no errors', async () => {
    await page.close();
  });
});
