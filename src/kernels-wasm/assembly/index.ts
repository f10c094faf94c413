// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// The one WebAssembly module holding every kernel: the backend places weights and activations of
// all kernels in one (possibly shared) memory, and two AssemblyScript modules cannot share a
// memory because their static data would overlap. Every kernel file is re-exported from here.

export * from './matmul';
export * from './matmul-half';
export * from './layernorm';
export * from './conv';
export * from './attention';
export * from './embedding';
export * from './logits';
export * from './matmul-quant';
export * from './matmul-tiles';

/** The first byte the wrapper may use: everything below belongs to this module's static data. */
export function heapBase(): usize {
  return __heap_base;
}
