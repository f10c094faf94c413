// The demo page for keyboard, screen-reader and phone users, in headless Chromium (with a fake
// microphone, so the dictate button can start): Tab reaches every main control, Enter and Space
// open the file chooser and start/stop dictation, the transcript is an aria-live region, every
// control has a label, and at 375×667 nothing scrolls sideways. Screenshots go to test-results/demo.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FileChooser, Page } from 'playwright-core';
import { useBrowserSession } from './harness.ts';
import { REPO_ROOT, SHARED_DATA_DIR } from './server.ts';
import { openDemo, shownSegments, transcribeWith } from './demo-steps.ts';

const JFK = join(SHARED_DATA_DIR, 'audio/jfk.wav');
const SCREENSHOTS = join(REPO_ROOT, 'test-results/demo');
const PHONE = { width: 375, height: 667 };

/** The ids (or tag and text) of the elements Tab visits from the top of the page, once round. */
async function tabOrder(page: Page): Promise<string[]> {
  // Clicking plain text moves the point sequential navigation starts from to the top.
  await page.click('h1');
  const visited: string[] = [];
  // The audio player's own buttons are several stops under one element; 150 presses cover them.
  for (let i = 0; i < 150; i++) {
    await page.keyboard.press('Tab');
    const name = await page.evaluate(() => {
      const active = document.activeElement;
      if (!active || active === document.body) return '';
      return active.id || `${active.tagName.toLowerCase()}:${(active.textContent ?? '').trim().slice(0, 30)}`;
    });
    if (name === '' || name === visited[0]) break;
    if (!visited.includes(name)) visited.push(name);
  }
  return visited;
}

/**
 * Presses `key` on the focused file input and returns the chooser it opens. The press must click
 * the input every time; under load Chromium (with Playwright intercepting choosers) now and then
 * drops the chooser an Enter press asked for although the click happened, so a second press is allowed.
 */
async function chooserFromKey(page: Page, selector: string, key: string): Promise<FileChooser> {
  for (let attempt = 1; ; attempt++) {
    await page.focus(selector);
    await page.$eval(selector, (input) => input.addEventListener('click', () => input.setAttribute('data-clicked', 'yes'), { once: true }));
    const [chooser] = await Promise.all([page.waitForEvent('filechooser', { timeout: 5_000 }).catch(() => undefined), page.keyboard.press(key)]);
    assert.equal(await page.$eval(selector, (input) => input.getAttribute('data-clicked')), 'yes', `${key} clicks the focused ${selector}`);
    await page.$eval(selector, (input) => input.removeAttribute('data-clicked'));
    if (chooser) return chooser;
    if (attempt === 2) throw new Error(`${key} on ${selector} did not open the file chooser, twice`);
  }
}

/** Elements whose box reaches past the right edge of the viewport, and the page's sideways overflow. */
async function sidewaysOverflow(page: Page): Promise<{ scroll: number; offenders: string[] }> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const offenders = [...document.querySelectorAll<HTMLElement>('body *')]
      .filter((element) => element.getClientRects().length > 0 && element.getBoundingClientRect().right > width + 0.5)
      .map((element) => `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}.${element.className} (${Math.round(element.getBoundingClientRect().right)} px)`);
    return { scroll: document.documentElement.scrollWidth - width, offenders };
  });
}

describe('the demo page: keyboard, screen readers, phones', { skip: existsSync(JFK) ? false : `${JFK} is absent (the shared reference data is not checked out beside the repo)` }, () => {
  const session = useBrowserSession({ extraArgs: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'] });

  test('keyboard: Tab reaches the main controls; Enter and Space work the file and dictate buttons', { timeout: 180_000 }, async (t) => {
    const page = await openDemo(session(), t);
    const order = await tabOrder(page.page);
    t.diagnostic(`tab order: ${order.join(', ')}`);
    for (const id of ['model-preset', 'model-source', 'load-model', 'model-backend', 'model-folder', 'model-files', 'audio-file', 'audio-url', 'transcribe-url', 'opt-task', 'opt-timestamps', 'opt-beam', 'opt-prompt', 'dictate', 'dictation-copy', 'dictation-clear', 'benchmark']) {
      assert.ok(order.includes(id), `Tab reaches #${id} (order: ${order.join(', ')})`);
    }
    assert.ok(order.indexOf('model-source') < order.indexOf('audio-file') && order.indexOf('audio-file') < order.indexOf('dictate'), 'Tab follows the page from top to bottom');

    // Space, then Enter, on the focused file input open the file chooser; the chosen file is transcribed.
    for (const key of ['Space', 'Enter']) {
      const chooser = await chooserFromKey(page.page, '#audio-file', key);
      await transcribeWith(page.page, () => chooser.setFiles(JFK));
      assert.ok((await shownSegments(page.page)).length > 0, `${key} on the file button led to a transcript`);
    }
    // Export buttons are reachable once there is something to export.
    const afterTranscript = await tabOrder(page.page);
    t.diagnostic(`tab order with a transcript: ${afterTranscript.join(', ')}`);
    for (const id of ['export-txt', 'export-srt', 'export-vtt', 'export-json']) assert.ok(afterTranscript.includes(id), `Tab reaches #${id}`);

    // Enter starts dictation, Space stops it.
    await page.page.focus('#dictate');
    await page.page.keyboard.press('Enter');
    await page.page.waitForFunction(() => document.querySelector('#dictate')?.getAttribute('aria-pressed') === 'true', null, { timeout: 30_000 });
    assert.equal(await page.page.$eval('#dictate', (button) => button.textContent), 'Stop dictation');
    await page.page.focus('#dictate');
    await page.page.keyboard.press('Space');
    await page.page.waitForFunction(() => document.querySelector('#dictation-status')?.textContent === 'Stopped.', null, { timeout: 60_000 });
    assert.equal(await page.page.$eval('#dictate', (button) => button.getAttribute('aria-pressed')), 'false');
    assert.deepEqual(page.errors, [], 'no console errors');
  });

  test('screen readers: a live transcript region, status messages, a label on every control', { timeout: 120_000 }, async (t) => {
    const page = await openDemo(session(), t);
    const live = await page.page.$eval('#segments', (list) => ({ live: list.getAttribute('aria-live'), relevant: list.getAttribute('aria-relevant') }));
    assert.deepEqual(live, { live: 'polite', relevant: 'additions' }, 'new segments are announced');
    assert.equal(await page.page.$eval('#dictation', (box) => box.getAttribute('aria-live')), 'polite', 'dictated text is announced');
    for (const id of ['model-status', 'transcribe-status', 'detected-language', 'dictation-status', 'benchmark-status', 'device-backend']) {
      assert.equal(await page.page.$eval(`#${id}`, (el) => el.getAttribute('role')), 'status', `#${id} is a status message`);
    }
    await transcribeWith(page.page, () => page.page.setInputFiles('#audio-file', JFK));
    const inLiveRegion = await page.page.$$eval('[aria-live] li', (items) => items.length);
    assert.equal(inLiveRegion, (await shownSegments(page.page)).length, 'the segments arrive inside the live region');
    assert.ok(inLiveRegion > 0);

    const unlabelled = await page.page.$$eval('input, select, button, progress', (controls) =>
      controls
        .filter((control) => {
          const labels = (control as HTMLInputElement).labels;
          const named = (labels && labels.length > 0 && [...labels].some((label) => (label.textContent ?? '').trim() !== '')) || control.getAttribute('aria-label') || (control.tagName === 'BUTTON' && (control.textContent ?? '').trim() !== '');
          return !named;
        })
        .map((control) => control.id || control.outerHTML.slice(0, 80)),
    );
    assert.deepEqual(unlabelled, [], 'every control has a label');
    assert.deepEqual(page.errors, [], 'no console errors');
  });

  test('phone: at 375×667 the page does not scroll sideways, before and after a transcription', { timeout: 120_000 }, async (t) => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const page = await openDemo(session(), t);
    await page.page.setViewportSize(PHONE);
    await page.page.click('#cache-panel summary');
    await page.page.waitForFunction(() => /mini/.test(document.querySelector('#cached-models')?.textContent ?? ''));
    await page.page.waitForSelector('#device-plan .reasons li');
    const loaded = await sidewaysOverflow(page.page);
    assert.deepEqual(loaded, { scroll: 0, offenders: [] }, 'nothing reaches past the right edge with the model loaded');
    await page.page.screenshot({ path: join(SCREENSHOTS, 'phone-1-loaded.png'), fullPage: true });

    await transcribeWith(page.page, () => page.page.setInputFiles('#audio-file', JFK));
    const transcribed = await sidewaysOverflow(page.page);
    assert.deepEqual(transcribed, { scroll: 0, offenders: [] }, 'nothing reaches past the right edge with a transcript');
    await page.page.screenshot({ path: join(SCREENSHOTS, 'phone-2-transcribed.png'), fullPage: true });
    await page.page.screenshot({ path: join(SCREENSHOTS, 'phone-3-viewport.png') });
    assert.deepEqual(page.errors, [], 'no console errors');
  });
});
