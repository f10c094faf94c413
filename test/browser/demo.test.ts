// The demo page end to end in headless Chromium (Vite dev server): load a synthetic model over
// HTTP from localhost through the page's model cache into createTranscriber's worker (progress bar
// reaches 100%), transcribe jfk.wav through the file chooser (segment timestamps: the synthetic model has no
// alignment heads for word timestamps), see the
// segments, export SRT and parse it, and make no network
// request while transcribing. Screenshots of the main states go to test-results/.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { useBrowserSession } from './harness.ts';
import { REPO_ROOT, SHARED_DATA_DIR } from './server.ts';
import { parseSrt, waitForModel, waitForTranscript } from './demo-steps.ts';

const JFK = join(SHARED_DATA_DIR, 'audio/jfk.wav');
const SCREENSHOTS = join(REPO_ROOT, 'test-results/demo');

describe('the demo page', { skip: existsSync(JFK) ? false : `${JFK} is absent (the shared reference data is not checked out beside the repo)` }, () => {
  const session = useBrowserSession();

  test('loads a model from localhost, transcribes a WAV file segment by segment, exports SRT, offline in effect', { timeout: 300_000 }, async (t) => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const model = await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' });
    session().mount('/@models/mini/', model.dir);

    const page = await session().openPage('/demo/index.html?model=/@models/mini/&backend=wasm', { test: t });
    await page.page.setViewportSize({ width: 390, height: 844 });
    const loaded = await waitForModel(page.page);
    assert.match(loaded, /^Loaded \/@models\/mini\/ on the (WASM|WebGPU) backend/, 'the status names the backend');
    assert.equal(await page.page.$eval('#model-progress', (el) => (el as HTMLProgressElement).value), 1, 'the progress bar reaches 100%');
    const perFile = await page.page.$$eval('#model-files-progress progress', (bars) => bars.map((bar) => (bar as HTMLProgressElement).value));
    assert.ok(perFile.length >= 4 && perFile.every((value) => value === 1), `every model file downloaded completely (${perFile})`);
    await page.page.waitForFunction(() => /mini/.test(document.querySelector('#cached-models')?.textContent ?? ''));
    await page.page.screenshot({ path: join(SCREENSHOTS, '1-model-loaded.png'), fullPage: true });

    // From here on the page must not touch the network: the model is in memory, the audio a local file.
    const requests: string[] = [];
    page.page.context().on('request', (request) => requests.push(request.url()));

    await page.page.setInputFiles('#audio-file', JFK);
    const status = await waitForTranscript(page.page);
    assert.match(status, /^Done in \d+\.\d s: \d+ segments?\.$/);
    const shown = await page.page.$$eval('#segments li', (items) => items.map((li) => li.textContent ?? ''));
    assert.deepEqual(requests.filter((url) => !url.startsWith('blob:') && !url.startsWith('data:')), [], 'transcribing made no network request');
    await page.page.screenshot({ path: join(SCREENSHOTS, '2-transcribed.png'), fullPage: true });

    assert.ok(shown.length > 0 && shown.every((text) => /^\d+:\d{2}\.\d{2} → \d+:\d{2}\.\d{2} \S/.test(text)), `segments show their times and text: ${JSON.stringify(shown)}`);

    // The segment times are buttons that seek the player.
    const times = await page.page.$$('#segments .time');
    const target = Number(await times.at(-1)!.getAttribute('data-start'));
    await times.at(-1)!.click();
    const time = await page.page.$eval('#player', (el) => (el as HTMLAudioElement).currentTime);
    assert.ok(Math.abs(time - target) < 0.05, `clicking a segment's time seeks to ${target} s (player at ${time})`);

    const [download] = await Promise.all([page.page.waitForEvent('download'), page.page.click('#export-srt')]);
    assert.equal(download.suggestedFilename(), 'jfk.srt');
    const cues = parseSrt(readFileSync((await download.path())!, 'utf8'));
    assert.equal(cues.length, shown.length, 'one SRT cue per segment shown');
    cues.forEach((cue, i) => {
      assert.equal(cue.index, i + 1, 'cues are numbered from 1');
      assert.ok(cue.end >= cue.start && (i === 0 || cue.start >= cues[i - 1]!.start), `cue ${i + 1} is ordered`);
      assert.ok(shown[i]!.replace(/\s+/g, '').endsWith(cue.text.replace(/\s+/g, '')), `cue ${i + 1} has the text of segment ${i + 1}`);
    });

    // Device panel: the benchmark plots encoder ms and decode ms/token per backend as an SVG chart.
    assert.match(await page.page.$eval('#device-info', (el) => el.textContent ?? ''), /Backend in usewasm/);
    await page.page.click('#benchmark');
    await page.page.waitForFunction(() => /^Benchmark (done|failed)/.test(document.querySelector('#benchmark-status')?.textContent ?? ''), null, { timeout: 120_000 });
    assert.equal(await page.page.$eval('#benchmark-status', (el) => el.textContent), 'Benchmark done.');
    const bars = await page.page.$$eval('#benchmark-chart svg rect', (rects) => rects.map((rect) => Number(rect.getAttribute('width'))));
    assert.ok(bars.length >= 2 && bars.length % 2 === 0 && bars.every((width) => width > 0), `one bar per backend for encoder and for decode: ${bars}`);
    await page.page.screenshot({ path: join(SCREENSHOTS, '3-benchmark.png'), fullPage: true });

    // Model manager: the cached model can be deleted.
    await page.page.click('#cache-panel summary');
    await page.page.click('#cached-models button');
    await page.page.waitForFunction(() => document.querySelector('#cached-models')?.textContent === 'No model cached yet.');
    assert.match(await page.page.$eval('#storage-status', (el) => el.textContent ?? ''), /^Storage: .* used of .* available/);
  });

  test('word timestamps: words are buttons, clicking one seeks the player and the playing word is highlighted', { timeout: 180_000 }, async (t) => {
    // The synthetic model has no alignment heads; a copy with one in its generation config has.
    const model = await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' });
    const dir = mkdtempSync(join(tmpdir(), 'murmur-demo-aligned-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    for (const name of readdirSync(model.dir)) copyFileSync(join(model.dir, name), join(dir, name));
    const generation = JSON.parse(readFileSync(join(dir, 'generation_config.json'), 'utf8'));
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ ...generation, alignment_heads: [[0, 0]] }));
    session().mount('/@models/mini-aligned/', dir);

    const page = await session().openPage('/demo/index.html?model=/@models/mini-aligned/&backend=wasm', { test: t });
    await waitForModel(page.page);
    await page.page.selectOption('#opt-timestamps', 'word');
    await page.page.setInputFiles('#audio-file', JFK);
    assert.match(await waitForTranscript(page.page), /^Done in /);
    const words = await page.page.$$eval('#segments .word', (buttons) => buttons.map((button) => Number((button as HTMLElement).dataset.start)));
    assert.ok(words.length > 0, 'the transcript shows words');
    const last = (await page.page.$$('#segments .word')).at(-1)!;
    await last.click();
    const time = await page.page.$eval('#player', (el) => (el as HTMLAudioElement).currentTime);
    assert.ok(Math.abs(time - words.at(-1)!) < 0.05, `clicking a word seeks to its start ${words.at(-1)} s (player at ${time})`);
    await page.page.$eval('#player', (el) => {
      const player = el as HTMLAudioElement;
      player.pause();
      player.dispatchEvent(new Event('timeupdate'));
    });
    const current = await page.page.$$eval('#segments .word.current', (buttons) => buttons.map((button) => (button as HTMLElement).dataset.start));
    assert.equal(current.length, 1, 'exactly one word is highlighted');
    await page.page.screenshot({ path: join(SCREENSHOTS, '2b-word-timestamps.png'), fullPage: true });
  });
});
