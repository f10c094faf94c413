/**
 * Instantiates one of the generated kernel modules (src/kernels-wasm/generated, base64 so that
 * Node and bundlers load them as plain code) into a fresh WebAssembly memory owned by the caller.
 */
import { MurmurError } from '../core/errors.ts';

export type WasmVariant = 'simd' | 'relaxed-simd';

export interface LoadedKernel {
  variant: WasmVariant;
  exports: WebAssembly.Exports;
  memory: WebAssembly.Memory;
  /** The first byte not used by the module's static data. */
  heapBase: number;
}

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function unsupported(kernel: string, variant: WasmVariant, detail: string): MurmurError {
  return new MurmurError('WASM_UNSUPPORTED', `the ${variant} build of the WebAssembly ${kernel} kernel cannot run here: ${detail}`);
}

/**
 * `relaxed`: true insists on relaxed SIMD, false on plain SIMD128; absent picks relaxed SIMD when
 * this engine validates that very module (Node 20 needs --experimental-wasm-relaxed-simd).
 */
export async function loadKernel(kernel: string, builds: Record<WasmVariant, string>, relaxed?: boolean): Promise<LoadedKernel> {
  if (typeof WebAssembly !== 'object') throw new MurmurError('WASM_UNSUPPORTED', 'this environment has no WebAssembly');
  const relaxedBytes = decodeBase64(builds['relaxed-simd']);
  const variant: WasmVariant = relaxed ?? WebAssembly.validate(relaxedBytes) ? 'relaxed-simd' : 'simd';
  const bytes = variant === 'relaxed-simd' ? relaxedBytes : decodeBase64(builds.simd);
  if (!WebAssembly.validate(bytes)) {
    throw unsupported(kernel, variant, variant === 'simd' ? 'no SIMD128 support' : 'no relaxed-SIMD support');
  }
  const memory = new WebAssembly.Memory({ initial: 1 });
  const abort = () => {
    throw new MurmurError('WASM_ABORT', `the WebAssembly ${kernel} kernel aborted`);
  };
  let instance: WebAssembly.Instance;
  try {
    ({ instance } = await WebAssembly.instantiate(bytes, { env: { memory, abort } }));
  } catch (cause) {
    throw new MurmurError('WASM_UNSUPPORTED', `could not instantiate the ${variant} WebAssembly ${kernel} kernel`, { cause });
  }
  const heapBase = (instance.exports.heapBase as () => number)();
  return { variant, exports: instance.exports, memory, heapBase };
}
