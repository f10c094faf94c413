// Live dictation in Chromium with a fake microphone playing espeak-ng speech from a WAV file: the
// AudioWorklet capture feeds a live session on the mini model, once in the page (listenLocal, WASM
// backend) and once in the engine's worker (createTranscriber(...).listen, the engine built from the
// plan). Tentative text comes before confirmed text, confirmed text is only ever appended, and each
// utterance's confirmed text equals the offline transcription of the audio the page captured for
// it; through the worker, the page's main thread has no long task (> 50 ms) meanwhile. Reports
// first-tentative latency after speech onset and confirmed latency after the end of the utterance.
// Then MurmurSpeechRecognition in single-shot mode on the same microphone, in the page and in the worker.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import type { LiveEvent } from '../../src/core/streaming/session.ts';
import { skipWithoutSpeechTools } from '../unit/streaming-fixture.ts';
import { skipWithoutSharedData } from '../shared-data.ts';
import { useBrowserSession } from './harness.ts';
import type { dictationPageApi } from './pages/dictation.ts';

const LEAD_SECONDS = 1.5;
const TAIL_SECONDS = 3;
const skip = skipWithoutSpeechTools || skipWithoutSharedData('whisper-assets/gpt2.tiktoken');

/** The fake microphone's file: one espeak-ng phrase with silence around it, 16-bit PCM. */
function microphoneFile(): { path: string; seconds: number } {
  const dir = mkdtempSync(join(tmpdir(), 'murmur-dictation-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const raw = join(dir, 'raw.wav');
  const path = join(dir, 'microphone.wav');
  execFileSync('espeak-ng', ['-v', 'en-us', '-s', '160', '-w', raw, 'Hello world, this is a test of live dictation.']);
  execFileSync('sox', [raw, '-r', '48000', '-c', '1', '-b', '16', path, 'pad', String(LEAD_SECONDS), String(TAIL_SECONDS)]);
  const seconds = Number(execFileSync('soxi', ['-D', path]).toString().trim());
  return { path, seconds };
}

describe('live dictation from a fake microphone', { skip }, () => {
  const microphone = skip ? { path: '', seconds: 0 } : microphoneFile();
  const session = useBrowserSession({
    extraArgs: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${microphone.path}%noloop`],
  });
  const modelUrl = '/@models/dictation-mini/';
  const openPage = async (t: TestContext) => {
    const model = await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' });
    session().mount(modelUrl, model.dir);
    const page = await session().openPage('/test/browser/pages/dictation.html', { test: t });
    return page.api<typeof dictationPageApi>({ timeoutMs: 180_000 });
  };

  type Run = Awaited<ReturnType<typeof dictationPageApi['stop']>>;

  /** The properties every live run must have, whichever thread ran the session. */
  function checkRun(t: TestContext, run: Run, inputSampleRate: number | undefined): void {
    t.diagnostic(`captured ${run.capturedSeconds.toFixed(2)} s at ${inputSampleRate} Hz (peak ${run.peak.toFixed(3)}), ${run.decodes} decodes`);
    assert.deepEqual(run.errors, []);
    assert.ok(run.peak > 0.05, 'the fake microphone delivered the speech');

    const events = run.events.map((e) => e.event);
    const ends = events.filter((e): e is Extract<LiveEvent, { type: 'speech-end' }> => e.type === 'speech-end');
    assert.ok(ends.length >= 1, `an utterance was detected and finalized: ${events.map((e) => e.type).join(',')}`);
    const first = ends[0]!;
    assert.ok(Math.abs(first.audioStart - (LEAD_SECONDS - 0.3)) < 0.5, `the utterance starts near ${LEAD_SECONDS} s (audio from ${first.audioStart.toFixed(2)} s)`);

    for (const end of ends) {
      const mine = run.events.filter(({ event }) => 'utterance' in event && event.utterance === end.utterance);
      const firstTentative = mine.findIndex(({ event }) => event.type === 'tentative');
      const firstConfirmed = mine.findIndex(({ event }) => event.type === 'confirmed');
      assert.ok(firstTentative >= 0, 'tentative events while speaking');
      if (firstConfirmed >= 0) assert.ok(firstTentative < firstConfirmed, 'tentative before confirmed');
      let confirmedSoFar = '';
      let lastEnd = -Infinity;
      for (const { event } of mine) {
        if (event.type !== 'confirmed') continue;
        assert.ok(event.start >= lastEnd - 1e-9, 'confirmed words follow the previous ones');
        lastEnd = event.end;
        confirmedSoFar += event.text;
        assert.ok(end.text.startsWith(confirmedSoFar), 'confirmed text is a prefix of the final text: never rewritten');
      }
      assert.equal(confirmedSoFar, end.text);
      assert.equal(confirmedSoFar.trim(), run.offline[end.utterance]!.trim(), `utterance ${end.utterance}: live = offline`);

      // Latencies: when the audio at the onset / end was captured versus when text arrived.
      const capturedAt = (seconds: number) => run.arrivals.find((a) => a.endSample >= seconds * 16000)?.at ?? Number.NaN;
      const start = mine.find(({ event }) => event.type === 'speech-start')!.event as Extract<LiveEvent, { type: 'speech-start' }>;
      const worded = mine.find(({ event }) => event.type === 'tentative' && event.text.trim() !== '');
      const tentativeAt = (worded ?? mine[firstTentative]!).at;
      const finalAt = mine.find(({ event }) => event.type === 'speech-end')!.at;
      t.diagnostic(`utterance ${end.utterance}: ${JSON.stringify(end.text)}; first tentative text ${((tentativeAt - capturedAt(start.time)) / 1000).toFixed(2)} s after speech onset; confirmed ${((finalAt - capturedAt(end.time)) / 1000).toFixed(2)} s after the end of speech (hangover included)`);
    }
  }

  test('in the page: tentative then confirmed text, never rewritten, ending on the offline transcription of the captured audio', { timeout: 300_000 }, async (t) => {
    const api = await openPage(t);
    await api.load(modelUrl);
    const { inputSampleRate } = await api.start(modelUrl);
    await new Promise((resolve) => setTimeout(resolve, (microphone.seconds + 1) * 1000));
    checkRun(t, await api.stop(), inputSampleRate);
  });

  test('in the worker (transcriber.listen): the same properties, the plan that built the engine, and no long task on the page', { timeout: 300_000 }, async (t) => {
    const api = await openPage(t);
    const { plan, backend } = await api.loadWorker(modelUrl);
    t.diagnostic(`plan: ${plan.backendOrder.join(' > ')} → ${backend}; ${plan.reasons.join(' | ')}`);
    assert.equal(plan.backend, backend);
    const used = plan.attempts.at(-1);
    assert.ok(used, 'the engine lists the backends it tried');
    assert.deepEqual({ backend: used.backend, outcome: used.outcome }, { backend, outcome: 'used' });
    assert.equal(used.applied.layout, 'row-major', 'the worker reports what it built the engine with');
    assert.equal(used.applied.threads, plan.threads);
    assert.equal(plan.backendOrder[0], 'wasm', 'SwiftShader runs shaders on the CPU: the plan puts wasm first');
    assert.ok(plan.reasons.some((reason: string) => /^wasm before webgpu: /.test(reason)), plan.reasons.join('\n'));
    const { inputSampleRate } = await api.startWorker(modelUrl);
    await new Promise((resolve) => setTimeout(resolve, (microphone.seconds + 1) * 1000));
    const run = await api.stopWorker();
    checkRun(t, run, inputSampleRate);
    t.diagnostic(`main-thread long tasks during the live session: ${JSON.stringify(run.longTasks)}`);
    assert.deepEqual(run.longTasks.filter((ms: number) => ms > 50), [], 'no task over 50 ms on the main thread while the worker transcribed live');
  });

  for (const where of ['page', 'worker'] as const) {
    test(`MurmurSpeechRecognition single-shot in the ${where}: Web Speech event order and one final result`, { timeout: 300_000 }, async (t) => {
      const api = await openPage(t);
      if (where === 'page') await api.load(modelUrl);
      else await api.loadWorker(modelUrl);
      const log = await api.recognizeOnce(modelUrl, where);
      t.diagnostic(log.join(' / '));
      const kinds = log.map((line) => line.split(' ')[0]);
      const results = log.filter((line) => line.startsWith('result'));
      assert.deepEqual(kinds.slice(0, 4), ['start', 'audiostart', 'soundstart', 'speechstart']);
      assert.deepEqual(kinds.slice(-4), ['speechend', 'soundend', 'audioend', 'end']);
      assert.ok(results.length >= 1, log.join(' / '));
      assert.match(results.at(-1)!, /^result 0 1 final /, 'the last result is the single final one');
      assert.ok(results.slice(0, -1).every((line) => /^result 0 1 interim /.test(line)), 'interim results before it, at index 0');
    });
  }
});
