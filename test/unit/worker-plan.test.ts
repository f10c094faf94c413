// The engine is built from the execution plan (issue #5): createTranscriber probes the device and
// plans in the engine's thread (here Node: no WebGPU, WASM SIMD), tries the plan's backends in
// order, records each attempt with its reason, and hands the plan to the caller; user overrides
// reach the plan and say so in its reasons.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { createTranscriber } from '../../src/client/transcriber.ts';
import { MurmurError } from '../../src/core/errors.ts';
import { CPU_KERNEL_VARIANTS } from '../../src/kernels-wgsl/variants.ts';
import { applyPrecision, precisionConversions } from '../../src/core/device/weight-precision.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { skipWithoutSharedData } from '../shared-data.ts';

const mini = () => cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' });

// The synthetic models carry Whisper's real tokenizer, read from the shared reference data.
const SKIP_WITHOUT_TOKENIZER = skipWithoutSharedData('whisper-assets/gpt2.tiktoken');

test("backend 'auto' follows the plan: the first backend that builds, with the plan's reasons and threads", { skip: SKIP_WITHOUT_TOKENIZER, timeout: 120_000 }, async () => {
  const stages: string[] = [];
  const transcriber = await createTranscriber({ model: (await mini()).dir, onProgress: (event) => void (stages.at(-1) !== event.stage && stages.push(event.stage)) });
  try {
    const { plan } = transcriber;
    assert.deepEqual(stages, ['download', 'load', 'plan', 'compile']);
    assert.equal(plan.profile.webgpu.available, false, 'Node has no navigator.gpu');
    assert.equal(plan.backendOrder[0], 'wasm', `the plan starts with wasm: ${plan.backendOrder.join(', ')}`);
    assert.equal(plan.backend, 'wasm');
    assert.equal(transcriber.model.backend, 'wasm');
    assert.equal(plan.attempts.length, 1);
    const [attempt] = plan.attempts;
    assert.equal(attempt?.backend, 'wasm');
    assert.equal(attempt?.outcome, 'used');
    // What the WASM backend was built with, read back from it: the plan's layout, precision and threads.
    assert.equal(plan.layout, 'row-major');
    assert.deepEqual(plan.applied, attempt?.applied);
    assert.equal(plan.applied.layout, 'row-major');
    assert.equal(plan.applied.precision, 'f32');
    assert.equal(plan.applied.threads, plan.threads);
    assert.ok(!plan.reasons.some((reason) => /not applied/.test(reason)), plan.reasons.join('\n'));
    assert.ok(plan.reasons.some((reason) => /^webgpu skipped: /.test(reason)), plan.reasons.join('\n'));
    assert.ok(plan.reasons.some((reason) => /^threads \d+: /.test(reason)), plan.reasons.join('\n'));
    assert.ok(plan.threads >= 1);
    const text = (await transcriber.transcribe(new Float32Array(16000), { maxTokens: 4 })).text;
    assert.equal(typeof text, 'string');
  } finally {
    await transcriber.dispose();
  }
});

test('plan overrides from createTranscriber reach the engine and are explained', { skip: SKIP_WITHOUT_TOKENIZER, timeout: 120_000 }, async () => {
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

test('a backend that cannot be built is recorded with its reason and the next one is used', { skip: SKIP_WITHOUT_TOKENIZER, timeout: 120_000 }, async () => {
  // WebGPU cannot be built in Node without a GPU object; the plan falls back to the reference.
  const transcriber = await createTranscriber({ model: (await mini()).dir, plan: { backendOrder: ['webgpu', 'webnn', 'reference'] } });
  try {
    const [webgpu, webnn, reference] = transcriber.plan.attempts;
    assert.equal(webgpu?.backend, 'webgpu');
    assert.equal(webgpu?.outcome, 'failed');
    assert.ok(webgpu?.reason && webgpu.reason.length > 0);
    // Not pinned by the caller: the WebGPU attempt asked for autotuning (with the persistent store).
    assert.equal(webgpu?.applied.kernelVariantsSource, 'autotune');
    assert.ok(webgpu?.applied.reasons.some((r) => r.startsWith('kernel variants autotuned')), JSON.stringify(webgpu?.applied));
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

test('a plan no backend of which builds rejects with a BACKEND error listing every attempt', { skip: SKIP_WITHOUT_TOKENIZER, timeout: 60_000 }, async () => {
  await assert.rejects(
    createTranscriber({ model: (await mini()).dir, plan: { backendOrder: ['webgpu'] } }),
    (error: unknown) => error instanceof MurmurError && error.code === 'BACKEND' && /webgpu: /.test(error.message),
  );
});

test("plan overrides {layout: 'blocked', precision: 'q8'} reach the WASM backend: tiles and int8 weights, fewer bytes", { skip: SKIP_WITHOUT_TOKENIZER, timeout: 120_000 }, async (t) => {
  const model = (await mini()).dir;
  const baseline = await createTranscriber({ model, plan: { backendOrder: ['wasm'], threads: 1 } });
  const silence = new Float32Array(16000);
  let baselineText: string;
  let baselineApplied: typeof baseline.plan.applied;
  try {
    baselineApplied = baseline.plan.applied;
    baselineText = (await baseline.transcribe(silence, { maxTokens: 4, temperature: 0 })).text;
  } finally {
    await baseline.dispose();
  }
  const narrowed = await createTranscriber({ model, plan: { backendOrder: ['wasm'], threads: 1, layout: 'blocked', precision: 'q8' } });
  try {
    const { plan } = narrowed;
    assert.equal(plan.layout, 'blocked');
    assert.equal(plan.precision, 'q8');
    const { applied } = plan;
    assert.equal(applied.layout, 'blocked', 'the WASM backend reports tiles');
    assert.equal(applied.precision, 'q8', 'the matrices are q8_0 once loaded');
    assert.ok(applied.reasons.some((r) => /^precision q8: \d+ matrices converted to q8_0 at load/.test(r)), applied.reasons.join('\n'));
    assert.ok(applied.reasons.some((r) => /quantized matrices keep the int8 panels/.test(r)), applied.reasons.join('\n'));
    // The measurable effect: the weights handed over and the WebAssembly memory holding them shrink.
    assert.ok(applied.weightBytes! < 0.4 * baselineApplied.weightBytes!, `${applied.weightBytes} vs ${baselineApplied.weightBytes} weight bytes`);
    assert.ok(applied.backendBytes! < 0.75 * baselineApplied.backendBytes!, `${applied.backendBytes} vs ${baselineApplied.backendBytes} backend bytes`);
    t.diagnostic(`weights ${(baselineApplied.weightBytes! / 2 ** 20).toFixed(1)} → ${(applied.weightBytes! / 2 ** 20).toFixed(1)} MiB; WASM memory ${(baselineApplied.backendBytes! / 2 ** 20).toFixed(1)} → ${(applied.backendBytes! / 2 ** 20).toFixed(1)} MiB`);
    const text = (await narrowed.transcribe(silence, { maxTokens: 4, temperature: 0 })).text;
    assert.equal(typeof text, 'string');
    t.diagnostic(`f32 row-major: ${JSON.stringify(baselineText)}; q8 blocked: ${JSON.stringify(text)}`);
  } finally {
    await narrowed.dispose();
  }
});

test('a layout a backend cannot consume runs row-major there, with the reason; precision never upcasts', { skip: SKIP_WITHOUT_TOKENIZER, timeout: 120_000 }, async () => {
  const quantized = await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'ggml', dtype: 'q8_0' });
  const transcriber = await createTranscriber({ model: quantized.path, plan: { backendOrder: ['reference'], layout: 'blocked', precision: 'f16' } });
  try {
    const [attempt] = transcriber.plan.attempts;
    assert.equal(attempt?.outcome, 'used');
    assert.equal(attempt?.applied.layout, 'row-major');
    assert.ok(attempt?.applied.reasons.includes('layout row-major instead of blocked: the reference backend consumes row-major'), JSON.stringify(attempt?.applied));
    assert.equal(attempt?.applied.precision, 'q8', 'q8_0 matrices are not widened to f16');
    assert.ok(attempt?.applied.reasons.some((r) => /q8_0 matrices stay as stored: weights are never widened/.test(r)), JSON.stringify(attempt?.applied));
  } finally {
    await transcriber.dispose();
  }
});

test('kernel variants set by the caller are pinned on the WebGPU attempt', { skip: SKIP_WITHOUT_TOKENIZER, timeout: 60_000 }, async () => {
  const kernelVariants = { ...CPU_KERNEL_VARIANTS };
  const transcriber = await createTranscriber({ model: (await mini()).dir, plan: { backendOrder: ['webgpu', 'reference'], kernelVariants } });
  try {
    const [webgpu] = transcriber.plan.attempts;
    assert.equal(webgpu?.outcome, 'failed', 'no WebGPU in Node');
    assert.equal(webgpu?.applied.kernelVariantsSource, 'pinned');
    assert.deepEqual(webgpu?.applied.kernelVariants, kernelVariants);
  } finally {
    await transcriber.dispose();
  }
});

test('the model is narrowed once per init: a failed attempt does not convert again, and the bytes reported are the narrowed ones', { skip: SKIP_WITHOUT_TOKENIZER, timeout: 120_000 }, async (t) => {
  const { dir } = await mini();
  const loaded = await loadModel(dir);
  const expected = { q8: applyPrecision(loaded, 'q8'), f16: applyPrecision(loaded, 'f16') };
  t.diagnostic(`mini f32 weights ${expected.q8.bytesBefore} bytes → q8 ${expected.q8.bytesAfter}, f16 ${expected.f16.bytesAfter}`);
  const before = precisionConversions();
  // No WebGPU in Node: the first attempt fails once the model has been narrowed for it; wasm takes that same model.
  const transcriber = await createTranscriber({ model: dir, plan: { backendOrder: ['webgpu', 'wasm'], threads: 1, precision: 'q8' } });
  try {
    assert.equal(precisionConversions() - before, 1, 'one conversion for both attempts');
    const [webgpu, wasm] = transcriber.plan.attempts;
    assert.equal(webgpu?.outcome, 'failed');
    assert.equal(wasm?.outcome, 'used');
    assert.equal(wasm?.applied.precision, 'q8');
    assert.equal(wasm?.applied.weightBytes, expected.q8.bytesAfter);
    // The shared conversion still reports what it did, not "nothing converted".
    assert.ok(wasm?.applied.reasons.some((r) => r.startsWith(`precision q8: ${expected.q8.converted} matrices converted to q8_0 at load`)), JSON.stringify(wasm?.applied.reasons));
  } finally {
    await transcriber.dispose();
  }
});
