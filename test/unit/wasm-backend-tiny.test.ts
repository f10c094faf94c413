// Issue #4's acceptance: the WASM backend on a synthetic tiny.en model (real shapes, random
// weights, an f32 ggml file) against the reference backend: logits within 1e-3 at every step of
// a 64-token greedy decode, and the same tokens. The reference encoder alone takes tens of seconds
// here, so this file holds this one test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createWasmBackend } from '../../src/kernels-wasm/backend.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import { createLogitsSource, encode, type MelInput, type ModelParameters } from '../../src/core/model/whisper.ts';
import type { WhisperOps } from '../../src/core/model/ops.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { cachedSyntheticModel, DEFAULT_ASSETS_DIR } from '../../scripts/synthetic/generate.ts';
import { createRandom } from '../../scripts/synthetic/weights.ts';

const skip = existsSync(`${DEFAULT_ASSETS_DIR}/gpt2.tiktoken`) ? false : `${DEFAULT_ASSETS_DIR} is absent (reference data folder not mounted)`;
const STEPS = 64;

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** Encoder ms, then every step's logits and its argmax token. */
async function greedy<T, W>(ops: WhisperOps<T, W>, model: ModelParameters<W>, mel: MelInput, prompt: number[]) {
  let start = performance.now();
  const features = encode(ops, model, mel);
  const encoderMs = performance.now() - start;
  const source = createLogitsSource(ops, model, features);
  const tokens = [...prompt];
  const logits: Float32Array[] = [];
  start = performance.now();
  for (let i = 0; i < STEPS; i++) {
    const row = await source.next(tokens);
    logits.push(row);
    tokens.push(argmax(row));
  }
  const decodeMs = (performance.now() - start) / STEPS;
  source.dispose();
  ops.release(features);
  return { encoderMs, decodeMs, logits, tokens: tokens.slice(prompt.length) };
}

test('tiny.en: WASM logits within 1e-3 of the reference at every step of a 64-token greedy decode, same tokens', { skip, timeout: 170_000 }, async (t) => {
  const { path } = await cachedSyntheticModel({ preset: 'tiny.en', seed: 1, format: 'ggml', dtype: 'f32' });
  const model = await loadModel(path);
  const { dims, tokenizer } = model;
  const random = createRandom(9);
  const mel: MelInput = { data: Float32Array.from({ length: dims.nMels * 2 * dims.nAudioCtx }, () => random.uniform() * 2 - 1), nMels: dims.nMels, nFrames: 2 * dims.nAudioCtx };
  const prompt = [tokenizer.sot, tokenizer.noTimestamps];

  const wasm = await createWasmBackend({ threads: 2 });
  let actual;
  try {
    const weights = await wasm.prepareWeights(dims, model.weights);
    actual = await greedy(wasm.ops, { dims, weights }, mel, prompt);
    wasm.releaseWeights(weights);
  } finally {
    wasm.dispose();
  }
  const reference = createReferenceBackend();
  const expected = await greedy(reference.ops, { dims, weights: model.weights }, mel, prompt);

  let worst = 0;
  for (let step = 0; step < STEPS; step++) {
    let difference = 0;
    const [a, b] = [actual.logits[step]!, expected.logits[step]!];
    for (let i = 0; i < a.length; i++) difference = Math.max(difference, Math.abs(a[i]! - b[i]!));
    worst = Math.max(worst, difference);
    assert.ok(difference < 1e-3, `step ${step}: logits differ by ${difference}`);
  }
  assert.deepEqual(actual.tokens, expected.tokens);
  t.diagnostic(
    `worst logit difference ${worst.toExponential(2)}; ${wasm.variant} ×${wasm.threads}: encoder ${actual.encoderMs.toFixed(0)} ms, ` +
      `decode ${actual.decodeMs.toFixed(1)} ms/token; reference: encoder ${expected.encoderMs.toFixed(0)} ms, decode ${expected.decodeMs.toFixed(1)} ms/token`,
  );
});
