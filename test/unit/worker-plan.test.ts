// The engine is built from the execution plan (issue #5): createTranscriber probes the device and
// plans in the engine's thread (here Node: no WebGPU, WASM SIMD), tries the plan's backends in
// order, records each attempt with its reason, and hands the plan to the caller; user overrides
// reach the plan and say so in its reasons.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { createTranscriber } from '../../src/client/transcriber.ts';
import { MurmurError } from '../../src/core/errors.ts';

const mini = () => cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' });

test("backend 'auto' follows the plan: the first backend that builds, with the plan's reasons and threads", { timeout: 120_000 }, async () => {
  const stages: string[] = [];
  const transcriber = await createTranscriber({ model: (await mini()).dir, onProgress: (event) => void (stages.at(-1) !== event.stage && stages.push(event.stage)) });
  try {
    const { plan } = transcriber;
    assert.deepEqual(stages, ['download', 'load', 'plan', 'compile']);
    assert.equal(plan.profile.webgpu.available, false, 'Node has no navigator.gpu');
    assert.equal(plan.backendOrder[0], 'wasm', `the plan starts with wasm: ${plan.backendOrder.join(', ')}`);
    assert.equal(plan.backend, 'wasm');
    assert.equal(transcriber.model.backend, 'wasm');
    assert.deepEqual(plan.attempts, [{ backend: 'wasm', outcome: 'used' }]);
    assert.ok(plan.reasons.some((reason) => /^webgpu skipped: /.test(reason)), plan.reasons.join('\n'));
    assert.ok(plan.reasons.some((reason) => /^threads \d+: /.test(reason)), plan.reasons.join('\n'));
    assert.ok(plan.threads >= 1);
    const text = (await transcriber.transcribe(new Float32Array(16000), { maxTokens: 4 })).text;
    assert.equal(typeof text, 'string');
  } finally {
    await transcriber.dispose();
  }
});

test('plan overrides from createTranscriber reach the engine and are explained', { timeout: 120_000 }, async () => {
  const transcriber = await createTranscriber({ model: (await mini()).dir, plan: { backendOrder: ['reference'], threads: 1 } });
  try {
    assert.equal(transcriber.plan.backend, 'reference');
    assert.equal(transcriber.model.backend, 'reference');
    assert.equal(transcriber.plan.threads, 1);
    assert.ok(transcriber.plan.reasons.includes('backendOrder ["reference"]: set by the caller, overriding the rule above'), transcriber.plan.reasons.join('\n'));
    assert.ok(transcriber.plan.reasons.includes('threads 1: set by the caller, overriding the rule above'));
  } finally {
    await transcriber.dispose();
  }
});

test('a backend that cannot be built is recorded with its reason and the next one is used', { timeout: 120_000 }, async () => {
  // WebGPU cannot be built in Node without a GPU object; the plan falls back to the reference.
  const transcriber = await createTranscriber({ model: (await mini()).dir, plan: { backendOrder: ['webgpu', 'webnn', 'reference'] } });
  try {
    const [webgpu, webnn, reference] = transcriber.plan.attempts;
    assert.equal(webgpu?.backend, 'webgpu');
    assert.equal(webgpu?.outcome, 'failed');
    assert.ok(webgpu?.reason && webgpu.reason.length > 0);
    assert.equal(webnn?.backend, 'webnn');
    // Skipped while this build has no WebNN backend; once it has one, it fails here (no WebNN in Node) or runs.
    assert.ok(webnn?.outcome === 'skipped' || webnn?.outcome === 'failed' || webnn?.outcome === 'used', JSON.stringify(webnn));
    if (webnn?.outcome !== 'used') {
      assert.ok(webnn?.reason, 'a reason for webnn');
      assert.deepEqual(reference, { backend: 'reference', outcome: 'used' });
      assert.equal(transcriber.plan.backend, 'reference');
    }
  } finally {
    await transcriber.dispose();
  }
});

test('a plan no backend of which builds rejects with a BACKEND error listing every attempt', { timeout: 60_000 }, async () => {
  await assert.rejects(
    createTranscriber({ model: (await mini()).dir, plan: { backendOrder: ['webgpu'] } }),
    (error: unknown) => error instanceof MurmurError && error.code === 'BACKEND' && /webgpu: /.test(error.message),
  );
});
