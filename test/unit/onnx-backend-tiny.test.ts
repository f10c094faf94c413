// The 'webnn' backend (src/onnx) on a synthetic tiny.en model (real shapes, random weights, a
// Hugging Face safetensors folder) against the reference backend: logits within 1e-3 at every step
// of a greedy decode, the same tokens, in both graph layouts, three compiled sessions each. The reference encoder alone
// takes tens of seconds here, so this file holds this one test and decodes 4 tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createOnnxBackend } from '../../src/onnx/backend.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import { createLogitsSource, encode, type MelInput, type ModelParameters } from '../../src/core/model/whisper.ts';
import type { WhisperOps } from '../../src/core/model/ops.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { cachedSyntheticModel, DEFAULT_ASSETS_DIR } from '../../scripts/synthetic/generate.ts';
import { createRandom } from '../../scripts/synthetic/weights.ts';

const skip = existsSync(`${DEFAULT_ASSETS_DIR}/gpt2.tiktoken`) ? false : `${DEFAULT_ASSETS_DIR} is absent (reference data folder not mounted)`;
const STEPS = 4;

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

async function greedy<T, W>(ops: WhisperOps<T, W>, model: ModelParameters<W>, mel: MelInput, prompt: number[]) {
  const start = performance.now();
  const features = encode(ops, model, mel);
  const source = createLogitsSource(ops, model, features);
  const tokens = [...prompt];
  const logits: Float32Array[] = [];
  try {
    for (let i = 0; i < STEPS; i++) {
      const row = await source.next(tokens);
      logits.push(row);
      tokens.push(argmax(row));
    }
    return { tokens: tokens.slice(prompt.length), logits, features: await ops.read(features), ms: performance.now() - start };
  } finally {
    source.dispose();
    ops.release(features);
  }
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

test(`tiny.en (synthetic, Hugging Face files), row-major and channels-first graphs: logits within 1e-3 of the reference at every step of a ${STEPS}-token greedy decode, same tokens`, { skip, timeout: 170_000 }, async (t) => {
  const { path } = await cachedSyntheticModel({ preset: 'tiny.en', seed: 4, format: 'huggingface', dtype: 'f32' });
  const model = await loadModel(path);
  const { dims, tokenizer } = model;
  const random = createRandom(9);
  const mel: MelInput = { data: Float32Array.from({ length: dims.nMels * 2 * dims.nAudioCtx }, () => random.uniform() * 2 - 1), nMels: dims.nMels, nFrames: 2 * dims.nAudioCtx };
  const prompt = [tokenizer.sot, tokenizer.noTimestamps];
  const runs: Record<string, Awaited<ReturnType<typeof greedy>>> = {};
  for (const layout of ['row-major', 'channels-first'] as const) {
    const backend = await createOnnxBackend({ layout });
    try {
      const weights = await backend.prepareWeights(dims, model.weights);
      runs[layout] = await greedy(backend.ops, { dims, weights }, mel, prompt);
      assert.deepEqual(backend.sessions.map((s) => s.runs), [1, 1, STEPS], 'the encoder, the cross-attention K/V, one decoder step for the prompt and every token');
      assert.equal(backend.provider, 'wasm');
      const MiB = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
      t.diagnostic(`${layout} on ${backend.provider}: ${runs[layout]!.ms.toFixed(0)} ms; graphs ${backend.sessions.map((s) => `${MiB(s.bytes)} (${MiB(s.weightBytes)} of weights) × ${s.runs} runs`).join(', ')}`);
      backend.releaseWeights(weights);
    } finally {
      backend.dispose();
    }
  }
  const expected = await greedy(createReferenceBackend().ops, { dims, weights: model.weights }, mel, prompt);
  for (const [layout, actual] of Object.entries(runs)) {
    assert.ok(maxDifference(actual.features, expected.features) < 1e-3, `${layout}: encoder features`);
    let worst = 0;
    actual.logits.forEach((row, step) => {
      const difference = maxDifference(row, expected.logits[step]!);
      worst = Math.max(worst, difference);
      assert.ok(difference < 1e-3, `${layout} step ${step}: logits differ by ${difference}`);
    });
    assert.deepEqual(actual.tokens, expected.tokens, layout);
    t.diagnostic(`${layout}: worst logit difference ${worst.toExponential(2)} over ${STEPS} steps; reference ${expected.ms.toFixed(0)} ms`);
  }
});
