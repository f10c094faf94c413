// The demo page end to end in headless Chromium (Vite dev server): load a synthetic model over
// HTTP from localhost through the page's model cache into createTranscriber's worker (progress bar
// reaches 100%), transcribe jfk.wav through the file chooser (segment timestamps: the synthetic model has no
// alignment heads for word timestamps), see the segments, export SRT, JSON, WebVTT and TXT and parse
// them, make no network request while transcribing; the device panel shows the probe's profile and
// the plan with its reasons, and the benchmark draws its chart. Screenshots go to test-results/demo.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { useBrowserSession } from './harness.ts';
import { REPO_ROOT, SHARED_DATA_DIR } from './server.ts';
import { downloadExport, parseSrt, parseVtt, waitForModel, waitForTranscript } from './demo-steps.ts';
import type { Page } from 'playwright-core';

const JFK = join(SHARED_DATA_DIR, 'audio/jfk.wav');
const SCREENSHOTS = join(REPO_ROOT, 'test-results/demo');

describe('the demo page', { skip: existsSync(JFK) ? false : `${JFK} is absent (the shared reference data is not checked out beside the repo)` }, () => {
  const session = useBrowserSession();

  test('loads a model from localhost, transcribes a WAV file segment by segment, exports SRT/JSON/VTT/TXT, shows the device and plots a benchmark', { timeout: 300_000 }, async (t) => {
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

    // Exports: each download parses, with one cue or line per segment shown, in order.
    const srt = await downloadExport(page.page, '#export-srt');
    assert.equal(srt.name, 'jfk.srt');
    const cues = parseSrt(srt.text);
    assert.equal(cues.length, shown.length, 'one SRT cue per segment shown');
    cues.forEach((cue, i) => {
      assert.equal(cue.index, i + 1, 'cues are numbered from 1');
      assert.ok(cue.end >= cue.start && (i === 0 || cue.start >= cues[i - 1]!.start), `cue ${i + 1} is ordered`);
      assert.ok(shown[i]!.replace(/\s+/g, '').endsWith(cue.text.replace(/\s+/g, '')), `cue ${i + 1} has the text of segment ${i + 1}`);
    });
    const json = await downloadExport(page.page, '#export-json');
    assert.equal(json.name, 'jfk.json');
    const result = JSON.parse(json.text) as { text: string; language: string; segments: { start: number; end: number; text: string }[] };
    assert.equal(result.language, 'en');
    assert.equal(result.segments.length, shown.length, 'the JSON has the segments shown');
    result.segments.forEach((segment, i) => assert.ok(shown[i]!.replace(/\s+/g, '').endsWith(segment.text.replace(/\s+/g, '')), `JSON segment ${i} is segment ${i} shown`));
    const vtt = await downloadExport(page.page, '#export-vtt');
    assert.equal(vtt.name, 'jfk.vtt');
    const vttCues = parseVtt(vtt.text);
    assert.deepEqual(vttCues.map((cue) => cue.text.trim()), result.segments.map((segment) => segment.text.trim()), 'one VTT cue per segment, same text');
    vttCues.forEach((cue, i) => {
      assert.ok(Math.abs(cue.start - result.segments[i]!.start) < 0.0015 && Math.abs(cue.end - result.segments[i]!.end) < 0.0015, `VTT cue ${i} has segment ${i}'s times`);
      assert.ok(cue.end >= cue.start && (i === 0 || cue.start >= vttCues[i - 1]!.end), `VTT cue ${i} is ordered`);
    });
    const txt = await downloadExport(page.page, '#export-txt');
    assert.equal(txt.name, 'jfk.txt');
    const lines = result.segments.map((segment) => segment.text.replace(/[\t\r\n]+/g, ' ').trim()).filter((line) => line !== '');
    assert.equal(txt.text, lines.map((line) => `${line}\n`).join(''), 'TXT is the segment texts, one per line');

    // Device panel: the probe's profile, the plan with its reasons, and the backend in use.
    const groups = await page.page.$$eval('#device-profile h3', (headings) => headings.map((h) => h.textContent));
    assert.deepEqual(groups, ['WebGPU', 'WebNN', 'WebAssembly', 'Page']);
    const profile = await deviceRows(page.page, '#device-profile');
    assert.match(profile['Adapter'] ?? '', /\S/, 'the WebGPU adapter is described');
    assert.match(profile['Features'] ?? '', /\S/);
    assert.match(profile['Max buffer'] ?? '', /\d/);
    assert.ok(Object.entries(profile).some(([term, value]) => /^(Available|Context)/.test(term) && /^(no: |failed: |created)/.test(value)), `WebNN says what it found and why: ${JSON.stringify(profile)}`);
    assert.equal(profile['SIMD'], 'yes');
    assert.match(profile['Threads'] ?? '', /^(yes|no: .+)$/);
    assert.match(profile['Cores'] ?? '', /^\d+$/);
    assert.match(profile['Storage'] ?? '', /used of/);
    assert.match(profile['Cross-origin isolated'] ?? '', /^yes/, 'the demo is served cross-origin isolated');
    const plan = await deviceRows(page.page, '#device-plan');
    assert.match(plan['Backend order'] ?? '', /^wasm( → reference)?$/, 'the plan follows the backend chosen in the page (wasm)');
    assert.match(plan['Backends tried'] ?? '', /^wasm: used/, 'the engine says which backend it built');
    assert.match(plan['Precision'] ?? '', /^f32$/);
    assert.match(plan['Built with'] ?? '', /^layout row-major, precision f32, \d+ threads?, weights [\d.]+ MB/, 'the engine says what it applied');
    const reasons = await page.page.$$eval('#device-plan .reasons li', (items) => items.map((li) => li.textContent ?? ''));
    assert.ok(reasons.length >= 4 && reasons.some((reason) => /^threads \d/.test(reason)) && reasons.some((reason) => /backendOrder .*set by the caller/.test(reason)), `the plan lists its reasons: ${JSON.stringify(reasons)}`);
    assert.equal(await page.page.$eval('#device-backend', (el) => el.textContent ?? ''), "Running on WASM. The plan below is the transcriber's own.");

    // The benchmark plots encoder ms and decode ms/token per backend as an SVG bar chart.
    await page.page.click('#benchmark');
    await page.page.waitForFunction(() => /^Benchmark (done|failed)/.test(document.querySelector('#benchmark-status')?.textContent ?? ''), null, { timeout: 120_000 });
    assert.equal(await page.page.$eval('#benchmark-status', (el) => el.textContent), 'Benchmark done.');
    const chart = await page.page.$eval('#benchmark-chart', (figure) => ({
      hidden: (figure as HTMLElement).hidden,
      role: figure.querySelector('svg')?.getAttribute('role'),
      title: figure.querySelector('svg title')?.textContent ?? '',
      groups: [...figure.querySelectorAll('svg .chart-group')].map((text) => text.textContent),
      labels: [...figure.querySelectorAll('svg .chart-label')].map((text) => text.textContent),
      bars: [...figure.querySelectorAll('svg rect')].map((rect) => Number(rect.getAttribute('width'))),
    }));
    assert.equal(chart.hidden, false);
    assert.equal(chart.role, 'img');
    assert.deepEqual(chart.groups, ['Encoder (ms)', 'Decode (ms per token)']);
    const backends = chart.labels.slice(0, chart.labels.length / 2);
    assert.ok(backends.includes('WASM'), `the chart has a WASM bar: ${chart.labels}`);
    assert.deepEqual(chart.labels, [...backends, ...backends], 'each group has one bar per backend');
    assert.ok(chart.bars.length === chart.labels.length && chart.bars.every((width) => width > 0), `every bar has a length: ${chart.bars}`);
    for (const backend of backends) assert.match(chart.title, new RegExp(`Encoder \\(ms\\) ${backend} [\\d.]+ ms; .*Decode \\(ms per token\\) ${backend} [\\d.]+ ms/token`), 'the chart has a text alternative');
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

/** The term → value pairs of the definition lists under `selector`. */
async function deviceRows(page: Page, selector: string): Promise<Record<string, string>> {
  return page.$$eval(`${selector} dt`, (terms) => Object.fromEntries(terms.map((dt) => [dt.textContent ?? '', dt.nextElementSibling?.textContent ?? ''])));
}
