/**
 * Rockchip-style native matmul layouts (the RKNN NPU's): for C[M, N] = A[M, K] · B[K, N] with B
 * given as the linear weight W [N, K] (B = Wᵀ):
 * - A as (K/8, M, 8): panels of 8 consecutive k of every row;
 * - B (f32 or f16) as (N/16, K/32, 16, 32): tiles of 16 outputs × 32 inputs, each row-major;
 * - int8 B as (N/32, K/32, 32, 32), with one symmetric scale per output channel;
 * - C as (N/4, M, 4): panels of 4 consecutive outputs of every row.
 * K is padded to B's tile (32) in A and B alike, N to its tile in B and to 4 in C, all with zeros,
 * so a consumer walks whole tiles. The reference matmuls below read the packed arrays directly,
 * which pins the layouts' semantics independently of any kernel.
 */
import { f16ToF32, f32ToF16 } from '../model/dtype.ts';
import { checkDims, checkLength, layoutError, roundUp } from './shape.ts';
import { packColumnPanels, packTileMajor, unpackColumnPanels, unpackTileMajor } from './tile-major.ts';

const LAYOUT = 'rockchip tiles';

export const ROCKCHIP_A_GROUP = 8;
export const ROCKCHIP_B_TILE_N = 16;
export const ROCKCHIP_B_TILE_K = 32;
export const ROCKCHIP_INT8_TILE_N = 32;
export const ROCKCHIP_INT8_TILE_K = 32;
export const ROCKCHIP_C_GROUP = 4;

/** A [m, k] as (paddedK/8, m, 8). */
export interface RockchipA {
  readonly data: Float32Array;
  readonly m: number;
  readonly k: number;
  readonly paddedK: number;
}

/** W [n, k] (B = Wᵀ) as (paddedN/16, paddedK/32, 16, 32); f16 values are stored as their bits. */
export interface RockchipB {
  readonly dtype: 'f32' | 'f16';
  readonly data: Float32Array | Uint16Array;
  readonly n: number;
  readonly k: number;
  readonly paddedN: number;
  readonly paddedK: number;
}

/** W [n, k] quantized to int8 as (paddedN/32, paddedK/32, 32, 32); W[n, k] ≈ q · scales[n]. */
export interface RockchipInt8B {
  readonly data: Int8Array;
  /** [paddedN], zero for the padding rows. */
  readonly scales: Float32Array;
  readonly n: number;
  readonly k: number;
  readonly paddedN: number;
  readonly paddedK: number;
}

/** C [m, n] as (paddedN/4, m, 4). */
export interface RockchipC {
  readonly data: Float32Array;
  readonly m: number;
  readonly n: number;
  readonly paddedN: number;
}

/** Activations [m, k] → A tiles, K padded to `paddedK` (by default B's K tile, so A and B line up). */
export function packRockchipA(x: Float32Array, m: number, k: number, paddedK = roundUp(k, ROCKCHIP_B_TILE_K)): RockchipA {
  return { data: packColumnPanels(LAYOUT, x, m, k, ROCKCHIP_A_GROUP, paddedK), m, k, paddedK };
}

export function unpackRockchipA(a: RockchipA): Float32Array {
  return unpackColumnPanels(a.data, a.m, a.k, ROCKCHIP_A_GROUP);
}

/** Weights W [n, k] → B tiles, in f32 or as f16 bits. */
export function packRockchipB(w: Float32Array, n: number, k: number, dtype: 'f32' | 'f16' = 'f32'): RockchipB {
  const values = dtype === 'f16' ? Uint16Array.from(w, f32ToF16) : w;
  const { data, paddedRows, paddedCols } = packTileMajor(LAYOUT, values, n, k, ROCKCHIP_B_TILE_N, ROCKCHIP_B_TILE_K);
  return { dtype, data, n, k, paddedN: paddedRows, paddedK: paddedCols };
}

/** W [n, k] back from B tiles (f16 widened to f32). */
export function unpackRockchipB(b: RockchipB): Float32Array {
  const values = unpackTileMajor(b.data, b.n, b.k, ROCKCHIP_B_TILE_N, ROCKCHIP_B_TILE_K);
  return values instanceof Uint16Array ? Float32Array.from(values, f16ToF32) : values;
}

/** Weights W [n, k] → int8 B tiles, symmetric per output channel: scale = max|W[n, ·]| / 127. */
export function quantizeRockchipInt8B(w: Float32Array, n: number, k: number): RockchipInt8B {
  checkDims(LAYOUT, { n, k });
  checkLength(LAYOUT, 'the weight', w.length, n * k, `[${n}, ${k}]`);
  const quants = new Int8Array(n * k);
  const scales = new Float32Array(roundUp(n, ROCKCHIP_INT8_TILE_N));
  for (let row = 0; row < n; row++) {
    let peak = 0;
    for (let i = 0; i < k; i++) peak = Math.max(peak, Math.abs(w[row * k + i]!));
    const scale = Math.fround(peak / 127);
    scales[row] = scale;
    if (scale === 0) continue;
    for (let i = 0; i < k; i++) quants[row * k + i] = Math.max(-127, Math.min(127, Math.round(w[row * k + i]! / scale)));
  }
  return packRockchipInt8B(quants, scales.subarray(0, n), n, k);
}

/** Already-quantized int8 W [n, k] with its per-output scales [n] → int8 B tiles. */
export function packRockchipInt8B(quants: Int8Array, scales: Float32Array, n: number, k: number): RockchipInt8B {
  checkLength(LAYOUT, 'the scales', scales.length, n, `${n} output channels`);
  const { data, paddedRows, paddedCols } = packTileMajor(LAYOUT, quants, n, k, ROCKCHIP_INT8_TILE_N, ROCKCHIP_INT8_TILE_K);
  const padded = new Float32Array(paddedRows);
  padded.set(scales);
  return { data, scales: padded, n, k, paddedN: paddedRows, paddedK: paddedCols };
}

/** The int8 quants [n, k] back from int8 B tiles. */
export function unpackRockchipInt8B(b: RockchipInt8B): Int8Array {
  return unpackTileMajor(b.data, b.n, b.k, ROCKCHIP_INT8_TILE_N, ROCKCHIP_INT8_TILE_K);
}

/** Results [m, n] → C tiles. */
export function packRockchipC(y: Float32Array, m: number, n: number): RockchipC {
  const paddedN = roundUp(n, ROCKCHIP_C_GROUP);
  return { data: packColumnPanels(LAYOUT, y, m, n, ROCKCHIP_C_GROUP, paddedN), m, n, paddedN };
}

export function unpackRockchipC(c: RockchipC): Float32Array {
  return unpackColumnPanels(c.data, c.m, c.n, ROCKCHIP_C_GROUP);
}

/** C = A · B (B = Wᵀ) computed from the packed tiles alone; the padding contributes zeros. */
export function rockchipMatmul(a: RockchipA, b: RockchipB): RockchipC {
  checkPair(a, b);
  const weight = b.data instanceof Uint16Array ? Float32Array.from(b.data, f16ToF32) : b.data;
  return multiplyTiles(a, b, weight, ROCKCHIP_B_TILE_N, ROCKCHIP_B_TILE_K, () => 1);
}

/** C = A · dequantize(B) from int8 tiles: each output's sum of a·q times its channel's scale. */
export function rockchipMatmulInt8(a: RockchipA, b: RockchipInt8B): RockchipC {
  checkPair(a, b);
  return multiplyTiles(a, b, b.data, ROCKCHIP_INT8_TILE_N, ROCKCHIP_INT8_TILE_K, (col) => b.scales[col]!);
}

function checkPair(a: RockchipA, b: { n: number; k: number; paddedK: number }): void {
  if (a.k !== b.k || a.paddedK !== b.paddedK) {
    throw layoutError(LAYOUT, `A has k = ${a.k} (padded ${a.paddedK}), B has k = ${b.k} (padded ${b.paddedK}); pack A with B's padded K`);
  }
}

function multiplyTiles(
  a: RockchipA,
  b: { n: number; paddedN: number; paddedK: number },
  weight: Float32Array | Int8Array,
  tileN: number,
  tileK: number,
  scale: (col: number) => number,
): RockchipC {
  const { m, paddedK } = a;
  const kTiles = paddedK / tileK;
  const paddedN = roundUp(b.n, ROCKCHIP_C_GROUP);
  const c = new Float32Array((paddedN / ROCKCHIP_C_GROUP) * m * ROCKCHIP_C_GROUP);
  for (let row = 0; row < m; row++) {
    for (let col = 0; col < b.n; col++) {
      let sum = 0;
      for (let kt = 0; kt < kTiles; kt++) {
        const tile = ((Math.floor(col / tileN) * kTiles + kt) * tileN + (col % tileN)) * tileK;
        for (let j = 0; j < tileK; j++) {
          const kk = kt * tileK + j;
          sum += a.data[(Math.floor(kk / ROCKCHIP_A_GROUP) * m + row) * ROCKCHIP_A_GROUP + (kk % ROCKCHIP_A_GROUP)]! * weight[tile + j]!;
        }
      }
      c[(Math.floor(col / ROCKCHIP_C_GROUP) * m + row) * ROCKCHIP_C_GROUP + (col % ROCKCHIP_C_GROUP)] = sum * scale(col);
    }
  }
  return { data: c, m, n: b.n, paddedN };
}
