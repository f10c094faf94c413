// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// y[m, n] = epilogue(x[m, k] · Wᵀ + bias), with W pre-packed into f32 panels of PANEL_WIDTH output
// columns: panel p holds W[p·8 + j, i] at float index p·k·8 + i·8 + j, zero-padded past n. The
// loops are matmul-panels.ts's, loading two vectors of packed weights per step of k.
//
// With relaxed SIMD, multiply-add is one fused instruction (see simd.ts).

import { panelMatmul, PANEL_WIDTH } from './matmul-panels';

export function panelWidth(): i32 {
  return PANEL_WIDTH;
}

/**
 * y = epilogue(x · Wᵀ + bias) for `n` output columns.
 * x: m rows of k floats, contiguous. packed: ceil(n/8) panels (see the top). bias: ceil(n/8)·8
 * floats or 0. residual and y: m rows with a stride of `yStride` floats (≥ n). flags: 1 = GELU.
 */
export function matmul(x: usize, m: i32, k: i32, packed: usize, n: i32, bias: usize, residual: usize, y: usize, yStride: i32, flags: i32): void {
  panelMatmul<f32>(x, m, k, packed, n, bias, residual, y, yStride, flags);
}
