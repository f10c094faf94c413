// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// matmul.ts's product over weights kept as IEEE half floats: the decoder's per-token products are
// bound by memory bandwidth, and half the bytes per weight is nearly half the time. Panels hold
// W[p·8 + j, i] as a u16 at index p·k·8 + i·8 + j (16 bytes per step of k, one vector load),
// widened in-register by matmul-panels.ts to the very floats decodeTensor gives, so results equal
// the f32 kernel's bit for bit.

import { panelMatmul } from './matmul-panels';

/** As matmul.ts's `matmul`, over half-float panels (see the top). */
export function matmulHalf(x: usize, m: i32, k: i32, packed: usize, n: i32, bias: usize, residual: usize, y: usize, yStride: i32, flags: i32): void {
  panelMatmul<u16>(x, m, k, packed, n, bias, residual, y, yStride, flags);
}
