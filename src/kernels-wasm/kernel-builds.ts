/**
 * The four builds of the one kernels module (scripts/build-wasm.mjs compiles
 * src/kernels-wasm/assembly/index.ts): plain SIMD128 and relaxed SIMD, each over an ordinary
 * imported memory and over an imported shared memory for a thread pool.
 */
import { kernelsSimdWasm } from './generated/kernels-simd.wasm.ts';
import { kernelsRelaxedSimdWasm } from './generated/kernels-relaxed-simd.wasm.ts';
import { kernelsSimdThreadsWasm } from './generated/kernels-simd-threads.wasm.ts';
import { kernelsRelaxedSimdThreadsWasm } from './generated/kernels-relaxed-simd-threads.wasm.ts';

/** Base64 modules importing `env.memory` (not shared), by variant. */
export const KERNEL_BUILDS = { simd: kernelsSimdWasm, 'relaxed-simd': kernelsRelaxedSimdWasm } as const;

/**
 * Base64 modules importing a shared `env.memory` whose maximum is at most
 * KERNELS_THREADS_MAXIMUM_PAGES: create it as `new WebAssembly.Memory({ initial, maximum, shared: true })`
 * with maximum ≤ that, and instantiate the module once per worker over it.
 */
export const KERNEL_THREADS_BUILDS = { simd: kernelsSimdThreadsWasm, 'relaxed-simd': kernelsRelaxedSimdThreadsWasm } as const;

/**
 * The maximum the threaded builds declare: 65536 pages of 64 KiB = 4 GiB, all of wasm32. A shared
 * memory reserves its maximum when created, so ask for less where address space is short (mobile,
 * 32-bit) and step down (e.g. 65536 → 32768 → 16384) when the constructor throws; any maximum up to
 * this one links. Must equal THREADS_MAXIMUM_PAGES in scripts/build-wasm.mjs (wasm-build.test.ts checks).
 */
export const KERNELS_THREADS_MAXIMUM_PAGES = 65536;

/** All four builds by variant name, as compileKernel in instantiate.ts takes them. */
export const ALL_KERNEL_BUILDS = {
  simd: kernelsSimdWasm,
  'relaxed-simd': kernelsRelaxedSimdWasm,
  'simd-threads': kernelsSimdThreadsWasm,
  'relaxed-simd-threads': kernelsRelaxedSimdThreadsWasm,
} as const;
