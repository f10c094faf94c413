import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probeDevice } from '../../src/core/device/probe.ts';
import { planExecution } from '../../src/core/device/plan.ts';
import { KNOWN_DIMS } from '../../src/core/model/dims.ts';
import { dawnGpu } from './node-gpu.ts';

test('with the webgpu package\'s GPU the probe finds an adapter and the plan accounts for it', async (t) => {
  const profile = await probeDevice({ gpu: await dawnGpu() });
  if (!profile.webgpu.available) {
    if (process.env.CI) assert.fail(`${profile.webgpu.reason} (CI must run the GPU tests)`);
    t.skip(`no adapter: ${profile.webgpu.reason}; on Debian install chromium (SwiftShader) and libvulkan1`);
    return;
  }
  const gpu = profile.webgpu;
  assert.ok(gpu.limits.maxStorageBufferBindingSize >= 2 ** 27, `maxStorageBufferBindingSize ${gpu.limits.maxStorageBufferBindingSize}`);
  assert.ok(gpu.limits.maxComputeInvocationsPerWorkgroup >= 256);
  assert.ok(gpu.features.length > 0, 'Dawn reports some features');
  assert.deepEqual(JSON.parse(JSON.stringify(profile)), profile);

  const plan = planExecution(profile, { dims: KNOWN_DIMS['tiny.en'] });
  assert.ok(plan.backendOrder.includes('webgpu'));
  assert.ok(plan.kernelVariants, 'WebGPU plans carry kernel variants');
  if (gpu.cpuLike) {
    // SwiftShader here: WASM is the faster choice, and the reasons say so.
    assert.deepEqual(plan.backendOrder, ['wasm', 'webgpu', 'reference']);
    assert.equal(plan.kernelVariants.source, 'cpu');
    assert.ok(plan.reasons.some((r) => r.includes('runs shaders on the CPU')), plan.reasons.join('\n'));
  } else {
    assert.deepEqual(plan.backendOrder, ['webgpu', 'wasm', 'reference']);
  }
  t.diagnostic(`adapter: ${gpu.vendor} / ${gpu.architecture} / ${gpu.description}; cpuLike ${gpu.cpuLike}`);
  t.diagnostic(`plan: ${plan.reasons.join(' | ')}`);
});
