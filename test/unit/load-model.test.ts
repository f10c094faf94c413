import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadModel, type DownloadProgress } from '../../src/core/formats/load-model.ts';
import { AbortError, ModelFormatError, ModelLoadError } from '../../src/core/errors.ts';
import type { WhisperModel } from '../../src/core/model/model.ts';
import { writeGgml } from '../../scripts/synthetic/ggml-writer.ts';
import { ASSETS_MISSING, SMALL_EN, assertWeightsMatch, folderFor, tensorsFor, tokenizerFor } from './huggingface-fixture.ts';

const skip = ASSETS_MISSING;
/** TypeScript's Blob parts want ArrayBuffer-backed views; ours are. */
const blobOf = (bytes: Uint8Array) => new Blob([bytes as Uint8Array<ArrayBuffer>]);
const fileOf = (bytes: Uint8Array, name: string) => new File([bytes as Uint8Array<ArrayBuffer>], name);
const FOLDER_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'model.safetensors'];

interface Server {
  base: string;
  log: string[];
  /** Files served under /models/tiny/ and /owner/name/resolve/<revision>/. */
  files: Record<string, Uint8Array>;
  /** Per file: send this many bytes, then hang (to test abort). */
  stall: Map<string, number>;
  /** Files sent without content-length, in pieces. */
  chunked: Set<string>;
  /** Resolves when a stalled response's connection closes before the body was finished. */
  closedEarly: Promise<string>;
}

let server: Server;
let closeServer: () => Promise<void>;
let folder: Record<string, Uint8Array>;
let ggml: Uint8Array;

function startServer(): Promise<Server> {
  let signalClosedEarly: (file: string) => void = () => {};
  const state: Server = {
    base: '',
    log: [],
    files: {},
    stall: new Map(),
    chunked: new Set(),
    closedEarly: new Promise((resolve) => (signalClosedEarly = resolve)),
  };
  const http = createServer((req, res: ServerResponse) => {
    state.log.push(req.url ?? '');
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const match = /^\/models\/tiny\/([^/]+)$/.exec(path) ?? /^\/owner\/name\/resolve\/(?:main|v1\.0|refs\/pr\/1)\/([^/]+)$/.exec(path) ?? /^\/ggerganov\/whisper\.cpp\/resolve\/main\/(.+)$/.exec(path);
    const body = match ? state.files[match[1]!] : undefined;
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Entry not found');
      return;
    }
    const name = match![1]!;
    const stallAt = state.stall.get(name);
    if (stallAt !== undefined) {
      res.writeHead(200, { 'content-length': String(body.length) });
      res.write(body.subarray(0, stallAt));
      res.on('close', () => {
        if (!res.writableFinished) signalClosedEarly(name);
      });
      return;
    }
    if (state.chunked.has(name)) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const piece = Math.ceil(body.length / 7);
      for (let at = 0; at < body.length; at += piece) res.write(body.subarray(at, at + piece));
      res.end();
      return;
    }
    res.writeHead(200, { 'content-length': String(body.length), 'content-type': 'application/octet-stream' });
    res.end(body);
  });
  return new Promise((resolve) => {
    http.listen(0, '127.0.0.1', () => {
      state.base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
      closeServer = () =>
        new Promise((done) => {
          http.closeAllConnections();
          http.close(() => done());
        });
      resolve(state);
    });
  });
}

before(async () => {
  if (skip) return;
  folder = folderFor(SMALL_EN, { dtype: 'f16' });
  const tokenizer = tokenizerFor(SMALL_EN.nVocab);
  ggml = writeGgml({
    dims: SMALL_EN,
    tensors: tensorsFor(SMALL_EN),
    vocab: tokenizer.bpeRanks() as Uint8Array[],
    melFilters: new Float32Array(SMALL_EN.nMels * 201).fill(0.01),
    dtype: 'f32',
  });
  server = await startServer();
  server.files = { ...folder, 'ggml-tiny.en.bin': ggml };
});

after(async () => {
  await closeServer?.();
});

function resetServer() {
  server.log.length = 0;
  server.stall.clear();
  server.chunked.clear();
  server.files = { ...folder, 'ggml-tiny.en.bin': ggml };
}

function assertHuggingFaceModel(model: WhisperModel, source: string) {
  assert.equal(model.format, 'huggingface');
  assert.equal(model.source, source);
  assert.deepEqual(model.dims, SMALL_EN);
  assertWeightsMatch(model, SMALL_EN, 'f16');
}

function assertGgmlModel(model: WhisperModel, source: string) {
  assert.equal(model.format, 'ggml');
  assert.equal(model.source, source);
  assert.deepEqual(model.dims, SMALL_EN);
  assertWeightsMatch(model, SMALL_EN, 'f32');
}

/** Per file: monotonic, final loaded === total, and exactly the expected files reported. */
function checkProgress(events: DownloadProgress[], files: string[], sizes: Record<string, Uint8Array>) {
  const byFile = new Map<string, DownloadProgress[]>();
  for (const e of events) byFile.set(e.file, [...(byFile.get(e.file) ?? []), e]);
  assert.deepEqual([...byFile.keys()].sort(), [...files].sort());
  for (const [file, list] of byFile) {
    for (let i = 1; i < list.length; i++) assert.ok(list[i]!.loaded >= list[i - 1]!.loaded, `${file} progress is monotonic`);
    const last = list.at(-1)!;
    assert.equal(last.total, sizes[file]!.length, `${file} total`);
    assert.equal(last.loaded, last.total, `${file} ends complete`);
    assert.equal(last.progress, 1);
  }
}

test('a Record of Uint8Arrays, ArrayBuffers and Blobs', { skip }, async () => {
  assertHuggingFaceModel(await loadModel(folder), 'model files');
  const mixed = {
    'config.json': folder['config.json']!.slice().buffer,
    'generation_config.json': blobOf(folder['generation_config.json']!),
    'tokenizer.json': folder['tokenizer.json']!,
    'model.safetensors': blobOf(folder['model.safetensors']!),
  };
  const events: DownloadProgress[] = [];
  assertHuggingFaceModel(await loadModel(mixed, { onProgress: (e) => events.push(e) }), 'model files');
  checkProgress(events, ['generation_config.json', 'model.safetensors'], folder);
});

test('a picked folder (File[])', { skip }, async () => {
  const files = Object.entries(folder).map(([name, bytes]) => fileOf(bytes, name));
  assertHuggingFaceModel(await loadModel(files), 'selected files');
});

test('a folder URL: only the needed files are requested, with progress per file', { skip }, async () => {
  resetServer();
  const events: DownloadProgress[] = [];
  const url = `${server.base}/models/tiny/`;
  assertHuggingFaceModel(await loadModel(url, { onProgress: (e) => events.push(e) }), url);
  assert.deepEqual(server.log, FOLDER_FILES.map((f) => `/models/tiny/${f}`));
  checkProgress(events, FOLDER_FILES, folder);

  resetServer();
  const noSlash = new URL(`${server.base}/models/tiny`);
  assertHuggingFaceModel(await loadModel(noSlash), noSlash.href);
  assert.deepEqual(server.log, FOLDER_FILES.map((f) => `/models/tiny/${f}`));
});

test('a download without content-length still loads; progress has no total', { skip }, async () => {
  resetServer();
  server.chunked.add('model.safetensors');
  const events: DownloadProgress[] = [];
  assertHuggingFaceModel(await loadModel(`${server.base}/models/tiny/`, { onProgress: (e) => events.push(e) }), `${server.base}/models/tiny/`);
  const weights = events.filter((e) => e.file === 'model.safetensors');
  assert.equal(weights.at(-1)!.loaded, folder['model.safetensors']!.length);
  assert.ok(weights.every((e) => e.total === undefined && e.progress === undefined));
});

test('a hub repo id resolves files under /owner/name/resolve/<revision>/', { skip }, async () => {
  resetServer();
  const events: DownloadProgress[] = [];
  assertHuggingFaceModel(await loadModel('owner/name', { hubUrl: `${server.base}/`, onProgress: (e) => events.push(e) }), 'owner/name');
  assert.deepEqual(server.log, FOLDER_FILES.map((f) => `/owner/name/resolve/main/${f}`));
  checkProgress(events, FOLDER_FILES, folder);

  resetServer();
  assertHuggingFaceModel(await loadModel('owner/name', { hubUrl: server.base, revision: 'v1.0' }), 'owner/name@v1.0');
  assert.deepEqual(server.log, FOLDER_FILES.map((f) => `/owner/name/resolve/v1.0/${f}`));

  resetServer();
  await loadModel('owner/name', { hubUrl: server.base, revision: 'refs/pr/1' });
  assert.equal(server.log[0], '/owner/name/resolve/refs%2Fpr%2F1/config.json');
});

test('a ggml file inside a hub repo (options.file), and a ggml URL', { skip }, async () => {
  resetServer();
  const events: DownloadProgress[] = [];
  const model = await loadModel('ggerganov/whisper.cpp', { hubUrl: server.base, file: 'ggml-tiny.en.bin', onProgress: (e) => events.push(e) });
  assertGgmlModel(model, 'ggerganov/whisper.cpp/ggml-tiny.en.bin');
  assert.deepEqual(server.log, ['/ggerganov/whisper.cpp/resolve/main/ggml-tiny.en.bin']);
  checkProgress(events, ['ggml-tiny.en.bin'], { 'ggml-tiny.en.bin': ggml });

  resetServer();
  const url = `${server.base}/models/tiny/ggml-tiny.en.bin`;
  assertGgmlModel(await loadModel(url), url);
  assert.deepEqual(server.log, ['/models/tiny/ggml-tiny.en.bin']);
});

test('single ggml files from memory: Blob, File, ArrayBuffer, Uint8Array, a one-file Record', { skip }, async () => {
  assertGgmlModel(await loadModel(blobOf(ggml)), 'Blob');
  assertGgmlModel(await loadModel(fileOf(ggml, 'ggml-tiny.en.bin')), 'ggml-tiny.en.bin');
  assertGgmlModel(await loadModel(ggml.slice().buffer), 'ArrayBuffer');
  assertGgmlModel(await loadModel(ggml), 'Uint8Array');
  assertGgmlModel(await loadModel({ 'ggml-tiny.en.bin': ggml }), 'ggml-tiny.en.bin');
  assertGgmlModel(await loadModel([fileOf(ggml, 'ggml-tiny.en.bin')]), 'ggml-tiny.en.bin');
});

test('local paths in Node: a folder (absolute, relative, file: URL) and a .bin file', { skip }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'murmur-load-'));
  try {
    const modelDir = join(dir, 'whisper-small-en');
    await mkdir(modelDir);
    for (const [name, bytes] of Object.entries(folder)) await writeFile(join(modelDir, name), bytes);
    await writeFile(join(dir, 'ggml-tiny.en.bin'), ggml);

    const events: DownloadProgress[] = [];
    assertHuggingFaceModel(await loadModel(modelDir, { onProgress: (e) => events.push(e) }), modelDir);
    checkProgress(events, FOLDER_FILES, folder);
    const rel = `./${relative(process.cwd(), modelDir)}`;
    assertHuggingFaceModel(await loadModel(rel), rel);
    assertHuggingFaceModel(await loadModel(pathToFileURL(modelDir)), modelDir);
    assertGgmlModel(await loadModel(join(dir, 'ggml-tiny.en.bin')), join(dir, 'ggml-tiny.en.bin'));
    assertGgmlModel(await loadModel(dir, { file: 'ggml-tiny.en.bin' }), join(dir, 'ggml-tiny.en.bin'));

    await assert.rejects(loadModel(join(dir, 'absent')), (error: unknown) => {
      assert.ok(error instanceof ModelLoadError);
      assert.match(error.message, /absent: no such file or directory/);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('aborting mid-download rejects with AbortError and closes the connection', { skip }, async () => {
  resetServer();
  server.stall.set('model.safetensors', 100_000);
  const controller = new AbortController();
  const started = Date.now();
  await assert.rejects(
    loadModel(`${server.base}/models/tiny/`, {
      signal: controller.signal,
      onProgress: (e) => {
        if (e.file === 'model.safetensors' && e.loaded > 0) controller.abort();
      },
    }),
    (error: unknown) => {
      assert.ok(error instanceof AbortError, `got ${error}`);
      assert.match(error.message, /model\.safetensors/);
      return true;
    },
  );
  const closed = await Promise.race([server.closedEarly, new Promise((resolve) => setTimeout(() => resolve('timeout'), 5000))]);
  assert.equal(closed, 'model.safetensors', 'the server saw the connection close mid-body');
  assert.ok(Date.now() - started < 5000);

  resetServer();
  const aborted = new AbortController();
  aborted.abort();
  await assert.rejects(loadModel(`${server.base}/models/tiny/`, { signal: aborted.signal }), AbortError);
  assert.deepEqual(server.log, [], 'nothing requested after an abort');
});

test('a 404 for the weights is a ModelLoadError naming the URL and the status', { skip }, async () => {
  resetServer();
  delete server.files['model.safetensors'];
  const url = `${server.base}/models/tiny/model.safetensors`;
  await assert.rejects(loadModel(`${server.base}/models/tiny/`), (error: unknown) => {
    assert.ok(error instanceof ModelLoadError, `got ${error}`);
    assert.equal(error.status, 404);
    assert.equal(error.file, url);
    assert.ok(error.message.includes(url) && error.message.includes('404'), error.message);
    return true;
  });
  // The index of a sharded model is the only other file tried.
  assert.deepEqual(server.log, [...FOLDER_FILES, 'model.safetensors.index.json'].map((f) => `/models/tiny/${f}`));
});

test('optional files may be absent: no generation_config.json', { skip }, async () => {
  resetServer();
  delete server.files['generation_config.json'];
  const model = await loadModel('owner/name', { hubUrl: server.base });
  assert.deepEqual(model.dims, SMALL_EN);
  assert.equal(server.log.length, 4);
});

test('a missing config.json at a URL is a 404 ModelLoadError', { skip }, async () => {
  await assert.rejects(loadModel(`${server.base}/models/nothing-here/`), (error: unknown) => {
    assert.ok(error instanceof ModelLoadError);
    assert.equal(error.status, 404);
    assert.match(error.message, /nothing-here\/config\.json: HTTP 404/);
    return true;
  });
});

test('options.fetch is the only way requests are made', { skip }, async () => {
  resetServer();
  const seen: string[] = [];
  const counting = ((input: RequestInfo | URL, init?: RequestInit) => {
    seen.push(String(input));
    return fetch(input, init);
  }) as typeof fetch;
  await loadModel(`${server.base}/models/tiny/`, { fetch: counting });
  assert.deepEqual(seen, FOLDER_FILES.map((f) => `${server.base}/models/tiny/${f}`));
  assert.equal(server.log.length, seen.length);
});

test('a lone safetensors file, garbage bytes and unsupported sources', { skip }, async () => {
  await assert.rejects(loadModel(fileOf(folder['model.safetensors']!, 'model.safetensors')), (error: unknown) => {
    assert.ok(error instanceof ModelFormatError);
    assert.match(error.message, /model\.safetensors: is a safetensors file on its own.*config\.json/);
    return true;
  });
  await assert.rejects(loadModel(new TextEncoder().encode('<!DOCTYPE html><html><body>Sign in</body></html>')), (error: unknown) => {
    assert.ok(error instanceof ModelFormatError);
    assert.match(error.message, /Uint8Array: .*HTML/);
    return true;
  });
  await assert.rejects(loadModel({ 'a.txt': new Uint8Array(1), 'b.txt': new Uint8Array(1) }), (error: unknown) => {
    assert.ok(error instanceof ModelFormatError);
    assert.match(error.message, /neither a Hugging Face model folder .* files given: a\.txt, b\.txt/);
    return true;
  });
  await assert.rejects(loadModel(42 as never), (error: unknown) => {
    assert.ok(error instanceof ModelLoadError);
    assert.match(error.message, /is a number/);
    return true;
  });
  await assert.rejects(loadModel('ftp://example.com/model.bin'), ModelLoadError);
  await assert.rejects(loadModel(''), ModelLoadError);
});

test('a server that is not there is a ModelLoadError, not a hang', { skip }, async () => {
  const { createServer: create } = await import('node:net');
  const probe = create();
  const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as AddressInfo).port)));
  await new Promise((resolve) => probe.close(resolve));
  await assert.rejects(loadModel(`http://127.0.0.1:${port}/models/tiny/`), (error: unknown) => {
    assert.ok(error instanceof ModelLoadError);
    assert.match(error.message, /request failed/);
    return true;
  });
});
