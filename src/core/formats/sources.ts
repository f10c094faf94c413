/**
 * Getting model bytes from wherever they are: a URL (streamed, with progress), a Blob or File,
 * in-memory buffers, or (in Node only) a local path. A folder of files, however it is reached,
 * is a `ModelFiles`: the format loaders ask it for files by name and never see where they live.
 */
import { AbortError, ModelFormatError, ModelLoadError } from '../errors.ts';

export interface DownloadProgress {
  stage: 'download';
  /** The file's name within its folder (e.g. `model.safetensors`), or the single file's name. */
  file: string;
  loaded: number;
  /** Undefined when the server sends no length (or a compressed one). */
  total: number | undefined;
  /** loaded / total, when the total is known. */
  progress: number | undefined;
}

export interface ReadOptions {
  fetch?: typeof fetch;
  onProgress?: (event: DownloadProgress) => void;
  signal?: AbortSignal;
}

/** A folder of model files, reached by name. */
export interface ModelFiles {
  /** The folder itself (URL, path or label), for messages about the folder as a whole. */
  readonly folder: string;
  /** The file's bytes, or undefined when the folder has no such file. */
  get(name: string): Promise<Uint8Array | undefined>;
  /** Where a file lives (URL, path or bare name), for messages. */
  locate(name: string): string;
  /** The error for a file the model needs but the folder lacks (e.g. an HTTP 404). */
  missing(name: string): Error;
  /** Every file name, when the folder can be listed (in-memory folders). */
  readonly names?: readonly string[];
}

/** Bytes of a single file from memory, a Blob, a URL or a local path, with its display name. */
export interface SingleFile {
  name: string;
  bytes: Uint8Array;
}

function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortError(what);
}

function progressReporter(name: string, total: number | undefined, options: ReadOptions) {
  return (loaded: number) =>
    options.onProgress?.({ stage: 'download', file: name, loaded, total, progress: total ? Math.min(1, loaded / total) : total === 0 ? 1 : undefined });
}

/**
 * Read a byte stream into one buffer: preallocated when the length is known, grown by doubling
 * otherwise. `report` sees the running byte count after every chunk.
 */
async function readStream(stream: ReadableStream<Uint8Array>, total: number | undefined, report: (loaded: number) => void, signal: AbortSignal | undefined): Promise<Uint8Array> {
  const reader = stream.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    let buffer = new Uint8Array(total ?? 1 << 20);
    let loaded = 0;
    report(0);
    for (;;) {
      const { done, value } = await reader.read();
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      if (done) break;
      if (loaded + value.length > buffer.length) {
        const grown = new Uint8Array(Math.max(buffer.length * 2, loaded + value.length));
        grown.set(buffer.subarray(0, loaded));
        buffer = grown;
      }
      buffer.set(value, loaded);
      loaded += value.length;
      report(loaded);
    }
    if (total !== undefined && loaded < total) throw new Error(`the stream ended after ${loaded} of ${total} bytes`);
    // A grown buffer may be mostly slack; give it back rather than keep it alive behind a view.
    return loaded === buffer.length ? buffer : loaded * 1.25 < buffer.length ? buffer.slice(0, loaded) : buffer.subarray(0, loaded);
  } finally {
    signal?.removeEventListener('abort', cancel);
    reader.releaseLock();
  }
}

/**
 * GET a URL into memory. Returns undefined for 404/410 when `optional`; every other failure is a
 * ModelLoadError naming the URL (and the HTTP status), or AbortError when `signal` fired.
 */
export async function fetchBytes(url: string, name: string, options: ReadOptions, optional = false): Promise<Uint8Array | undefined> {
  const what = `loading ${name}`;
  throwIfAborted(options.signal, what);
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (!fetchImpl) throw new ModelLoadError(url, 'no fetch() in this environment; pass options.fetch');
  let response: Response;
  try {
    response = await fetchImpl(url, { signal: options.signal });
  } catch (cause) {
    if (options.signal?.aborted) throw new AbortError(what);
    throw new ModelLoadError(url, `request failed: ${(cause as Error)?.message ?? cause}`, { cause });
  }
  if (!response.ok) {
    void response.body?.cancel().catch(() => {});
    if (optional && (response.status === 404 || response.status === 410)) return undefined;
    throw httpError(url, response.status, response.statusText);
  }
  const length = Number(response.headers.get('content-length') ?? NaN);
  // With a content encoding the length counts compressed bytes, not the ones we will read.
  const encoded = (response.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const total = Number.isSafeInteger(length) && length >= 0 && !encoded ? length : undefined;
  try {
    const body = response.body;
    if (!body) {
      const bytes = new Uint8Array(await response.arrayBuffer());
      progressReporter(name, bytes.length, options)(bytes.length);
      return bytes;
    }
    return await readStream(body, total, progressReporter(name, total, options), options.signal);
  } catch (cause) {
    if (options.signal?.aborted) throw new AbortError(what);
    if (cause instanceof RangeError) throw new ModelLoadError(url, `cannot hold ${total ?? 'the'} bytes in memory`, { cause });
    throw new ModelLoadError(url, `download failed: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}

export function httpError(url: string, status: number, statusText = ''): ModelLoadError {
  const hints: Record<number, string> = {
    401: ' (a private or gated repository? Murmur sends no credentials)',
    403: ' (a private or gated repository? Murmur sends no credentials)',
    404: ' (no such file at this URL)',
  };
  return new ModelLoadError(url, `HTTP ${status}${statusText ? ` ${statusText}` : ''}${hints[status] ?? ''}`, { status });
}

/** A Blob's (or File's) bytes, streamed so that progress and abort work for large local files too. */
export async function readBlob(blob: Blob, name: string, options: ReadOptions): Promise<Uint8Array> {
  const what = `loading ${name}`;
  throwIfAborted(options.signal, what);
  try {
    if (typeof blob.stream !== 'function') {
      const bytes = new Uint8Array(await blob.arrayBuffer());
      progressReporter(name, bytes.length, options)(bytes.length);
      return bytes;
    }
    return await readStream(blob.stream() as ReadableStream<Uint8Array>, blob.size, progressReporter(name, blob.size, options), options.signal);
  } catch (cause) {
    if (options.signal?.aborted) throw new AbortError(what);
    throw new ModelLoadError(name, `could not read the file: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}

export function isNode(): boolean {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof proc?.versions?.node === 'string';
}

/** Node built-ins, loaded only when running in Node so that browser bundles never see them. */
async function nodeModule<T>(specifier: string): Promise<T> {
  return (await import(/* @vite-ignore */ specifier)) as T;
}

type NodeFs = typeof import('node:fs/promises');
type NodePath = typeof import('node:path');

const LOCAL_CHUNK_BYTES = 16 << 20;

/** A local file's bytes (Node only), read in chunks for progress and abort; undefined if absent and `optional`. */
export async function readLocalFile(path: string, name: string, options: ReadOptions, optional = false): Promise<Uint8Array | undefined> {
  const what = `loading ${name}`;
  throwIfAborted(options.signal, what);
  const fs = await nodeModule<NodeFs>('node:fs/promises');
  let handle: Awaited<ReturnType<NodeFs['open']>>;
  try {
    handle = await fs.open(path, 'r');
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    if (optional && code === 'ENOENT') return undefined;
    throw new ModelLoadError(path, code === 'ENOENT' ? 'no such file' : `cannot open: ${(cause as Error).message}`, { cause });
  }
  try {
    const { size } = await handle.stat();
    const report = progressReporter(name, size, options);
    const bytes = new Uint8Array(size);
    let loaded = 0;
    report(0);
    while (loaded < size) {
      throwIfAborted(options.signal, what);
      const { bytesRead } = await handle.read(bytes, loaded, Math.min(LOCAL_CHUNK_BYTES, size - loaded), loaded);
      if (bytesRead === 0) throw new ModelLoadError(path, `the file shrank while being read (${loaded} of ${size} bytes)`);
      loaded += bytesRead;
      report(loaded);
    }
    return bytes;
  } catch (cause) {
    if (cause instanceof AbortError || cause instanceof ModelLoadError) throw cause;
    throw new ModelLoadError(path, `cannot read: ${(cause as Error).message}`, { cause });
  } finally {
    await handle.close();
  }
}

/** Whether a local path is a directory (Node only); undefined when nothing is there. */
export async function localPathKind(path: string): Promise<'directory' | 'file' | undefined> {
  const fs = await nodeModule<NodeFs>('node:fs/promises');
  try {
    return (await fs.stat(path)).isDirectory() ? 'directory' : 'file';
  } catch {
    return undefined;
  }
}

export async function resolveLocalPath(path: string): Promise<string> {
  const { resolve } = await nodeModule<NodePath>('node:path');
  return resolve(path);
}

export async function fileUrlToPath(url: URL): Promise<string> {
  const { fileURLToPath } = await nodeModule<typeof import('node:url')>('node:url');
  return fileURLToPath(url);
}

/** Names inside a folder must stay inside it: a shard listed as `../x` or `a/b` is refused. */
export function checkFileName(name: string, listedIn: string): void {
  if (!/^[\w.-]+$/.test(name) || name === '.' || name === '..') {
    throw new ModelFormatError(listedIn, `refers to file "${name}", which is not a plain file name in the same folder`);
  }
}

/** A folder served over HTTP(S): `base` is the folder URL; files are fetched relative to it. */
export function httpFolder(base: string, options: ReadOptions): ModelFiles {
  const folder = base.endsWith('/') ? base : `${base}/`;
  const locate = (name: string) => new URL(encodeURIComponent(name), folder).href;
  return {
    folder,
    locate,
    get: (name) => fetchBytes(locate(name), name, options, true),
    missing: (name) => httpError(locate(name), 404, 'Not Found'),
  };
}

/** A local folder (Node only). */
export function localFolder(dir: string, options: ReadOptions, pathLib: NodePath): ModelFiles {
  const locate = (name: string) => pathLib.join(dir, name);
  return {
    folder: dir,
    locate,
    get: (name) => readLocalFile(locate(name), name, options, true),
    missing: (name) => new ModelLoadError(locate(name), 'no such file'),
  };
}

export async function nodePathLib(): Promise<NodePath> {
  return nodeModule<NodePath>('node:path');
}

export type InMemoryFile = Blob | ArrayBuffer | Uint8Array;

/** Bytes of an in-memory entry; Blobs are read (with progress) on first use. */
export async function inMemoryBytes(entry: InMemoryFile, name: string, options: ReadOptions): Promise<Uint8Array> {
  if (entry instanceof Uint8Array) return entry;
  if (entry instanceof ArrayBuffer) return new Uint8Array(entry);
  if (typeof Blob !== 'undefined' && entry instanceof Blob) return readBlob(entry, name, options);
  throw new ModelLoadError(name, `is a ${describeValue(entry)}, not a Blob, ArrayBuffer or Uint8Array`);
}

/** Files given by name (a Record, or the Files of a picked folder). */
export function memoryFolder(files: Map<string, InMemoryFile>, label: string, options: ReadOptions): ModelFiles {
  const names = [...files.keys()];
  return {
    folder: label,
    names,
    locate: (name) => `${label}/${name}`,
    get: async (name) => {
      const entry = files.get(name);
      return entry === undefined ? undefined : inMemoryBytes(entry, name, options);
    },
    missing: (name) => new ModelFormatError(label, `has no ${name} (files given: ${names.join(', ') || 'none'})`),
  };
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return (value as object).constructor?.name ?? 'object';
}
