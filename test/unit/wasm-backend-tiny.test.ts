// Issue #4's acceptance: the WASM backend on a synthetic tiny.en model (real shapes, random
// weights, an f32 ggml file) against the reference backend: logits within 1e-3 at every step of
// a 64-token greedy decode, and the same tokens. The reference encoder alone takes tens of seconds
// here, so this file holds this one test.
import { test } from 'node:test';
import { existsSync } from 'node:fs';
import { createWasmBackend } from '../../src/kernels-wasm/backend.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { cachedSyntheticModel, DEFAULT_ASSETS_DIR } from '../../scripts/synthetic/generate.ts';
import { assertParity, greedy, randomMel } from '../backend-parity.ts';

const skip = existsSync(`${DEFAULT_ASSETS_DIR}/gpt2.tiktoken`) ? false : `${DEFAULT_ASSETS_DIR} is absent (reference data folder not mounted)`;
const STEPS = 64;

test('tiny.en: WASM logits within 1e-3 of the reference at every step of a 64-token greedy decode, same tokens', { skip, timeout: 170_000 }, async (t) => {
  const { path } = await cachedSyntheticModel({ preset: 'tiny.en', seed: 1, format: 'ggml', dtype: 'f32' });
  const model = await loadModel(path);
  const { dims, tokenizer } = model;
  const mel = randomMel(dims, 9);
  const prompt = [tokenizer.sot, tokenizer.noTimestamps];

  const wasm = await createWasmBackend({ threads: 2 });
  let actual;
  try {
    const weights = await wasm.prepareWeights(dims, model.weights);
    actual = await greedy(wasm.ops, { dims, weights }, mel, prompt, STEPS);
    wasm.releaseWeights(weights);
  } finally {
    wasm.dispose();
  }
  const reference = createReferenceBackend();
  const expected = await greedy(reference.ops, { dims, weights: model.weights }, mel, prompt, STEPS);

  const worst = assertParity(actual, expected, { features: false });
  t.diagnostic(
    `worst logit difference ${worst.toExponential(2)}; ${wasm.variant} ×${wasm.threads}: encoder ${actual.encoderMs.toFixed(0)} ms, ` +
      `decode ${actual.decodeMs.toFixed(1)} ms/token; reference: encoder ${expected.encoderMs.toFixed(0)} ms, decode ${expected.decodeMs.toFixed(1)} ms/token`,
  );
});
