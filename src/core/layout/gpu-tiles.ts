/**
 * GPU tile-major weights: a linear weight W [N, K] as (N/TN, K/TK, TN, TK), so the TN × TK slice a
 * workgroup stages for one step of K is one contiguous run of memory (a coalesced read), and
 * padding N and K to whole tiles with zeros lets kernels read W with no bounds checks.
 *
 * The q8_0 form keeps ggml's blocks of 32 (TK is a multiple of 32) and puts each tile's scales
 * beside its quants, as u32 words:
 *   tile = [ TN · TK/32 scales, f32 bits, row-major (row, block) ]
 *          [ TN · TK/4 quant words, row-major (row, k/4), 4 int8 each, low byte first ]
 * The scales are ggml's f16 d widened to f32 (exact), so q · d is the value the reference decodes.
 * Padding tiles hold zero scales and zero quants, which widen to zeros.
 */
import type { WeightTensor } from '../model/weights.ts';
import { f16ToF32 } from '../model/dtype.ts';
import { checkDims, checkLength, checkTile, layoutError, roundUp } from './shape.ts';
import { packTileMajor, unpackTileMajor } from './tile-major.ts';

const LAYOUT = 'gpu tiles';

/** The tile the WGSL tile-major matmul consumes (src/kernels-wgsl/matmul-tiled-weights.ts). */
export const GPU_TILE_N = 64;
export const GPU_TILE_K = 32;
export const Q8_BLOCK = 32;
const Q8_BLOCK_BYTES = 34;

export interface GpuTileShape {
  tileN?: number;
  tileK?: number;
}

/** W [n, k] as (paddedN/tileN, paddedK/tileK, tileN, tileK) f32. */
export interface GpuTiledWeight {
  readonly data: Float32Array;
  readonly n: number;
  readonly k: number;
  readonly tileN: number;
  readonly tileK: number;
  readonly paddedN: number;
  readonly paddedK: number;
}

/** A q8_0 W [n, k] as tiles of u32 words, each tile's scales beside its quants (see the file comment). */
export interface GpuTiledQ8Weight {
  readonly words: Uint32Array;
  readonly n: number;
  readonly k: number;
  readonly tileN: number;
  readonly tileK: number;
  readonly paddedN: number;
  readonly paddedK: number;
  /** Words of one tile: tileN · tileK/32 scales, then tileN · tileK/4 quant words. */
  readonly wordsPerTile: number;
}

export function packGpuTiles(w: Float32Array, n: number, k: number, shape: GpuTileShape = {}): GpuTiledWeight {
  const tileN = shape.tileN ?? GPU_TILE_N;
  const tileK = shape.tileK ?? GPU_TILE_K;
  const { data, paddedRows, paddedCols } = packTileMajor(LAYOUT, w, n, k, tileN, tileK);
  return { data, n, k, tileN, tileK, paddedN: paddedRows, paddedK: paddedCols };
}

export function unpackGpuTiles(t: GpuTiledWeight): Float32Array {
  return unpackTileMajor(t.data, t.n, t.k, t.tileN, t.tileK);
}

/** A ggml q8_0 tensor [n, k] (k a multiple of 32) into tiles with their scales beside them. */
export function packGpuTilesQ8(tensor: WeightTensor, shape: GpuTileShape = {}): GpuTiledQ8Weight {
  const tileN = shape.tileN ?? GPU_TILE_N;
  const tileK = shape.tileK ?? GPU_TILE_K;
  checkTile(LAYOUT, 'tileN', tileN);
  checkTile(LAYOUT, 'tileK of a q8_0 weight', tileK, Q8_BLOCK);
  if (tensor.dtype !== 'q8_0' || tensor.shape.length !== 2) {
    throw layoutError(LAYOUT, `packGpuTilesQ8 takes a 2-D q8_0 tensor, got ${tensor.dtype} [${tensor.shape.join(', ')}]`);
  }
  const [n, k] = tensor.shape as [number, number];
  checkDims(LAYOUT, { n, k });
  if (k % Q8_BLOCK !== 0) throw layoutError(LAYOUT, `a q8_0 weight needs K a multiple of ${Q8_BLOCK}, got [${n}, ${k}]`);
  checkLength(LAYOUT, 'the q8_0 bytes', tensor.bytes.length, (n * k / Q8_BLOCK) * Q8_BLOCK_BYTES, `[${n}, ${k}] in q8_0`);

  const paddedN = roundUp(n, tileN);
  const paddedK = roundUp(k, tileK);
  const kTiles = paddedK / tileK;
  const blocksPerTileRow = tileK / Q8_BLOCK;
  const scaleWords = tileN * blocksPerTileRow;
  const wordsPerTile = scaleWords + (tileN * tileK) / 4;
  const words = new Uint32Array((paddedN / tileN) * kTiles * wordsPerTile);
  const floats = new Float32Array(words.buffer);
  const bytes = tensor.bytes;
  const blocksPerRow = k / Q8_BLOCK;
  for (let row = 0; row < n; row++) {
    for (let block = 0; block < blocksPerRow; block++) {
      const from = (row * blocksPerRow + block) * Q8_BLOCK_BYTES;
      const kk = block * Q8_BLOCK;
      const tile = (Math.floor(row / tileN) * kTiles + Math.floor(kk / tileK)) * wordsPerTile;
      const rowInTile = row % tileN;
      const blockInTile = (kk % tileK) / Q8_BLOCK;
      floats[tile + rowInTile * blocksPerTileRow + blockInTile] = f16ToF32(bytes[from]! | (bytes[from + 1]! << 8));
      const quants = tile + scaleWords + (rowInTile * tileK + (kk % tileK)) / 4;
      for (let w = 0; w < Q8_BLOCK / 4; w++) {
        const at = from + 2 + 4 * w;
        words[quants + w] = (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
      }
    }
  }
  return { words, n, k, tileN, tileK, paddedN, paddedK, wordsPerTile };
}

/** The int8 quant of value [row, col] and its block's scale, read from the tiles. */
function q8At(t: GpuTiledQ8Weight, floats: Float32Array, row: number, col: number): { q: number; scale: number } {
  const kTiles = t.paddedK / t.tileK;
  const blocksPerTileRow = t.tileK / Q8_BLOCK;
  const tile = (Math.floor(row / t.tileN) * kTiles + Math.floor(col / t.tileK)) * t.wordsPerTile;
  const rowInTile = row % t.tileN;
  const colInTile = col % t.tileK;
  const scale = floats[tile + rowInTile * blocksPerTileRow + Math.floor(colInTile / Q8_BLOCK)]!;
  const word = t.words[tile + t.tileN * blocksPerTileRow + Math.floor((rowInTile * t.tileK + colInTile) / 4)]!;
  const q = ((word >>> (8 * (colInTile % 4))) << 24) >> 24;
  return { q, scale };
}

/** The dequantized W [n, k] (q · d per value, as decodeTensor gives it). */
export function unpackGpuTilesQ8(t: GpuTiledQ8Weight): Float32Array {
  const floats = new Float32Array(t.words.buffer, t.words.byteOffset, t.words.length);
  const out = new Float32Array(t.n * t.k);
  for (let row = 0; row < t.n; row++) {
    for (let col = 0; col < t.k; col++) {
      const { q, scale } = q8At(t, floats, row, col);
      out[row * t.k + col] = q * scale;
    }
  }
  return out;
}

export interface TiledMatmulOptions {
  /** [n] values, added before GELU. */
  bias?: Float32Array;
}

/** y [m, n] = x [m, k] · Wᵀ (+ bias), reading W straight from its f32 tiles. */
export function gpuTilesMatmul(x: Float32Array, m: number, t: GpuTiledWeight, options: TiledMatmulOptions = {}): Float32Array {
  checkActivations(x, m, t.k, t.n, options);
  const kTiles = t.paddedK / t.tileK;
  const y = new Float32Array(m * t.n);
  for (let row = 0; row < m; row++) {
    for (let col = 0; col < t.n; col++) {
      let sum = 0;
      for (let kt = 0; kt < kTiles; kt++) {
        const tile = ((Math.floor(col / t.tileN) * kTiles + kt) * t.tileN + (col % t.tileN)) * t.tileK;
        for (let j = 0; j < t.tileK && kt * t.tileK + j < t.k; j++) sum += x[row * t.k + kt * t.tileK + j]! * t.data[tile + j]!;
      }
      y[row * t.n + col] = sum + (options.bias?.[col] ?? 0);
    }
  }
  return y;
}

/** y [m, n] = x [m, k] · Wᵀ (+ bias), W widened block by block from its q8_0 tiles. */
export function gpuTilesQ8Matmul(x: Float32Array, m: number, t: GpuTiledQ8Weight, options: TiledMatmulOptions = {}): Float32Array {
  checkActivations(x, m, t.k, t.n, options);
  const floats = new Float32Array(t.words.buffer, t.words.byteOffset, t.words.length);
  const y = new Float32Array(m * t.n);
  for (let col = 0; col < t.n; col++) {
    const row = new Float32Array(t.k);
    for (let i = 0; i < t.k; i++) {
      const { q, scale } = q8At(t, floats, col, i);
      row[i] = q * scale;
    }
    for (let r = 0; r < m; r++) {
      let sum = 0;
      for (let i = 0; i < t.k; i++) sum += x[r * t.k + i]! * row[i]!;
      y[r * t.n + col] = sum + (options.bias?.[col] ?? 0);
    }
  }
  return y;
}

function checkActivations(x: Float32Array, m: number, k: number, n: number, options: TiledMatmulOptions): void {
  checkDims(LAYOUT, { m });
  checkLength(LAYOUT, 'x', x.length, m * k, `[${m}, ${k}]`);
  if (options.bias) checkLength(LAYOUT, 'the bias', options.bias.length, n, `${n} outputs`);
}
