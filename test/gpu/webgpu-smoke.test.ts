import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runSmokeKernel, runSubgroupSumKernel, SMOKE_WORKGROUP_SIZE } from '../../src/kernels-wgsl/smoke.ts';
import { GpuUnavailableError } from '../../src/kernels-wgsl/device.ts';
import { acquireNodeGpu, dawnGpu, deviceOrSkip, type NodeGpu } from './node-gpu.ts';
import { affineReference, blockSumsReference, firstMismatch, testValues } from './smoke-reference.ts';

describe('smoke kernels on WebGPU in Node (Dawn)', () => {
  let gpu: NodeGpu | undefined;
  before(async () => {
    gpu = await acquireNodeGpu();
  });
  after(() => gpu?.context?.device.destroy());

  test('the device has the raised limits of its adapter', (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const { adapter, device } = context;
    assert.equal(device.limits.maxStorageBufferBindingSize, adapter.limits.maxStorageBufferBindingSize);
    assert.equal(device.limits.maxBufferSize, adapter.limits.maxBufferSize);
    assert.equal(device.limits.maxComputeWorkgroupStorageSize, adapter.limits.maxComputeWorkgroupStorageSize);
    assert.equal(device.limits.maxComputeInvocationsPerWorkgroup, adapter.limits.maxComputeInvocationsPerWorkgroup);
    for (const feature of ['subgroups', 'timestamp-query', 'shader-f16'] as const) {
      assert.equal(context.features.has(feature), adapter.features.has(feature), `feature ${feature}`);
    }
  });

  test('y = a·x + b matches TypeScript for lengths around the workgroup size', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    for (const length of [1, SMOKE_WORKGROUP_SIZE - 1, SMOKE_WORKGROUP_SIZE, 1000, 100_003]) {
      const input = testValues(length, { seed: length });
      const params = { scale: -1.75, offset: 0.5 };
      const output = await runSmokeKernel(context.device, input, params);
      assert.equal(firstMismatch(output, affineReference(input, params), 1e-6), undefined, `length ${length}`);
    }
  });

  test('an empty input gives an empty output without touching the GPU', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    assert.equal((await runSmokeKernel(context.device, new Float32Array(0))).length, 0);
  });

  test('subgroupAdd block sums match TypeScript', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    if (!context.features.has('subgroups')) {
      t.skip('this adapter has no "subgroups" feature');
      return;
    }
    for (const length of [1, SMOKE_WORKGROUP_SIZE + 1, 5000]) {
      const input = testValues(length, { seed: 7 + length, integers: true });
      const sums = await runSubgroupSumKernel(context.device, input);
      assert.equal(firstMismatch(sums, blockSumsReference(input)), undefined, `length ${length}`);
    }
  });

  test('the subgroup kernel refuses a device without the feature, naming it', async (t) => {
    if (!deviceOrSkip(gpu, t)) return;
    // A device created with no optional features (an adapter hands out only one device, hence a new one).
    const adapter = await (await dawnGpu()).requestAdapter();
    assert.ok(adapter, 'a second adapter');
    const bare = await adapter.requestDevice();
    try {
      await assert.rejects(runSubgroupSumKernel(bare, new Float32Array(4)), (error: unknown) => {
        assert.ok(error instanceof GpuUnavailableError);
        assert.match(error.message, /"subgroups"/);
        return true;
      });
    } finally {
      bare.destroy();
    }
  });
});
