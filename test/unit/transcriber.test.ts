// createTranscriber on the reference backend with synthetic 'mini' models: real audio in, tokens and
// text out (random weights give random text, so the checks are about shape and consistency).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createTranscriber } from '../../src/core/transcriber.ts';
import type { TranscriptionResult, TranscriptionSegment } from '../../src/core/transcriber.ts';
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

function assertWellFormed(result: TranscriptionResult, duration: number, maxTokensPerWindow?: number) {
  let previousEnd = 0;
  result.segments.forEach((segment, i) => {
    assert.equal(segment.id, i);
    assert.ok(segment.start >= previousEnd && segment.end > segment.start && segment.end <= duration, `segment ${i}: ${segment.start}–${segment.end} after ${previousEnd}, audio ${duration} s`);
    assert.ok(segment.text.trim() !== '' && !segment.text.includes('NaN'));
    for (const value of [segment.temperature, segment.avg_logprob, segment.compression_ratio, segment.no_speech_prob]) assert.ok(Number.isFinite(value));
    if (maxTokensPerWindow !== undefined) assert.ok(segment.tokens.length <= maxTokensPerWindow);
    previousEnd = segment.end;
  });
}

test('transcribes jfk.wav with the mini English model: OpenAI-shaped result, timed segments inside the 11 s, deterministic', { skip: skipWithoutJfk }, async (t) => {
  const { path } = await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'f16' });
  const transcriber = await createTranscriber({ model: path });
  const audio = await jfkSamples();
  const start = performance.now();
  const streamed: TranscriptionSegment[] = [];
  const result = await transcriber.transcribe(audio, { maxTokens: 24, temperature: 0, noSpeechThreshold: null, onSegment: (s) => streamed.push(s) });
  t.diagnostic(`mini transcribe of 11 s: ${(performance.now() - start).toFixed(0)} ms, ${result.segments.length} segments: ${JSON.stringify(result.text)}`);
  const { tokenizer } = transcriber.model;
  assert.deepEqual(Object.keys(result), ['text', 'language', 'segments']);
  assert.equal(result.language, 'en');
  assert.ok(result.segments.length > 0);
  assertWellFormed(result, 11, 24);
  assert.deepEqual(streamed, result.segments);
  for (const segment of result.segments) {
    assert.ok(segment.tokens.every((id) => Number.isInteger(id) && id >= 0 && (id < tokenizer.eot || id >= tokenizer.timestampBegin)), 'a control token in a segment');
    assert.equal(segment.text, tokenizer.decode(segment.tokens));
  }
  assert.equal(result.text, tokenizer.decode(result.segments.flatMap((s) => s.tokens)));
  // Same audio, same model: same transcript.
  assert.deepEqual(await transcriber.transcribe(audio, { maxTokens: 24, temperature: 0, noSpeechThreshold: null }), result);
  assert.deepEqual(await transcriber.detectLanguage(audio), { language: 'en', probabilities: { en: 1 } });
  transcriber.dispose();
  await assert.rejects(() => transcriber.transcribe(audio), (e: unknown) => e instanceof MurmurError && /disposed/.test(e.message));
});

test('a multilingual model detects a language, honours a given one, and without timestamps gives one segment per 30 s window', { skip: skipWithoutJfk }, async () => {
  const { path } = await cachedSyntheticModel({ preset: 'mini-multilingual', seed: 4, format: 'huggingface', dtype: 'f32' });
  const model = await loadModel(path);
  const transcriber = await createTranscriber({ model });
  assert.equal(transcriber.model, model);
  const jfk = await jfkSamples();

  const detection = await transcriber.detectLanguage(jfk);
  assert.ok(model.tokenizer.languages.includes(detection.language), `detected ${detection.language}`);
  const total = Object.values(detection.probabilities).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(total - 1) < 1e-3, `language probabilities sum to ${total}`);
  assert.equal(Math.max(...Object.values(detection.probabilities)), detection.probabilities[detection.language]);
  const detected = await transcriber.transcribe(jfk, { maxTokens: 4, temperature: 0 });
  assert.equal(detected.language, detection.language);

  // 70 s: windows 0–30, 30–60, 60–70 s.
  const long = new Float32Array(70 * 16000);
  for (let at = 0; at < long.length; at += jfk.length) long.set(jfk.subarray(0, Math.min(jfk.length, long.length - at)), at);
  const result = await transcriber.transcribe(long, { language: 'german', task: 'translate', maxTokens: 3, temperature: 0, withoutTimestamps: true, noSpeechThreshold: null });
  assert.equal(result.language, 'de');
  assert.deepEqual(result.segments.map((s) => [s.seek, s.start, s.end]), [[0, 0, 30], [3000, 30, 60], [6000, 60, 70]]);
  assert.equal(result.text, model.tokenizer.decode(result.segments.flatMap((s) => s.tokens)));
  for (const segment of result.segments) assert.ok(segment.tokens.length <= 3 && segment.tokens.every((id) => id < model.tokenizer.eot));
  await assert.rejects(() => transcriber.transcribe(jfk, { language: 'klingon' }), TokenizerError);
  transcriber.dispose();
});

test('word timestamps through the whole stack: words ordered, inside their segments; a model without alignment heads is refused up front', { skip: skipWithoutJfk }, async (t) => {
  const { path } = await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'f16' });
  const loaded = await loadModel(path);
  const plain = await createTranscriber({ model: loaded });
  const audio = await jfkSamples();
  await assert.rejects(() => plain.transcribe(audio, { wordTimestamps: true }), (e: unknown) => e instanceof MurmurError && /alignment heads/.test(e.message));
  plain.dispose();

  // The synthetic model has no known heads; any heads of its 2 × 2 decoder make it alignable.
  const model = { ...loaded, generation: { ...loaded.generation, alignmentHeads: [[1, 0], [1, 1]] as [number, number][] } };
  const transcriber = await createTranscriber({ model });
  const result = await transcriber.transcribe(audio, { wordTimestamps: true, maxTokens: 24, temperature: 0, noSpeechThreshold: null });
  assertWellFormed(result, 11, 24);
  let previous = 0;
  let count = 0;
  for (const segment of result.segments) {
    assert.ok(Array.isArray(segment.words), `segment ${segment.id} has no words`);
    for (const word of segment.words!) {
      assert.deepEqual(Object.keys(word).sort(), ['end', 'probability', 'start', 'word']);
      assert.ok(word.start >= previous && word.end >= word.start && word.start >= segment.start && word.end <= segment.end, `${JSON.stringify(word)} in ${segment.start}–${segment.end}`);
      assert.ok(word.probability >= 0 && word.probability <= 1);
      previous = word.end;
      count++;
    }
  }
  // Words are dealt out to segments by token count (as OpenAI does), so a word that spans two segments
  // shifts the rest; with random weights that happens, so the words' text is not compared with the segments'.
  t.diagnostic(`${count} words: ${result.segments.flatMap((s) => s.words!.map((w) => `${w.word}@${w.start}-${w.end}`)).join(' ')}`);
  assert.ok(count > 0);
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

test('layout per backend and precision at load: unsupported combinations are BACKEND errors naming both; matrices narrowed once, never widened', { skip: skipWithoutSharedData('whisper-assets/gpt2.tiktoken') }, async () => {
  const { dir } = await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'huggingface', dtype: 'f32' });
  const model = await loadModel(dir);
  const refused = async (options: Parameters<typeof createTranscriber>[0], pattern: RegExp) =>
    assert.rejects(() => createTranscriber(options), (e: unknown) => e instanceof MurmurError && e.code === 'BACKEND' && pattern.test(e.message));
  await refused({ model, layout: 'blocked' }, /layout applies to the "webgpu" or "wasm" backend, not "reference".*"blocked"/);
  await refused({ model, backend: 'wasm', layout: 'channels-first' }, /layout applies to the "webnn" backend, not "wasm"/);
  await refused({ model, backend: 'webgpu', layout: 'channels-first' }, /not "webgpu"/);
  await refused({ model, backend: 'webnn', layout: 'blocked' }, /not "webnn"/);
  await refused({ model, layout: 'diagonal' as 'blocked' }, /unknown layout "diagonal"/);
  await refused({ model, backend: 'wasm', kernelVariants: {} as never }, /kernelVariants apply to the "webgpu" backend, not "wasm"/);
  await refused({ model, backend: 'wasm', autotune: {} }, /autotune applies to the "webgpu" backend, not "wasm"/);
  await refused({ model, backend: 'webnn', precision: 'q8' }, /precision "q8" does not apply to the "webnn" backend/);
  await refused({ model, precision: 'q2' as 'q4' }, /unknown precision "q2"/);

  const f32 = await createTranscriber({ model });
  assert.equal(f32.model, model, 'no precision: the model as given');
  assert.equal(f32.execution.precision, 'f32');
  assert.equal(f32.execution.layout, 'row-major');
  const half = await createTranscriber({ model, precision: 'f16' });
  assert.notEqual(half.model, model);
  assert.equal(half.model.weights.decoder.tokenEmbedding.dtype, 'f16');
  assert.equal(half.model.weights.decoder.positionalEmbedding.dtype, 'f32', 'positional embeddings stay');
  assert.equal(half.model.weights.encoder.conv1.weight.dtype, 'f32', 'convolutions stay');
  assert.equal(model.weights.decoder.tokenEmbedding.dtype, 'f32', 'the given model is left alone');
  assert.equal(half.execution.precision, 'f16');
  assert.ok(half.execution.weightBytes < 0.6 * f32.execution.weightBytes, `${half.execution.weightBytes} vs ${f32.execution.weightBytes}`);
  assert.match(half.execution.reasons.join('\n'), /^precision f16: \d+ matrices converted to f16 at load \(weights [\d.]+ MiB → [\d.]+ MiB\)/m);
  // Converting f16 further to q4 narrows again; asking f32 of it widens nothing.
  const q4 = await createTranscriber({ model: half.model, precision: 'q4' });
  assert.equal(q4.model.weights.encoder.blocks[0]!.mlp.fc1.weight.dtype, 'q4_0');
  const back = await createTranscriber({ model: q4.model, precision: 'f32' });
  assert.equal(back.model, q4.model);
  assert.equal(back.execution.precision, 'q4');
  assert.match(back.execution.reasons.join('\n'), /q4_0 matrices stay as stored: weights are never widened/);
  const audio = new Float32Array(16000);
  for (const transcriber of [f32, half, q4, back]) {
    assert.equal(typeof (await transcriber.transcribe(audio, { maxTokens: 3, temperature: 0 })).text, 'string');
    transcriber.dispose();
  }
  const blocked = await createTranscriber({ model, backend: 'wasm', threads: 1, layout: 'blocked', precision: 'q8' });
  assert.equal(blocked.execution.layout, 'blocked');
  assert.equal(blocked.execution.precision, 'q8');
  assert.equal(blocked.execution.threads, 1);
  assert.ok(blocked.execution.backendBytes! > 0);
  blocked.dispose();
});

/** Every path from `root` (own properties, Map/Set entries) to `buffer` or a view of it. */
function pathsTo(root: unknown, buffer: ArrayBufferLike): string[] {
  const found: string[] = [];
  const seen = new Set<unknown>();
  const visit = (value: unknown, path: string): void => {
    if (value === buffer) return void found.push(path);
    if (!value || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value)) return;
    seen.add(value);
    if (ArrayBuffer.isView(value)) {
      if (value.buffer === buffer) found.push(path);
      return;
    }
    if (value instanceof Map) for (const [key, entry] of value) { visit(key, `${path}.<key>`); visit(entry, `${path}.get(${String(key)})`); }
    if (value instanceof Set) for (const entry of value) visit(entry, `${path}.<entry>`);
    for (const key of Object.keys(value)) visit((value as Record<string, unknown>)[key], `${path}.${key}`);
  };
  visit(root, 'transcriber');
  return found;
}

test('with a precision that converts, nothing the transcriber holds views the loaded file; without one, its model does', { skip: skipWithoutSharedData('whisper-assets/gpt2.tiktoken') }, async () => {
  const { dir } = await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'huggingface', dtype: 'f32' });
  const loaded = await loadModel(dir);
  const file = loaded.weights.encoder.conv1.weight.bytes.buffer;
  assert.ok(file.byteLength > 10 * loaded.weights.encoder.conv1.weight.bytes.byteLength, 'the loader gives views into the file');
  const plain = await createTranscriber({ model: loaded });
  assert.ok(pathsTo(plain, file).length > 0, 'the walk finds the file when it is held');
  plain.dispose();
  for (const precision of ['q8', 'f16'] as const) {
    const transcriber = await createTranscriber({ model: loaded, precision });
    try {
      assert.notEqual(transcriber.model, loaded);
      assert.deepEqual(pathsTo(transcriber, file), [], `${precision}: still reaching the file`);
      // The bytes reported are the narrowed model's own.
      let narrowedBytes = 0;
      for (const tensor of Object.values(flattenTensors(transcriber.model.weights))) narrowedBytes += tensor.bytes.byteLength;
      assert.equal(transcriber.execution.weightBytes, narrowedBytes);
    } finally {
      transcriber.dispose();
    }
  }
});

function flattenTensors(node: unknown, into: Record<string, { bytes: Uint8Array }> = {}, path = ''): Record<string, { bytes: Uint8Array }> {
  if (!node || typeof node !== 'object') return into;
  if ((node as { bytes?: unknown }).bytes instanceof Uint8Array) into[path] = node as { bytes: Uint8Array };
  else for (const [key, child] of Object.entries(node)) flattenTensors(child, into, `${path}.${key}`);
  return into;
}

test('the loaded file is garbage-collected once the caller drops the model the transcriber narrowed (node --expose-gc child)', { skip: skipWithoutSharedData('whisper-assets/gpt2.tiktoken'), timeout: 120_000 }, async (t) => {
  const { dir } = await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'huggingface', dtype: 'f32' });
  const { spawnSync } = await import('node:child_process');
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const root = new URL('../../', import.meta.url);
  const scratch = mkdtempSync(join(tmpdir(), 'murmur-gc-'));
  const script = join(scratch, 'probe.mts');
  // .mts: an ES module outside the package. Drops every reference to the loaded model but the
  // transcriber's, collects, and says whether the file's buffer survived.
  writeFileSync(script, `
    import { loadModel } from ${JSON.stringify(new URL('src/core/formats/load-model.ts', root).href)};
    import { createTranscriber } from ${JSON.stringify(new URL('src/core/transcriber.ts', root).href)};
    const [dir, precision] = process.argv.slice(2);
    async function build() {
      const model = await loadModel(dir);
      const file = new WeakRef(model.weights.encoder.conv1.weight.bytes.buffer);
      const transcriber = await createTranscriber({ model, ...(precision === 'none' ? {} : { precision }) });
      return { transcriber, file };
    }
    const { transcriber, file } = await build();
    for (let i = 0; i < 20 && file.deref(); i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      globalThis.gc();
    }
    const collected = file.deref() === undefined;
    // Still usable after the collection (and so still alive during it).
    const text = (await transcriber.transcribe(new Float32Array(16000), { maxTokens: 2, temperature: 0 })).text;
    console.log(JSON.stringify({ collected, text: typeof text, weightBytes: transcriber.execution.weightBytes }));
    transcriber.dispose();
  `);
  const run = (precision: string) => {
    const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script, dir, precision], { cwd: new URL('.', root).pathname, encoding: 'utf8', timeout: 90_000 });
    assert.equal(child.status, 0, `child (${precision}) failed: ${child.stderr}`);
    const last = child.stdout.trim().split('\n').at(-1)!;
    return JSON.parse(last) as { collected: boolean; text: string; weightBytes: number };
  };
  try {
    const held = run('none');
    const narrowed = run('q8');
    t.diagnostic(`file collected: without precision ${held.collected}, with q8 ${narrowed.collected}; weights ${held.weightBytes} → ${narrowed.weightBytes} bytes`);
    assert.equal(held.collected, false, 'control: the transcriber runs the loaded model itself, so its file stays');
    assert.equal(narrowed.collected, true, 'q8: the transcriber holds only the narrowed model, so the file goes');
    assert.equal(narrowed.text, 'string');
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
