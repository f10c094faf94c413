import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkFileName, fetchBytes, readBlob, readLocalFile, type DownloadProgress } from '../../src/core/formats/sources.ts';
import { AbortError, ModelFormatError, ModelLoadError } from '../../src/core/errors.ts';

const URL_ = 'https://models.example/whisper/model.safetensors';

function bytes(n: number, seed = 1): Uint8Array<ArrayBuffer> {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

/** A fetch that answers with `body` in `chunkSize` pieces and the given headers. */
function fakeFetch(body: Uint8Array, options: { chunkSize?: number; headers?: Record<string, string>; status?: number; stopAfter?: number } = {}) {
  const calls: string[] = [];
  const fetchImpl = (async (input: RequestInfo | URL) => {
    calls.push(String(input));
    const chunkSize = options.chunkSize ?? 1000;
    let at = 0;
    const limit = options.stopAfter ?? body.length;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at >= limit) return controller.close();
        controller.enqueue(body.slice(at, Math.min(limit, at + chunkSize)));
        at += chunkSize;
      },
    });
    return new Response(stream, { status: options.status ?? 200, headers: options.headers });
  }) as typeof fetch;
  return { fetchImpl, calls };
}

function checkProgress(events: DownloadProgress[], file: string, total: number | undefined, finalLoaded: number) {
  assert.ok(events.length >= 2, 'at least a start and an end event');
  for (const e of events) {
    assert.equal(e.stage, 'download');
    assert.equal(e.file, file);
    assert.equal(e.total, total);
  }
  for (let i = 1; i < events.length; i++) assert.ok(events[i]!.loaded >= events[i - 1]!.loaded, 'monotonic');
  assert.equal(events[0]!.loaded, 0);
  assert.equal(events.at(-1)!.loaded, finalLoaded);
  if (total !== undefined) assert.equal(events.at(-1)!.progress, 1);
  else assert.equal(events.at(-1)!.progress, undefined);
}

test('fetchBytes with a known length reads every chunk and reports progress', async () => {
  const body = bytes(10_500);
  const { fetchImpl } = fakeFetch(body, { headers: { 'content-length': String(body.length) } });
  const events: DownloadProgress[] = [];
  const got = await fetchBytes(URL_, 'model.safetensors', { fetch: fetchImpl, onProgress: (e) => events.push(e) });
  assert.deepEqual(got, body);
  assert.equal(got!.buffer.byteLength, body.length, 'preallocated exactly');
  checkProgress(events, 'model.safetensors', body.length, body.length);
  assert.equal(events.length, 1 + 11);
});

test('fetchBytes without a length grows its buffer and trims the result', async () => {
  const body = bytes(3_000_000, 5);
  const { fetchImpl } = fakeFetch(body, { chunkSize: 65_536 });
  const events: DownloadProgress[] = [];
  const got = await fetchBytes(URL_, 'model.safetensors', { fetch: fetchImpl, onProgress: (e) => events.push(e) });
  assert.deepEqual(got, body);
  checkProgress(events, 'model.safetensors', undefined, body.length);
});

test('a compressed response does not trust content-length as the byte count', async () => {
  const body = bytes(5000);
  const { fetchImpl } = fakeFetch(body, { headers: { 'content-length': '100', 'content-encoding': 'gzip' } });
  const events: DownloadProgress[] = [];
  assert.deepEqual(await fetchBytes(URL_, 'x', { fetch: fetchImpl, onProgress: (e) => events.push(e) }), body);
  assert.equal(events.at(-1)!.total, undefined);
});

test('a body shorter than content-length is a ModelLoadError', async () => {
  const body = bytes(4000);
  const { fetchImpl } = fakeFetch(body, { headers: { 'content-length': '4000' }, stopAfter: 2500 });
  await assert.rejects(fetchBytes(URL_, 'model.safetensors', { fetch: fetchImpl }), (error: unknown) => {
    assert.ok(error instanceof ModelLoadError);
    assert.equal(error.file, URL_);
    assert.match(error.message, /ended after 2500 of 4000 bytes/);
    return true;
  });
});

test('HTTP errors: 404 on an optional file is undefined, otherwise ModelLoadError with status and URL', async () => {
  const { fetchImpl } = fakeFetch(new TextEncoder().encode('not found'), { status: 404 });
  assert.equal(await fetchBytes(URL_, 'generation_config.json', { fetch: fetchImpl }, true), undefined);
  await assert.rejects(fetchBytes(URL_, 'model.safetensors', { fetch: fetchImpl }), (error: unknown) => {
    assert.ok(error instanceof ModelLoadError);
    assert.equal(error.status, 404);
    assert.match(error.message, new RegExp(`^${URL_.replace(/\./g, '\\.')}: HTTP 404`));
    return true;
  });
  const forbidden = fakeFetch(new Uint8Array(0), { status: 403 }).fetchImpl;
  await assert.rejects(fetchBytes(URL_, 'config.json', { fetch: forbidden }, true), (error: unknown) => {
    assert.ok(error instanceof ModelLoadError);
    assert.equal(error.status, 403);
    assert.match(error.message, /gated/);
    return true;
  });
});

test('a network failure is a ModelLoadError naming the URL', async () => {
  const failing = (async () => {
    throw new TypeError('fetch failed');
  }) as typeof fetch;
  await assert.rejects(fetchBytes(URL_, 'config.json', { fetch: failing }), (error: unknown) => {
    assert.ok(error instanceof ModelLoadError);
    assert.match(error.message, /request failed: fetch failed/);
    assert.equal(error.file, URL_);
    return true;
  });
});

test('abort before and during a download', async () => {
  const controller = new AbortController();
  controller.abort();
  const { fetchImpl, calls } = fakeFetch(bytes(100));
  await assert.rejects(fetchBytes(URL_, 'config.json', { fetch: fetchImpl, signal: controller.signal }), AbortError);
  assert.equal(calls.length, 0, 'no request once aborted');

  const during = new AbortController();
  const big = fakeFetch(bytes(50_000), { headers: { 'content-length': '50000' } });
  await assert.rejects(
    fetchBytes(URL_, 'model.safetensors', {
      fetch: big.fetchImpl,
      signal: during.signal,
      onProgress: (e) => {
        if (e.loaded >= 10_000) during.abort();
      },
    }),
    (error: unknown) => {
      assert.ok(error instanceof AbortError);
      assert.match(error.message, /loading model\.safetensors was aborted/);
      return true;
    },
  );
});

test('readBlob streams a Blob with progress and honours abort', async () => {
  const body = bytes(200_000, 3);
  const events: DownloadProgress[] = [];
  assert.deepEqual(await readBlob(new Blob([body]), 'ggml-tiny.bin', { onProgress: (e) => events.push(e) }), body);
  checkProgress(events, 'ggml-tiny.bin', body.length, body.length);

  const controller = new AbortController();
  await assert.rejects(
    readBlob(new Blob([body, body, body]), 'ggml-tiny.bin', { signal: controller.signal, onProgress: (e) => e.loaded > 0 && controller.abort() }),
    AbortError,
  );
});

test('readLocalFile reads with progress; a missing file is undefined when optional, else ModelLoadError', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'murmur-sources-'));
  try {
    const body = bytes(70_000, 9);
    await writeFile(join(dir, 'model.safetensors'), body);
    const events: DownloadProgress[] = [];
    assert.deepEqual(await readLocalFile(join(dir, 'model.safetensors'), 'model.safetensors', { onProgress: (e) => events.push(e) }), body);
    checkProgress(events, 'model.safetensors', body.length, body.length);
    assert.equal(await readLocalFile(join(dir, 'nope.json'), 'nope.json', {}, true), undefined);
    await assert.rejects(readLocalFile(join(dir, 'nope.json'), 'nope.json', {}), (error: unknown) => {
      assert.ok(error instanceof ModelLoadError);
      assert.match(error.message, /nope\.json: no such file/);
      return true;
    });
    await assert.rejects(readLocalFile(dir, 'dir', {}), ModelLoadError);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('file names listed in an index must stay inside the folder', () => {
  checkFileName('model-00001-of-00002.safetensors', 'index.json');
  for (const bad of ['../model.safetensors', 'sub/model.safetensors', '..', '', 'C:\\x', '/etc/passwd']) {
    assert.throws(() => checkFileName(bad, 'index.json'), ModelFormatError, bad);
  }
});
