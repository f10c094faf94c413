import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceProfile } from '../../src/core/device/probe.ts';
import { useBrowserSession, type RemoteApi, type TestPage } from './harness.ts';
import type { deviceProbePageApi } from './pages/device-probe.ts';

describe('probeDevice and planExecution in headless Chromium', () => {
  // WebNN is behind a feature flag in Chromium; with it on, navigator.ml exists even where no
  // backend can create a context (Linux without a GPU), which is the case the probe must record.
  const session = useBrowserSession({ extraArgs: ['--enable-features=WebMachineLearningNeuralNetwork'] });
  let page: TestPage;
  let api: RemoteApi<typeof deviceProbePageApi>;
  let profile: DeviceProfile;
  before(async () => {
    page = await session().openPage('/test/browser/pages/device-probe.html');
    api = page.api<typeof deviceProbePageApi>();
    profile = await api.probe();
  });

  test('the profile round-trips through JSON and describes the browser', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(profile)), profile);
    assert.equal(profile.environment.kind, 'browser');
    assert.match(profile.environment.userAgent ?? '', /Chrome/);
    assert.equal(profile.wasm.simd, true);
    assert.equal(profile.wasm.relaxedSimd, true, 'Chromium ships relaxed SIMD');
    assert.equal(profile.wasm.threads, true, 'the test pages are cross-origin isolated');
    assert.ok(profile.wasm.cores >= 1);
    assert.equal(profile.wasm.storage.available, true);
  });

  test('WebGPU on SwiftShader is found and flagged CPU-like', () => {
    if (!profile.webgpu.available) assert.fail(`WebGPU unavailable: ${profile.webgpu.reason}`);
    assert.equal(profile.webgpu.cpuLike, true, `adapter ${JSON.stringify(profile.webgpu)}`);
    assert.ok(profile.webgpu.limits.maxStorageBufferBindingSize > 0);
  });

  test('WebNN is recorded as present with each context attempt, or absent with a reason', (t) => {
    if (!profile.webnn.available) {
      assert.match(profile.webnn.reason, /navigator\.ml/);
      t.diagnostic(`WebNN absent: ${profile.webnn.reason}`);
      return;
    }
    assert.equal(profile.webnn.contexts.length, 5);
    for (const attempt of profile.webnn.contexts) {
      assert.ok(attempt.created || (attempt.reason ?? '').length > 0, `attempt ${JSON.stringify(attempt)} says why it failed`);
    }
    t.diagnostic(`WebNN contexts: ${JSON.stringify(profile.webnn.contexts)}`);
  });

  test('the plan prefers WASM over the emulated GPU and explains itself; overrides win', async () => {
    const plan = await api.plan(profile);
    assert.deepEqual(plan.backendOrder.slice(-3), ['wasm', 'webgpu', 'reference']);
    assert.equal(plan.kernelVariants?.source, 'cpu');
    assert.ok(plan.reasons.some((r) => r.includes('runs shaders on the CPU')), plan.reasons.join('\n'));
    assert.ok(plan.reasons.some((r) => r.startsWith('webnn')), 'WebNN\'s status is explained');
    const forced = await api.plan(profile, { backendOrder: ['webgpu'], threads: 1 });
    assert.deepEqual(forced.backendOrder, ['webgpu']);
    assert.equal(forced.threads, 1);
    assert.ok(forced.reasons.some((r) => r.startsWith('backendOrder ["webgpu"]: set by the caller')));
  });

  test('the page reported no errors', async () => {
    await page.close();
  });
});
