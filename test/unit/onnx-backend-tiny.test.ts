// The 'webnn' backend (src/onnx) on a synthetic tiny.en model (real shapes, random weights, a
// Hugging Face safetensors folder) against the reference backend: logits within 1e-3 at every step
// of a greedy decode, the same tokens, in both graph layouts, three compiled sessions each. The reference encoder alone
// takes tens of seconds here, so this file holds this one test and decodes 4 tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createOnnxBackend } from '../../src/onnx/backend.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { cachedSyntheticModel, DEFAULT_ASSETS_DIR } from '../../scripts/synthetic/generate.ts';
import { assertParity, greedy, randomMel, type Decoded } from '../backend-parity.ts';

const skip = existsSync(`${DEFAULT_ASSETS_DIR}/gpt2.tiktoken`) ? false : `${DEFAULT_ASSETS_DIR} is absent (reference data folder not mounted)`;
const STEPS = 4;

test(`tiny.en (synthetic, Hugging Face files), row-major and channels-first graphs: logits within 1e-3 of the reference at every step of a ${STEPS}-token greedy decode, same tokens`, { skip, timeout: 170_000 }, async (t) => {
  const { path } = await cachedSyntheticModel({ preset: 'tiny.en', seed: 4, format: 'huggingface', dtype: 'f32' });
  const model = await loadModel(path);
  const { dims, tokenizer } = model;
  const mel = randomMel(dims, 9);
  const prompt = [tokenizer.sot, tokenizer.noTimestamps];
  const runs: Record<string, Decoded> = {};
  for (const layout of ['row-major', 'channels-first'] as const) {
    const backend = await createOnnxBackend({ layout });
    try {
      const weights = await backend.prepareWeights(dims, model.weights);
      runs[layout] = await greedy(backend.ops, { dims, weights }, mel, prompt, STEPS);
      assert.deepEqual(backend.sessions.map((s) => s.runs), [1, 1, STEPS], 'the encoder, the cross-attention K/V, one decoder step for the prompt and every token');
      assert.equal(backend.provider, 'wasm');
      const MiB = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
      t.diagnostic(`${layout} on ${backend.provider}: ${runs[layout]!.ms.toFixed(0)} ms; graphs ${backend.sessions.map((s) => `${MiB(s.bytes)} (${MiB(s.weightBytes)} of weights) × ${s.runs} runs`).join(', ')}`);
      backend.releaseWeights(weights);
    } finally {
      backend.dispose();
    }
  }
  const expected = await greedy(createReferenceBackend().ops, { dims, weights: model.weights }, mel, prompt, STEPS);
  for (const [layout, actual] of Object.entries(runs)) {
    const worst = assertParity(actual, expected, { label: layout });
    t.diagnostic(`${layout}: worst logit difference ${worst.toExponential(2)} over ${STEPS} steps; reference ${expected.ms.toFixed(0)} ms`);
  }
});
