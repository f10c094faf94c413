import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBrowserSession } from './harness.ts';
import { SHARED_DATA_DIR, SHARED_DATA_ROUTE } from './server.ts';

const BLANK = '/test/browser/pages/blank.html';
const JFK = join(SHARED_DATA_DIR, 'audio/jfk.wav');

describe('browser test harness', () => {
  const session = useBrowserSession();

  test('pages are secure, cross-origin isolated and have WebGPU', async (t) => {
    const page = await session().openPage(BLANK, { test: t });
    assert.equal(await page.crossOriginIsolated(), true);
    const facts = await page.evaluate(() => ({
      secure: isSecureContext,
      sharedMemory: typeof SharedArrayBuffer === 'function',
      webgpu: 'gpu' in navigator,
    }));
    assert.deepEqual(facts, { secure: true, sharedMemory: true, webgpu: true });
  });

  test('a page imports TypeScript from /src through the dev server', async (t) => {
    const page = await session().openPage(BLANK, { test: t });
    const multilingual = await page.evaluate(async (path) => {
      const dims = await import(/* @vite-ignore */ path);
      return dims.isMultilingual({ nVocab: 51865 }) && !dims.isMultilingual({ nVocab: 51864 });
    }, '/src/core/model/dims.ts');
    assert.equal(multilingual, true);
  });

  test('the page reads ../shared/data/audio/jfk.wav through /@shared/', async (t) => {
    if (!existsSync(JFK)) {
      t.skip(`${JFK} is absent (the shared reference data is not beside the repo)`);
      return;
    }
    const page = await session().openPage(BLANK, { test: t });
    const fetched = await page.evaluate(async (url) => {
      const response = await fetch(url);
      const bytes = new Uint8Array(await response.arrayBuffer());
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
      const partial = await fetch(url, { headers: { Range: 'bytes=8-15' } });
      return {
        status: response.status,
        type: response.headers.get('content-type'),
        length: bytes.length,
        sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''),
        partialStatus: partial.status,
        partialText: new TextDecoder().decode(await partial.arrayBuffer()),
      };
    }, `${SHARED_DATA_ROUTE}audio/jfk.wav`);
    const expected = readFileSync(JFK);
    assert.equal(fetched.status, 200);
    assert.equal(fetched.type, 'audio/wav');
    assert.equal(fetched.length, expected.length);
    assert.equal(fetched.sha256, createHash('sha256').update(expected).digest('hex'));
    assert.equal(fetched.partialStatus, 206);
    assert.equal(fetched.partialText, 'WAVEfmt ');
  });

  test('a mounted folder serves its files, refuses paths outside it and names missing files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'murmur-mount-'));
    writeFileSync(join(dir, 'inside.txt'), 'inside');
    session().mount('/@mounted/', dir);
    const inside = await fetch(`${session().origin}/@mounted/inside.txt`);
    assert.equal(await inside.text(), 'inside');
    const outside = await fetch(`${session().origin}/@mounted/..%2f..%2fetc%2fpasswd`);
    assert.equal(outside.status, 403);
    const missing = await fetch(`${session().origin}/@mounted/audio/no-such-file.wav`);
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /audio\/no-such-file\.wav/);
  });

  test('an uncaught exception in the page fails the next call and the close', async () => {
    const page = await session().openPage(BLANK);
    await page.evaluate(() => {
      setTimeout(() => {
        throw new Error('deliberate failure');
      });
    });
    await assert.rejects(
      page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 5000))),
      /uncaught exception: Error: deliberate failure/,
    );
    await assert.rejects(page.close(), /deliberate failure/);
  });

  test('a console error fails the page unless it is allowed', async () => {
    const strict = await session().openPage(BLANK);
    await assert.rejects(
      strict.evaluate(() => {
        console.error('deliberate console error');
        return new Promise((resolve) => setTimeout(resolve, 5000));
      }),
      /console error: deliberate console error/,
    );
    await assert.rejects(strict.close(), /deliberate console error/);

    const lenient = await session().openPage(BLANK, { allowConsoleErrors: [/^deliberate/] });
    await lenient.evaluate(() => console.error('deliberate console error'));
    await lenient.close();
  });

  test('errors inside a Web Worker fail the page as well', async () => {
    const page = await session().openPage(BLANK);
    await assert.rejects(
      page.evaluate(() => {
        const source = "setTimeout(() => { throw new Error('deliberate worker failure'); });";
        new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })));
        return new Promise((resolve) => setTimeout(resolve, 5000));
      }),
      /deliberate worker failure/,
    );
    await assert.rejects(page.close(), /deliberate worker failure/);
  });

  test('a page that does not exist fails to open with its status', async () => {
    await assert.rejects(session().openPage('/test/browser/pages/no-such-page.html'), /HTTP 404/);
  });

  test('a hanging evaluate times out with a message naming it', async (t) => {
    const page = await session().openPage(BLANK, { test: t });
    await assert.rejects(
      page.evaluate(() => new Promise(() => {}), undefined, { timeoutMs: 300, what: 'waiting forever' }),
      /timed out after 0\.3 s waiting forever/,
    );
  });
});
