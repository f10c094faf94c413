import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { QUANTIZED_DTYPES } from '../../src/kernels-wgsl/matmul-quant.ts';
import { quantCase, QUANT_EPILOGUES, quantMismatch, quantSweep, quantWeight, referenceQuantMatmul } from '../gpu/wgsl-quant-cases.ts';
import { useBrowserSession, type RemoteApi, type TestPage } from './harness.ts';
import type { quantPageApi } from './pages/wgsl-quant.ts';

describe('quantized WGSL matmul on WebGPU in headless Chromium against the reference backend', () => {
  const session = useBrowserSession();
  let page: TestPage;
  let api: RemoteApi<typeof quantPageApi>;
  before(async () => {
    page = await session().openPage('/test/browser/pages/wgsl-quant.html');
    api = page.api<typeof quantPageApi>();
  });

  for (const dtype of QUANTIZED_DTYPES) {
    test(`${dtype}: every awkward shape (M 1 3 17 70, N 1 7 33 130, K 32 96 416) and every epilogue`, async () => {
      const sweep = quantSweep(dtype);
      const results = await api.runQuantMatmuls(sweep.map(({ c }) => c));
      assert.equal(results.length, sweep.length);
      sweep.forEach(({ what, c }, i) => {
        assert.ok(results[i] instanceof Float32Array, `${what}: a Float32Array comes back`);
        assert.equal(quantMismatch(results[i]!, referenceQuantMatmul(c)), undefined, what);
      });
    });
  }

  test('the tiled kernel on few rows agrees with the reference', async () => {
    const c = quantCase(3, quantWeight(33, 96, 'q4_1', 4), QUANT_EPILOGUES[7]!, 2);
    assert.equal(quantMismatch(await api.runQuantMatmul(c, { kind: 'tiled' }), referenceQuantMatmul(c)), undefined);
  });

  test('the page reported no errors', async () => {
    await page.close();
  });
});
