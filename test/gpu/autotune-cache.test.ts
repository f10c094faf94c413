// The autotune cache in Node on Dawn/SwiftShader: a first start measures within its budget
// (compilation counted; what it cannot afford is skipped and reported) and writes the winners to
// a file; a second start (fresh in-memory cache, fresh store) reads the file and runs no
// micro-benchmark; the execution plan picks the cached variants up. Plus the file store itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  autotuneKernels,
  autotuneShapes,
  clearAutotuneCache,
  fileVariantStore,
  restoreTunedVariants,
  tunedVariantsFor,
  variantCacheKey,
} from '../../src/kernels-wgsl/autotune.ts';
import { MURMUR_VERSION } from '../../src/kernels-wgsl/autotune-cache.ts';
import { deviceAdapterFacts, DEFAULT_KERNEL_VARIANTS, selectVariants, setKernelVariants } from '../../src/kernels-wgsl/variants.ts';
import { probeDevice } from '../../src/core/device/probe.ts';
import { planExecution } from '../../src/core/device/plan.ts';
import { KNOWN_DIMS } from '../../src/core/model/dims.ts';
import { acquireNodeGpu, dawnGpu, deviceOrSkip, type NodeGpu } from './node-gpu.ts';

const dims = { ...KNOWN_DIMS['tiny.en'], nAudioCtx: 150, nAudioState: 64, nAudioHead: 2 };
const shapes = autotuneShapes(dims);
const BUDGET_MS = 1000;
/** Timer and scheduling slack on a loaded machine. */
const SLACK_MS = 150;

describe('the autotune cache in Node', () => {
  let gpu: NodeGpu | undefined;
  const directory = mkdtempSync(join(tmpdir(), 'murmur-autotune-test-'));
  before(async () => {
    gpu = await acquireNodeGpu();
  });
  after(() => {
    gpu?.context?.device.destroy();
    rmSync(directory, { recursive: true, force: true });
  });

  test('the key names adapter, runtime, Murmur version and shapes; MURMUR_VERSION is the package version', () => {
    const key = variantCacheKey({ vendor: 'nvidia', architecture: 'ampere', description: 'RTX' }, shapes);
    for (const part of ['nvidia/ampere/RTX', `Node.js ${process.versions.node}`, `murmur ${MURMUR_VERSION}`, 'rows 150 width 64 heads 2 hidden 256']) assert.ok(key.includes(part), `${part} in ${key}`);
    assert.notEqual(variantCacheKey({ vendor: 'nvidia', architecture: 'ampere', description: 'RTX' }, { ...shapes, width: 128 }), key);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(MURMUR_VERSION, pkg.version);
  });

  test('the file store round-trips, and ignores corrupt files, other keys and unknown variants', async () => {
    const store = fileVariantStore({ directory: join(directory, 'store') });
    const tuned = { ...selectVariants({ vendor: 'google', architecture: 'swiftshader' }), source: 'tuned' as const };
    assert.equal(await store.load('a'), undefined, 'nothing stored yet');
    await store.save('a', tuned);
    assert.deepEqual(await store.load('a'), tuned);
    assert.equal(await store.load('b'), undefined);
    const [file] = readdirSync(join(directory, 'store'));
    const path = join(directory, 'store', file!);
    writeFileSync(path, '{ not json');
    assert.equal(await store.load('a'), undefined, 'a corrupt file is tuned again');
    writeFileSync(path, JSON.stringify({ key: 'a', variants: { ...tuned, attention: 'rows99' } }));
    assert.equal(await store.load('a'), undefined, 'a variant this version lacks is tuned again');
    // A directory that cannot be made (a file is in the way): saving gives up quietly, loading finds nothing.
    const blocked = fileVariantStore({ directory: join(path, 'below-a-file') });
    await blocked.save('a', tuned);
    assert.equal(await blocked.load('a'), undefined);
  });

  test(`first start measures within ${BUDGET_MS} ms and writes the file; the second reads it and runs no benchmark; the plan reuses it`, { timeout: 120_000 }, async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const { device } = context;
    const storeDirectory = join(directory, 'starts');
    try {
      clearAutotuneCache();
      const first = await autotuneKernels(device, shapes, { budgetMs: BUDGET_MS, store: fileVariantStore({ directory: storeDirectory }) });
      const worst = Math.max(0, ...first.timings.map((timing) => timing.costMs));
      t.diagnostic(`first start: ${first.spentMs.toFixed(0)} ms, measured ${first.timings.map((x) => `${x.op} ${x.variant} ${x.ms.toFixed(1)} ms (cost ${x.costMs.toFixed(0)} ms)`).join('; ')}; skipped ${first.skipped.map((x) => `${x.op} ${x.variant}`).join(', ') || 'nothing'}`);
      assert.equal(first.cached, false);
      assert.ok(first.timings.length + first.skipped.length >= 4 + 1, 'every candidate was measured or reported as skipped');
      // A compile cannot be interrupted: at most the last candidate started may overrun.
      assert.ok(first.spentMs <= BUDGET_MS + worst + SLACK_MS, `spent ${first.spentMs} ms on a budget of ${BUDGET_MS} (worst candidate ${worst} ms)`);
      assert.equal(readdirSync(storeDirectory).length, 1, 'the winners were written to a file');

      // Second start: nothing in memory, a new store over the same directory.
      clearAutotuneCache();
      const facts = deviceAdapterFacts(device);
      assert.equal(tunedVariantsFor(facts, shapes), undefined);
      const restored = await restoreTunedVariants(fileVariantStore({ directory: storeDirectory }), facts, shapes);
      assert.deepEqual(restored, first.variants);
      const profile = await probeDevice({ gpu: await dawnGpu() });
      assert.ok(profile.webgpu.available, 'the probe sees the adapter');
      const plan = planExecution(profile, { dims });
      assert.deepEqual(plan.kernelVariants, first.variants, 'the plan reuses the cached variants');
      assert.ok(plan.reasons.some((reason) => /autotune cache/.test(reason)));

      clearAutotuneCache();
      const second = await autotuneKernels(device, shapes, { budgetMs: BUDGET_MS, store: fileVariantStore({ directory: storeDirectory }) });
      assert.equal(second.cached, true);
      assert.deepEqual(second.timings, [], 'no micro-benchmark on the second start');
      assert.deepEqual(second.variants, first.variants);
    } finally {
      setKernelVariants(device, { ...DEFAULT_KERNEL_VARIANTS });
      clearAutotuneCache();
    }
  });

  test('a spent budget measures nothing: every candidate is skipped and reported, the guesses stay', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const { device } = context;
    try {
      clearAutotuneCache();
      const result = await autotuneKernels(device, { ...shapes, rows: 100 }, { budgetMs: 0 });
      assert.deepEqual(result.timings, []);
      assert.deepEqual([...new Set(result.skipped.map((x) => x.op))], ['matmul', 'layerNorm', 'attention', 'fewRows']);
      const guess = selectVariants(deviceAdapterFacts(device));
      assert.deepEqual({ ...result.variants, source: guess.source }, guess);
      assert.ok(result.spentMs < 50, `${result.spentMs} ms spent on nothing`);
    } finally {
      setKernelVariants(device, { ...DEFAULT_KERNEL_VARIANTS });
      clearAutotuneCache();
    }
  });
});
