import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { probeDevice, type DeviceProfile, type WebGpuProfile } from '../../src/core/device/probe.ts';
import { planExecution } from '../../src/core/device/plan.ts';
import { KNOWN_DIMS } from '../../src/core/model/dims.ts';

const tiny = { dims: KNOWN_DIMS['tiny.en'] };

function gpuProfile(overrides: Partial<WebGpuProfile> = {}): WebGpuProfile {
  return {
    available: true,
    vendor: 'nvidia',
    architecture: 'ampere',
    device: '',
    description: 'NVIDIA RTX',
    isFallbackAdapter: false,
    cpuLike: false,
    features: ['shader-f16'],
    limits: { maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 30, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 1024 },
    ...overrides,
  };
}

function profile(overrides: Partial<DeviceProfile> = {}): DeviceProfile {
  return {
    webgpu: { available: false, reason: 'no gpu here' },
    webnn: { available: false, reason: 'no webnn here' },
    wasm: { simd: true, relaxedSimd: false, threads: true, cores: 4, deviceMemoryGiB: 8, storage: { available: false, reason: 'none' } },
    environment: { kind: 'browser' },
    ...overrides,
  };
}

describe('probeDevice in Node', () => {
  test('records why WebGPU and WebNN are unavailable, describes WASM, and round-trips through JSON', async () => {
    const found = await probeDevice();
    assert.equal(found.environment.kind, 'node');
    assert.equal(found.webgpu.available, false);
    if (!found.webgpu.available) assert.match(found.webgpu.reason, /options\.gpu/);
    assert.equal(found.webnn.available, false);
    if (!found.webnn.available) assert.match(found.webnn.reason, /navigator\.ml/);
    assert.equal(found.wasm.simd, true, 'Node 20 validates the SIMD module');
    assert.equal(found.wasm.threads, true, 'Node always allows shared memory');
    assert.ok(found.wasm.cores >= 1);
    assert.ok((found.wasm.deviceMemoryGiB ?? 0) > 0);
    assert.deepEqual(JSON.parse(JSON.stringify(found)), found);
  });

  test('a GPU whose requestAdapter throws or returns null is recorded, not thrown', async () => {
    const throwing = { requestAdapter: async () => { throw new Error('driver exploded'); } } as unknown as GPU;
    const failed = await probeDevice({ gpu: throwing });
    assert.equal(failed.webgpu.available, false);
    if (!failed.webgpu.available) assert.match(failed.webgpu.reason, /driver exploded/);
    const empty = await probeDevice({ gpu: { requestAdapter: async () => null } as unknown as GPU });
    if (empty.webgpu.available) assert.fail('a null adapter is unavailable');
    assert.match(empty.webgpu.reason, /null/);
  });

  test('a fake SwiftShader adapter is described and flagged CPU-like', async () => {
    const adapter = {
      info: { vendor: 'google', architecture: 'swiftshader', device: '', description: 'SwiftShader device', subgroupMinSize: 4, subgroupMaxSize: 4 },
      features: new Set(['subgroups', 'shader-f16']),
      limits: { maxStorageBufferBindingSize: 1 << 27, maxBufferSize: 1 << 28, maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256 },
    };
    const found = await probeDevice({ gpu: { requestAdapter: async () => adapter } as unknown as GPU });
    if (!found.webgpu.available) assert.fail(found.webgpu.reason);
    assert.equal(found.webgpu.cpuLike, true);
    assert.equal(found.webgpu.subgroupMinSize, 4);
    assert.deepEqual(found.webgpu.features, ['shader-f16', 'subgroups']);
    assert.equal(found.webgpu.limits.maxComputeInvocationsPerWorkgroup, 256);
  });

  test('WebNN contexts that fail, hang or succeed are each recorded', async (t) => {
    const ml = {
      createContext: async (options: { deviceType?: string; powerPreference?: string }) => {
        if (options.deviceType === 'npu') throw new Error('NPU not supported');
        if (options.deviceType === 'gpu') return new Promise(() => {});
        return { opSupportLimits: () => ({ preferredInputLayout: 'nhwc', add: {}, matmul: {} }) };
      },
    };
    // Node 20 has no navigator; later versions have one without `ml`.
    const scope = globalThis as unknown as { navigator?: Record<string, unknown> };
    const hadNavigator = scope.navigator !== undefined;
    if (!hadNavigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
    scope.navigator!.ml = ml;
    t.after(() => {
      if (hadNavigator) delete scope.navigator!.ml;
      else delete scope.navigator;
    });
    const found = await probeDevice({ webnnTimeoutMs: 50 });
    if (!found.webnn.available) assert.fail(found.webnn.reason);
    const [npu, gpu, cpu] = found.webnn.contexts;
    assert.deepEqual(npu, { options: { deviceType: 'npu' }, created: false, reason: 'Error: NPU not supported' });
    assert.equal(gpu!.created, false);
    assert.match(gpu!.reason!, /within 50 ms/);
    assert.deepEqual(cpu, { options: { deviceType: 'cpu' }, created: true, preferredInputLayout: 'nhwc', opCount: 2 });
    assert.equal(found.webnn.contexts.length, 5);
  });
});

describe('planExecution', () => {
  test('without WebGPU: wasm then reference, threads from cores, f32 tiny fits, all explained', () => {
    const plan = planExecution(profile(), tiny);
    assert.deepEqual(plan.backendOrder, ['wasm', 'reference']);
    assert.equal(plan.threads, 4);
    assert.equal(plan.precision, 'f32');
    assert.equal(plan.layout, 'row-major');
    assert.equal(plan.kernelVariants, undefined);
    assert.ok(plan.reasons.some((r) => r.includes('webgpu skipped: no gpu here')), plan.reasons.join('\n'));
    assert.ok(plan.reasons.some((r) => r.startsWith('threads 4')));
  });

  test('layout follows the leading backend by a stated rule, and the caller can override it', () => {
    const wasmFirst = planExecution(profile(), tiny);
    assert.equal(wasmFirst.layout, 'row-major');
    assert.ok(wasmFirst.reasons.some((r) => r.startsWith('layout row-major: wasm leads') && r.includes('32.0 vs 23.6 GFLOP/s')), wasmFirst.reasons.join('\n'));
    const hardware = planExecution(profile({ webgpu: gpuProfile() }), tiny);
    assert.equal(hardware.layout, 'blocked');
    assert.ok(hardware.reasons.some((r) => r.startsWith('layout blocked: a hardware GPU leads')), hardware.reasons.join('\n'));
    const cpuLike = planExecution(profile({ webgpu: gpuProfile({ description: 'SwiftShader', cpuLike: true }) }), tiny);
    assert.equal(cpuLike.layout, 'row-major', 'a CPU-like adapter comes after wasm');
    const npu = planExecution(profile({ webnn: { available: true, contexts: [{ options: { deviceType: 'npu' }, created: true }] } }), tiny);
    assert.equal(npu.backendOrder[0], 'webnn');
    assert.equal(npu.layout, 'channels-first');
    assert.ok(npu.reasons.some((r) => r.startsWith('layout channels-first: webnn leads')), npu.reasons.join('\n'));
    // An overridden order decides the layout too.
    assert.equal(planExecution(profile({ webgpu: gpuProfile() }), tiny, { backendOrder: ['wasm'] }).layout, 'row-major');
    for (const layout of ['blocked', 'channels-first', 'row-major'] as const) {
      const chosen = planExecution(profile({ webgpu: gpuProfile() }), tiny, { layout });
      assert.equal(chosen.layout, layout);
      assert.ok(chosen.reasons.includes(`layout "${layout}": set by the caller, overriding the rule above`), chosen.reasons.join('\n'));
    }
  });

  test('a hardware adapter goes first with the GPU kernel variants', () => {
    const plan = planExecution(profile({ webgpu: gpuProfile() }), tiny);
    assert.deepEqual(plan.backendOrder, ['webgpu', 'wasm', 'reference']);
    assert.equal(plan.kernelVariants?.source, 'default');
  });

  test('a CPU-like adapter comes after wasm, with the CPU kernel variants', () => {
    const plan = planExecution(profile({ webgpu: gpuProfile({ description: 'SwiftShader', cpuLike: true }) }), tiny);
    assert.deepEqual(plan.backendOrder, ['wasm', 'webgpu', 'reference']);
    assert.equal(plan.kernelVariants?.source, 'cpu');
    assert.ok(plan.reasons.some((r) => /wasm before webgpu.*CPU/.test(r)), plan.reasons.join('\n'));
  });

  test('no SIMD drops wasm; no shared memory means one thread', () => {
    const base = profile();
    const plan = planExecution({ ...base, wasm: { ...base.wasm, simd: false, threads: false, threadsReason: 'not isolated' } }, tiny);
    assert.deepEqual(plan.backendOrder, ['reference']);
    assert.equal(plan.threads, 1);
    assert.ok(plan.reasons.includes('threads 1: not isolated'));
  });

  test('an accelerated WebNN context puts webnn first; a CPU-only one does not', () => {
    const webnn = (deviceType: 'npu' | 'cpu') => ({ available: true as const, contexts: [{ options: { deviceType }, created: true }] });
    assert.deepEqual(planExecution(profile({ webnn: webnn('npu') }), tiny).backendOrder, ['webnn', 'wasm', 'reference']);
    assert.deepEqual(planExecution(profile({ webnn: webnn('cpu') }), tiny).backendOrder, ['wasm', 'reference']);
  });

  test('the memory budget lowers the precision and says why', () => {
    const base = profile();
    // tiny.en has ~37.8 M weights: 151 MB at f32, 76 MB at f16, 40 MB at q8.
    const small = { ...base, wasm: { ...base.wasm, deviceMemoryGiB: 0.1 } };
    const plan = planExecution(small, { dims: KNOWN_DIMS['tiny.en'] });
    assert.equal(plan.precision, 'q8');
    assert.ok(plan.reasons.some((r) => /precision q8: f32 weights .* exceed/.test(r)), plan.reasons.join('\n'));
    // large-v3 has ~1.55 G weights: 6.2 GB at f32 exceeds half of 8 GiB, 3.1 GB at f16 fits.
    assert.equal(planExecution(profile(), { dims: KNOWN_DIMS['large-v3'] }).precision, 'f16');
    const tooSmall = { ...base, wasm: { ...base.wasm, deviceMemoryGiB: 0.01 } };
    const squeezed = planExecution(tooSmall, tiny);
    assert.equal(squeezed.precision, 'q4');
    assert.ok(squeezed.reasons.some((r) => /loading may fail/.test(r)));
  });

  test('a quantized model is never planned at a higher precision than it is stored in', () => {
    assert.equal(planExecution(profile(), { ...tiny, dtype: 'q8_0', bytes: 40e6 }).precision, 'q8');
  });

  test('caller preferences win and are recorded', () => {
    const plan = planExecution(profile({ webgpu: gpuProfile({ cpuLike: true }) }), tiny, { backendOrder: ['webgpu', 'reference'], threads: 1, precision: 'f16' });
    assert.deepEqual(plan.backendOrder, ['webgpu', 'reference']);
    assert.equal(plan.threads, 1);
    assert.equal(plan.precision, 'f16');
    assert.ok(plan.reasons.includes('backendOrder ["webgpu","reference"]: set by the caller, overriding the rule above'));
    assert.ok(plan.reasons.includes('threads 1: set by the caller, overriding the rule above'));
    assert.deepEqual(JSON.parse(JSON.stringify(plan)), plan);
  });
});
