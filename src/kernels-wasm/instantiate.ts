/**
 * Compiles and instantiates the generated kernel modules (src/kernels-wasm/generated, base64 so
 * that Node and bundlers load them as plain code) into a WebAssembly memory owned by the caller.
 *
 * A module comes in up to four builds: plain SIMD128 or relaxed SIMD (fused multiply-add), each
 * either over an ordinary memory or over an imported *shared* memory with a fixed maximum, which
 * several threads (src/kernels-wasm/threads.ts) instantiate the same module over.
 */
import { MurmurError } from '../core/errors.ts';

export type WasmVariant = 'simd' | 'relaxed-simd';
export type KernelVariant = WasmVariant | 'simd-threads' | 'relaxed-simd-threads';

export interface LoadedKernel {
  variant: WasmVariant;
  exports: WebAssembly.Exports;
  memory: WebAssembly.Memory;
  /** The first byte not used by the module's static data. */
  heapBase: number;
}

/** A compiled build plus the memory it expects. */
export interface CompiledKernel {
  variant: KernelVariant;
  module: WebAssembly.Module;
  /** True for the threads builds: their memory must be a shared WebAssembly.Memory. */
  shared: boolean;
  /** The module's declared memory limits, in 64 KiB pages (maximum only for shared builds). */
  memoryPages: { initial: number; maximum?: number };
}

export function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function unsupported(kernel: string, variant: KernelVariant, detail: string): MurmurError {
  return new MurmurError('WASM_UNSUPPORTED', `the ${variant} build of the WebAssembly ${kernel} kernel cannot run here: ${detail}`);
}

function checkWebAssembly(): void {
  if (typeof WebAssembly !== 'object') throw new MurmurError('WASM_UNSUPPORTED', 'this environment has no WebAssembly');
}

function abortImport(kernel: string): () => never {
  return () => {
    throw new MurmurError('WASM_ABORT', `the WebAssembly ${kernel} kernel aborted`);
  };
}

/**
 * The limits of the memory a module imports, read from its import section: a shared memory must
 * be created with a maximum no larger than the module declares, and the type-reflection API that
 * would tell us is not available everywhere.
 */
export function importedMemoryLimits(bytes: Uint8Array): { initial: number; maximum?: number; shared: boolean } | undefined {
  let at = 8; // magic + version
  const leb = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = bytes[at++]!;
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if ((byte & 0x80) === 0) return result;
    }
  };
  const skipName = () => {
    const length = leb();
    at += length;
  };
  while (at < bytes.length) {
    const id = bytes[at++]!;
    const size = leb();
    const end = at + size;
    if (id === 2) {
      const count = leb();
      for (let i = 0; i < count; i++) {
        skipName();
        skipName();
        const kind = bytes[at++]!;
        if (kind === 0) leb(); // function: type index
        else if (kind === 1) {
          at++; // table: element type
          const flags = leb();
          leb();
          if (flags & 1) leb();
        } else if (kind === 2) {
          const flags = leb();
          const initial = leb();
          const maximum = flags & 1 ? leb() : undefined;
          return { initial, ...(maximum !== undefined ? { maximum } : {}), shared: (flags & 2) !== 0 };
        } else if (kind === 3) at += 2; // global: value type + mutability
        else return undefined;
      }
      return undefined;
    }
    at = end;
  }
  return undefined;
}

/**
 * Picks and compiles one build. `threads` asks for a shared-memory build (the caller checks that
 * SharedArrayBuffer is usable); `relaxed` true insists on relaxed SIMD, false on plain SIMD128,
 * absent picks relaxed SIMD when this engine validates that very module (Node 20 needs
 * --experimental-wasm-relaxed-simd).
 */
export async function compileKernel(
  kernel: string,
  builds: Partial<Record<KernelVariant, string>>,
  options: { relaxed?: boolean; threads?: boolean } = {},
): Promise<CompiledKernel> {
  checkWebAssembly();
  const suffix = options.threads ? '-threads' : '';
  const relaxedVariant = `relaxed-simd${suffix}` as KernelVariant;
  const plainVariant = `simd${suffix}` as KernelVariant;
  const candidates: KernelVariant[] = options.relaxed === true ? [relaxedVariant] : options.relaxed === false ? [plainVariant] : [relaxedVariant, plainVariant];
  let chosen: { variant: KernelVariant; bytes: Uint8Array<ArrayBuffer> } | undefined;
  for (const variant of candidates) {
    const text = builds[variant];
    if (text === undefined) {
      if (candidates.length === 1) throw unsupported(kernel, variant, 'this build was not generated');
      continue;
    }
    const bytes = decodeBase64(text);
    if (WebAssembly.validate(bytes)) {
      chosen = { variant, bytes };
      break;
    }
    if (candidates.length === 1 || variant === plainVariant) {
      const missing = variant.startsWith('relaxed') ? 'no relaxed-SIMD support' : 'no SIMD128 support';
      throw unsupported(kernel, variant, options.threads ? `${missing} or no WebAssembly threads` : missing);
    }
  }
  if (!chosen) throw unsupported(kernel, plainVariant, 'this build was not generated');
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(chosen.bytes);
  } catch (cause) {
    throw new MurmurError('WASM_UNSUPPORTED', `could not compile the ${chosen.variant} WebAssembly ${kernel} kernel`, { cause });
  }
  const limits = importedMemoryLimits(chosen.bytes);
  if (!limits) throw unsupported(kernel, chosen.variant, 'the module imports no memory');
  if (limits.shared !== Boolean(options.threads)) throw unsupported(kernel, chosen.variant, `the module's memory is ${limits.shared ? '' : 'not '}shared`);
  return {
    variant: chosen.variant,
    module,
    shared: limits.shared,
    memoryPages: { initial: limits.initial, ...(limits.maximum !== undefined ? { maximum: limits.maximum } : {}) },
  };
}

/** Smallest maximum tried for a shared memory before giving up: 1 GiB. */
const SMALLEST_SHARED_MAXIMUM = 16384;

/**
 * A memory the compiled build can import. For threads builds it is shared, with the module's
 * declared maximum or, where that much address space cannot be reserved (a shared memory reserves
 * its maximum up front), the largest half of it that can be.
 */
export function createKernelMemory(compiled: CompiledKernel): WebAssembly.Memory {
  const initial = Math.max(1, compiled.memoryPages.initial);
  if (!compiled.shared) return new WebAssembly.Memory({ initial });
  const declared = compiled.memoryPages.maximum;
  if (declared === undefined) throw unsupported('kernels', compiled.variant, 'a shared memory needs a declared maximum');
  let lastError: unknown;
  for (let maximum = declared; maximum >= Math.min(declared, SMALLEST_SHARED_MAXIMUM); maximum = Math.floor(maximum / 2)) {
    try {
      return new WebAssembly.Memory({ initial, maximum, shared: true });
    } catch (cause) {
      lastError = cause;
    }
  }
  throw new MurmurError('WASM_UNSUPPORTED', `could not create a shared WebAssembly memory of up to ${declared} pages`, { cause: lastError });
}

/** One instance of a compiled module over `memory` (every thread makes its own over the same memory). */
export async function instantiateKernel(kernel: string, module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<WebAssembly.Instance> {
  try {
    return await WebAssembly.instantiate(module, { env: { memory, abort: abortImport(kernel) } });
  } catch (cause) {
    throw new MurmurError('WASM_UNSUPPORTED', `could not instantiate the WebAssembly ${kernel} kernel`, { cause });
  }
}

/**
 * A single-threaded build in a fresh memory of its own. `relaxed` as for compileKernel.
 */
export async function loadKernel(kernel: string, builds: Record<WasmVariant, string>, relaxed?: boolean): Promise<LoadedKernel> {
  const compiled = await compileKernel(kernel, builds, relaxed === undefined ? {} : { relaxed });
  const memory = createKernelMemory(compiled);
  const instance = await instantiateKernel(kernel, compiled.module, memory);
  const heapBase = (instance.exports.heapBase as () => number)();
  return { variant: compiled.variant as WasmVariant, exports: instance.exports, memory, heapBase };
}
