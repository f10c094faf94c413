/**
 * Model files in Cache Storage: downloaded once with per-file progress, read from the cache on
 * every later load (and offline). The page fetches the files and hands them to the transcriber as
 * Blobs, because a fetch function cannot be passed into the engine's worker.
 */

export const MODEL_CACHE = 'murmur-models-v1';
const INDEX_PREFIX = '/__murmur-model-index__/';
const HUB = 'https://huggingface.co';
const SINGLE_FILE = /\.(bin|ggml|gguf)$/i;
const HUB_REPO = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** Where a model lives: a Hugging Face folder (several files) or one ggml file. */
export type ModelLocation = { kind: 'folder'; id: string; base: string } | { kind: 'file'; id: string; url: string; name: string };

/** `owner/name` (hub repo), `owner/name:file.bin` (a file in a hub repo), or an absolute/relative URL. */
export function locateModel(source: string, pageUrl: string): ModelLocation {
  const text = source.trim();
  const [repo, file] = text.split(':', 2) as [string, string | undefined];
  if (HUB_REPO.test(repo)) {
    const base = `${HUB}/${repo}/resolve/main/`;
    if (file) return { kind: 'file', id: text, url: base + file, name: file };
    return { kind: 'folder', id: text, base };
  }
  const url = new URL(text, pageUrl);
  const name = decodeURIComponent(url.pathname.slice(url.pathname.lastIndexOf('/') + 1));
  if (SINGLE_FILE.test(url.pathname)) return { kind: 'file', id: url.href, url: url.href, name };
  return { kind: 'folder', id: url.href, base: url.href.endsWith('/') ? url.href : `${url.href}/` };
}

/** What a Whisper folder on the hub holds; the model loader reads these. */
const FOLDER_FILES = ['config.json', 'generation_config.json', 'preprocessor_config.json', 'tokenizer.json'];

export interface FileProgress {
  file: string;
  loaded: number;
  total: number | undefined;
  cached: boolean;
}

export interface CachedModel {
  id: string;
  bytes: number;
  files: string[];
  savedAt: number;
}

/** The model's files as Blobs by name, downloading what the cache lacks. */
export async function fetchModelFiles(location: ModelLocation, onProgress: (event: FileProgress) => void, signal?: AbortSignal): Promise<Record<string, Blob>> {
  const cache = await caches.open(MODEL_CACHE);
  const files: Record<string, Blob> = {};
  const urls: string[] = [];
  const get = async (name: string, url: string) => {
    files[name] = await cachedFile(cache, url, name, onProgress, signal);
    urls.push(url);
  };
  if (location.kind === 'file') {
    await get(location.name, location.url);
  } else {
    for (const name of FOLDER_FILES) await get(name, location.base + name);
    await get('model.safetensors', location.base + 'model.safetensors');
  }
  const bytes = Object.values(files).reduce((sum, blob) => sum + blob.size, 0);
  const entry: CachedModel = { id: location.id, bytes, files: urls, savedAt: Date.now() };
  await cache.put(indexKey(location.id), new Response(JSON.stringify(entry), { headers: { 'Content-Type': 'application/json' } }));
  return files;
}

async function cachedFile(cache: Cache, url: string, name: string, onProgress: (event: FileProgress) => void, signal?: AbortSignal): Promise<Blob> {
  const hit = await cache.match(url);
  if (hit) {
    const blob = await hit.blob();
    onProgress({ file: name, loaded: blob.size, total: blob.size, cached: true });
    return blob;
  }
  const response = await fetch(url, { signal });
  if (!response.ok) throw new Error(`downloading ${url} failed: HTTP ${response.status}`);
  const total = Number(response.headers.get('Content-Length')) || undefined;
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let loaded = 0;
  onProgress({ file: name, loaded, total, cached: false });
  const reader = response.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    onProgress({ file: name, loaded, total, cached: false });
  }
  const blob = new Blob(chunks, { type: response.headers.get('Content-Type') ?? 'application/octet-stream' });
  onProgress({ file: name, loaded, total: loaded, cached: false });
  await cache.put(url, new Response(blob, { headers: { 'Content-Type': blob.type, 'Content-Length': String(blob.size) } }));
  return blob;
}

function indexKey(id: string): string {
  return new URL(INDEX_PREFIX + encodeURIComponent(id), location.href).href;
}

export async function listCachedModels(): Promise<CachedModel[]> {
  if (typeof caches === 'undefined') return [];
  const cache = await caches.open(MODEL_CACHE);
  const models: CachedModel[] = [];
  for (const request of await cache.keys()) {
    if (!new URL(request.url).pathname.startsWith(INDEX_PREFIX)) continue;
    const response = await cache.match(request);
    if (response) models.push((await response.json()) as CachedModel);
  }
  return models.sort((a, b) => b.savedAt - a.savedAt);
}

/** Removes a model's files, except those another cached model still uses. */
export async function deleteCachedModel(id: string): Promise<void> {
  const cache = await caches.open(MODEL_CACHE);
  const models = await listCachedModels();
  const target = models.find((model) => model.id === id);
  if (!target) return;
  const stillUsed = new Set(models.filter((model) => model.id !== id).flatMap((model) => model.files));
  for (const url of target.files) if (!stillUsed.has(url)) await cache.delete(url);
  await cache.delete(indexKey(id));
}
