// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// y[m, n] = epilogue(x[m, k] · Wᵀ + bias), with W pre-packed into panels of PANEL_WIDTH output
// columns: panel p holds W[p·8 + j, i] at float index p·k·8 + i·8 + j, zero-padded past n. The
// micro-kernel keeps 4 rows × 8 columns of accumulators in registers, broadcasting one x value per
// row and loading two vectors of packed weights per step of k.
//
// With relaxed SIMD, multiply-add is one fused instruction (see simd.ts).
//
// Every pointer is a byte offset into the imported memory, laid out by the TypeScript wrapper.
// Optional operands (bias, residual) are 0 when absent. Columns are addressed by pointer offsets
// and a separate row stride so a caller can later split the work across threads by rows or panels.

import { finish } from './epilogue';
import { madd } from './simd';

const PANEL_WIDTH: i32 = 8;
const PANEL_BYTES_PER_K: usize = 32;
const ROW_BLOCK: i32 = 4;
/** Rows of x processed against every panel before moving on: about 128 KiB, kept in L2. */
const ROW_CHUNK_BYTES: i32 = 131072;

export function panelWidth(): i32 {
  return PANEL_WIDTH;
}

/** Four rows × one panel. Row r of x starts at x + r·xStride, of y and residual at + r·yStride. */
function block4(x: usize, xStride: usize, k: i32, w: usize, bias: usize, flags: i32, residual: usize, y: usize, yStride: usize, cols: i32): void {
  let c00 = f32x4.splat(0.0), c01 = f32x4.splat(0.0);
  let c10 = f32x4.splat(0.0), c11 = f32x4.splat(0.0);
  let c20 = f32x4.splat(0.0), c21 = f32x4.splat(0.0);
  let c30 = f32x4.splat(0.0), c31 = f32x4.splat(0.0);
  let x0 = x;
  const x1 = xStride, x2 = xStride * 2, x3 = xStride * 3;
  let wp = w;
  const end = x + (<usize>k << 2);
  while (x0 < end) {
    const w0 = v128.load(wp);
    const w1 = v128.load(wp, 16);
    let a = v128.load32_splat(x0);
    c00 = madd(a, w0, c00);
    c01 = madd(a, w1, c01);
    a = v128.load32_splat(x0 + x1);
    c10 = madd(a, w0, c10);
    c11 = madd(a, w1, c11);
    a = v128.load32_splat(x0 + x2);
    c20 = madd(a, w0, c20);
    c21 = madd(a, w1, c21);
    a = v128.load32_splat(x0 + x3);
    c30 = madd(a, w0, c30);
    c31 = madd(a, w1, c31);
    x0 += 4;
    wp += PANEL_BYTES_PER_K;
  }
  const r1 = residual != 0 ? residual + yStride : 0;
  const r2 = residual != 0 ? residual + yStride * 2 : 0;
  const r3 = residual != 0 ? residual + yStride * 3 : 0;
  finish(c00, c01, bias, flags, residual, y, cols);
  finish(c10, c11, bias, flags, r1, y + yStride, cols);
  finish(c20, c21, bias, flags, r2, y + yStride * 2, cols);
  finish(c30, c31, bias, flags, r3, y + yStride * 3, cols);
}

/** One row × one panel, two steps of k at a time so two chains of multiply-adds overlap. */
function block1(x: usize, k: i32, w: usize, bias: usize, flags: i32, residual: usize, y: usize, cols: i32): void {
  let c0 = f32x4.splat(0.0), c1 = f32x4.splat(0.0);
  let d0 = f32x4.splat(0.0), d1 = f32x4.splat(0.0);
  let xp = x;
  let wp = w;
  const pairsEnd = x + (<usize>(k & ~1) << 2);
  while (xp < pairsEnd) {
    const a = v128.load32_splat(xp);
    const b = v128.load32_splat(xp, 4);
    c0 = madd(a, v128.load(wp), c0);
    c1 = madd(a, v128.load(wp, 16), c1);
    d0 = madd(b, v128.load(wp, 32), d0);
    d1 = madd(b, v128.load(wp, 48), d1);
    xp += 8;
    wp += PANEL_BYTES_PER_K * 2;
  }
  if (k & 1) {
    const a = v128.load32_splat(xp);
    c0 = madd(a, v128.load(wp), c0);
    c1 = madd(a, v128.load(wp, 16), c1);
  }
  finish(f32x4.add(c0, d0), f32x4.add(c1, d1), bias, flags, residual, y, cols);
}

/**
 * y = epilogue(x · Wᵀ + bias) for `n` output columns.
 * x: m rows of k floats, contiguous. packed: ceil(n/8) panels (see the top). bias: ceil(n/8)·8
 * floats or 0. residual and y: m rows with a stride of `yStride` floats (≥ n). flags: 1 = GELU.
 */
export function matmul(x: usize, m: i32, k: i32, packed: usize, n: i32, bias: usize, residual: usize, y: usize, yStride: i32, flags: i32): void {
  const panels = (n + PANEL_WIDTH - 1) / PANEL_WIDTH;
  const xStride = <usize>k << 2;
  const yStrideBytes = <usize>yStride << 2;
  const panelBytes = <usize>k * PANEL_BYTES_PER_K;
  const chunk = max(ROW_BLOCK, (ROW_CHUNK_BYTES / max(k * 4, 1)) & ~(ROW_BLOCK - 1));
  for (let m0 = 0; m0 < m; m0 += chunk) {
    const m1 = min(m, m0 + chunk);
    for (let p = 0; p < panels; p++) {
      const cols = min(PANEL_WIDTH, n - p * PANEL_WIDTH);
      const w = packed + <usize>p * panelBytes;
      const b = bias != 0 ? bias + (<usize>p * PANEL_BYTES_PER_K) : 0;
      const columnOffset = <usize>p * PANEL_BYTES_PER_K;
      let r = m0;
      for (; r + ROW_BLOCK <= m1; r += ROW_BLOCK) {
        const rowOffset = <usize>r * yStrideBytes + columnOffset;
        block4(x + <usize>r * xStride, xStride, k, w, b, flags, residual != 0 ? residual + rowOffset : 0, y + rowOffset, yStrideBytes, cols);
      }
      for (; r < m1; r++) {
        const rowOffset = <usize>r * yStrideBytes + columnOffset;
        block1(x + <usize>r * xStride, k, w, b, flags, residual != 0 ? residual + rowOffset : 0, y + rowOffset, cols);
      }
    }
  }
}
