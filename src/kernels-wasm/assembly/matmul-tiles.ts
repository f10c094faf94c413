// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// y[m, n] = epilogue(x[m, k] · Wᵀ + bias) with W in Rockchip's B layout (src/core/layout/
// rockchip-tiles.ts): (N/16, K/32, 16, 32) f32, tiles of 16 output columns × 32 inputs, each
// tile row-major, zero-padded to whole tiles. A tile row is 32 consecutive k of one column, so
// the micro-kernel takes dot products: 2 rows × 4 columns of vector accumulators run along k,
// and one transposing reduction per output block turns them into a vector of 4 outputs for the
// shared epilogue. x arrives padded to whole tiles of K (the wrapper copies it so), so no loop
// has a tail along k.

import { finish } from './epilogue';
import { madd } from './simd';

const TILE_N: i32 = 16;
const TILE_K: i32 = 32;
const TILE_ROW_BYTES: usize = 128;
const TILE_BYTES: usize = 2048;
const GROUP: i32 = 4;
/** Rows of x processed against every tile column before moving on: about 128 KiB, kept in L2. */
const ROW_CHUNK_BYTES: i32 = 131072;

export function tileColumns(): i32 {
  return TILE_N;
}

export function tileDepth(): i32 {
  return TILE_K;
}

/** (Σa, Σb, Σc, Σd): the four accumulators' lane sums as one vector. */
// @ts-ignore: decorator
@inline function sum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/**
 * Two rows × four columns. x0 and x1 are rows of kTiles·32 floats; w is the first tile row of the
 * group's first column, the next columns 128 bytes on, the next tile of K 2048 bytes on.
 */
function block2(x0: usize, x1: usize, kTiles: i32, w: usize, bias: usize, flags: i32, residual: usize, yStride: usize, y: usize, cols: i32): void {
  let a0 = f32x4.splat(0.0), a1 = f32x4.splat(0.0), a2 = f32x4.splat(0.0), a3 = f32x4.splat(0.0);
  let b0 = f32x4.splat(0.0), b1 = f32x4.splat(0.0), b2 = f32x4.splat(0.0), b3 = f32x4.splat(0.0);
  let xp = x0;
  const second = x1 - x0;
  let tile = w;
  for (let t = 0; t < kTiles; t++) {
    let wp = tile;
    const end = xp + TILE_ROW_BYTES;
    while (xp < end) {
      const u = v128.load(xp);
      const v = v128.load(xp + second);
      const w0 = v128.load(wp);
      const w1 = v128.load(wp, 128);
      const w2 = v128.load(wp, 256);
      const w3 = v128.load(wp, 384);
      a0 = madd(u, w0, a0);
      a1 = madd(u, w1, a1);
      a2 = madd(u, w2, a2);
      a3 = madd(u, w3, a3);
      b0 = madd(v, w0, b0);
      b1 = madd(v, w1, b1);
      b2 = madd(v, w2, b2);
      b3 = madd(v, w3, b3);
      xp += 16;
      wp += 16;
    }
    tile += TILE_BYTES;
  }
  const zero = f32x4.splat(0.0);
  finish(sum4(a0, a1, a2, a3), zero, bias, flags, residual, y, cols);
  finish(sum4(b0, b1, b2, b3), zero, bias, flags, residual != 0 ? residual + yStride : 0, y + yStride, cols);
}

/** One row × four columns. */
function block1(x: usize, kTiles: i32, w: usize, bias: usize, flags: i32, residual: usize, y: usize, cols: i32): void {
  let a0 = f32x4.splat(0.0), a1 = f32x4.splat(0.0), a2 = f32x4.splat(0.0), a3 = f32x4.splat(0.0);
  let xp = x;
  let tile = w;
  for (let t = 0; t < kTiles; t++) {
    let wp = tile;
    const end = xp + TILE_ROW_BYTES;
    while (xp < end) {
      const u = v128.load(xp);
      a0 = madd(u, v128.load(wp), a0);
      a1 = madd(u, v128.load(wp, 128), a1);
      a2 = madd(u, v128.load(wp, 256), a2);
      a3 = madd(u, v128.load(wp, 384), a3);
      xp += 16;
      wp += 16;
    }
    tile += TILE_BYTES;
  }
  finish(sum4(a0, a1, a2, a3), f32x4.splat(0.0), bias, flags, residual, y, cols);
}

/**
 * y = epilogue(x · Wᵀ + bias) for `n` output columns.
 * x: m rows of kTiles·32 floats (zero past k). tiles: ceil(n/16) column tiles of kTiles tiles
 * each. bias: ceil(n/16)·16 + 4 floats or 0. residual and y: m rows with a stride of `yStride`
 * floats (≥ n). flags: 1 = GELU.
 */
export function matmulTiles(x: usize, m: i32, kTiles: i32, tiles: usize, n: i32, bias: usize, residual: usize, y: usize, yStride: i32, flags: i32): void {
  const columnTiles = (n + TILE_N - 1) / TILE_N;
  const xStride = <usize>kTiles * TILE_ROW_BYTES;
  const yStrideBytes = <usize>yStride << 2;
  const columnTileBytes = <usize>kTiles * TILE_BYTES;
  const chunk = max(2, (ROW_CHUNK_BYTES / max(<i32>xStride, 1)) & ~1);
  for (let m0 = 0; m0 < m; m0 += chunk) {
    const m1 = min(m, m0 + chunk);
    for (let p = 0; p < columnTiles; p++) {
      let r = m0;
      for (; r < m1; r += 2) {
        const pair = r + 1 < m1;
        const xr = x + <usize>r * xStride;
        for (let g = 0; g < TILE_N; g += GROUP) {
          const col = p * TILE_N + g;
          if (col >= n) break;
          const cols = min(GROUP, n - col);
          const w = tiles + <usize>p * columnTileBytes + <usize>g * TILE_ROW_BYTES;
          const b = bias != 0 ? bias + (<usize>col << 2) : 0;
          const rowOffset = <usize>r * yStrideBytes + (<usize>col << 2);
          const res = residual != 0 ? residual + rowOffset : 0;
          if (pair) block2(xr, xr + xStride, kTiles, w, b, flags, res, yStrideBytes, y + rowOffset, cols);
          else block1(xr, kTiles, w, b, flags, res, y + rowOffset, cols);
        }
      }
    }
  }
}
