// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// PyTorch's nn.LayerNorm over each row: (x − mean) / √(biased variance + 1e-5) · gamma + beta.
// Two passes over the row (mean, then squared deviations) so a large mean does not cancel the
// variance away. y may be x (each value is read before it is overwritten).

import { loadPartial } from './simd';

const EPS: f64 = 1e-5;

/** Rows rowStart..rowEnd of x [rows, cols] into y; gamma and beta hold cols floats each. */
export function layerNorm(x: usize, gamma: usize, beta: usize, y: usize, cols: i32, rowStart: i32, rowEnd: i32): void {
  const rowBytes = <usize>cols << 2;
  const vectorEnd = <usize>(cols & ~3) << 2;
  const tail = cols & 3;
  for (let r = rowStart; r < rowEnd; r++) {
    const row = x + <usize>r * rowBytes;
    const out = y + <usize>r * rowBytes;
    let s0 = f32x4.splat(0.0), s1 = f32x4.splat(0.0);
    let i: usize = 0;
    for (; i + 32 <= vectorEnd; i += 32) {
      s0 = f32x4.add(s0, v128.load(row + i));
      s1 = f32x4.add(s1, v128.load(row + i, 16));
    }
    for (; i < vectorEnd; i += 16) s0 = f32x4.add(s0, v128.load(row + i));
    s0 = f32x4.add(f32x4.add(s0, s1), loadPartial(row + vectorEnd, tail));
    const mean = <f32>((<f64>f32x4.extract_lane(s0, 0) + <f64>f32x4.extract_lane(s0, 1) + <f64>f32x4.extract_lane(s0, 2) + <f64>f32x4.extract_lane(s0, 3)) / <f64>cols);

    const meanV = f32x4.splat(mean);
    let q0 = f32x4.splat(0.0), q1 = f32x4.splat(0.0);
    i = 0;
    for (; i + 32 <= vectorEnd; i += 32) {
      const d0 = f32x4.sub(v128.load(row + i), meanV);
      const d1 = f32x4.sub(v128.load(row + i, 16), meanV);
      q0 = f32x4.add(q0, f32x4.mul(d0, d0));
      q1 = f32x4.add(q1, f32x4.mul(d1, d1));
    }
    for (; i < vectorEnd; i += 16) {
      const d = f32x4.sub(v128.load(row + i), meanV);
      q0 = f32x4.add(q0, f32x4.mul(d, d));
    }
    // Padding lanes of the tail load are 0 − mean: mask them out before squaring.
    if (tail != 0) {
      const d = f32x4.sub(loadPartial(row + vectorEnd, tail), meanV);
      const lanes = i32x4(0, 1, 2, 3);
      const keep = i32x4.lt_s(lanes, i32x4.splat(tail));
      q0 = f32x4.add(q0, v128.and(f32x4.mul(d, d), keep));
    }
    q0 = f32x4.add(q0, q1);
    const squares = <f64>f32x4.extract_lane(q0, 0) + <f64>f32x4.extract_lane(q0, 1) + <f64>f32x4.extract_lane(q0, 2) + <f64>f32x4.extract_lane(q0, 3);
    const inverseStd = <f32>(1.0 / Math.sqrt(squares / <f64>cols + EPS));

    const scale = f32x4.splat(inverseStd);
    i = 0;
    for (; i < vectorEnd; i += 16) {
      const normed = f32x4.mul(f32x4.sub(v128.load(row + i), meanV), scale);
      v128.store(out + i, f32x4.add(f32x4.mul(normed, v128.load(gamma + i)), v128.load(beta + i)));
    }
    for (; i < rowBytes; i += 4) {
      store<f32>(out + i, (load<f32>(row + i) - mean) * inverseStd * load<f32>(gamma + i) + load<f32>(beta + i));
    }
  }
}
