// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// matmul.ts's product over weights kept as IEEE half floats: the decoder's per-token products are
// bound by memory bandwidth, and half the bytes per weight is nearly half the time. Panels hold
// W[p·8 + j, i] as a u16 at index p·k·8 + i·8 + j (16 bytes per step of k, one vector load).
//
// WebAssembly SIMD has no half-float conversion, so each half is widened in-register: sign-extend
// to 32 bits and shift left by 13, which puts the sign in bit 31 (from the sign extension) and the
// exponent and mantissa in bits 27..13; clearing bits 30..28 leaves a float whose value is the
// half's times 2⁻¹¹², and multiplying by 2¹¹² (a power of two: exact) gives the half's value, for
// subnormal halves too. Infinities and NaNs would come out finite, so the packer keeps a tensor
// holding any in the f32 layout. The widened weights equal decodeTensor's, so results equal the
// f32 kernel's bit for bit.

import { finish } from './epilogue';
import { madd } from './simd';

const PANEL_WIDTH: i32 = 8;
const PANEL_BYTES_PER_K: usize = 16;
const ROW_BLOCK: i32 = 4;
const ROW_CHUNK_BYTES: i32 = 131072;
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
    const halves = v128.load(wp);
    const w0 = widenLow(halves);
    const w1 = widenHigh(halves);
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

/** One row × one panel: the products in the same order as matmul.ts's block1 (two chains, then their sum). */
function block1(x: usize, k: i32, w: usize, bias: usize, flags: i32, residual: usize, y: usize, cols: i32): void {
  let c0 = f32x4.splat(0.0), c1 = f32x4.splat(0.0);
  let d0 = f32x4.splat(0.0), d1 = f32x4.splat(0.0);
  let xp = x;
  let wp = w;
  const pairsEnd = x + (<usize>(k & ~1) << 2);
  while (xp < pairsEnd) {
    const a = v128.load32_splat(xp);
    const b = v128.load32_splat(xp, 4);
    const first = v128.load(wp);
    const second = v128.load(wp, 16);
    c0 = madd(a, widenLow(first), c0);
    c1 = madd(a, widenHigh(first), c1);
    d0 = madd(b, widenLow(second), d0);
    d1 = madd(b, widenHigh(second), d1);
    xp += 8;
    wp += PANEL_BYTES_PER_K * 2;
  }
  if (k & 1) {
    const a = v128.load32_splat(xp);
    const last = v128.load(wp);
    c0 = madd(a, widenLow(last), c0);
    c1 = madd(a, widenHigh(last), c1);
  }
  finish(f32x4.add(c0, d0), f32x4.add(c1, d1), bias, flags, residual, y, cols);
}

/** As matmul.ts's `matmul`, over half-float panels (see the top). */
export function matmulHalf(x: usize, m: i32, k: i32, packed: usize, n: i32, bias: usize, residual: usize, y: usize, yStride: i32, flags: i32): void {
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
      const b = bias != 0 ? bias + (<usize>p << 5) : 0;
      const columnOffset = <usize>p << 5;
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
