/**
 * Kernel threads: the calling (engine) thread plus N − 1 workers, each with its own instance of
 * the same threads build of the kernel module over the same shared WebAssembly.Memory.
 *
 * A dispatch is synchronous, because the WhisperOps ops are: the caller writes each worker's
 * kernel arguments (pointers, sizes, a unit range) into a small shared control block, bumps a
 * generation counter and wakes the workers, runs its own share, then waits with Atomics until
 * every worker has finished. Workers never receive messages after start-up; they sleep in
 * Atomics.wait between dispatches.
 *
 * Each share is claimed (an atomic compare-exchange) by whoever runs it: normally its worker, but
 * the caller, once done with its own share, takes any share whose worker has not woken up yet. A
 * worker that is slow to wake (a loaded machine, a core busy elsewhere, or just a dispatch too
 * small to be worth waking for) then costs nothing instead of stalling the whole dispatch; the
 * share runs with the same arguments either way, so results do not change.
 *
 * How work is split is the caller's business (see `splitRange`); the kernels are written so that
 * each output element is computed by exactly one thread with the same arithmetic whatever the
 * split, so one thread and N threads give bit-identical results.
 *
 * Blocking waits need a thread that may block: Node's main thread and workers, and a browser's
 * Web Workers (the engine runs in one). On a browser's main thread the caller spins instead.
 */
import { MurmurError } from '../core/errors.ts';

/** Most numeric arguments a dispatched kernel takes. */
export const MAX_KERNEL_ARGS = 16;

// Control block (Int32Array over a SharedArrayBuffer).
const GENERATION = 0;
const PENDING = 1;
const KERNEL = 2;
const FAILED = 3;
/** Per worker: the number of arguments of its share, or -1 for no share. */
const ARG_COUNT = 8;
// After the argument counts, per worker: its share's claim, OPEN until someone runs it.
const OPEN = 0;
const TAKEN = 1;
const SHUTDOWN = -1;
/** Polls of the control block before falling asleep: a decoder step dispatches back to back. */
const SPIN = 2000;

export interface KernelThreads {
  /** Threads that run kernels, the caller included. */
  readonly count: number;
  /**
   * Runs exports[kernel](...work[t]) on thread t, t = 0 being the caller, and returns when all
   * are done. `work.length` ≤ count; a trap or abort on any thread becomes a MurmurError.
   */
  run(kernel: string, work: readonly (readonly number[])[]): void;
  dispose(): void;
}

/** What a pool worker receives once, at start-up. */
export interface WorkerStart {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  args: SharedArrayBuffer;
  /** 1..count − 1 (0 is the caller). */
  index: number;
}

/**
 * Splits `units` into at most `parts` contiguous, balanced [start, end) ranges, in order, each a
 * multiple of `granule` units except possibly the last. Empty ranges are dropped.
 */
export function splitRange(units: number, parts: number, granule = 1): [number, number][] {
  const granules = Math.ceil(units / granule);
  const count = Math.max(1, Math.min(parts, granules));
  const ranges: [number, number][] = [];
  for (let p = 0; p < count; p++) {
    const start = Math.min(units, Math.floor((granules * p) / count) * granule);
    const end = Math.min(units, Math.floor((granules * (p + 1)) / count) * granule);
    if (end > start) ranges.push([start, end]);
  }
  return ranges;
}

/** Threads to use by default: every logical core this environment reports (not half of them). */
export async function defaultThreadCount(): Promise<number> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (nav?.hardwareConcurrency) return nav.hardwareConcurrency;
  if ((globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node) {
    const os = await import('node:os');
    return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  }
  return 1;
}

/** True where a shared WebAssembly memory can be created and handed to workers. */
export function sharedMemorySupported(): boolean {
  if (typeof SharedArrayBuffer !== 'function' || typeof Atomics !== 'object') return false;
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
  // Node has no crossOriginIsolated and always allows shared memory; browsers need isolation.
  return isolated !== false;
}

function functionNames(module: WebAssembly.Module): string[] {
  return WebAssembly.Module.exports(module)
    .filter((entry) => entry.kind === 'function')
    .map((entry) => entry.name)
    .sort();
}

type KernelFunction = (...args: number[]) => unknown;

function kernelTable(instance: WebAssembly.Instance, names: string[]): KernelFunction[] {
  return names.map((name) => instance.exports[name] as KernelFunction);
}

let blockingAllowed: boolean | undefined;
/** Atomics.wait throws on a browser's main thread; probe once with a wait that returns at once. */
function canBlock(control: Int32Array): boolean {
  if (blockingAllowed === undefined) {
    try {
      Atomics.wait(control, FAILED, 12345, 0);
      blockingAllowed = true;
    } catch {
      blockingAllowed = false;
    }
  }
  return blockingAllowed;
}

/**
 * Waits until control[index] is no longer `value`: spin a little, then sleep (or keep spinning
 * where blocking is not allowed). Returns false if `timeoutMs` passed first.
 */
function waitWhile(control: Int32Array, index: number, value: number, block: boolean, timeoutMs = Infinity): boolean {
  for (let i = 0; i < SPIN; i++) if (Atomics.load(control, index) !== value) return true;
  const deadline = performance.now() + timeoutMs;
  for (let polls = 0; Atomics.load(control, index) === value; polls++) {
    if (block) {
      const left = deadline - performance.now();
      if (left <= 0 || Atomics.wait(control, index, value, left) === 'timed-out') return Atomics.load(control, index) !== value;
    } else if (polls % 4096 === 0 && performance.now() > deadline) {
      return false;
    }
  }
  return true;
}

/** No worker finishing its share for this long means one is gone (a crashed or killed thread). */
const DEFAULT_STALL_TIMEOUT_MS = 120_000;

/** The worker side: serve dispatches until shut down. Called by pool-worker.ts after start-up. */
export function serveKernelThread(start: WorkerStart, instance: WebAssembly.Instance): void {
  const control = new Int32Array(start.control);
  const args = new Float64Array(start.args);
  const kernels = kernelTable(instance, functionNames(start.module));
  const base = start.index * MAX_KERNEL_ARGS;
  const claim = ARG_COUNT + (control.length - ARG_COUNT) / 2 + start.index;
  // Not read from the block: the caller may dispatch between our 'ready' and this line. No dispatch
  // happens before every worker is ready, so generation 0 is the one we have seen.
  let seen = 0;
  for (;;) {
    waitWhile(control, GENERATION, seen, true);
    seen = Atomics.load(control, GENERATION);
    if (Atomics.load(control, KERNEL) === SHUTDOWN) return;
    // The caller may have run our share already (and even started the next dispatch: then the
    // claim, kernel and arguments read here are that dispatch's, all written before its claims reopened).
    if (Atomics.compareExchange(control, claim, OPEN, TAKEN) !== OPEN) continue;
    const kernel = Atomics.load(control, KERNEL);
    const count = control[ARG_COUNT + start.index]!;
    try {
      const values: number[] = [];
      for (let i = 0; i < count; i++) values.push(args[base + i]!);
      kernels[kernel]!(...values);
    } catch {
      Atomics.store(control, FAILED, start.index + 1);
    }
    if (Atomics.sub(control, PENDING, 1) === 1) Atomics.notify(control, PENDING);
  }
}

/** Runs everything on the calling thread: for unshared memories and threads: 1. */
export function singleThread(instance: WebAssembly.Instance): KernelThreads {
  const exports = instance.exports as Record<string, unknown>;
  let disposed = false;
  return {
    count: 1,
    run(kernel, work) {
      if (disposed) throw new MurmurError('DISPOSED', 'the kernel threads were disposed');
      const fn = exports[kernel];
      if (typeof fn !== 'function') throw new MurmurError('WASM_KERNEL', `the WebAssembly module has no kernel ${JSON.stringify(kernel)}`);
      for (const share of work) runGuarded(kernel, () => (fn as KernelFunction)(...share));
    },
    dispose() {
      disposed = true;
    },
  };
}

function runGuarded(kernel: string, call: () => unknown): void {
  try {
    call();
  } catch (cause) {
    if (cause instanceof MurmurError) throw cause;
    throw new MurmurError('WASM_ABORT', `the WebAssembly kernel ${kernel} trapped: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

interface PoolWorker {
  post(message: WorkerStart): void;
  /** Resolves on the worker's 'ready', rejects on its error or exit. */
  ready: Promise<void>;
  terminate(): void;
}

async function spawnNodeWorker(): Promise<PoolWorker> {
  const { Worker } = await import('node:worker_threads');
  // From the TypeScript sources (tests, tsx) the entry is pool-worker.ts, which Node's worker
  // threads cannot load without tsx's hooks (Node 20 does not pass them on); from dist/ it is .js.
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSource ? './pool-worker.ts' : './pool-worker.js', import.meta.url).href;
  let loader = '';
  if (fromSource) {
    try {
      loader = `await (await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})).register();`;
    } catch {
      // No tsx: a Node that runs TypeScript itself (type stripping) passes that on to workers.
    }
  }
  const source = `(async () => { ${loader} await import(${JSON.stringify(entry)}); })().catch((e) => { throw e; });`;
  const worker = new Worker(source, { eval: true });
  worker.unref();
  const ready = new Promise<void>((resolve, reject) => {
    worker.once('message', (message: { ready?: boolean; error?: string }) => {
      if (message.ready) resolve();
      else reject(new MurmurError('WASM_THREADS', `a kernel thread failed to start: ${message.error}`));
    });
    worker.once('error', (cause) => reject(new MurmurError('WASM_THREADS', `a kernel thread failed to start: ${cause.message}`, { cause })));
    worker.once('exit', (code) => reject(new MurmurError('WASM_THREADS', `a kernel thread exited (code ${code}) before it was ready`)));
  });
  return {
    post: (message) => worker.postMessage(message),
    ready,
    terminate: () => void worker.terminate(),
  };
}

function spawnBrowserWorker(): PoolWorker {
  // The literal URL lets bundlers (Vite resolves .js to the .ts source) emit the worker as a chunk.
  const worker = new Worker(new URL('./pool-worker.js', import.meta.url), { type: 'module' });
  const ready = new Promise<void>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<{ ready?: boolean; error?: string }>) => {
      if (event.data.ready) resolve();
      else reject(new MurmurError('WASM_THREADS', `a kernel thread failed to start: ${event.data.error}`));
    };
    worker.onerror = (event) => reject(new MurmurError('WASM_THREADS', `a kernel thread failed to start: ${event.message}`));
  });
  return { post: (message) => worker.postMessage(message), ready, terminate: () => worker.terminate() };
}

function isNode(): boolean {
  return Boolean((globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node) && typeof Worker === 'undefined';
}

/**
 * `count` threads (the caller and count − 1 workers) over a threads build's module and shared
 * memory; `instance` is the caller's own instance of that module.
 */
export async function createKernelThreads(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
  instance: WebAssembly.Instance,
  count: number,
  options: { stallTimeoutMs?: number } = {},
): Promise<KernelThreads> {
  const stallTimeoutMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  if (!Number.isInteger(count) || count < 1) throw new MurmurError('WASM_THREADS', `cannot run kernels on ${count} threads`);
  if (count === 1) return singleThread(instance);
  if (!(memory.buffer instanceof SharedArrayBuffer)) throw new MurmurError('WASM_THREADS', 'kernel threads need a shared WebAssembly memory');
  const control = new Int32Array(new SharedArrayBuffer(4 * (ARG_COUNT + 2 * count)));
  const claimAt = ARG_COUNT + count;
  const args = new Float64Array(new SharedArrayBuffer(8 * MAX_KERNEL_ARGS * count));
  const names = functionNames(module);
  const indexOf = new Map(names.map((name, i) => [name, i]));
  const kernels = kernelTable(instance, names);

  const workers: PoolWorker[] = [];
  try {
    for (let index = 1; index < count; index++) {
      const worker = isNode() ? await spawnNodeWorker() : spawnBrowserWorker();
      workers.push(worker);
      worker.post({ module, memory, control: control.buffer as SharedArrayBuffer, args: args.buffer as SharedArrayBuffer, index });
    }
    await Promise.all(workers.map((w) => w.ready));
  } catch (error) {
    for (const worker of workers) worker.terminate();
    throw error;
  }
  const block = canBlock(control);
  let disposed = false;
  const shutDown = () => {
    if (disposed) return;
    disposed = true;
    Atomics.store(control, KERNEL, SHUTDOWN);
    Atomics.add(control, GENERATION, 1);
    Atomics.notify(control, GENERATION);
    for (const worker of workers) worker.terminate();
  };

  return {
    count,
    run(kernel, work) {
      if (disposed) throw new MurmurError('DISPOSED', 'the kernel threads were disposed');
      const index = indexOf.get(kernel);
      if (index === undefined) throw new MurmurError('WASM_KERNEL', `the WebAssembly module has no kernel ${JSON.stringify(kernel)}`);
      if (work.length > count) throw new MurmurError('WASM_THREADS', `${work.length} shares of work for ${count} threads`);
      if (work.length === 0) return;
      if (work.length === 1) return runGuarded(kernel, () => kernels[index]!(...work[0]!));
      for (let t = 1; t < count; t++) {
        const share = work[t];
        if (share && share.length > MAX_KERNEL_ARGS) throw new MurmurError('WASM_THREADS', `kernel ${kernel} takes at most ${MAX_KERNEL_ARGS} arguments`);
      }
      // Arguments and kernel first, then the claims reopen: a worker that claims reads this dispatch's.
      for (let t = 1; t < count; t++) {
        const share = work[t];
        control[ARG_COUNT + t] = share ? share.length : -1;
        if (share) args.set(share, t * MAX_KERNEL_ARGS);
      }
      Atomics.store(control, KERNEL, index);
      Atomics.store(control, FAILED, 0);
      Atomics.store(control, PENDING, work.length - 1);
      for (let t = 1; t < count; t++) Atomics.store(control, claimAt + t, work[t] ? OPEN : TAKEN);
      Atomics.add(control, GENERATION, 1);
      Atomics.notify(control, GENERATION);
      let failure: unknown;
      let failedShare = 0;
      try {
        kernels[index]!(...work[0]!);
      } catch (cause) {
        failure = cause;
      }
      // Shares no worker has claimed yet run here rather than wait for their worker to wake.
      for (let t = 1; t < work.length; t++) {
        if (Atomics.compareExchange(control, claimAt + t, OPEN, TAKEN) !== OPEN) continue;
        try {
          kernels[index]!(...work[t]!);
        } catch (cause) {
          if (failure === undefined) {
            failure = cause;
            failedShare = t;
          }
        }
        Atomics.sub(control, PENDING, 1);
      }
      // Always wait for the workers, even after a local failure: they are using the memory. A
      // worker that never finishes would hang the engine, so a long stall shuts the pool down.
      for (let pending = Atomics.load(control, PENDING); pending !== 0; pending = Atomics.load(control, PENDING)) {
        if (!waitWhile(control, PENDING, pending, block, stallTimeoutMs)) {
          shutDown();
          throw new MurmurError('WASM_THREADS', `kernel ${kernel}: ${pending} kernel thread(s) did not finish within ${stallTimeoutMs / 1000} s; the thread pool was shut down`);
        }
      }
      const failed = Atomics.load(control, FAILED);
      if (failure !== undefined && failedShare === 0) runGuarded(kernel, () => {
        throw failure;
      });
      if (failed !== 0 || failure !== undefined) {
        const share = failed !== 0 ? failed - 1 : failedShare;
        const cause = failure instanceof Error ? `: ${failure.message}` : '';
        throw new MurmurError('WASM_ABORT', `the WebAssembly kernel ${kernel} trapped on kernel thread ${share}'s share of the work${cause}`, failure === undefined ? undefined : { cause: failure });
      }
    },
    dispose: shutDown,
  };
}

