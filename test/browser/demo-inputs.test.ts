// The demo's other ways in, in headless Chromium: audio from a pasted URL and from a file dropped on
// the drop zone (a real drop event carrying a DataTransfer with the file), and a model from local
// files through the two pickers (a ggml .bin through "Local file(s)…", a Hugging Face folder
// through "Local folder…"), each followed by a transcription of jfk.wav.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { useBrowserSession } from './harness.ts';
import { SHARED_DATA_DIR, SHARED_DATA_ROUTE } from './server.ts';
import { openDemo, shownSegments, transcribeWith, waitForModel } from './demo-steps.ts';

const JFK = join(SHARED_DATA_DIR, 'audio/jfk.wav');

describe('the demo page: URL, drag and drop, local model files', { skip: existsSync(JFK) ? false : `${JFK} is absent (the shared reference data is not checked out beside the repo)` }, () => {
  const session = useBrowserSession();

  test('a pasted URL and a dropped file are transcribed', { timeout: 180_000 }, async (t) => {
    const page = await openDemo(session(), t);

    const url = new URL(`${SHARED_DATA_ROUTE}audio/jfk.wav`, session().origin).href;
    const fromUrl = await transcribeWith(page.page, async () => {
      await page.page.fill('#audio-url', url);
      await page.page.press('#audio-url', 'Enter');
    });
    assert.match(fromUrl, /^Done in .* \d+ segments?\.$/);
    const urlSegments = await shownSegments(page.page);
    assert.ok(urlSegments.length > 0, 'the URL gave segments');
    assert.equal(await page.page.$eval('#export-json', (button) => (button as HTMLButtonElement).disabled), false, 'the URL transcript can be exported');

    // A real drop: dragenter/dragover/drop events whose DataTransfer holds the WAV file.
    const dataTransfer = await page.page.evaluateHandle((base64) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], 'dropped-jfk.wav', { type: 'audio/wav' }));
      return transfer;
    }, readFileSync(JFK).toString('base64'));
    await page.page.$eval('#segments', (list) => list.replaceChildren());
    const dropped = await transcribeWith(page.page, async () => {
      await page.page.dispatchEvent('#drop-zone', 'dragenter', { dataTransfer });
      await page.page.dispatchEvent('#drop-zone', 'dragover', { dataTransfer });
      assert.ok(await page.page.$eval('#drop-zone', (zone) => zone.classList.contains('over')), 'the drop zone shows it will take the file');
      await page.page.dispatchEvent('#drop-zone', 'drop', { dataTransfer });
    });
    assert.match(dropped, /^Done in /);
    assert.equal(await page.page.$eval('#drop-zone', (zone) => zone.classList.contains('over')), false);
    assert.deepEqual(await shownSegments(page.page), urlSegments, 'the same audio by drop gives the same transcript');
    assert.match(await page.page.$eval('#player', (player) => (player as HTMLAudioElement).src), /^blob:/, 'the dropped file plays in the player');
    assert.deepEqual(page.errors, [], 'no console errors');
  });

  test('a ggml file and a Hugging Face folder load through the pickers and transcribe', { timeout: 180_000 }, async (t) => {
    const page = await openDemo(session(), t);

    const ggml = await cachedSyntheticModel({ preset: 'mini', seed: 11, format: 'ggml', dtype: 'q8_0' });
    const [fileChooser] = await Promise.all([page.page.waitForEvent('filechooser'), page.page.getByText('Local file(s)…').click()]);
    assert.equal(fileChooser.isMultiple(), true);
    await fileChooser.setFiles(ggml.path);
    const fromFile = await waitForModel(page.page, basename(ggml.path));
    assert.match(fromFile, /on the WASM backend \(English-only\)\.$/);
    assert.equal(await page.page.$eval('#model-progress', (bar) => (bar as HTMLProgressElement).value), 1);
    assert.match(await page.page.$eval('#device-plan', (plan) => plan.textContent ?? ''), /Precisionq8/, 'the plan knows the file holds q8_0 weights');
    await transcribeWith(page.page, () => page.page.setInputFiles('#audio-file', JFK));
    assert.ok((await shownSegments(page.page)).length > 0, 'the ggml model transcribes');

    const folder = await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f16' });
    const [folderChooser] = await Promise.all([page.page.waitForEvent('filechooser'), page.page.getByText('Local folder…').click()]);
    await folderChooser.setFiles(folder.dir);
    const fromFolder = await waitForModel(page.page, basename(folder.dir));
    assert.match(fromFolder, /on the WASM backend/);
    assert.match(await page.page.$eval('#device-plan', (plan) => plan.textContent ?? ''), /Precisionf16/, 'the plan knows the folder holds f16 weights');
    await transcribeWith(page.page, () => page.page.setInputFiles('#audio-file', JFK));
    assert.ok((await shownSegments(page.page)).length > 0, 'the folder model transcribes');
    assert.deepEqual(page.errors, [], 'no console errors');
  });
});
