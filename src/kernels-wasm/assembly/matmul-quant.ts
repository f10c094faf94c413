// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// y[m, n] = epilogue(x[m, k] · Wᵀ + bias) for block-quantized W (ggml q8_0, q4_0, q4_1, q5_0, q5_1),
// done as ggml does q8_0 × q8_0: every 32-value block of an activation row is quantized to int8
// codes q with one f32 scale dx (quantizeRows), the block's dot products are exact integer sums,
// and only their sum over blocks is f32:
//
//   y[r, c] = Σ_b  (dw[c, b] · dx[r, b]) · (Σ_t u[c, t] · q[r, t] − z · Σ_t q[r, t])
//                  + mw[c, b] · (dx[r, b] · Σ_t q[r, t])          (the second line: q4_1, q5_1 only)
//
// The weight of column c at t is dw·(u − z) + mw: u is its code (q8_0: signed, in [−128, 127];
// q4/q5: unsigned, in [0, 31]), z a zero point per tensor (8 for q4_0, 16 for q5_0, else 0).
//
// Packed W: panels of 8 output columns, zero-padded past n; panel p, block b, at
// packed + (p·blocks + b)·blockStride, holds 256 bytes of codes, then the 8 columns' dw (f32),
// then (with FLAG_MINS) their 8 mw. Codes are in pairs of t for i32x4.dot_i16x8_s: code t of
// column c at byte (t/2)·16 + c·2 + t%2, so one load8x8_s gives 4 columns × 2 values as i16 and
// one i32 splat of two i16 activation codes multiplies all of them. Integer sums are exact
// (|Σ| ≤ 32·128·127 < 2^24, so even their f32 conversion is).
//
// Why not relaxed SIMD's i32x4.relaxed_dot_i8x16_i7x16_add_s (16 multiply-adds per instruction):
// its second operand must lie in [0, 127], which q4/q5 codes (unsigned, ≤ 31, zero point moved
// into z·Σq above) satisfy, but q8_0's signed codes do not. That path was written and tested: on
// Node 20's V8 (relaxed SIMD behind a flag) the baseline compiler (Liftoff) and the optimizing
// one (TurboFan) returned different sums for the same operands in range, so it is not used until
// an engine where both agree can be tested. Both builds run this plain path.
//
// Activation metadata: 16 bytes per (row, block): dx (f32), Σq (i32), dx·Σq (f32), unused.

import { finish } from './epilogue';

const PANEL_WIDTH: i32 = 8;
const QBLOCK: i32 = 32;
const CODE_BYTES: usize = 256;
const META_BYTES: usize = 16;
const ROW_BLOCK: i32 = 4;
/** Rows of activation codes processed against every panel before moving on (about 128 KiB). */
const ROW_CHUNK_BYTES: i32 = 131072;

const FLAG_GELU: i32 = 1;
const FLAG_MINS: i32 = 2;

/**
 * Quantizes m rows of k floats (k a multiple of 32) block by block: dx = max|x| / 127,
 * q = round-half-even(x · (1/dx)) as ggml's SIMD quantize_row_q8_0 does (its scalar reference
 * rounds halves away from zero; ties are vanishingly rare and either is within the same bound),
 * but dx stays f32 where ggml stores it as f16. Codes are written as i16, two per pair step.
 * NaN in a block makes dx NaN, so it reaches the output instead of vanishing.
 */
export function quantizeRows(x: usize, m: i32, k: i32, codes: usize, meta: usize): void {
  const blocks = m * (k / QBLOCK);
  let xp = x;
  let cp = codes;
  let mp = meta;
  for (let g = 0; g < blocks; g++) {
    const v0 = v128.load(xp), v1 = v128.load(xp, 16), v2 = v128.load(xp, 32), v3 = v128.load(xp, 48);
    const v4 = v128.load(xp, 64), v5 = v128.load(xp, 80), v6 = v128.load(xp, 96), v7 = v128.load(xp, 112);
    let a = f32x4.max(
      f32x4.max(f32x4.max(f32x4.abs(v0), f32x4.abs(v1)), f32x4.max(f32x4.abs(v2), f32x4.abs(v3))),
      f32x4.max(f32x4.max(f32x4.abs(v4), f32x4.abs(v5)), f32x4.max(f32x4.abs(v6), f32x4.abs(v7))),
    );
    a = f32x4.max(a, v128.shuffle<f32>(a, a, 2, 3, 0, 1));
    a = f32x4.max(a, v128.shuffle<f32>(a, a, 1, 0, 3, 2));
    const d: f32 = f32x4.extract_lane(a, 0) / 127.0;
    const id: f32 = d != 0 ? <f32>1.0 / d : 0;
    const s = f32x4.splat(id);
    const q0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v0, s)));
    const q1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v1, s)));
    const q2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v2, s)));
    const q3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v3, s)));
    const q4 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v4, s)));
    const q5 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v5, s)));
    const q6 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v6, s)));
    const q7 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v7, s)));
    let sum = i32x4.add(i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3)), i32x4.add(i32x4.add(q4, q5), i32x4.add(q6, q7)));
    sum = i32x4.add(sum, v128.shuffle<i32>(sum, sum, 2, 3, 0, 1));
    sum = i32x4.add(sum, v128.shuffle<i32>(sum, sum, 1, 0, 3, 2));
    const total = i32x4.extract_lane(sum, 0);
    const h0 = i16x8.narrow_i32x4_s(q0, q1), h1 = i16x8.narrow_i32x4_s(q2, q3);
    const h2 = i16x8.narrow_i32x4_s(q4, q5), h3 = i16x8.narrow_i32x4_s(q6, q7);
    v128.store(cp, h0);
    v128.store(cp, h1, 16);
    v128.store(cp, h2, 32);
    v128.store(cp, h3, 48);
    cp += 64;
    store<f32>(mp, d);
    store<i32>(mp, total, 4);
    store<f32>(mp, d * <f32>total, 8);
    xp += 128;
    mp += META_BYTES;
  }
}

/** f32(Σ u·q − z·Σq) · (dw · dx): one block's contribution to four columns. */
// @ts-ignore: decorator
@inline function blockValue(dots: v128, zeroSum: v128, dw: v128, dx: v128): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(dots, zeroSum)), f32x4.mul(dw, dx));
}

/** acc + the dot products of one pair step: lane i gets a[0]·w[2i] + a[1]·w[2i+1]. */
// @ts-ignore: decorator
@inline function dotStep(acc: v128, a: v128, w: v128): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(a, w));
}

/** Four rows × one panel. Row r's codes start at xc + r·xStride, its metadata at meta + r·metaStride. */
function block4(xc: usize, xStride: usize, meta: usize, metaStride: usize, blocks: i32, w: usize, blockStride: usize, zero: i32, flags: i32, bias: usize, residual: usize, y: usize, yStride: usize, cols: i32): void {
  let f00 = f32x4.splat(0.0), f01 = f32x4.splat(0.0);
  let f10 = f32x4.splat(0.0), f11 = f32x4.splat(0.0);
  let f20 = f32x4.splat(0.0), f21 = f32x4.splat(0.0);
  let f30 = f32x4.splat(0.0), f31 = f32x4.splat(0.0);
  const x1 = xStride, x2 = xStride * 2, x3 = xStride * 3;
  const m1 = metaStride, m2 = metaStride * 2, m3 = metaStride * 3;
  let xb = xc;
  let mb = meta;
  let wb = w;
  for (let b = 0; b < blocks; b++) {
    let i00 = i32x4.splat(0), i01 = i32x4.splat(0);
    let i10 = i32x4.splat(0), i11 = i32x4.splat(0);
    let i20 = i32x4.splat(0), i21 = i32x4.splat(0);
    let i30 = i32x4.splat(0), i31 = i32x4.splat(0);
    let xp = xb;
    let wp = wb;
    const wEnd = wb + CODE_BYTES;
    while (wp < wEnd) {
      const w0 = v128.load8x8_s(wp);
      const w1 = v128.load8x8_s(wp, 8);
      let a = v128.load32_splat(xp);
      i00 = dotStep(i00, a, w0);
      i01 = dotStep(i01, a, w1);
      a = v128.load32_splat(xp + x1);
      i10 = dotStep(i10, a, w0);
      i11 = dotStep(i11, a, w1);
      a = v128.load32_splat(xp + x2);
      i20 = dotStep(i20, a, w0);
      i21 = dotStep(i21, a, w1);
      a = v128.load32_splat(xp + x3);
      i30 = dotStep(i30, a, w0);
      i31 = dotStep(i31, a, w1);
      xp += 4;
      wp += 16;
    }
    const dw0 = v128.load(wEnd), dw1 = v128.load(wEnd, 16);
    let dx = v128.load32_splat(mb);
    let zs = i32x4.splat(zero * load<i32>(mb, 4));
    f00 = f32x4.add(f00, blockValue(i00, zs, dw0, dx));
    f01 = f32x4.add(f01, blockValue(i01, zs, dw1, dx));
    dx = v128.load32_splat(mb + m1);
    zs = i32x4.splat(zero * load<i32>(mb + m1, 4));
    f10 = f32x4.add(f10, blockValue(i10, zs, dw0, dx));
    f11 = f32x4.add(f11, blockValue(i11, zs, dw1, dx));
    dx = v128.load32_splat(mb + m2);
    zs = i32x4.splat(zero * load<i32>(mb + m2, 4));
    f20 = f32x4.add(f20, blockValue(i20, zs, dw0, dx));
    f21 = f32x4.add(f21, blockValue(i21, zs, dw1, dx));
    dx = v128.load32_splat(mb + m3);
    zs = i32x4.splat(zero * load<i32>(mb + m3, 4));
    f30 = f32x4.add(f30, blockValue(i30, zs, dw0, dx));
    f31 = f32x4.add(f31, blockValue(i31, zs, dw1, dx));
    if (flags & FLAG_MINS) {
      const mw0 = v128.load(wEnd, 32), mw1 = v128.load(wEnd, 48);
      let sx = v128.load32_splat(mb, 8);
      f00 = f32x4.add(f00, f32x4.mul(mw0, sx));
      f01 = f32x4.add(f01, f32x4.mul(mw1, sx));
      sx = v128.load32_splat(mb + m1, 8);
      f10 = f32x4.add(f10, f32x4.mul(mw0, sx));
      f11 = f32x4.add(f11, f32x4.mul(mw1, sx));
      sx = v128.load32_splat(mb + m2, 8);
      f20 = f32x4.add(f20, f32x4.mul(mw0, sx));
      f21 = f32x4.add(f21, f32x4.mul(mw1, sx));
      sx = v128.load32_splat(mb + m3, 8);
      f30 = f32x4.add(f30, f32x4.mul(mw0, sx));
      f31 = f32x4.add(f31, f32x4.mul(mw1, sx));
    }
    xb += <usize>QBLOCK * 2;
    mb += META_BYTES;
    wb += blockStride;
  }
  const gelu = flags & FLAG_GELU;
  const r1 = residual != 0 ? residual + yStride : 0;
  const r2 = residual != 0 ? residual + yStride * 2 : 0;
  const r3 = residual != 0 ? residual + yStride * 3 : 0;
  finish(f00, f01, bias, gelu, residual, y, cols);
  finish(f10, f11, bias, gelu, r1, y + yStride, cols);
  finish(f20, f21, bias, gelu, r2, y + yStride * 2, cols);
  finish(f30, f31, bias, gelu, r3, y + yStride * 3, cols);
}

/** One row × one panel (the GEMV case): two chains of integer sums per half-panel. */
function block1(xc: usize, meta: usize, blocks: i32, w: usize, blockStride: usize, zero: i32, flags: i32, bias: usize, residual: usize, y: usize, cols: i32): void {
  let f0 = f32x4.splat(0.0), f1 = f32x4.splat(0.0);
  let xb = xc;
  let mb = meta;
  let wb = w;
  for (let b = 0; b < blocks; b++) {
    let i0 = i32x4.splat(0), i1 = i32x4.splat(0);
    let j0 = i32x4.splat(0), j1 = i32x4.splat(0);
    let xp = xb;
    let wp = wb;
    const wEnd = wb + CODE_BYTES;
    while (wp < wEnd) {
      const a = v128.load32_splat(xp);
      const c = v128.load32_splat(xp, 4);
      i0 = dotStep(i0, a, v128.load8x8_s(wp));
      i1 = dotStep(i1, a, v128.load8x8_s(wp, 8));
      j0 = dotStep(j0, c, v128.load8x8_s(wp, 16));
      j1 = dotStep(j1, c, v128.load8x8_s(wp, 24));
      xp += 8;
      wp += 32;
    }
    const dx = v128.load32_splat(mb);
    const zs = i32x4.splat(zero * load<i32>(mb, 4));
    f0 = f32x4.add(f0, blockValue(i32x4.add(i0, j0), zs, v128.load(wEnd), dx));
    f1 = f32x4.add(f1, blockValue(i32x4.add(i1, j1), zs, v128.load(wEnd, 16), dx));
    if (flags & FLAG_MINS) {
      const sx = v128.load32_splat(mb, 8);
      f0 = f32x4.add(f0, f32x4.mul(v128.load(wEnd, 32), sx));
      f1 = f32x4.add(f1, f32x4.mul(v128.load(wEnd, 48), sx));
    }
    xb += <usize>QBLOCK * 2;
    mb += META_BYTES;
    wb += blockStride;
  }
  finish(f0, f1, bias, flags & FLAG_GELU, residual, y, cols);
}

/**
 * y = epilogue(x · Wᵀ + bias) for `n` output columns, x given as quantizeRows' codes and metadata
 * . packed: ceil(n/8) panels of k/32 blocks of
 * `blockStride` bytes (see the top). bias: ceil(n/8)·8 floats or 0. residual and y: m rows with
 * a stride of `yStride` floats (≥ n). flags: 1 = GELU, 2 = per-block mins.
 */
export function matmulQuant(xCodes: usize, meta: usize, m: i32, k: i32, packed: usize, n: i32, blockStride: i32, zero: i32, bias: usize, residual: usize, y: usize, yStride: i32, flags: i32): void {
  const blocks = k / QBLOCK;
  const xStride = <usize>k << 1;
  const metaStride = <usize>blocks * META_BYTES;
  const yStrideBytes = <usize>yStride << 2;
  const stride = <usize>blockStride;
  const panelBytes = <usize>blocks * stride;
  const panels = (n + PANEL_WIDTH - 1) / PANEL_WIDTH;
  const chunk = max(ROW_BLOCK, (ROW_CHUNK_BYTES / max(<i32>xStride, 1)) & ~(ROW_BLOCK - 1));
  for (let m0 = 0; m0 < m; m0 += chunk) {
    const m1 = min(m, m0 + chunk);
    for (let p = 0; p < panels; p++) {
      const cols = min(PANEL_WIDTH, n - p * PANEL_WIDTH);
      const w = packed + <usize>p * panelBytes;
      const columnOffset = <usize>p * PANEL_WIDTH * 4;
      const b = bias != 0 ? bias + columnOffset : 0;
      let r = m0;
      for (; r + ROW_BLOCK <= m1; r += ROW_BLOCK) {
        const rowOffset = <usize>r * yStrideBytes + columnOffset;
        const res = residual != 0 ? residual + rowOffset : 0;
        const xr = xCodes + <usize>r * xStride;
        const mr = meta + <usize>r * metaStride;
        block4(xr, xStride, mr, metaStride, blocks, w, stride, zero, flags, b, res, y + rowOffset, yStrideBytes, cols);
      }
      for (; r < m1; r++) {
        const rowOffset = <usize>r * yStrideBytes + columnOffset;
        const res = residual != 0 ? residual + rowOffset : 0;
        const xr = xCodes + <usize>r * xStride;
        const mr = meta + <usize>r * metaStride;
        block1(xr, mr, blocks, w, stride, zero, flags, b, res, y + rowOffset, cols);
      }
    }
  }
}
