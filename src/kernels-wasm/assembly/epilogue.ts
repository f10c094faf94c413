// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// The fused epilogue every matrix-product kernel ends with (f32 and quantized weights alike), on
// one row of one 8-column panel held as two vectors.

import { gelu, loadPartial, storePartial } from './simd';

const PANEL_WIDTH: i32 = 8;
const FLAG_GELU: i32 = 1;

/**
 * One row of one panel: add the bias, apply GELU, add the residual, store `cols` (1..8) columns.
 * `bias` points at the panel's 8 (padded) bias values or is 0.
 */
export function finish(lo: v128, hi: v128, bias: usize, flags: i32, residual: usize, y: usize, cols: i32): void {
  if (bias != 0) {
    lo = f32x4.add(lo, v128.load(bias));
    hi = f32x4.add(hi, v128.load(bias, 16));
  }
  if (flags & FLAG_GELU) {
    lo = gelu(lo);
    hi = gelu(hi);
  }
  if (cols == PANEL_WIDTH) {
    if (residual != 0) {
      lo = f32x4.add(lo, v128.load(residual));
      hi = f32x4.add(hi, v128.load(residual, 16));
    }
    v128.store(y, lo);
    v128.store(y, hi, 16);
    return;
  }
  const colsLo = min(cols, 4);
  const colsHi = cols - colsLo;
  if (residual != 0) {
    lo = f32x4.add(lo, loadPartial(residual, colsLo));
    hi = f32x4.add(hi, loadPartial(residual + 16, colsHi));
  }
  storePartial(y, lo, colsLo);
  storePartial(y + 16, hi, colsHi);
}
