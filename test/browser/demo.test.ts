// The demo page end to end in headless Chromium: load a synthetic model over HTTP from localhost
// into the page's worker, transcribe jfk.wav through the file chooser, and get the same transcript
// as the library gives in Node for the same model and audio.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { createTranscriber } from '../../src/core/transcriber.ts';
import { parseWav } from '../../src/core/audio/wav.ts';
import { toWhisperInput } from '../../src/core/audio/prepare.ts';
import { useBrowserSession } from './harness.ts';
import { SHARED_DATA_DIR } from './server.ts';

const JFK = join(SHARED_DATA_DIR, 'audio/jfk.wav');

/** m:ss.ss, as the demo shows segment times. */
function clock(seconds: number): string {
  return `${Math.floor(seconds / 60)}:${(seconds % 60).toFixed(2).padStart(5, '0')}`;
}
const LOAD_TIMEOUT_MS = 120_000;
const TRANSCRIBE_TIMEOUT_MS = 240_000;

describe('the demo page', () => {
  const session = useBrowserSession();

  test('loads a model from localhost and transcribes a WAV file in its worker, like Node does', { timeout: 600_000 }, async (t) => {
    if (!existsSync(JFK)) return t.skip(`${JFK} is absent (the shared reference data is not checked out beside the repo)`);
    const model = await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' });
    session().mount('/@models/mini/', model.dir);

    const page = await session().openPage('/demo/index.html?model=/@models/mini/', { test: t });
    await page.page.waitForFunction(() => document.querySelector('#model-status')?.textContent?.startsWith('Loaded'), null, { timeout: LOAD_TIMEOUT_MS });
    assert.equal(await page.page.$eval('#model-progress', (el) => (el as HTMLProgressElement).value), 1, 'the progress bar reaches 100%');

    // From here on the page must not touch the network: the model is in memory, the audio is a local file.
    const requests: string[] = [];
    page.page.context().on('request', (request) => requests.push(request.url()));

    await page.page.setInputFiles('#audio-file', JFK);
    await page.page.waitForFunction(() => /^(Done|Could not)/.test(document.querySelector('#transcribe-status')?.textContent ?? ''), null, { timeout: TRANSCRIBE_TIMEOUT_MS });
    const status = await page.page.$eval('#transcribe-status', (el) => el.textContent ?? '');
    assert.match(status, /^Done in \d+\.\d s$/);
    const shown = await page.page.$$eval('#segments li', (items) => items.map((li) => li.textContent ?? ''));
    assert.deepEqual(requests, [], 'transcribing made no network request');

    const transcriber = await createTranscriber({ model: model.dir, backend: 'wasm' });
    const wav = parseWav(readFileSync(JFK), JFK);
    const expected = await transcriber.transcribe(toWhisperInput(wav.channels, wav.sampleRate));
    await transcriber.dispose();
    assert.equal(shown.length, expected.segments.length, 'one list item per segment');
    for (const [i, segment] of expected.segments.entries()) {
      assert.ok(shown[i]!.endsWith(segment.text.trim()), `segment ${i}: page shows "${shown[i]}", Node gives "${segment.text.trim()}"`);
      const span = `${clock(segment.start)} → ${clock(segment.end)}`;
      assert.ok(shown[i]!.startsWith(span), `segment ${i} shows its times ${span} (${shown[i]})`);
    }
    assert.ok(expected.text.trim().length > 0, 'the synthetic model produced some text');
  });
});
