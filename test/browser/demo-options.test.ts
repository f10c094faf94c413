// The demo's Options on the multilingual synthetic model, in headless Chromium: with the language on
// auto-detect the page shows the detected language and its probability and transcribes in it; with
// a language, task translate, a beam size and an initial prompt chosen, the request the page sends
// the engine worker carries each of them, and the result is in the chosen language.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowserSession } from './harness.ts';
import { REPO_ROOT, SHARED_DATA_DIR } from './server.ts';
import { downloadExport, openDemo, recordedObjectsWith, recordWorkerMessages, transcribeWith } from './demo-steps.ts';

const JFK = join(SHARED_DATA_DIR, 'audio/jfk.wav');
const SCREENSHOTS = join(REPO_ROOT, 'test-results/demo');

describe('the demo page: transcription options', { skip: existsSync(JFK) ? false : `${JFK} is absent (the shared reference data is not checked out beside the repo)` }, () => {
  const session = useBrowserSession();

  test('auto-detect shows the language and its probability; language, task, beam size and prompt reach the engine', { timeout: 240_000 }, async (t) => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const page = await openDemo(session(), t, 'mini-multilingual');
    assert.match(await page.page.$eval('#model-status', (el) => el.textContent ?? ''), /\(multilingual\)\.$/);
    assert.equal(await page.page.$eval('#opt-language', (select) => (select as HTMLSelectElement).disabled), false, 'a multilingual model takes a language');
    assert.equal(await page.page.$eval('#opt-task option[value="translate"]', (option) => (option as HTMLOptionElement).disabled), false, 'a multilingual model can translate');

    await recordWorkerMessages(page.page);
    await transcribeWith(page.page, () => page.page.setInputFiles('#audio-file', JFK));
    const detected = await page.page.$eval('#detected-language', (el) => el.textContent ?? '');
    const match = /^Detected language: (.+) \((\d+)%\)$/.exec(detected);
    assert.ok(match, `the detected language and its probability are shown: ${JSON.stringify(detected)}`);
    assert.ok(Number(match[2]) >= 0 && Number(match[2]) <= 100);
    const code = await page.page.$$eval('#opt-language option', (options, name) => options.find((option) => option.textContent?.startsWith(`${name} (`))?.getAttribute('value'), match[1]!);
    assert.ok(code, `${match[1]} is one of the page's languages`);
    const auto = JSON.parse((await downloadExport(page.page, '#export-json')).text) as { language: string };
    assert.equal(auto.language, code, 'the transcript is in the detected language');
    const firstRequests = await recordedObjectsWith(page.page, ['task', 'language']);
    assert.ok(firstRequests.some((options) => options.task === 'transcribe' && options.language === code && !('beamSize' in options) && !('initialPrompt' in options)), `the request carried the detected language: ${JSON.stringify(firstRequests)}`);

    await recordWorkerMessages(page.page);
    await page.page.selectOption('#opt-language', 'de');
    await page.page.selectOption('#opt-task', 'translate');
    await page.page.fill('#opt-beam', '3');
    await page.page.fill('#opt-prompt', 'Ich bin ein Berliner.');
    const status = await transcribeWith(page.page, () => page.page.setInputFiles('#audio-file', JFK));
    assert.match(status, /^Done in /);
    assert.equal(await page.page.$eval('#detected-language', (el) => el.textContent), '', 'a chosen language is not detected');
    const requests = await recordedObjectsWith(page.page, ['task']);
    assert.deepEqual(
      requests.map(({ task, language, beamSize, initialPrompt }) => ({ task, language, beamSize, initialPrompt })),
      [{ task: 'translate', language: 'de', beamSize: 3, initialPrompt: 'Ich bin ein Berliner.' }],
      'one request, carrying the task, language, beam size and prompt',
    );
    const chosen = JSON.parse((await downloadExport(page.page, '#export-json')).text) as { language: string; segments: unknown[] };
    assert.equal(chosen.language, 'de', 'the result is in the chosen language');
    assert.ok(chosen.segments.length > 0);
    await page.page.screenshot({ path: join(SCREENSHOTS, '5-options.png'), fullPage: true });
    assert.deepEqual(page.errors, [], 'no console errors');
  });
});
