// Steps the demo tests share: opening the demo on a synthetic model, waiting for the model and the
// transcript, downloading an export, watching what the page sends the engine worker, and parsing
// SRT and WebVTT files strictly.
import { readFileSync } from 'node:fs';
import type { TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import type { BrowserSession, TestPage } from './harness.ts';

const LOAD_TIMEOUT_MS = 120_000;
const TRANSCRIBE_TIMEOUT_MS = 180_000;

/**
 * Serves the synthetic `preset` model (Hugging Face folder, f32) at /@models/<preset>/ and opens
 * the demo on it with the WASM backend; returns once the model is loaded.
 */
export async function openDemo(session: BrowserSession, t: TestContext, preset: 'mini' | 'mini-multilingual' = 'mini'): Promise<TestPage> {
  const model = await cachedSyntheticModel({ preset, seed: 7, format: 'huggingface', dtype: 'f32' });
  session.mount(`/@models/${preset}/`, model.dir);
  const page = await session.openPage(`/demo/index.html?model=/@models/${preset}/&backend=wasm`, { test: t });
  await waitForModel(page.page);
  return page;
}

/** Waits until the model status says loaded (naming `label`, when given) or failed; returns it (fails on failure). */
export async function waitForModel(page: Page, label?: string): Promise<string> {
  await page.waitForFunction(
    (name) => {
      const status = document.querySelector('#model-status')?.textContent ?? '';
      return status.startsWith('Could not') || (status.startsWith('Loaded') && (name === null || status.startsWith(`Loaded ${name} `)));
    },
    label ?? null,
    { timeout: LOAD_TIMEOUT_MS },
  );
  const status = await page.$eval('#model-status', (el) => el.textContent ?? '');
  if (!status.startsWith('Loaded')) throw new Error(`the demo did not load its model: ${status}`);
  return status;
}

/** Waits for the outcome of the transcription that is running or about to start (Done, Could not, Cancelled). */
export async function waitForTranscript(page: Page): Promise<string> {
  await page.waitForFunction(() => /^(Done|Could not|Cancelled)/.test(document.querySelector('#transcribe-status')?.textContent ?? ''), null, { timeout: TRANSCRIBE_TIMEOUT_MS });
  return page.$eval('#transcribe-status', (el) => el.textContent ?? '');
}

/** Clears the previous outcome, runs `start`, and waits for the new outcome; fails unless it is Done. */
export async function transcribeWith(page: Page, start: () => Promise<unknown>): Promise<string> {
  await page.$eval('#transcribe-status', (el) => (el.textContent = ''));
  await start();
  const status = await waitForTranscript(page);
  if (!status.startsWith('Done')) throw new Error(`the transcription did not finish: ${status}`);
  return status;
}

export async function shownSegments(page: Page): Promise<string[]> {
  return page.$$eval('#segments li', (items) => items.map((li) => li.textContent ?? ''));
}

/** Clicks an export button and returns the downloaded file's name and text. */
export async function downloadExport(page: Page, selector: string): Promise<{ name: string; text: string }> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  const path = await download.path();
  if (!path) throw new Error(`the ${selector} download failed: ${await download.failure()}`);
  return { name: download.suggestedFilename(), text: readFileSync(path, 'utf8') };
}

/**
 * Records what the page posts to its workers from now on (the engine's requests go through comlink
 * as worker messages), with binary payloads replaced by a tag so the messages stay small.
 */
export async function recordWorkerMessages(page: Page): Promise<void> {
  await page.evaluate(RECORD_WORKER_MESSAGES);
}

// A string, not a function: tsx compiles named inner functions with a `__name` helper that does not
// exist in the page.
const RECORD_WORKER_MESSAGES = `(() => {
  const seen = (globalThis.workerMessages = []);
  const plain = (value, depth) => {
    if (value === null || typeof value !== 'object') return value;
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Blob || depth > 8) return '[binary]';
    if (Array.isArray(value)) return value.map((item) => plain(item, depth + 1));
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plain(item, depth + 1)]));
  };
  const post = globalThis.originalWorkerPost ?? Worker.prototype.postMessage;
  globalThis.originalWorkerPost = post;
  Worker.prototype.postMessage = function (message, ...rest) {
    seen.push(plain(message, 0));
    return post.call(this, message, ...rest);
  };
})()`;

/** Every object in the recorded worker messages that has all of `keys` (e.g. the transcribe options). */
export async function recordedObjectsWith(page: Page, keys: string[]): Promise<Record<string, unknown>[]> {
  const messages = await page.evaluate(() => (globalThis as { workerMessages?: unknown[] }).workerMessages ?? []);
  const found: Record<string, unknown>[] = [];
  const visit = (value: unknown) => {
    if (value === null || typeof value !== 'object') return;
    if (!Array.isArray(value) && keys.every((key) => key in value)) found.push(value as Record<string, unknown>);
    for (const item of Object.values(value)) visit(item);
  };
  visit(messages);
  return found;
}

export interface Cue {
  start: number;
  end: number;
  text: string;
}

export interface SrtCue extends Cue {
  index: number;
}

function seconds(stamp: string): number {
  const parts = stamp.replace(',', '.').split(':').map(Number);
  return parts.reduce((total, part) => total * 60 + part, 0);
}

/** Strict enough to catch a malformed file: every block is number, HH:MM:SS,mmm --> HH:MM:SS,mmm, text. */
export function parseSrt(text: string): SrtCue[] {
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

/** A 'WEBVTT' header block, then cues: an optional identifier, [HH:]MM:SS.mmm --> [HH:]MM:SS.mmm, text. */
export function parseVtt(text: string): Cue[] {
  const [header, ...blocks] = text.trim().split(/\r?\n\r?\n/);
  if (!/^WEBVTT(?:[ \t].*)?$/.test(header!.split(/\r?\n/)[0]!)) throw new Error(`not a WebVTT file: ${JSON.stringify(header)}`);
  return blocks.map((block) => {
    const lines = block.split(/\r?\n/);
    const timingAt = lines.findIndex((line) => line.includes('-->'));
    const match = /^((?:\d{2,}:)?\d{2}:\d{2}\.\d{3}) --> ((?:\d{2,}:)?\d{2}:\d{2}\.\d{3})(?: .*)?$/.exec(lines[timingAt] ?? '');
    if (timingAt > 1 || !match) throw new Error(`not a WebVTT cue: ${JSON.stringify(block)}`);
    return { start: seconds(match[1]!), end: seconds(match[2]!), text: lines.slice(timingAt + 1).join('\n') };
  });
}
