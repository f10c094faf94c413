import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GpuKernelError, GpuUnavailableError, requestGpuDevice, submitChecked } from '../../src/kernels-wgsl/device.ts';
import { MurmurError } from '../../src/core/errors.ts';
import { acquireNodeGpu, deviceOrSkip } from './node-gpu.ts';

function assertUnavailable(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof GpuUnavailableError, `expected GpuUnavailableError, got ${String(error)}`);
    assert.ok(error instanceof MurmurError);
    assert.equal(error.code, 'GPU_UNAVAILABLE');
    assert.match(error.message, pattern);
    return true;
  };
}

test('without navigator.gpu in Node the error says to pass options.gpu', async () => {
  assert.equal((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu, undefined);
  await assert.rejects(requestGpuDevice(), assertUnavailable(/options\.gpu/));
});

test('an adapter-less GPU gives a GpuUnavailableError, not null', async () => {
  const gpu = { requestAdapter: async () => null } as unknown as GPU;
  await assert.rejects(requestGpuDevice({ gpu }), assertUnavailable(/no adapter/));
});

test('a throwing requestAdapter is wrapped with its message', async () => {
  const gpu = { requestAdapter: async () => { throw new Error('driver exploded'); } } as unknown as GPU;
  await assert.rejects(requestGpuDevice({ gpu }), assertUnavailable(/driver exploded/));
});

test('a required feature the adapter lacks is named', async () => {
  const adapter = { features: new Set(['subgroups']), limits: {}, requestDevice: async () => assert.fail('must not be called') };
  const gpu = { requestAdapter: async () => adapter } as unknown as GPU;
  await assert.rejects(requestGpuDevice({ gpu, requiredFeatures: ['shader-f16'] }), assertUnavailable(/"shader-f16"/));
});

test('optional features and raised limits are requested only as the adapter offers them', async () => {
  let descriptor: GPUDeviceDescriptor | undefined;
  const device = { features: new Set(['timestamp-query']) };
  const adapter = {
    features: new Set(['timestamp-query', 'texture-compression-bc']),
    limits: { maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 31, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 1024 },
    requestDevice: async (d: GPUDeviceDescriptor) => ((descriptor = d), device),
  };
  const gpu = { requestAdapter: async () => adapter } as unknown as GPU;
  const context = await requestGpuDevice({ gpu });
  assert.deepEqual(descriptor?.requiredFeatures, ['timestamp-query']);
  assert.deepEqual(descriptor?.requiredLimits, adapter.limits);
  assert.deepEqual([...context.features], ['timestamp-query']);
});

test('a refused requestDevice becomes a GpuUnavailableError naming the request', async () => {
  const adapter = { features: new Set(), limits: { maxBufferSize: 4 }, requestDevice: async () => { throw new Error('limit too high'); } };
  const gpu = { requestAdapter: async () => adapter } as unknown as GPU;
  await assert.rejects(requestGpuDevice({ gpu }), assertUnavailable(/limit too high.*|maxBufferSize/s));
});

test('submitChecked turns a WGSL error into a GpuKernelError naming the kernel', async (t) => {
  const context = deviceOrSkip(await acquireNodeGpu(), t);
  if (!context) return;
  try {
    await assert.rejects(
      submitChecked(context.device, 'broken-kernel', () => {
        context.device.createShaderModule({ code: 'fn main( {' });
      }),
      (error: unknown) => {
        assert.ok(error instanceof GpuKernelError);
        assert.equal(error.kernel, 'broken-kernel');
        assert.match(error.message, /^broken-kernel: /);
        return true;
      },
    );
  } finally {
    context.device.destroy();
  }
});
