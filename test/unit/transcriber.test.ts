// createTranscriber on the reference backend with synthetic 'mini' models: real audio in, tokens and
// text out (random weights give random text, so the checks are about shape and consistency).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createTranscriber } from '../../src/core/transcriber.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { parseWav } from '../../src/core/audio/wav.ts';
import { AbortError, AudioError, MurmurError, TokenizerError } from '../../src/core/errors.ts';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { skipWithoutSharedData } from '../shared-data.ts';

const JFK = '../shared/data/audio/jfk.wav';
const haveJfk = existsSync(JFK);
const skipWithoutJfk = haveJfk ? false : `${JFK} is absent (reference data folder not mounted)`;

async function jfkSamples(): Promise<Float32Array> {
  const audio = parseWav(await readFile(JFK), JFK);
  assert.equal(audio.sampleRate, 16000);
  return audio.channels[0]!;
}

test('transcribes jfk.wav with the mini English model: tokens, matching text, one 11 s segment', { skip: skipWithoutJfk }, async (t) => {
  const { path } = await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'f16' });
  const transcriber = await createTranscriber({ model: path });
  const audio = await jfkSamples();
  const start = performance.now();
  const result = await transcriber.transcribe(audio, { maxTokens: 24 });
  t.diagnostic(`mini transcribe of 11 s: ${(performance.now() - start).toFixed(0)} ms, ${result.tokens.length} tokens: ${JSON.stringify(result.text)}`);
  const { tokenizer } = transcriber.model;
  assert.ok(result.tokens.length > 0 && result.tokens.length <= 24);
  assert.ok(result.tokens.every((id) => Number.isInteger(id) && id >= 0 && id < tokenizer.eot), 'a special or invalid token was sampled');
  assert.equal(result.text, tokenizer.decode(result.tokens));
  assert.equal(result.language, 'en');
  assert.equal(result.segments.length, 1);
  assert.deepEqual(result.segments[0], { start: 0, end: 11, text: result.text, tokens: result.tokens });
  assert.ok(!result.text.includes('NaN'));
  // Same audio, same model: same transcript.
  assert.deepEqual(await transcriber.transcribe(audio, { maxTokens: 24 }), result);
  transcriber.dispose();
  await assert.rejects(() => transcriber.transcribe(audio), (e: unknown) => e instanceof MurmurError && /disposed/.test(e.message));
});

test('a multilingual model detects a language, honours a given one, and splits long audio into 30 s windows', { skip: skipWithoutJfk }, async () => {
  const { path } = await cachedSyntheticModel({ preset: 'mini-multilingual', seed: 4, format: 'huggingface', dtype: 'f32' });
  const model = await loadModel(path);
  const transcriber = await createTranscriber({ model });
  assert.equal(transcriber.model, model);
  const jfk = await jfkSamples();

  const detected = await transcriber.transcribe(jfk, { maxTokens: 4 });
  assert.ok(detected.language !== undefined && model.tokenizer.languages.includes(detected.language), `detected ${detected.language}`);

  // 70 s: windows 0–30, 30–60, 60–70 s.
  const long = new Float32Array(70 * 16000);
  for (let at = 0; at < long.length; at += jfk.length) long.set(jfk.subarray(0, Math.min(jfk.length, long.length - at)), at);
  const result = await transcriber.transcribe(long, { language: 'german', task: 'translate', maxTokens: 3 });
  assert.equal(result.language, 'de');
  assert.deepEqual(result.segments.map((s) => [s.start, s.end]), [[0, 30], [30, 60], [60, 70]]);
  assert.deepEqual(result.tokens, result.segments.flatMap((s) => s.tokens));
  assert.equal(result.text, model.tokenizer.decode(result.tokens));
  for (const segment of result.segments) assert.ok(segment.tokens.length <= 3);
  await assert.rejects(() => transcriber.transcribe(jfk, { language: 'klingon' }), TokenizerError);
  transcriber.dispose();
});

test('bad audio and cancellation are reported as typed errors', { skip: skipWithoutSharedData('whisper-assets/gpt2.tiktoken') }, async () => {
  const { path } = await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'f16' });
  const transcriber = await createTranscriber({ model: path });
  await assert.rejects(() => transcriber.transcribe(new Float32Array(0)), AudioError);
  const withNaN = new Float32Array(1600);
  withNaN[123] = NaN;
  await assert.rejects(() => transcriber.transcribe(withNaN), (e: unknown) => e instanceof AudioError && /sample 123/.test(e.message));
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(() => transcriber.transcribe(new Float32Array(1600), { signal: controller.signal }), AbortError);
  await assert.rejects(() => transcriber.transcribe(new Float32Array(1600), { language: 'de' }), TokenizerError);
  await assert.rejects(() => createTranscriber({ model: path, backend: 'cuda' as 'reference' }), /unknown backend/);
  transcriber.dispose();
});
