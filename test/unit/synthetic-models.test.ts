// One seeded synthetic model written as a Hugging Face folder and as ggml files of several dtypes,
// loaded back with loadModel and run on the reference backend: the f32 files give identical logits
// at every step of a 64-token greedy decode; f16 and quantized files stay within their rounding error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/core/formats/load-model.ts';
import type { WhisperModel } from '../../src/core/model/model.ts';
import { createLogitsSource, encode } from '../../src/core/model/whisper.ts';
import { referenceOps as ops } from '../../src/core/reference/backend.ts';
import { greedyDecode, type LogitsSource } from '../../src/core/decoding/greedy.ts';
import { cachedSyntheticModel, generateSyntheticModel, type SyntheticModelOptions } from '../../scripts/synthetic/generate.ts';
import { createRandom } from '../../scripts/synthetic/weights.ts';
import { skipWithoutSharedData } from '../shared-data.ts';

const SEED = 11;
const STEPS = 64;

async function load(options: Omit<SyntheticModelOptions, 'seed' | 'preset'>): Promise<WhisperModel> {
  const { path } = await cachedSyntheticModel({ preset: 'mini', seed: SEED, ...options });
  return loadModel(path);
}

function randomMel(nMels: number) {
  const random = createRandom(99);
  return { data: Float32Array.from({ length: nMels * 3000 }, () => random.uniform() * 2 - 1), nMels, nFrames: 3000 };
}

/** Logits of every step when `model` is fed `sequence` one token at a time after the prompt. */
async function teacherForced(model: WhisperModel, prompt: number[], sampled: number[]): Promise<Float32Array[]> {
  const features = encode(ops, model, randomMel(model.dims.nMels));
  const source = createLogitsSource(ops, model, features);
  const steps: Float32Array[] = [];
  for (let i = 0; i <= sampled.length && steps.length < STEPS; i++) steps.push(await source.next([...prompt, ...sampled.slice(0, i)]));
  source.dispose();
  return steps;
}

function maxAbsDifference(a: Float32Array[], b: Float32Array[]): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  a.forEach((row, s) => {
    for (let i = 0; i < row.length; i++) worst = Math.max(worst, Math.abs(row[i]! - b[s]![i]!));
  });
  return worst;
}

function logitSpread(steps: Float32Array[]): number {
  let squares = 0;
  let count = 0;
  for (const row of steps) for (const v of row) (squares += v * v), count++;
  return Math.sqrt(squares / count);
}

const skipWithoutRanks = skipWithoutSharedData('whisper-assets/gpt2.tiktoken');

test('synthetic mini model: Hugging Face f32 and ggml f32 agree at every greedy step; f16/q8_0/q4_0 within rounding', { skip: skipWithoutRanks }, async (t) => {
  const hf = await load({ format: 'huggingface', dtype: 'f32' });
  const ggml = await load({ format: 'ggml', dtype: 'f32' });
  assert.equal(hf.format, 'huggingface');
  assert.equal(ggml.format, 'ggml');
  assert.deepEqual(ggml.dims, hf.dims);

  // Greedy on the Hugging Face model, recording its logits; the ggml model decodes with the same
  // generation settings (the formats ship different default suppress lists) and must match.
  const record = (source: LogitsSource, into: Float32Array[]): LogitsSource => ({
    next: async (tokens) => {
      const logits = await source.next(tokens);
      into.push(logits);
      return logits;
    },
  });
  const prompt = [hf.tokenizer.sot, hf.tokenizer.noTimestamps];
  const run = async (model: WhisperModel) => {
    const features = encode(ops, model, randomMel(model.dims.nMels));
    const source = createLogitsSource(ops, model, features);
    const steps: Float32Array[] = [];
    const result = await greedyDecode(record(source, steps), { ...model, generation: hf.generation }, { prompt, maxTokens: STEPS });
    source.dispose();
    return { result, steps };
  };
  const fromHf = await run(hf);
  const fromGgml = await run(ggml);
  assert.ok(fromHf.steps.length >= 2, 'greedy decoding produced no steps');
  assert.deepEqual(fromGgml.result.tokens, fromHf.result.tokens);
  const f32Difference = maxAbsDifference(fromGgml.steps, fromHf.steps);
  t.diagnostic(`HF f32 vs ggml f32: ${fromHf.steps.length} steps (${fromHf.result.stop}), max |Δlogit| = ${f32Difference}`);
  assert.equal(f32Difference, 0);

  // The lower-precision files, fed the f32 model's tokens, stay close to the f32 logits.
  const reference = fromHf.steps;
  const spread = logitSpread(reference);
  const bounds = { f16: 0.002, q8_0: 0.04, q4_0: 0.5 } as const;
  for (const dtype of ['f16', 'q8_0', 'q4_0'] as const) {
    const model = await load({ format: 'ggml', dtype });
    assert.equal(model.weights.decoder.tokenEmbedding.dtype, dtype === 'f16' ? 'f16' : dtype);
    const difference = maxAbsDifference(await teacherForced(model, prompt, fromHf.result.tokens), reference);
    t.diagnostic(`ggml ${dtype} vs f32: max |Δlogit| = ${difference.toExponential(3)} (logit rms ${spread.toFixed(3)})`);
    assert.ok(difference > 0, `${dtype} logits are identical to f32: the file was not stored in ${dtype}`);
    assert.ok(difference < bounds[dtype], `${dtype}: max |Δlogit| ${difference} exceeds ${bounds[dtype]}`);
  }
});

test('generation is deterministic and the cache hands back the same files', { skip: skipWithoutRanks }, async () => {
  const options: SyntheticModelOptions = { preset: 'mini', seed: 5, format: 'ggml', dtype: 'q4_0' };
  const a = await generateSyntheticModel(options);
  const b = await generateSyntheticModel(options);
  assert.deepEqual(Object.keys(a.files), ['ggml-mini-q4_0.bin']);
  assert.deepEqual(a.files, b.files);
  const other = await generateSyntheticModel({ ...options, seed: 6 });
  assert.notDeepEqual(other.files['ggml-mini-q4_0.bin'], a.files['ggml-mini-q4_0.bin']);

  const cacheDir = await mkdtemp(join(tmpdir(), 'murmur-cache-test-'));
  try {
    const first = await cachedSyntheticModel(options, cacheDir);
    const second = await cachedSyntheticModel(options, cacheDir);
    assert.equal(second.path, first.path);
    assert.equal((await readdir(cacheDir)).length, 1);
    const model = await loadModel(first.path);
    assert.equal(model.weights.decoder.blocks[0]!.mlp.fc1.weight.dtype, 'q4_0');
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
});

test('generation refuses combinations no real file has', { skip: skipWithoutRanks }, async () => {
  await assert.rejects(() => generateSyntheticModel({ preset: 'mini', seed: 1, format: 'ggml', dtype: 'bf16' }), /bf16/);
  await assert.rejects(() => generateSyntheticModel({ preset: 'mini', seed: 1, format: 'huggingface', dtype: 'q8_0' }), /q8_0/);
});
