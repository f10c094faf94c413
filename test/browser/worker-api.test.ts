// The public createTranscriber in Chromium: the engine in its module worker, loaded from
// localhost, transcribing jfk.wav given as File, ArrayBuffer, Float32Array and URL with the same
// result as the in-process transcriber in Node; segments streamed in order; abort, typed errors
// and dispose across the worker boundary; and no long task on the page's main thread meanwhile.
// Compressed files (FLAC, Ogg Vorbis made by sox from the same WAV) go through the browser's
// decoder and give the WAV's transcript (lossless) or the same duration and a transcript (lossy).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { createTranscriber as createLocalTranscriber, type LanguageDetection, type TranscriptionResult } from '../../src/core/transcriber.ts';
import { parseWav } from '../../src/core/audio/wav.ts';
import { toWhisperInput } from '../../src/core/audio/prepare.ts';
import { LAYOUTS_BY_BACKEND } from '../../src/core/device/layouts.ts';
import { useBrowserSession, type TestPage } from './harness.ts';
import { SHARED_DATA_DIR, SHARED_DATA_ROUTE } from './server.ts';
import type { workerPageApi } from './pages/worker-api.ts';

const JFK = join(SHARED_DATA_DIR, 'audio/jfk.wav');
const JFK_URL = `${SHARED_DATA_ROUTE}audio/jfk.wav`;
const MAX_TOKENS = 24;
const LONG_TASK_MS = 50;
const skipWithoutSox = (() => {
  try {
    execFileSync('sox', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'sox is needed to make the FLAC and Ogg files (apt-get install sox)';
  }
})();

/** What must agree between Chromium's worker and Node (log-probabilities may differ in the last bits). */
function essentials(result: TranscriptionResult) {
  return { text: result.text, language: result.language, segments: result.segments.map(({ start, end, text, tokens }) => ({ start, end, text, tokens })) };
}

describe('createTranscriber in Chromium (module worker)', { skip: existsSync(JFK) ? false : `${JFK} is absent (the shared reference data is not checked out beside the repo)` }, () => {
  const session = useBrowserSession();
  let page: TestPage;
  let expected: TranscriptionResult;
  let expectedLanguage: LanguageDetection;
  let api: ReturnType<TestPage['api']> & Record<keyof typeof workerPageApi, (...args: any[]) => Promise<any>>;

  before(async () => {
    const model = await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' });
    session().mount('/@models/mini/', model.dir);
    const bogus = mkdtempSync(join(tmpdir(), 'murmur-bogus-model-'));
    writeFileSync(join(bogus, 'bogus.bin'), new Uint8Array(256).fill(7));
    session().mount('/@models/bogus/', bogus);

    const local = await createLocalTranscriber({ model: model.dir, backend: 'wasm' });
    const wav = parseWav(readFileSync(JFK), JFK);
    expected = await local.transcribe(toWhisperInput(wav.channels, wav.sampleRate), { maxTokens: MAX_TOKENS });
    expectedLanguage = await local.detectLanguage(toWhisperInput(wav.channels, wav.sampleRate));
    local.dispose();

    page = await session().openPage('/test/browser/pages/worker-api.html', { allowConsoleErrors: [/404|Not Found/i] });
    api = page.api<typeof workerPageApi>({ timeoutMs: 240_000 }) as typeof api;
    const loaded = await api.load('/@models/mini/');
    assert.deepEqual(loaded.stages, ['download', 'load', 'plan', 'compile'], 'progress reports every stage in order');
    assert.equal(loaded.model.backend, 'wasm');
    assert.deepEqual(loaded.plan.backendOrder, ['wasm'], 'the caller\'s backend is the plan');
    assert.ok(loaded.plan.reasons.includes('backendOrder ["wasm"]: set by the caller, overriding the rule above'), loaded.plan.reasons.join('\n'));
  }, { timeout: 300_000 });

  test("backend 'auto': the worker probes, plans and builds the plan's first backend; the plan reaches the page", { timeout: 240_000 }, async () => {
    const loaded = await api.load('/@models/mini/', 'auto');
    try {
      const { plan } = loaded;
      assert.equal(plan.backend, loaded.model.backend);
      assert.equal(plan.backend, plan.backendOrder[0], 'the first backend of the plan was built');
      assert.equal(plan.attempts.length, 1);
      const [attempt] = plan.attempts;
      assert.equal(attempt.backend, plan.backend);
      assert.equal(attempt.outcome, 'used');
      // What the engine was built with, per attempt, read back from the backend in the worker.
      const { applied } = plan;
      assert.deepEqual(applied, attempt.applied);
      const consumable = LAYOUTS_BY_BACKEND[plan.backend as keyof typeof LAYOUTS_BY_BACKEND].includes(plan.layout);
      assert.equal(applied.layout, consumable ? plan.layout : 'row-major', JSON.stringify({ layout: plan.layout, applied }));
      assert.equal(applied.precision, plan.precision);
      assert.ok(applied.weightBytes > 0);
      if (plan.backend === 'wasm') {
        // SwiftShader is CPU-like, so wasm leads and the rule picks row-major for it.
        assert.equal(plan.layout, 'row-major', plan.reasons.join('\n'));
        assert.equal(applied.threads, plan.threads);
        assert.ok(applied.backendBytes > 0);
      }
      if (plan.backend === 'webgpu') assert.ok(['tuned', 'cache'].includes(applied.kernelVariantsSource), JSON.stringify(applied));
      assert.ok(!plan.reasons.some((reason: string) => /not applied/.test(reason)), plan.reasons.join('\n'));
      assert.ok(plan.reasons.some((reason: string) => /^webgpu|^wasm/.test(reason)), plan.reasons.join('\n'));
      assert.ok(plan.reasons.some((reason: string) => /^threads \d+: /.test(reason)), plan.reasons.join('\n'));
      assert.ok(plan.threads >= 1);
    } finally {
      await api.load('/@models/mini/');
    }
  });

  test('FLAC and Ogg Vorbis Blobs: decoded by the browser, transcribed in the worker like the WAV', { skip: skipWithoutSox, timeout: 240_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'murmur-encoded-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    execFileSync('sox', [JFK, join(dir, 'jfk.flac')]);
    execFileSync('sox', [JFK, join(dir, 'jfk.ogg')]);
    session().mount('/@encoded/', dir);
    const wavSamples = parseWav(readFileSync(JFK), JFK).channels[0]!.length;

    const flac = await api.transcribeEncoded('/@encoded/jfk.flac', 'audio/flac', MAX_TOKENS);
    assert.equal(flac.samples, wavSamples, 'FLAC is lossless: the same number of samples');
    assert.deepEqual(essentials(flac.result), essentials(expected), 'FLAC gives the WAV\'s transcript');
    assert.deepEqual((flac.longTasks as number[]).filter((ms) => ms > LONG_TASK_MS), []);

    const ogg = await api.transcribeEncoded('/@encoded/jfk.ogg', 'audio/ogg', MAX_TOKENS);
    assert.ok(Math.abs(ogg.samples - wavSamples) <= 0.01 * wavSamples, `Ogg Vorbis decodes to ${ogg.samples} samples, the WAV has ${wavSamples}`);
    assert.ok(ogg.result.text.trim().length > 0, 'a transcript from the Ogg Vorbis file');
    const sameTokens = JSON.stringify(essentials(ogg.result)) === JSON.stringify(essentials(expected));
    t.diagnostic(`Ogg Vorbis: ${ogg.samples} samples; ${sameTokens ? 'the same tokens as the WAV' : `tokens differ from the WAV (lossy codec): ${JSON.stringify(ogg.result.text)}`}`);
  });

  for (const kind of ['file', 'arraybuffer', 'float32', 'url'] as const) {
    test(`${kind} input: the result Node gives, segments streamed in order, no long task`, { timeout: 240_000 }, async () => {
      const { result, segments, longTasks, detached } = await api.transcribe(kind, JFK_URL, MAX_TOKENS);
      assert.deepEqual(essentials(result), essentials(expected));
      assert.ok(expected.segments.length > 0, 'the synthetic model wrote at least one segment');
      assert.deepEqual(segments, result.segments, 'onSegment saw every segment of the result, in order');
      const long = (longTasks as number[]).filter((ms) => ms > LONG_TASK_MS);
      assert.deepEqual(long, [], `the page's main thread had no task over ${LONG_TASK_MS} ms while the worker transcribed`);
      if (kind === 'float32' || kind === 'arraybuffer') assert.equal(detached, true, 'the audio buffer was transferred, not copied');
    });
  }

  test('detectLanguage in the worker gives the in-process answer', { timeout: 120_000 }, async () => {
    const detected = await api.detectLanguage(JFK_URL);
    assert.equal(detected.language, expectedLanguage.language);
    assert.deepEqual(Object.keys(detected.probabilities).sort(), Object.keys(expectedLanguage.probabilities).sort());
    for (const [code, p] of Object.entries(expectedLanguage.probabilities)) {
      assert.ok(Math.abs(detected.probabilities[code] - p) < 1e-4, `P(${code}) is ${detected.probabilities[code]} in the worker, ${p} in Node`);
    }
  });

  test('abort mid-transcription rejects with an AbortError instance; the next call works', { timeout: 240_000 }, async () => {
    const { ms } = await api.transcribe('float32', JFK_URL, MAX_TOKENS);
    const { aborted, next } = await api.abortThenTranscribe(JFK_URL, MAX_TOKENS, Math.max(1, ms / 3));
    assert.ok(aborted, 'the aborted call rejected');
    assert.equal(aborted.isAbortError, true, `an AbortError instance (got ${aborted.name}: ${aborted.message})`);
    assert.equal(aborted.isMurmurError, true);
    assert.equal(aborted.code, 'ABORTED');
    assert.deepEqual(essentials(next), essentials(expected));
  });

  test('a model URL that does not exist rejects with a ModelLoadError instance and its fields', { timeout: 60_000 }, async () => {
    const error = await api.loadError('/@models/absent/');
    assert.ok(error, 'creating the transcriber failed');
    assert.equal(error.isModelLoadError, true, `a ModelLoadError instance (got ${error.name}: ${error.message})`);
    assert.equal(error.name, 'ModelLoadError');
    assert.equal(error.code, 'MODEL_LOAD');
    assert.equal(error.status, 404);
    assert.match(error.file, /config\.json/);
  });

  test('a model file that is not a model rejects with a ModelFormatError instance and its file', { timeout: 60_000 }, async () => {
    const error = await api.loadError('/@models/bogus/bogus.bin');
    assert.ok(error, 'creating the transcriber failed');
    assert.equal(error.isModelFormatError, true, `a ModelFormatError instance (got ${error.name}: ${error.message})`);
    assert.equal(error.code, 'MODEL_FORMAT');
    assert.match(error.file, /bogus\.bin/);
    assert.match(error.message, /bogus\.bin/);
  });

  test('after dispose the worker is gone and calls reject with a typed error', { timeout: 60_000 }, async () => {
    const error = await api.disposeThenTranscribe(JFK_URL);
    assert.ok(error, 'the call after dispose rejected');
    assert.equal(error.isMurmurError, true);
    assert.equal(error.code, 'DISPOSED');
    await page.close();
  });
});
