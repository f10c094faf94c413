// Steps the demo tests share: waiting for the model and the transcript, and reading an SRT file.
import type { Page } from 'playwright-core';

const LOAD_TIMEOUT_MS = 120_000;
const TRANSCRIBE_TIMEOUT_MS = 180_000;

/** Waits until the model status says loaded or failed; returns it (fails on failure). */
export async function waitForModel(page: Page): Promise<string> {
  await page.waitForFunction(() => /^(Loaded|Could not)/.test(document.querySelector('#model-status')?.textContent ?? ''), null, { timeout: LOAD_TIMEOUT_MS });
  const status = await page.$eval('#model-status', (el) => el.textContent ?? '');
  if (!status.startsWith('Loaded')) throw new Error(`the demo did not load its model: ${status}`);
  return status;
}

export async function waitForTranscript(page: Page): Promise<string> {
  await page.waitForFunction(() => /^(Done|Could not|Cancelled)/.test(document.querySelector('#transcribe-status')?.textContent ?? ''), null, { timeout: TRANSCRIBE_TIMEOUT_MS });
  return page.$eval('#transcribe-status', (el) => el.textContent ?? '');
}

export interface SrtCue {
  index: number;
  start: number;
  end: number;
  text: string;
}

/** Strict enough to catch a malformed file: every block is number, HH:MM:SS,mmm --> HH:MM:SS,mmm, text. */
export function parseSrt(text: string): SrtCue[] {
  const seconds = (stamp: string) => {
    const [h, m, rest] = stamp.split(':');
    const [s, ms] = rest!.split(',');
    return Number(h) * 3600 + Number(m) * 60 + Number(s) + Number(ms) / 1000;
  };
  return text
    .trim()
    .split(/\r?\n\r?\n/)
    .map((block) => {
      const [index, timing, ...lines] = block.split(/\r?\n/);
      const match = /^(\d{2}:\d{2}:\d{2},\d{3}) --> (\d{2}:\d{2}:\d{2},\d{3})$/.exec(timing ?? '');
      if (!/^\d+$/.test(index ?? '') || !match) throw new Error(`not an SRT cue: ${JSON.stringify(block)}`);
      return { index: Number(index), start: seconds(match[1]!), end: seconds(match[2]!), text: lines.join('\n') };
    });
}
