/**
 * The WASM-SIMD matrix product over weights in Rockchip's B layout (src/core/layout/
 * rockchip-tiles.ts): W [n, k] as (N/16, K/32, 16, 32) f32 tiles, packed once into the kernels
 * module's memory. Each call copies x in with its rows padded to whole tiles of K (the activation
 * packer at the op boundary), runs assembly/matmul-tiles.ts and copies y out, with the same fused
 * epilogue (bias, exact GELU, residual) as the panel kernel in matmul.ts, which stays the backend's.
 */
import { MurmurError } from '../core/errors.ts';
import { packRockchipB, ROCKCHIP_B_TILE_K, ROCKCHIP_B_TILE_N, type RockchipB } from '../core/layout/rockchip-tiles.ts';
import { WasmHeap } from './heap.ts';
import { loadKernel, type WasmVariant } from './instantiate.ts';
import { KERNEL_BUILDS } from './kernel-builds.ts';
import type { MatmulEpilogue, PackedWeights } from './matmul.ts';

type MatmulTilesExport = (
  x: number, m: number, kTiles: number, tiles: number, n: number,
  bias: number, residual: number, y: number, yStride: number, flags: number,
) => void;

const FLAG_GELU = 1;
/** The epilogue reads bias in vectors of 8 from a group of 4 columns: 4 floats of slack past the last tile. */
const BIAS_SLACK = 4;

export interface WasmTiledMatmul {
  readonly variant: WasmVariant;
  /** W is [n, k], row-major; packed with packRockchipB. */
  packWeights(values: Float32Array, n: number, k: number): PackedWeights;
  /** Weights packed already (f32 only). */
  loadTiles(tiles: RockchipB): PackedWeights;
  /** x is [m, k], row-major; returns y [m, n], a new array. */
  matmul(x: Float32Array, m: number, packed: PackedWeights, epilogue?: MatmulEpilogue): Float32Array;
  readonly allocatedBytes: number;
}

function shapeError(problem: string): MurmurError {
  return new MurmurError('SHAPE', problem);
}

class PackedTiles implements PackedWeights {
  readonly n: number;
  readonly k: number;
  readonly paddedK: number;
  readonly owner: WasmTiledMatmulImpl;
  #offset: number | undefined;

  constructor(owner: WasmTiledMatmulImpl, offset: number, tiles: RockchipB) {
    this.owner = owner;
    this.#offset = offset;
    this.n = tiles.n;
    this.k = tiles.k;
    this.paddedK = tiles.paddedK;
  }

  get released(): boolean {
    return this.#offset === undefined;
  }

  get offset(): number {
    if (this.#offset === undefined) throw new MurmurError('RELEASED', `packed tiles [${this.n}, ${this.k}] were used after release()`);
    return this.#offset;
  }

  release(): void {
    if (this.#offset === undefined) return;
    this.owner.heap.free(this.#offset);
    this.#offset = undefined;
  }
}

class WasmTiledMatmulImpl implements WasmTiledMatmul {
  readonly variant: WasmVariant;
  readonly heap: WasmHeap;
  readonly #kernel: MatmulTilesExport;

  constructor(variant: WasmVariant, heap: WasmHeap, kernel: MatmulTilesExport) {
    this.variant = variant;
    this.heap = heap;
    this.#kernel = kernel;
  }

  get allocatedBytes(): number {
    return this.heap.allocatedBytes;
  }

  packWeights(values: Float32Array, n: number, k: number): PackedWeights {
    return this.loadTiles(packRockchipB(values, n, k));
  }

  loadTiles(tiles: RockchipB): PackedWeights {
    if (!(tiles.data instanceof Float32Array)) throw shapeError(`matmulTiles: the WASM kernel reads f32 tiles, these are ${tiles.dtype}`);
    const offset = this.heap.allocate(tiles.data.byteLength);
    this.heap.f32(offset, tiles.data.length).set(tiles.data);
    return new PackedTiles(this, offset, tiles);
  }

  matmul(x: Float32Array, m: number, packed: PackedWeights, epilogue: MatmulEpilogue = {}): Float32Array {
    if (!(packed instanceof PackedTiles) || packed.owner !== this) {
      throw new MurmurError('WASM_WEIGHTS', 'packed tiles belong to a different WasmTiledMatmul (pack them with this one)');
    }
    const { n, k, paddedK } = packed;
    const tiles = packed.offset;
    if (!Number.isSafeInteger(m) || m < 0) throw shapeError(`matmulTiles: rows (m) must be a non-negative integer, got ${m}`);
    if (x.length !== m * k) throw shapeError(`matmulTiles: ${x.length} input values are not [${m}, ${k}] (weight [${n}, ${k}])`);
    const { bias, residual, gelu } = epilogue;
    if (bias && bias.length !== n) throw shapeError(`matmulTiles: bias of ${bias.length} values for ${n} outputs`);
    if (residual && residual.length !== m * n) throw shapeError(`matmulTiles: residual of ${residual.length} values does not match the output [${m}, ${n}]`);
    if (m === 0) return new Float32Array(0);

    const heap = this.heap;
    const biasLength = Math.ceil(n / ROCKCHIP_B_TILE_N) * ROCKCHIP_B_TILE_N + BIAS_SLACK;
    const xAt = heap.allocate(m * paddedK * 4);
    const biasAt = bias ? heap.allocate(biasLength * 4) : 0;
    const yAt = heap.allocate(m * n * 4);
    try {
      const padded = heap.f32(xAt, m * paddedK);
      if (paddedK === k) padded.set(x);
      else {
        padded.fill(0);
        for (let row = 0; row < m; row++) padded.set(x.subarray(row * k, (row + 1) * k), row * paddedK);
      }
      if (bias) {
        const b = heap.f32(biasAt, biasLength);
        b.fill(0);
        b.set(bias);
      }
      // The residual is read and overwritten element by element, so it can start out in y.
      if (residual) heap.f32(yAt, m * n).set(residual);
      this.#kernel(xAt, m, paddedK / ROCKCHIP_B_TILE_K, tiles, n, biasAt, residual ? yAt : 0, yAt, n, gelu ? FLAG_GELU : 0);
      return heap.f32(yAt, m * n).slice();
    } finally {
      heap.free(yAt);
      if (bias) heap.free(biasAt);
      heap.free(xAt);
    }
  }
}

/** Compiles the kernels module (relaxed SIMD where available) into a memory of its own. */
export async function createWasmTiledMatmul(options: { relaxed?: boolean } = {}): Promise<WasmTiledMatmul> {
  const { variant, exports, memory, heapBase } = await loadKernel('kernels', KERNEL_BUILDS, options.relaxed);
  return wasmTiledMatmulOver(variant, exports, new WasmHeap(memory, heapBase));
}

/** A WasmTiledMatmul over an existing instance of the kernels module, allocating from its heap. */
export function wasmTiledMatmulOver(variant: WasmVariant, exports: WebAssembly.Exports, heap: WasmHeap): WasmTiledMatmul {
  const columns = (exports.tileColumns as () => number)();
  const depth = (exports.tileDepth as () => number)();
  if (columns !== ROCKCHIP_B_TILE_N || depth !== ROCKCHIP_B_TILE_K) {
    throw new MurmurError('WASM_UNSUPPORTED', `the kernels module reads ${columns} × ${depth} tiles, the packer writes ${ROCKCHIP_B_TILE_N} × ${ROCKCHIP_B_TILE_K}`);
  }
  return new WasmTiledMatmulImpl(variant, heap, exports.matmulTiles as MatmulTilesExport);
}
