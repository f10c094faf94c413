/**
 * The WASM-SIMD matrix product: y[m, n] = x[m, k] · Wᵀ + bias, optional exact GELU, optional
 * residual add, with W [n, k] as the weight schema stores it (PyTorch's nn.Linear).
 *
 * Weights are packed once (`packWeights`) into the micro-kernel's panels inside the WebAssembly
 * memory and stay there until released; each `matmul` copies its activations in, runs the kernel
 * and copies the result out. The kernel source is src/kernels-wasm/assembly/matmul.ts, compiled into
 * the one kernels module (src/kernels-wasm/kernel-builds.ts).
 */
import { MurmurError } from '../core/errors.ts';
import { WasmHeap } from './heap.ts';
import { loadKernel, type WasmVariant } from './instantiate.ts';
import { KERNEL_BUILDS } from './kernel-builds.ts';

export type { WasmVariant } from './instantiate.ts';

export interface MatmulEpilogue {
  /** n values, added before GELU. */
  bias?: Float32Array;
  /** gelu(x·Wᵀ + bias), exact (erf) GELU like PyTorch's nn.GELU(). */
  gelu?: boolean;
  /** m × n values, added last. */
  residual?: Float32Array;
}

/** Weights in the kernel's layout, resident in one WasmMatmul's memory. */
export interface PackedWeights {
  /** Output features (rows of the unpacked W). */
  readonly n: number;
  /** Input features. */
  readonly k: number;
  readonly released: boolean;
  /** Give the memory back; using the weights afterwards is an error. */
  release(): void;
}

export interface WasmMatmul {
  readonly variant: WasmVariant;
  /** W is [n, k], row-major. */
  packWeights(values: Float32Array, n: number, k: number): PackedWeights;
  /** x is [m, k], row-major; returns y [m, n], a new array. */
  matmul(x: Float32Array, m: number, packed: PackedWeights, epilogue?: MatmulEpilogue): Float32Array;
  /** Bytes of WebAssembly memory in use (packed weights; activations only during a call). */
  readonly allocatedBytes: number;
  /** Size of the WebAssembly memory, which grows as needed and never shrinks. */
  readonly memoryBytes: number;
}

export interface WasmMatmulOptions {
  /**
   * true: the relaxed-SIMD module (fails where it is unsupported); false: plain SIMD128.
   * Absent: relaxed SIMD wherever the engine validates it.
   */
  relaxed?: boolean;
}

type MatmulExport = (
  x: number, m: number, k: number, packed: number, n: number,
  bias: number, residual: number, y: number, yStride: number, flags: number,
) => void;

const FLAG_GELU = 1;

function shapeError(problem: string): MurmurError {
  return new MurmurError('SHAPE', problem);
}

function checkCount(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw shapeError(`${what} must be a non-negative integer, got ${value}`);
}

/**
 * W [n, k] into the f32 kernel's panels of `width` columns (ceil(n/width)·width·k floats): panel p,
 * step i, lane j ← W[p·width + j, i]; lanes past n are zero.
 */
export function writePanels(panels: Float32Array, values: Float32Array, n: number, k: number, width: number): void {
  panels.fill(0);
  for (let row = 0; row < n; row++) {
    const panelBase = Math.floor(row / width) * width * k + (row % width);
    const source = row * k;
    for (let i = 0; i < k; i++) panels[panelBase + i * width] = values[source + i]!;
  }
}

class Packed implements PackedWeights {
  readonly n: number;
  readonly k: number;
  readonly owner: WasmMatmulImpl;
  #offset: number | undefined;

  constructor(owner: WasmMatmulImpl, offset: number, n: number, k: number) {
    this.owner = owner;
    this.#offset = offset;
    this.n = n;
    this.k = k;
  }

  get released(): boolean {
    return this.#offset === undefined;
  }

  get offset(): number {
    if (this.#offset === undefined) throw new MurmurError('RELEASED', `packed weights [${this.n}, ${this.k}] were used after release()`);
    return this.#offset;
  }

  release(): void {
    if (this.#offset === undefined) return;
    this.owner.heap.free(this.#offset);
    this.#offset = undefined;
  }
}

class WasmMatmulImpl implements WasmMatmul {
  readonly variant: WasmVariant;
  readonly heap: WasmHeap;
  readonly #kernel: MatmulExport;
  readonly #panelWidth: number;

  constructor(variant: WasmVariant, heap: WasmHeap, kernel: MatmulExport, panelWidth: number) {
    this.variant = variant;
    this.heap = heap;
    this.#kernel = kernel;
    this.#panelWidth = panelWidth;
  }

  get allocatedBytes(): number {
    return this.heap.allocatedBytes;
  }

  get memoryBytes(): number {
    return this.heap.memory.buffer.byteLength;
  }

  #paddedColumns(n: number): number {
    return Math.ceil(n / this.#panelWidth) * this.#panelWidth;
  }

  packWeights(values: Float32Array, n: number, k: number): PackedWeights {
    checkCount(n, 'weight rows (n)');
    checkCount(k, 'weight columns (k)');
    if (values.length !== n * k) throw shapeError(`${values.length} weight values cannot be a [${n}, ${k}] matrix`);
    const width = this.#panelWidth;
    const offset = this.heap.allocate(this.#paddedColumns(n) * k * 4);
    const panels = this.heap.f32(offset, this.#paddedColumns(n) * k);
    writePanels(panels, values, n, k, width);
    return new Packed(this, offset, n, k);
  }

  matmul(x: Float32Array, m: number, packed: PackedWeights, epilogue: MatmulEpilogue = {}): Float32Array {
    if (!(packed instanceof Packed) || packed.owner !== this) {
      throw new MurmurError('WASM_WEIGHTS', 'packed weights belong to a different WasmMatmul (pack them with this one)');
    }
    const { n, k } = packed;
    const weights = packed.offset;
    checkCount(m, 'rows (m)');
    if (x.length !== m * k) throw shapeError(`matmul: ${x.length} input values are not [${m}, ${k}] (weight [${n}, ${k}])`);
    const { bias, residual, gelu } = epilogue;
    if (bias && bias.length !== n) throw shapeError(`matmul: bias of ${bias.length} values for ${n} outputs`);
    if (residual && residual.length !== m * n) throw shapeError(`matmul: residual of ${residual.length} values does not match the output [${m}, ${n}]`);
    if (m === 0 || n === 0) return new Float32Array(m * n);

    const heap = this.heap;
    const paddedBias = this.#paddedColumns(n);
    const xAt = heap.allocate(m * k * 4);
    const biasAt = bias ? heap.allocate(paddedBias * 4) : 0;
    const yAt = heap.allocate(m * n * 4);
    try {
      heap.f32(xAt, m * k).set(x);
      if (bias) {
        const padded = heap.f32(biasAt, paddedBias);
        padded.set(bias);
        padded.fill(0, n);
      }
      // The residual is read and overwritten element by element, so it can start out in y.
      if (residual) heap.f32(yAt, m * n).set(residual);
      this.#kernel(xAt, m, k, weights, n, biasAt, residual ? yAt : 0, yAt, n, gelu ? FLAG_GELU : 0);
      return heap.f32(yAt, m * n).slice();
    } finally {
      heap.free(yAt);
      if (bias) heap.free(biasAt);
      heap.free(xAt);
    }
  }
}

/** Compiles the matrix-product kernel (relaxed SIMD where available) into a memory of its own. */
export async function createWasmMatmul(options: WasmMatmulOptions = {}): Promise<WasmMatmul> {
  const { variant, exports, memory, heapBase } = await loadKernel('kernels', KERNEL_BUILDS, options.relaxed);
  return wasmMatmulOver(variant, exports, new WasmHeap(memory, heapBase));
}

/** A WasmMatmul over an instance of the kernels module that already exists, allocating from its heap. */
export function wasmMatmulOver(variant: WasmVariant, exports: WebAssembly.Exports, heap: WasmHeap): WasmMatmul {
  const panelWidth = (exports.panelWidth as () => number)();
  return new WasmMatmulImpl(variant, heap, exports.matmul as MatmulExport, panelWidth);
}
