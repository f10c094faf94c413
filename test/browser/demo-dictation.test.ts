// Dictate in the demo page with Chromium's fake microphone playing espeak-ng speech from a WAV
// file: the button starts listenLocal on the loaded mini model (WASM backend), greyed tentative
// text (when the machine keeps up) then confirmed text ends up in the box, and the session sends no audio anywhere (the
// only request is the capture worklet's own script, fetched from the page's origin).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { skipWithoutSpeechTools } from '../unit/streaming-fixture.ts';
import { skipWithoutSharedData } from '../shared-data.ts';
import { useBrowserSession } from './harness.ts';
import { REPO_ROOT } from './server.ts';
import { waitForModel } from './demo-steps.ts';

const SCREENSHOTS = join(REPO_ROOT, 'test-results/demo');

function microphoneFile(): { path: string; seconds: number } {
  const dir = mkdtempSync(join(tmpdir(), 'murmur-demo-dictation-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const raw = join(dir, 'raw.wav');
  const path = join(dir, 'microphone.wav');
  execFileSync('espeak-ng', ['-v', 'en-us', '-s', '160', '-w', raw, 'Hello world, this is a test of live dictation.']);
  execFileSync('sox', [raw, '-r', '48000', '-c', '1', '-b', '16', path, 'pad', '1', '3']);
  return { path, seconds: Number(execFileSync('soxi', ['-D', path]).toString().trim()) };
}

describe('dictation in the demo page', { skip: skipWithoutSpeechTools || skipWithoutSharedData('whisper-assets/gpt2.tiktoken') }, () => {
  const microphone = skipWithoutSpeechTools ? { path: '', seconds: 0 } : microphoneFile();
  const session = useBrowserSession({
    extraArgs: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${microphone.path}%noloop`],
  });

  test('the microphone button shows tentative then confirmed text, without sending audio anywhere', { timeout: 180_000 }, async (t) => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const model = await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' });
    session().mount('/@models/mini/', model.dir);
    const page = await session().openPage('/demo/index.html?model=/@models/mini/&backend=wasm', { test: t });
    await waitForModel(page.page);
    await page.page.evaluate(() => {
      const seen = ((globalThis as { dictationSeen?: string[] }).dictationSeen = [] as string[]);
      new MutationObserver(() => {
        const tentative = document.querySelector('#dictation-tentative')?.textContent ?? '';
        const confirmed = document.querySelector('#dictation-confirmed')?.textContent ?? '';
        if (tentative.trim()) seen.push('tentative');
        if (confirmed.trim()) seen.push('confirmed');
      }).observe(document.querySelector('#dictation')!, { subtree: true, childList: true, characterData: true });
    });

    const requests: string[] = [];
    page.page.context().on('request', (request) => requests.push(request.url()));
    await page.page.click('#dictate');
    await page.page.waitForFunction(() => document.querySelector('#dictate')?.getAttribute('aria-pressed') === 'true', null, { timeout: 30_000 });
    await page.page.waitForFunction(() => (document.querySelector('#dictation-confirmed')?.textContent ?? '').trim() !== '', null, { timeout: (microphone.seconds + 60) * 1000 });
    await page.page.screenshot({ path: join(SCREENSHOTS, '4-dictation.png'), fullPage: true });
    await page.page.click('#dictate');
    await page.page.waitForFunction(() => document.querySelector('#dictation-status')?.textContent === 'Stopped.', null, { timeout: 60_000 });

    const seen = await page.page.evaluate(() => (globalThis as { dictationSeen?: string[] }).dictationSeen ?? []);
    // On a loaded machine the session may skip interim decodes, so greyed text is not guaranteed;
    // when it shows, it shows before the confirmed text replaces it.
    t.diagnostic(`states seen: ${[...new Set(seen)].join(', ')}`);
    if (seen.includes('tentative')) assert.ok(seen.indexOf('tentative') < seen.indexOf('confirmed'), 'tentative text came before confirmed text');
    const confirmed = await page.page.$eval('#dictation-confirmed', (el) => el.textContent ?? '');
    t.diagnostic(`confirmed: ${JSON.stringify(confirmed)}`);
    assert.ok(confirmed.trim().length > 0);
    const others = requests.filter((url) => !url.startsWith('blob:') && !url.startsWith('data:') && !/\/src\/capture\/capture-processor\.(ts|js)(\?|$)/.test(url));
    assert.deepEqual(others, [], 'dictation made no network request besides loading the capture worklet');
  });
});
