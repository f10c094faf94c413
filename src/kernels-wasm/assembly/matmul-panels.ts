// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// The panel product both matmul.ts (f32 panels) and matmul-half.ts (half-float panels) run:
// y[m, n] = epilogue(x[m, k] · Wᵀ + bias), W packed into panels of PANEL_WIDTH output columns,
// panel p holding W[p·8 + j, i] at element index p·k·8 + i·8 + j, zero-padded past n. The
// micro-kernel keeps 4 rows × 8 columns of accumulators in registers, broadcasting one x value per
// row against the 8 weights of one step of k.
//
// The loops are generic over W, the packed weight's type: f32 (two vector loads per step of k)
// or u16, IEEE halves (one vector load per step, widened in-register). Everything that differs is
// in stepVector / lowWeights / highWeights, which compile away for each W.
//
// Every pointer is a byte offset into the imported memory, laid out by the TypeScript wrapper.
// Optional operands (bias, residual) are 0 when absent. Columns are addressed by pointer offsets
// and a separate row stride so a caller can split the work across threads by rows or panels.

import { finish } from './epilogue';
import { madd } from './simd';

export const PANEL_WIDTH: i32 = 8;
const ROW_BLOCK: i32 = 4;
/** Rows of x processed against every panel before moving on: about 128 KiB, kept in L2. */
const ROW_CHUNK_BYTES: i32 = 131072;

// Widening halves: WebAssembly SIMD has no half-float conversion, so each half is sign-extended to
// 32 bits and shifted left by 13, which puts the sign in bit 31 (from the sign extension) and the
// exponent and mantissa in bits 27..13; clearing bits 30..28 leaves a float whose value is the
// half's times 2⁻¹¹², and multiplying by 2¹¹² (a power of two: exact) gives the half's value, for
// subnormal halves too. Infinities and NaNs would come out finite, so the packer keeps a tensor
// holding any in the f32 layout. The widened weights equal decodeTensor's, so results equal the
// f32 kernel's bit for bit.
const HALF_BITS_MASK: i32 = 0x8fffe000;
/** 2¹¹² */
const HALF_SCALE: f32 = 5.192296858534828e33;

// @ts-ignore: decorator
@inline function widenLow(halves: v128): v128 {
  const bits = v128.and(i32x4.shl(i32x4.extend_low_i16x8_s(halves), 13), i32x4.splat(HALF_BITS_MASK));
  return f32x4.mul(bits, f32x4.splat(HALF_SCALE));
}

// @ts-ignore: decorator
@inline function widenHigh(halves: v128): v128 {
  const bits = v128.and(i32x4.shl(i32x4.extend_high_i16x8_s(halves), 13), i32x4.splat(HALF_BITS_MASK));
  return f32x4.mul(bits, f32x4.splat(HALF_SCALE));
}

/** Bytes of one step of k in a panel: 8 weights. */
// @ts-ignore: decorator
@inline function stepBytes<W>(): usize {
  return <usize>sizeof<W>() << 3;
}

/**
 * The first vector of step `step` (a literal 0 or 1) after `wp`: weights 0..3 of an f32 panel,
 * all 8 halves of a half panel. (Literal offsets, so every load keeps an immediate offset.)
 */
// @ts-ignore: decorator
@inline function stepVector<W>(wp: usize, step: i32): v128 {
  if (sizeof<W>() == 2) return step ? v128.load(wp, 16) : v128.load(wp);
  return step ? v128.load(wp, 32) : v128.load(wp);
}

/** Weights 0..3 of a step, as floats, from its first vector. */
// @ts-ignore: decorator
@inline function lowWeights<W>(vector: v128): v128 {
  if (sizeof<W>() == 2) return widenLow(vector);
  return vector;
}

/** Weights 4..7 of step `step` after `wp`, as floats: the high halves of its vector, or the f32 panel's next vector. */
// @ts-ignore: decorator
@inline function highWeights<W>(vector: v128, wp: usize, step: i32): v128 {
  if (sizeof<W>() == 2) return widenHigh(vector);
  return step ? v128.load(wp, 48) : v128.load(wp, 16);
}

/** Four rows × one panel. Row r of x starts at x + r·xStride, of y and residual at + r·yStride. */
function block4<W>(x: usize, xStride: usize, k: i32, w: usize, bias: usize, flags: i32, residual: usize, y: usize, yStride: usize, cols: i32): void {
  let c00 = f32x4.splat(0.0), c01 = f32x4.splat(0.0);
  let c10 = f32x4.splat(0.0), c11 = f32x4.splat(0.0);
  let c20 = f32x4.splat(0.0), c21 = f32x4.splat(0.0);
  let c30 = f32x4.splat(0.0), c31 = f32x4.splat(0.0);
  let x0 = x;
  const x1 = xStride, x2 = xStride * 2, x3 = xStride * 3;
  let wp = w;
  const end = x + (<usize>k << 2);
  while (x0 < end) {
    const vector = stepVector<W>(wp, 0);
    const w0 = lowWeights<W>(vector);
    const w1 = highWeights<W>(vector, wp, 0);
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
    wp += stepBytes<W>();
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
function block1<W>(x: usize, k: i32, w: usize, bias: usize, flags: i32, residual: usize, y: usize, cols: i32): void {
  let c0 = f32x4.splat(0.0), c1 = f32x4.splat(0.0);
  let d0 = f32x4.splat(0.0), d1 = f32x4.splat(0.0);
  let xp = x;
  let wp = w;
  const pairsEnd = x + (<usize>(k & ~1) << 2);
  while (xp < pairsEnd) {
    const a = v128.load32_splat(xp);
    const b = v128.load32_splat(xp, 4);
    const first = stepVector<W>(wp, 0);
    const second = stepVector<W>(wp, 1);
    c0 = madd(a, lowWeights<W>(first), c0);
    c1 = madd(a, highWeights<W>(first, wp, 0), c1);
    d0 = madd(b, lowWeights<W>(second), d0);
    d1 = madd(b, highWeights<W>(second, wp, 1), d1);
    xp += 8;
    wp += stepBytes<W>() * 2;
  }
  if (k & 1) {
    const a = v128.load32_splat(xp);
    const last = stepVector<W>(wp, 0);
    c0 = madd(a, lowWeights<W>(last), c0);
    c1 = madd(a, highWeights<W>(last, wp, 0), c1);
  }
  finish(f32x4.add(c0, d0), f32x4.add(c1, d1), bias, flags, residual, y, cols);
}

/**
 * y = epilogue(x · Wᵀ + bias) for `n` output columns.
 * x: m rows of k floats, contiguous. packed: ceil(n/8) panels of W (see the top). bias: ceil(n/8)·8
 * floats or 0. residual and y: m rows with a stride of `yStride` floats (≥ n). flags: 1 = GELU.
 */
// @ts-ignore: decorator
@inline export function panelMatmul<W>(x: usize, m: i32, k: i32, packed: usize, n: i32, bias: usize, residual: usize, y: usize, yStride: i32, flags: i32): void {
  const panels = (n + PANEL_WIDTH - 1) / PANEL_WIDTH;
  const xStride = <usize>k << 2;
  const yStrideBytes = <usize>yStride << 2;
  const panelBytes = <usize>k * stepBytes<W>();
  const chunk = max(ROW_BLOCK, (ROW_CHUNK_BYTES / max(k * 4, 1)) & ~(ROW_BLOCK - 1));
  for (let m0 = 0; m0 < m; m0 += chunk) {
    const m1 = min(m, m0 + chunk);
    for (let p = 0; p < panels; p++) {
      const cols = min(PANEL_WIDTH, n - p * PANEL_WIDTH);
      const w = packed + <usize>p * panelBytes;
      // A panel's 8 bias values and output columns are 32 bytes further on, whatever W is.
      const columnOffset = <usize>p << 5;
      const b = bias != 0 ? bias + columnOffset : 0;
      let r = m0;
      for (; r + ROW_BLOCK <= m1; r += ROW_BLOCK) {
        const rowOffset = <usize>r * yStrideBytes + columnOffset;
        block4<W>(x + <usize>r * xStride, xStride, k, w, b, flags, residual != 0 ? residual + rowOffset : 0, y + rowOffset, yStrideBytes, cols);
      }
      for (; r < m1; r++) {
        const rowOffset = <usize>r * yStrideBytes + columnOffset;
        block1<W>(x + <usize>r * xStride, k, w, b, flags, residual != 0 ? residual + rowOffset : 0, y + rowOffset, cols);
      }
    }
  }
}
