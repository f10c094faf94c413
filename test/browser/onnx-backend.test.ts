// The 'webnn' backend in headless Chromium with WebNN switched on: the mini model's graphs go to
// WebNN first; where WebNN cannot take them (Linux offers no NPU/GPU WebNN device here) the same
// bytes run on onnxruntime's wasm provider, with each refusal recorded. Either way the logits of a
// greedy decode stay within 1e-3 of the reference backend run in the same page.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { skipWithoutSharedData } from '../shared-data.ts';
import { summarize } from '../gpu/webgpu-backend-cases.ts';
import { useBrowserSession } from './harness.ts';
import type { onnxPageApi } from './pages/onnx-backend.ts';

const skip = skipWithoutSharedData('whisper-assets/gpt2.tiktoken');
const STEPS = 16;
const TIMEOUT_MS = 180_000;

describe("the webnn backend in headless Chromium, English 'mini'", () => {
  const session = useBrowserSession({ extraArgs: ['--enable-features=WebMachineLearningNeuralNetwork'] });

  test(`WebNN is tried first, the provider that ran is recorded, logits within 1e-3 at each of ${STEPS} greedy steps`, { skip, timeout: TIMEOUT_MS }, async (t) => {
    const modelUrl = '/@models/mini-3/';
    session().mount(modelUrl, (await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'huggingface', dtype: 'f32' })).dir);
    const page = await session().openPage('/test/browser/pages/onnx-backend.html', { test: t });
    const api = page.api<typeof onnxPageApi>({ timeoutMs: TIMEOUT_MS });
    const environment = await api.environment();
    assert.ok(environment.webnn, 'navigator.ml exists with the WebNN feature on');
    const { report, provider, sessions, reasons } = await api.parity(modelUrl, STEPS);
    t.diagnostic(`${summarize(report)}; provider ${provider}; reasons ${JSON.stringify(reasons)}; ` +
      sessions.map((s) => `${s.nodes} nodes × ${s.runs} on ${s.provider} (${s.shapes}) [${s.attempts.filter((a) => a.error).map((a) => `${a.provider} ${a.shapes}${a.freeDimensionOverrides ? JSON.stringify(a.freeDimensionOverrides) : ''}: ${a.error}`).join(' | ')}]`).join('; '));
    assert.deepEqual(report.nonFinite, []);
    assert.ok(report.encoderError < 1e-3, `encoder output off by ${report.encoderError}`);
    report.stepErrors.forEach((error, step) => assert.ok(error < 1e-3, `step ${step}: logits off by ${error}`));
    assert.deepEqual(report.gpuTokens, report.referenceTokens);
    assert.equal(sessions.length, 3, 'the encoder, the cross-attention K/V, and one decoder step for the prompt and every token');
    for (const compiled of sessions) {
      assert.equal(compiled.attempts[0]!.provider, 'webnn:npu', 'WebNN is asked first');
      assert.equal(compiled.attempts[compiled.attempts.length - 1]!.provider, compiled.provider);
      for (const failed of compiled.attempts.slice(0, -1)) assert.ok(failed.error && failed.error.length > 0, `${failed.provider} failed without a reason`);
    }
    assert.equal(provider, sessions[2]!.provider);
    // Debian's Chromium has the WebNN API but no WebNN device on Linux: every graph fell back to wasm, saying why.
    assert.equal(provider, 'wasm');
    for (const compiled of sessions) assert.deepEqual(compiled.attempts.map((a) => [a.provider, /WebNN/i.test(a.error ?? '')]), [['webnn:npu', true], ['webnn:gpu', true], ['wasm', false]]);
    // WebNN was offered static graphs: the decoder step's named sizes fixed to the prompt's; wasm runs it with them free.
    assert.deepEqual(sessions.map((s) => s.shapes), ['static', 'static', 'dynamic']);
    assert.deepEqual(sessions[2]!.attempts.map((a) => [a.shapes, Number.isInteger(a.freeDimensionOverrides?.rows)]), [['overridden', true], ['overridden', true], ['dynamic', false]]);
    assert.deepEqual(sessions[0]!.attempts.map((a) => a.shapes), ['static', 'static', 'static']);
  });
});
