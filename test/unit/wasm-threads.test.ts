// The kernel thread pool (src/kernels-wasm/threads.ts): range splitting, kernels run by workers
// over one shared memory with the same results as one thread, typed errors, shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { compileKernel, createKernelMemory, importedMemoryLimits, instantiateKernel, decodeBase64 } from '../../src/kernels-wasm/instantiate.ts';
import { KERNEL_BUILDS, KERNEL_THREADS_BUILDS } from '../../src/kernels-wasm/kernel-builds.ts';
import { createKernelThreads, defaultThreadCount, MAX_KERNEL_ARGS, sharedMemorySupported, singleThread, splitRange, type KernelThreads } from '../../src/kernels-wasm/threads.ts';
import { WasmHeap } from '../../src/kernels-wasm/heap.ts';
import { writePanels } from '../../src/kernels-wasm/matmul.ts';
import { MurmurError } from '../../src/core/errors.ts';

const threadsBuilds = { 'simd-threads': KERNEL_THREADS_BUILDS.simd };

async function sharedKernels(count: number) {
  const compiled = await compileKernel('kernels', threadsBuilds, { threads: true, relaxed: false });
  const memory = createKernelMemory(compiled);
  const instance = await instantiateKernel('kernels', compiled.module, memory);
  const heap = new WasmHeap(memory, (instance.exports.heapBase as () => number)());
  const threads = await createKernelThreads(compiled.module, memory, instance, count);
  return { compiled, memory, instance, heap, threads };
}

test('splitRange covers every unit once, in order, balanced, on granule boundaries', () => {
  for (const [units, parts, granule] of [[10, 3, 1], [7, 8, 1], [100, 4, 8], [1, 2, 1], [0, 3, 1], [1500, 2, 16]] as const) {
    const ranges = splitRange(units, parts, granule);
    let next = 0;
    for (const [start, end] of ranges) {
      assert.equal(start, next);
      assert.ok(end > start);
      assert.ok(start % granule === 0, `range start ${start} is on a granule of ${granule}`);
      next = end;
    }
    assert.equal(next, units, `${units} units in ${parts} parts`);
    assert.ok(ranges.length <= parts);
    const sizes = ranges.map(([s, e]) => e - s);
    if (sizes.length > 1) assert.ok(Math.max(...sizes) - Math.min(...sizes.slice(0, -1)) <= granule, `balanced: ${sizes}`);
  }
  assert.deepEqual(splitRange(10, 3), [[0, 3], [3, 6], [6, 10]]);
});

test('the default thread count is every core the OS reports, and Node has shared memory', async () => {
  assert.equal(await defaultThreadCount(), availableParallelism());
  assert.equal(sharedMemorySupported(), true);
});

test('the threads builds import a shared memory with a maximum, the plain builds an unshared one', async () => {
  const threaded = importedMemoryLimits(decodeBase64(KERNEL_THREADS_BUILDS.simd));
  assert.equal(threaded?.shared, true);
  assert.ok(threaded?.maximum !== undefined && threaded.maximum >= 16384, `maximum ${threaded?.maximum}`);
  assert.equal(importedMemoryLimits(decodeBase64(KERNEL_BUILDS.simd))?.shared, false);
  const compiled = await compileKernel('kernels', threadsBuilds, { threads: true, relaxed: false });
  const memory = createKernelMemory(compiled);
  assert.ok(memory.buffer instanceof SharedArrayBuffer);
  // Asking for a threads build that was not generated is a typed error, as is a plain build for threads.
  await assert.rejects(() => compileKernel('kernels', { simd: KERNEL_BUILDS.simd }, { threads: true, relaxed: false }), (e: unknown) => e instanceof MurmurError && e.code === 'WASM_UNSUPPORTED' && /simd-threads/.test(e.message));
  await assert.rejects(() => compileKernel('kernels', { 'simd-threads': KERNEL_BUILDS.simd }, { threads: true, relaxed: false }), (e: unknown) => e instanceof MurmurError && /not shared/.test(e.message));
});

test('a matrix product split by panels over 1, 2 and 3 threads is bit-identical to one call', async () => {
  const { heap, threads, instance } = await sharedKernels(3);
  try {
    assert.equal(threads.count, 3);
    const [m, k, n] = [37, 96, 203];
    const panels = Math.ceil(n / 8);
    const xAt = heap.allocate(m * k * 4);
    const wAt = heap.allocate(panels * 8 * k * 4);
    const biasAt = heap.allocate(panels * 8 * 4);
    const yAt = heap.allocate(m * n * 4);
    heap.f32(xAt, m * k).set(Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 0.61)));
    writePanels(heap.f32(wAt, panels * 8 * k), Float32Array.from({ length: n * k }, (_, i) => Math.cos(i * 0.37)), n, k, 8);
    heap.f32(biasAt, panels * 8).set(Float32Array.from({ length: panels * 8 }, (_, i) => (i < n ? i / n : 0)));
    const share = (p0: number, p1: number) => [xAt, m, k, wAt + p0 * k * 32, Math.min(n, p1 * 8) - p0 * 8, biasAt + p0 * 32, 0, yAt + p0 * 32, n, 1];
    const run = (pool: KernelThreads, parts: number) => {
      heap.f32(yAt, m * n).fill(NaN);
      pool.run('matmul', splitRange(panels, parts).map(([p0, p1]) => share(p0, p1)));
      return heap.f32(yAt, m * n).slice();
    };
    const whole = run(singleThread(instance), 1);
    assert.ok(whole.every(Number.isFinite));
    for (const parts of [1, 2, 3]) assert.deepEqual(run(threads, parts), whole, `${parts} shares`);
  } finally {
    threads.dispose();
  }
});

test('the pool keeps working across many small dispatches and after memory growth', async () => {
  const { heap, threads } = await sharedKernels(2);
  try {
    const cols = 64;
    const xAt = heap.allocate(4 * cols * 4);
    const gamma = heap.allocate(cols * 4);
    const beta = heap.allocate(cols * 4);
    heap.f32(gamma, cols).fill(1);
    heap.f32(beta, cols).fill(0);
    heap.f32(xAt, 4 * cols).set(Float32Array.from({ length: 4 * cols }, (_, i) => i % 7));
    for (let i = 0; i < 500; i++) threads.run('layerNorm', [[xAt, gamma, beta, xAt, cols, 0, 2], [xAt, gamma, beta, xAt, cols, 2, 4]]);
    // Growth happens on this thread; workers see the same (larger) memory.
    const big = heap.allocate(64 << 20);
    const yAt = heap.allocate(4 * cols * 4);
    threads.run('layerNorm', [[xAt, gamma, beta, yAt, cols, 0, 2], [xAt, gamma, beta, yAt, cols, 2, 4]]);
    const y = heap.f32(yAt, 4 * cols);
    for (let r = 0; r < 4; r++) {
      const row = y.subarray(r * cols, (r + 1) * cols);
      const mean = row.reduce((a, b) => a + b, 0) / cols;
      assert.ok(Math.abs(mean) < 1e-5, `row ${r} normalized by its thread (mean ${mean})`);
    }
    heap.free(big);
  } finally {
    threads.dispose();
  }
});

test('a trap on a worker, an unknown kernel and bad shares are typed errors; the pool survives them', async () => {
  const { heap, threads } = await sharedKernels(2);
  try {
    const cols = 8;
    const at = heap.allocate(cols * 4 * 3);
    const outOfBounds = 0x7ff00000;
    assert.throws(
      () => threads.run('layerNorm', [[at, at, at, at, cols, 0, 1], [outOfBounds, at, at, at, cols, 0, 1]]),
      (e: unknown) => e instanceof MurmurError && e.code === 'WASM_ABORT' && /layerNorm trapped on kernel thread 1's share/.test(e.message),
    );
    assert.throws(() => threads.run('layerNorm', [[outOfBounds, at, at, at, cols, 0, 1], [at, at, at, at, cols, 0, 1]]), (e: unknown) => e instanceof MurmurError && e.code === 'WASM_ABORT');
    assert.throws(() => threads.run('noSuchKernel', [[]]), (e: unknown) => e instanceof MurmurError && e.code === 'WASM_KERNEL' && /noSuchKernel/.test(e.message));
    assert.throws(() => threads.run('layerNorm', [[], [], []]), (e: unknown) => e instanceof MurmurError && /3 shares of work for 2 threads/.test(e.message));
    assert.throws(() => threads.run('layerNorm', [[], new Array(MAX_KERNEL_ARGS + 1).fill(0)]), (e: unknown) => e instanceof MurmurError && /at most 16 arguments/.test(e.message));
    // Still usable afterwards.
    heap.f32(at + cols * 4, cols).fill(1);
    heap.f32(at + cols * 8, cols).fill(0);
    heap.f32(at, cols).set([1, 2, 3, 4, 5, 6, 7, 8]);
    threads.run('layerNorm', [[at, at + cols * 4, at + cols * 8, at, cols, 0, 1]]);
    assert.ok(Math.abs(heap.f32(at, cols)[0]! + 1.5275) < 1e-3);
  } finally {
    threads.dispose();
  }
  assert.throws(() => threads.run('layerNorm', [[]]), (e: unknown) => e instanceof MurmurError && e.code === 'DISPOSED');
  await assert.rejects(async () => {
    const { compiled, memory, instance } = await sharedKernels(1);
    await createKernelThreads(compiled.module, memory, instance, 0);
  }, (e: unknown) => e instanceof MurmurError && /0 threads/.test(e.message));
});

test('a worker that does not finish in time shuts the pool down with a typed error instead of hanging', async () => {
  const compiled = await compileKernel('kernels', threadsBuilds, { threads: true, relaxed: false });
  const memory = createKernelMemory(compiled);
  const instance = await instantiateKernel('kernels', compiled.module, memory);
  const heap = new WasmHeap(memory, (instance.exports.heapBase as () => number)());
  const threads = await createKernelThreads(compiled.module, memory, instance, 2, { stallTimeoutMs: 1 });
  const [m, k, n] = [1500, 384, 1536];
  const xAt = heap.allocate(m * k * 4);
  const wAt = heap.allocate(n * k * 4);
  const yAt = heap.allocate(m * n * 4);
  // The worker's share takes tens of milliseconds, far past the 1 ms allowed; the caller's is a few
  // milliseconds, time for the worker to wake and claim its share (when it has not, the caller
  // runs that share itself and the dispatch succeeds: try again).
  let stalled: unknown;
  for (let attempt = 0; attempt < 20 && stalled === undefined; attempt++) {
    try {
      threads.run('matmul', [[xAt, 64, k, wAt, 256, 0, 0, yAt, n, 0], [xAt, m, k, wAt, n, 0, 0, yAt, n, 0]]);
    } catch (error) {
      stalled = error;
    }
  }
  assert.ok(
    stalled instanceof MurmurError && stalled.code === 'WASM_THREADS' && /kernel matmul: 1 kernel thread\(s\) did not finish within 0\.001 s/.test(stalled.message),
    `expected a stall error, got ${String(stalled)}`,
  );
  assert.throws(() => threads.run('matmul', [[xAt, 1, k, wAt, 8, 0, 0, yAt, n, 0]]), (e: unknown) => e instanceof MurmurError && e.code === 'DISPOSED');
});

test('threads need a shared memory', async () => {
  const compiled = await compileKernel('kernels', KERNEL_BUILDS, { relaxed: false });
  const memory = createKernelMemory(compiled);
  const instance = await instantiateKernel('kernels', compiled.module, memory);
  await assert.rejects(() => createKernelThreads(compiled.module, memory, instance, 2), (e: unknown) => e instanceof MurmurError && /shared WebAssembly memory/.test(e.message));
  assert.equal((await createKernelThreads(compiled.module, memory, instance, 1)).count, 1);
});
