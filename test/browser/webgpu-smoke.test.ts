import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SMOKE_WORKGROUP_SIZE } from '../../src/kernels-wgsl/smoke.ts';
import { affineReference, blockSumsReference, firstMismatch, testValues } from '../gpu/smoke-reference.ts';
import { useBrowserSession, type RemoteApi, type TestPage } from './harness.ts';
import type { smokePageApi } from './pages/webgpu-smoke.ts';

describe('smoke kernels on WebGPU in headless Chromium', () => {
  const session = useBrowserSession();
  let page: TestPage;
  let api: RemoteApi<typeof smokePageApi>;
  before(async () => {
    page = await session().openPage('/test/browser/pages/webgpu-smoke.html');
    api = page.api<typeof smokePageApi>();
  });

  test('the page is cross-origin isolated', async () => {
    assert.equal(await page.crossOriginIsolated(), true);
  });

  test('the device gets the adapter\'s raised limits', async () => {
    const gpu = await api.describeGpu();
    assert.equal(gpu.maxStorageBufferBindingSize, gpu.adapterMaxStorageBufferBindingSize);
    assert.ok(gpu.maxStorageBufferBindingSize >= 128 * 2 ** 20, `maxStorageBufferBindingSize ${gpu.maxStorageBufferBindingSize}`);
  });

  test('y = a·x + b matches TypeScript for lengths around the workgroup size', async () => {
    for (const length of [1, SMOKE_WORKGROUP_SIZE - 1, SMOKE_WORKGROUP_SIZE, 1000, 100_003]) {
      const input = testValues(length, { seed: length });
      const params = { scale: 3.25, offset: -0.125 };
      const output = await api.runAffine(input, params);
      assert.ok(output instanceof Float32Array, 'a Float32Array comes back');
      assert.equal(firstMismatch(output, affineReference(input, params), 1e-6), undefined, `length ${length}`);
    }
  });

  test('subgroupAdd block sums match TypeScript', async (t) => {
    const { features } = await api.describeGpu();
    if (!features.includes('subgroups')) {
      t.skip(`this adapter has no "subgroups" feature (it has: ${features.join(', ')})`);
      return;
    }
    for (const length of [1, SMOKE_WORKGROUP_SIZE + 1, 5000]) {
      const input = testValues(length, { seed: 11 + length, integers: true });
      const sums = await api.runSubgroupSums(input);
      assert.equal(firstMismatch(sums, blockSumsReference(input)), undefined, `length ${length}`);
    }
  });

  test('the page reported no errors', async () => {
    await page.close();
  });
});
