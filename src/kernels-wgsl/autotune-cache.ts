/**
 * The autotune cache (issue #5), so the micro-benchmark (autotune.ts) runs once per adapter,
 * runtime, Murmur version and model shape: in memory for the session, and kept between sessions
 * by a VariantStore — IndexedDB in browsers and workers, a JSON file per key in Node (under
 * os.tmpdir() unless a directory is given). A store never throws: whatever cannot be read or
 * written is simply tuned again. Light on purpose: the execution plan (src/core/device/plan.ts)
 * reads it on the main thread without loading any kernel.
 */
import { deviceAdapterFacts, type AdapterFacts, type KernelVariants } from './variants.ts';

/** Bumped with the package version: kernels change between versions, so do their winners. */
export const MURMUR_VERSION = '0.1.0';

/** The shapes of one model's encoder pass, which dominate its run time. */
export interface AutotuneShapes {
  /** Activation rows: the encoder's frames (1500 for a 30 s window). */
  rows: number;
  /** Model width (n_audio_state). */
  width: number;
  heads: number;
  /** MLP hidden width; 4 × width when absent. */
  hidden?: number;
}

/** The encoder shapes of a model with these dimensions (a 30 s window). */
export function autotuneShapes(dims: { nAudioCtx: number; nAudioState: number; nAudioHead: number }): AutotuneShapes {
  return { rows: dims.nAudioCtx, width: dims.nAudioState, heads: dims.nAudioHead };
}

export function hiddenOf(shapes: AutotuneShapes): number {
  return shapes.hidden ?? 4 * shapes.width;
}

/** Where tuned variants may be kept between sessions; the in-memory cache is always used. */
export interface VariantStore {
  readonly kind: string;
  load(key: string): Promise<KernelVariants | undefined>;
  save(key: string, variants: KernelVariants): Promise<void>;
}

/** The browser's user agent, or the Node version: a browser update can change the shader compiler. */
export function runtimeDescription(): string {
  const process = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (process?.versions?.node) return `Node.js ${process.versions.node}`;
  const userAgent = (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent;
  return userAgent || 'unknown runtime';
}

const memoryCache = new Map<string, KernelVariants>();

export function clearAutotuneCache(): void {
  memoryCache.clear();
}

export function cachedVariants(key: string): KernelVariants | undefined {
  return memoryCache.get(key);
}

export function rememberVariants(key: string, variants: KernelVariants): void {
  memoryCache.set(key, variants);
}

/** The cache key: adapter (vendor/architecture/description), runtime, Murmur version and shapes. */
export function variantCacheKey(info: AdapterFacts | undefined, shapes: AutotuneShapes): string {
  const adapter = info ? [info.vendor, info.architecture, info.description].map((part) => part ?? '').join('/') : 'unknown adapter';
  return `${adapter}|${runtimeDescription()}|murmur ${MURMUR_VERSION}|rows ${shapes.rows} width ${shapes.width} heads ${shapes.heads} hidden ${hiddenOf(shapes)}`;
}

export function autotuneKey(device: GPUDevice, shapes: AutotuneShapes): string {
  return variantCacheKey(deviceAdapterFacts(device), shapes);
}

/** Variants tuned before for this adapter and these shapes (this session, or restored from a store); synchronous, for the plan. */
export function tunedVariantsFor(info: AdapterFacts | undefined, shapes: AutotuneShapes): KernelVariants | undefined {
  const variants = memoryCache.get(variantCacheKey(info, shapes));
  return variants ? { ...variants } : undefined;
}

/** Loads what `store` kept for this adapter and these shapes into the in-memory cache (before planning). */
export async function restoreTunedVariants(store: VariantStore, info: AdapterFacts | undefined, shapes: AutotuneShapes): Promise<KernelVariants | undefined> {
  const key = variantCacheKey(info, shapes);
  const variants = memoryCache.get(key) ?? (await store.load(key).catch(() => undefined));
  if (variants) memoryCache.set(key, variants);
  return variants;
}

const MATMUL_KINDS = ['tiled', 'register'];
const FEW_ROWS = ['split', 'columns'];
const LAYER_NORMS = ['workgroup', 'thread'];
const CONVS = ['direct', 'blocked'];
const ATTENTIONS = ['flash', 'rows2', 'rows4', 'rows8'];

/** What was stored still names variants this version has (a stale or corrupt entry is ignored). */
export function isKernelVariants(value: unknown): value is KernelVariants {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const matmul = v.matmul as Record<string, unknown> | undefined;
  if (typeof matmul !== 'object' || matmul === null || !MATMUL_KINDS.includes(matmul.kind as string)) return false;
  if (matmul.kind === 'register' && !['rowsPerThread', 'colsPerThread', 'workgroup'].every((field) => Number.isInteger(matmul[field]) && (matmul[field] as number) > 0)) return false;
  return (
    FEW_ROWS.includes(v.fewRows as string) &&
    LAYER_NORMS.includes(v.layerNorm as string) &&
    CONVS.includes(v.conv as string) &&
    ATTENTIONS.includes(v.attention as string) &&
    v.source === 'tuned'
  );
}

interface StoredEntry {
  key: string;
  variants: KernelVariants;
  savedAt: string;
}

function entryVariants(entry: unknown, key: string): KernelVariants | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const { key: storedKey, variants } = entry as Partial<StoredEntry>;
  return storedKey === key && isKernelVariants(variants) ? variants : undefined;
}

/** FNV-1a, 32 bits, as hex: a file name for a key. */
function hashKey(key: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

export interface FileVariantStoreOptions {
  /** Default: `murmur-autotune` under os.tmpdir(). */
  directory?: string;
}

/** Node: one JSON file per key, written atomically (a temporary file renamed into place). */
export function fileVariantStore(options: FileVariantStoreOptions = {}): VariantStore & { directory(): Promise<string> } {
  const directory = async () => {
    if (options.directory) return options.directory;
    const [{ tmpdir }, { join }] = await Promise.all([import('node:os'), import('node:path')]);
    return join(tmpdir(), 'murmur-autotune');
  };
  const fileOf = async (key: string) => {
    const { join } = await import('node:path');
    return join(await directory(), `variants-${hashKey(key)}.json`);
  };
  return {
    kind: 'file',
    directory,
    async load(key) {
      try {
        const { readFile } = await import('node:fs/promises');
        return entryVariants(JSON.parse(await readFile(await fileOf(key), 'utf8')), key);
      } catch {
        return undefined;
      }
    },
    async save(key, variants) {
      try {
        const { mkdir, rename, writeFile } = await import('node:fs/promises');
        await mkdir(await directory(), { recursive: true });
        const file = await fileOf(key);
        const temporary = `${file}.${Date.now()}-${Math.random().toString(16).slice(2)}.tmp`;
        const entry: StoredEntry = { key, variants, savedAt: new Date().toISOString() };
        await writeFile(temporary, JSON.stringify(entry, null, 2));
        await rename(temporary, file);
      } catch {
        // Unwritable: the next start tunes again.
      }
    },
  };
}

export interface IndexedDbVariantStoreOptions {
  /** Default 'murmur-autotune'. */
  databaseName?: string;
}

const OBJECT_STORE = 'variants';

function settle<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Browsers and workers: one IndexedDB object store, entries keyed by the cache key. */
export function indexedDbVariantStore(options: IndexedDbVariantStoreOptions = {}): VariantStore {
  const name = options.databaseName ?? 'murmur-autotune';
  let opened: Promise<IDBDatabase> | undefined;
  const database = () =>
    (opened ??= new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(name, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(OBJECT_STORE);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error(`IndexedDB "${name}" is blocked by another connection`));
    }));
  return {
    kind: 'indexeddb',
    async load(key) {
      try {
        const db = await database();
        return entryVariants(await settle(db.transaction(OBJECT_STORE, 'readonly').objectStore(OBJECT_STORE).get(key)), key);
      } catch {
        return undefined;
      }
    },
    async save(key, variants) {
      try {
        const db = await database();
        const transaction = db.transaction(OBJECT_STORE, 'readwrite');
        const entry: StoredEntry = { key, variants, savedAt: new Date().toISOString() };
        transaction.objectStore(OBJECT_STORE).put(entry, key);
        await new Promise<void>((resolve, reject) => {
          transaction.oncomplete = () => resolve();
          transaction.onerror = () => reject(transaction.error);
          transaction.onabort = () => reject(transaction.error);
        });
      } catch {
        // Private mode or quota: the next start tunes again.
      }
    },
  };
}

/** IndexedDB where there is one (browsers, workers), a file in Node, otherwise nothing. */
export function defaultVariantStore(): VariantStore | undefined {
  if (typeof indexedDB !== 'undefined') return indexedDbVariantStore();
  if ((globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node) return fileVariantStore();
  return undefined;
}
