/**
 * One WASM matrix-product entry for every weight dtype: `packWeightTensor` turns a WeightTensor
 * [n, k] (as loaded, in its file dtype) into panels resident in the kernels module's memory, and
 * `matmulPacked` computes y = epilogue(x · Wᵀ + bias) against them, whatever the dtype was.
 *
 * - f32, f16, bf16: widened to f32 at pack time, run by the f32 kernel (assembly/matmul.ts);
 *   or, for f16 asked to stay half (`keepHalf`, for memory-bound per-token products), kept as
 *   halves and widened in-register by assembly/matmul-half.ts with the same results.
 * - q8_0, q4_0, q4_1, q5_0, q5_1: unpacked per 32-value block into int8 codes with one f32 scale
 *   (and, for q4_1/q5_1, one f32 min) per (row, block); at run time each activation row is
 *   quantized per block to int8 with an f32 scale and the blocks' dot products are exact integer
 *   sums (assembly/matmul-quant.ts, whose header has the arithmetic). q4/q5 stay 4/5-bit in the
 *   file but take 1 byte per value here: packed q4_0 is 1.125 bytes/value (2.0× its file size),
 *   q4_1 1.25 (2.0×), q5_0 1.125 (1.64×), q5_1 1.25 (1.6×), q8_0 1.125 (1.06×).
 *
 * Both builds run the quantized path with i32x4.dot_i16x8_s (8 multiply-adds per instruction);
 * why relaxed SIMD's i8·i7 dot product is not used yet is explained in assembly/matmul-quant.ts.
 *
 * Work can be split across threads by rows (offset xCodes/meta/y/residual by whole rows) or by
 * panels of 8 columns (offset packed by `panelBytes`, bias and y by 8 floats): every output is
 * computed with the same arithmetic whatever the split.
 */
import { MurmurError } from '../core/errors.ts';
import type { WeightDType, WeightTensor } from '../core/model/weights.ts';
import { decodeTensor, f16ToF32, tensorByteLength } from '../core/model/dtype.ts';
import { WasmHeap } from './heap.ts';
import { compileKernel, createKernelMemory, instantiateKernel, type KernelVariant } from './instantiate.ts';
import { writePanels, type MatmulEpilogue, type PackedWeights } from './matmul.ts';
import { KERNEL_BUILDS } from './kernel-builds.ts';
import { packRockchipB, ROCKCHIP_B_TILE_K, ROCKCHIP_B_TILE_N } from '../core/layout/rockchip-tiles.ts';

export type { MatmulEpilogue } from './matmul.ts';

/** What the entry needs of an instantiated kernels module: its exports and the heap over its memory. */
export interface WasmKernels {
  readonly variant: KernelVariant;
  readonly exports: WebAssembly.Exports;
  readonly heap: WasmHeap;
}

/**
 * How packed weights are laid out, which decides the kernel that runs them: panels of 8 columns
 * (f32, f16, int8) or Rockchip's B tiles (N/16, K/32, 16, 32) of f32 (`tiles`, assembly/matmul-tiles.ts).
 */
export type PackedLayout = 'f32' | 'f16' | 'int8' | 'tiles';

export interface PackedTensor extends PackedWeights {
  /** The dtype the weights came in. */
  readonly dtype: WeightDType;
  readonly layout: PackedLayout;
  /** Byte offset of the panels in the kernels' memory (throws after release). */
  readonly offset: number;
  /** Bytes the panels take. */
  readonly byteLength: number;
  /** Bytes of one panel of 8 columns, or of one column of tiles (16 columns) for `tiles` (for splitting the work). */
  readonly panelBytes: number;
  /** int8 layout: bytes per (panel, block) and the zero point z (both 0 for f32). */
  readonly blockStride: number;
  readonly zero: number;
}

export const PANEL_WIDTH = 8;
/** Values per quantization block, for weights and activations alike. */
export const QUANT_BLOCK = 32;
const CODE_BYTES = 256;
/** Per activation (row, block): scale, code sum, scale·sum, unused. */
export const QUANT_META_BYTES = 16;

export const FLAG_GELU = 1;
export const FLAG_MINS = 2;

type QuantDType = 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1';

interface QuantFormat {
  blockBytes: number;
  zero: number;
  hasMins: boolean;
  /** Writes the block's 32 codes into `codes` and returns [scale, min]. */
  decode(bytes: Uint8Array, at: number, codes: Int8Array): [number, number];
}

const half = (bytes: Uint8Array, at: number) => f16ToF32(bytes[at]! | (bytes[at + 1]! << 8));
const word = (bytes: Uint8Array, at: number) => (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;

function nibbles(bytes: Uint8Array, at: number, codes: Int8Array, highBits: number | undefined): void {
  for (let j = 0; j < 16; j++) {
    const q = bytes[at + j]!;
    let lo = q & 0x0f;
    let hi = q >> 4;
    if (highBits !== undefined) {
      lo |= ((highBits >>> j) & 1) << 4;
      hi |= ((highBits >>> (j + 16)) & 1) << 4;
    }
    codes[j] = lo;
    codes[j + 16] = hi;
  }
}

// ggml's block layouts (src/core/model/quant.ts decodes the same bytes to f32).
const QUANT_FORMATS: Record<QuantDType, QuantFormat> = {
  q8_0: {
    blockBytes: 34, zero: 0, hasMins: false,
    decode(bytes, at, codes) {
      for (let j = 0; j < QUANT_BLOCK; j++) codes[j] = (bytes[at + 2 + j]! << 24) >> 24;
      return [half(bytes, at), 0];
    },
  },
  q4_0: {
    blockBytes: 18, zero: 8, hasMins: false,
    decode(bytes, at, codes) {
      nibbles(bytes, at + 2, codes, undefined);
      return [half(bytes, at), 0];
    },
  },
  q4_1: {
    blockBytes: 20, zero: 0, hasMins: true,
    decode(bytes, at, codes) {
      nibbles(bytes, at + 4, codes, undefined);
      return [half(bytes, at), half(bytes, at + 2)];
    },
  },
  q5_0: {
    blockBytes: 22, zero: 16, hasMins: false,
    decode(bytes, at, codes) {
      nibbles(bytes, at + 6, codes, word(bytes, at + 2));
      return [half(bytes, at), 0];
    },
  },
  q5_1: {
    blockBytes: 24, zero: 0, hasMins: true,
    decode(bytes, at, codes) {
      nibbles(bytes, at + 8, codes, word(bytes, at + 4));
      return [half(bytes, at), half(bytes, at + 2)];
    },
  },
};

function shapeError(problem: string): MurmurError {
  return new MurmurError('SHAPE', problem);
}

class Packed implements PackedTensor {
  readonly owner: WasmKernels;
  readonly dtype: WeightDType;
  readonly layout: PackedLayout;
  readonly n: number;
  readonly k: number;
  readonly byteLength: number;
  readonly panelBytes: number;
  readonly blockStride: number;
  readonly zero: number;
  #offset: number | undefined;

  constructor(owner: WasmKernels, init: Omit<PackedTensor, 'released' | 'release' | 'offset'> & { offset: number }) {
    this.owner = owner;
    this.dtype = init.dtype;
    this.layout = init.layout;
    this.n = init.n;
    this.k = init.k;
    this.byteLength = init.byteLength;
    this.panelBytes = init.panelBytes;
    this.blockStride = init.blockStride;
    this.zero = init.zero;
    this.#offset = init.offset;
  }

  get released(): boolean {
    return this.#offset === undefined;
  }

  get offset(): number {
    if (this.#offset === undefined) throw new MurmurError('RELEASED', `packed ${this.dtype} weights [${this.n}, ${this.k}] were used after release()`);
    return this.#offset;
  }

  release(): void {
    if (this.#offset === undefined) return;
    this.owner.heap.free(this.#offset);
    this.#offset = undefined;
  }
}

function packF32(engine: WasmKernels, tensor: WeightTensor, n: number, k: number): Packed {
  const values = tensor.dtype === 'f32' && tensor.bytes.byteOffset % 4 === 0
    ? new Float32Array(tensor.bytes.buffer, tensor.bytes.byteOffset, n * k)
    : decodeTensor(tensor);
  const panels = Math.ceil(n / PANEL_WIDTH);
  const floats = panels * PANEL_WIDTH * k;
  const offset = engine.heap.allocate(floats * 4);
  writePanels(engine.heap.f32(offset, floats), values, n, k, PANEL_WIDTH);
  return new Packed(engine, { dtype: tensor.dtype, layout: 'f32', n, k, offset, byteLength: floats * 4, panelBytes: PANEL_WIDTH * k * 4, blockStride: 0, zero: 0 });
}

/** f32, f16 or bf16 weights widened to f32 and packed into Rockchip B tiles, K and N zero-padded to whole tiles. */
function packTiles(engine: WasmKernels, tensor: WeightTensor, n: number, k: number): Packed {
  const values = tensor.dtype === 'f32' && tensor.bytes.byteOffset % 4 === 0
    ? new Float32Array(tensor.bytes.buffer, tensor.bytes.byteOffset, n * k)
    : decodeTensor(tensor);
  const tiles = packRockchipB(values, n, k);
  const data = tiles.data as Float32Array;
  const offset = engine.heap.allocate(data.byteLength);
  engine.heap.f32(offset, data.length).set(data);
  const columnTileBytes = (tiles.paddedK / ROCKCHIP_B_TILE_K) * ROCKCHIP_B_TILE_N * ROCKCHIP_B_TILE_K * 4;
  return new Packed(engine, { dtype: tensor.dtype, layout: 'tiles', n, k, offset, byteLength: data.byteLength, panelBytes: columnTileBytes, blockStride: 0, zero: 0 });
}

/** Columns per unit of work of a packed layout: a panel, or a column of tiles. */
export function packedColumns(packed: PackedTensor): number {
  return packed.layout === 'tiles' ? ROCKCHIP_B_TILE_N : PANEL_WIDTH;
}

/** Row length the `tiles` kernel reads: k rounded up to whole tiles. */
export function tiledRowLength(k: number): number {
  return Math.ceil(k / ROCKCHIP_B_TILE_K) * ROCKCHIP_B_TILE_K;
}

/** Floats a bias vector must span for every layout's epilogue (the tiles' reads 4 past the last tile). */
export function biasFloats(n: number): number {
  return Math.ceil(n / ROCKCHIP_B_TILE_N) * ROCKCHIP_B_TILE_N + 4;
}

/** True when some f16 value is an infinity or a NaN (exponent bits all ones). */
function hasNonFiniteHalf(bytes: Uint8Array): boolean {
  for (let i = 1; i < bytes.length; i += 2) if ((bytes[i]! & 0x7c) === 0x7c) return true;
  return false;
}

/** f16 weights kept as halves, in panels like packF32's (2 bytes per value). */
function packHalf(engine: WasmKernels, tensor: WeightTensor, n: number, k: number): Packed {
  const bytes = tensor.bytes;
  const panels = Math.ceil(n / PANEL_WIDTH);
  const halves = panels * PANEL_WIDTH * k;
  const offset = engine.heap.allocate(halves * 2);
  const out = new Uint16Array(engine.heap.memory.buffer, offset, halves);
  out.fill(0);
  for (let row = 0; row < n; row++) {
    const panelBase = Math.floor(row / PANEL_WIDTH) * PANEL_WIDTH * k + (row % PANEL_WIDTH);
    const source = row * k * 2;
    for (let i = 0; i < k; i++) out[panelBase + i * PANEL_WIDTH] = bytes[source + 2 * i]! | (bytes[source + 2 * i + 1]! << 8);
  }
  return new Packed(engine, { dtype: 'f16', layout: 'f16', n, k, offset, byteLength: halves * 2, panelBytes: PANEL_WIDTH * k * 2, blockStride: 0, zero: 0 });
}

/** Byte of code t (0..31) of column j (0..7) within a block's 256 code bytes (pairs of t). */
function codeOffset(t: number, j: number): number {
  return (t >> 1) * 16 + j * 2 + (t & 1);
}

function packQuantized(engine: WasmKernels, tensor: WeightTensor, dtype: QuantDType, n: number, k: number): Packed {
  const format = QUANT_FORMATS[dtype];
  const blocks = k / QUANT_BLOCK;
  const panels = Math.ceil(n / PANEL_WIDTH);
  const blockStride = CODE_BYTES + PANEL_WIDTH * 4 * (format.hasMins ? 2 : 1);
  const byteLength = panels * blocks * blockStride;
  const offset = engine.heap.allocate(byteLength);
  const memory = engine.heap.memory.buffer;
  const out = new Uint8Array(memory, offset, byteLength);
  const floats = new Float32Array(memory, offset, byteLength / 4);
  out.fill(0);
  // Where code t of lane j lands, relative to its block: computed once, used for every block.
  const place = new Int32Array(PANEL_WIDTH * QUANT_BLOCK);
  for (let j = 0; j < PANEL_WIDTH; j++) for (let t = 0; t < QUANT_BLOCK; t++) place[j * QUANT_BLOCK + t] = codeOffset(t, j);
  const codes = new Int8Array(QUANT_BLOCK);
  const bytes = tensor.bytes;
  for (let row = 0; row < n; row++) {
    const j = row % PANEL_WIDTH;
    const panelStart = Math.floor(row / PANEL_WIDTH) * blocks * blockStride;
    for (let b = 0; b < blocks; b++) {
      const [scale, min] = format.decode(bytes, (row * blocks + b) * format.blockBytes, codes);
      const base = panelStart + b * blockStride;
      for (let t = 0; t < QUANT_BLOCK; t++) out[base + place[j * QUANT_BLOCK + t]!] = codes[t]! & 0xff;
      floats[(base + CODE_BYTES) / 4 + j] = scale;
      if (format.hasMins) floats[(base + CODE_BYTES) / 4 + PANEL_WIDTH + j] = min;
    }
  }
  return new Packed(engine, { dtype, layout: 'int8', n, k, offset, byteLength, panelBytes: blocks * blockStride, blockStride, zero: format.zero });
}

export interface PackOptions {
  /**
   * Keep f16 weights as halves (half the memory and bandwidth, widened in the kernel), unless the
   * tensor holds infinities or NaNs. Worth it where the product is bound by memory (a few rows).
   */
  keepHalf?: boolean;
  /**
   * 'tiles': f32/f16/bf16 weights go into Rockchip B tiles (run by assembly/matmul-tiles.ts) instead
   * of panels; quantized weights keep their int8 panels (no tiled integer kernel). keepHalf then
   * has no effect (the tiles hold f32).
   */
  layout?: 'panels' | 'tiles';
}

/**
 * Packs a 2-D weight [n, k] of any dtype into `engine`'s memory. Quantized rows must be whole
 * blocks of 32 (k % 32 = 0). `name` (the tensor's name) goes into error messages.
 */
export function packWeightTensor(engine: WasmKernels, tensor: WeightTensor, name = 'weight', options: PackOptions = {}): PackedTensor {
  const { dtype, shape } = tensor;
  if (shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw shapeError(`${name}: a matrix-product weight must be [n, k], got [${shape}]`);
  }
  const [n, k] = shape as [number, number];
  if (dtype in QUANT_FORMATS) {
    if (k % QUANT_BLOCK !== 0) throw shapeError(`${name}: ${dtype} weight [${n}, ${k}] has rows of ${k} values, not whole blocks of ${QUANT_BLOCK}`);
  } else if (dtype !== 'f32' && dtype !== 'f16' && dtype !== 'bf16') {
    throw new MurmurError('WASM_WEIGHTS', `${name}: no WASM matrix product for dtype ${String(dtype)}`);
  }
  const expected = tensorByteLength(dtype, shape);
  if (tensor.bytes.length !== expected) throw shapeError(`${name}: ${dtype} weight [${n}, ${k}] needs ${expected} bytes, got ${tensor.bytes.length}`);
  if (dtype in QUANT_FORMATS) return packQuantized(engine, tensor, dtype as QuantDType, n, k);
  if (options.layout === 'tiles') return packTiles(engine, tensor, n, k);
  if (dtype === 'f16' && options.keepHalf && !hasNonFiniteHalf(tensor.bytes)) return packHalf(engine, tensor, n, k);
  return packF32(engine, tensor, n, k);
}

type F32Kernel = (x: number, m: number, k: number, packed: number, n: number, bias: number, residual: number, y: number, yStride: number, flags: number) => void;
type QuantizeKernel = (x: number, m: number, k: number, codes: number, meta: number) => void;
type QuantKernel = (
  xCodes: number, meta: number, m: number, k: number, packed: number, n: number, blockStride: number, zero: number,
  bias: number, residual: number, y: number, yStride: number, flags: number,
) => void;

/** Kernel flags for packed weights (GELU added by the caller). */
export function quantFlags(packed: PackedTensor): number {
  return QUANT_FORMATS[packed.dtype as QuantDType]?.hasMins ? FLAG_MINS : 0;
}

/**
 * y [m, n] = epilogue(x [m, k] · Wᵀ + bias) for weights packed by `packWeightTensor` into this
 * engine; returns a new array. Single-threaded: the kernel runs on the calling thread.
 */
export function matmulPacked(engine: WasmKernels, x: Float32Array, m: number, packed: PackedTensor, epilogue: MatmulEpilogue = {}): Float32Array {
  if (!(packed instanceof Packed) || packed.owner !== engine) {
    throw new MurmurError('WASM_WEIGHTS', 'packed weights belong to a different WASM kernels instance (pack them with this one)');
  }
  const { n, k } = packed;
  const weights = packed.offset;
  if (!Number.isSafeInteger(m) || m < 0) throw shapeError(`matmul: rows (m) must be a non-negative integer, got ${m}`);
  if (x.length !== m * k) throw shapeError(`matmul: ${x.length} input values are not [${m}, ${k}] (weight [${n}, ${k}])`);
  const { bias, residual, gelu } = epilogue;
  if (bias && bias.length !== n) throw shapeError(`matmul: bias of ${bias.length} values for ${n} outputs`);
  if (residual && residual.length !== m * n) throw shapeError(`matmul: residual of ${residual.length} values does not match the output [${m}, ${n}]`);
  if (m === 0 || n === 0) return new Float32Array(m * n);

  const heap = engine.heap;
  const paddedBias = biasFloats(n);
  const quantized = packed.layout === 'int8';
  const tiled = packed.layout === 'tiles';
  const rowLength = tiled ? tiledRowLength(k) : k;
  const blocks = k / QUANT_BLOCK;
  const taken: number[] = [];
  const take = (bytes: number) => {
    const at = heap.allocate(bytes);
    taken.push(at);
    return at;
  };
  try {
    const xAt = take(m * rowLength * 4);
    const codesAt = quantized ? take(m * k * 2) : 0;
    const metaAt = quantized ? take(m * blocks * QUANT_META_BYTES) : 0;
    const biasAt = bias ? take(paddedBias * 4) : 0;
    const yAt = take(m * n * 4);
    const xIn = heap.f32(xAt, m * rowLength);
    if (rowLength === k) xIn.set(x);
    else {
      xIn.fill(0);
      for (let row = 0; row < m; row++) xIn.set(x.subarray(row * k, (row + 1) * k), row * rowLength);
    }
    if (bias) {
      const padded = heap.f32(biasAt, paddedBias);
      padded.set(bias);
      padded.fill(0, n);
    }
    // The residual is read and overwritten element by element, so it can start out in y.
    if (residual) heap.f32(yAt, m * n).set(residual);
    const residualAt = residual ? yAt : 0;
    const geluFlag = gelu ? FLAG_GELU : 0;
    if (quantized) {
      (engine.exports.quantizeRows as QuantizeKernel)(xAt, m, k, codesAt, metaAt);
      (engine.exports.matmulQuant as QuantKernel)(codesAt, metaAt, m, k, weights, n, packed.blockStride, packed.zero, biasAt, residualAt, yAt, n, quantFlags(packed) | geluFlag);
    } else if (tiled) {
      (engine.exports.matmulTiles as F32Kernel)(xAt, m, rowLength / ROCKCHIP_B_TILE_K, weights, n, biasAt, residualAt, yAt, n, geluFlag);
    } else {
      const kernel = packed.layout === 'f16' ? engine.exports.matmulHalf : engine.exports.matmul;
      (kernel as F32Kernel)(xAt, m, k, weights, n, biasAt, residualAt, yAt, n, geluFlag);
    }
    return heap.f32(yAt, m * n).slice();
  } finally {
    for (const at of taken.reverse()) heap.free(at);
  }
}

/**
 * A single-threaded kernels instance in a memory of its own (tests, benchmarks; the backend builds
 * its own over a shared memory). `relaxed` as for createWasmMatmul.
 */
export async function createWasmKernels(options: { relaxed?: boolean } = {}): Promise<WasmKernels> {
  const compiled = await compileKernel('kernels', KERNEL_BUILDS, options.relaxed === undefined ? {} : { relaxed: options.relaxed });
  const memory = createKernelMemory(compiled);
  const instance = await instantiateKernel('kernels', compiled.module, memory);
  const heap = new WasmHeap(memory, (instance.exports.heapBase as () => number)());
  return { variant: compiled.variant, exports: instance.exports, heap };
}
