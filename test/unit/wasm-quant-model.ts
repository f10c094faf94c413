// A plain TypeScript model of the int8 matrix product in src/kernels-wasm/assembly/matmul-quant.ts,
// written from its stated arithmetic (not from the kernel): activations quantized per 32-block,
// exact integer block sums, f32 accumulation over blocks in order. Every f32 operation is one
// Math.fround of a double operation on f32 operands, which is exactly f32 arithmetic.
import type { WeightTensor } from '../../src/core/model/weights.ts';
import { f16ToF32 } from '../../src/core/model/dtype.ts';
import { gelu as referenceGelu } from '../../src/core/reference/math.ts';

const fround = Math.fround;
const BLOCK = 32;

export interface QuantizedActivations {
  codes: Int32Array;
  scales: Float32Array;
  sums: Int32Array;
}

/** Round to nearest, ties to even (WebAssembly's f32x4.nearest). */
function nearestEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function quantizeActivations(x: Float32Array, m: number, k: number): QuantizedActivations {
  const blocks = (m * k) / BLOCK;
  const codes = new Int32Array(m * k);
  const scales = new Float32Array(blocks);
  const sums = new Int32Array(blocks);
  for (let g = 0; g < blocks; g++) {
    let amax = 0;
    for (let t = 0; t < BLOCK; t++) {
      const a = Math.abs(x[g * BLOCK + t]!);
      amax = Number.isNaN(a) || Number.isNaN(amax) ? NaN : Math.max(amax, a);
    }
    const d = fround(amax / 127);
    const id = d !== 0 ? fround(1 / d) : 0;
    let sum = 0;
    for (let t = 0; t < BLOCK; t++) {
      const v = nearestEven(fround(x[g * BLOCK + t]! * id));
      const q = Number.isNaN(v) ? 0 : Math.max(-2147483648, Math.min(2147483647, v));
      codes[g * BLOCK + t] = q;
      sum += q;
    }
    scales[g] = d;
    sums[g] = sum;
  }
  return { codes, scales, sums };
}

export interface WeightCodes {
  /** n × k codes. */
  codes: Int32Array;
  /** n × k/32 scales and mins (mins 0 for the symmetric types). */
  scales: Float32Array;
  mins: Float32Array;
  zero: number;
  hasMins: boolean;
}

const half = (b: Uint8Array, at: number) => f16ToF32(b[at]! | (b[at + 1]! << 8));

/** Decodes ggml blocks to (code, scale, min) per value, so that value = scale·(code − zero) + min. */
export function weightCodes(tensor: WeightTensor): WeightCodes {
  const [n, k] = tensor.shape as [number, number];
  const blocks = (n * k) / BLOCK;
  const codes = new Int32Array(n * k);
  const scales = new Float32Array(blocks);
  const mins = new Float32Array(blocks);
  const b = tensor.bytes;
  const nib = (at: number, qh: number | undefined, out: number) => {
    for (let j = 0; j < 16; j++) {
      const lo = b[at + j]! & 15;
      const hi = b[at + j]! >> 4;
      codes[out + j] = qh === undefined ? lo : lo + 16 * ((qh >>> j) & 1);
      codes[out + j + 16] = qh === undefined ? hi : hi + 16 * ((qh >>> (j + 16)) & 1);
    }
  };
  const u32 = (at: number) => (b[at]! + b[at + 1]! * 256 + b[at + 2]! * 65536 + b[at + 3]! * 16777216);
  for (let g = 0; g < blocks; g++) {
    const out = g * BLOCK;
    switch (tensor.dtype) {
      case 'q8_0': {
        const at = g * 34;
        scales[g] = half(b, at);
        for (let t = 0; t < BLOCK; t++) codes[out + t] = b[at + 2 + t]! > 127 ? b[at + 2 + t]! - 256 : b[at + 2 + t]!;
        break;
      }
      case 'q4_0':
        scales[g] = half(b, g * 18);
        nib(g * 18 + 2, undefined, out);
        break;
      case 'q4_1':
        scales[g] = half(b, g * 20);
        mins[g] = half(b, g * 20 + 2);
        nib(g * 20 + 4, undefined, out);
        break;
      case 'q5_0':
        scales[g] = half(b, g * 22);
        nib(g * 22 + 6, u32(g * 22 + 2), out);
        break;
      case 'q5_1':
        scales[g] = half(b, g * 24);
        mins[g] = half(b, g * 24 + 2);
        nib(g * 24 + 8, u32(g * 24 + 4), out);
        break;
      default:
        throw new Error(`${tensor.dtype} is not block-quantized`);
    }
  }
  const zero = tensor.dtype === 'q4_0' ? 8 : tensor.dtype === 'q5_0' ? 16 : 0;
  return { codes, scales, mins, zero, hasMins: tensor.dtype === 'q4_1' || tensor.dtype === 'q5_1' };
}

/** The kernel's arithmetic, output by output; GELU by the reference formula (the kernel's is within ~1e-7). */
export function modelQuantMatmul(
  x: Float32Array, m: number, k: number, w: WeightTensor,
  epilogue: { bias?: Float32Array; gelu?: boolean; residual?: Float32Array } = {},
): Float32Array {
  const n = w.shape[0]!;
  const blocks = k / BLOCK;
  const a = quantizeActivations(x, m, k);
  const wc = weightCodes(w);
  const y = new Float32Array(m * n);
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < n; c++) {
      let acc = 0;
      for (let b = 0; b < blocks; b++) {
        let dot = 0;
        for (let t = 0; t < BLOCK; t++) dot += wc.codes[c * k + b * BLOCK + t]! * a.codes[r * k + b * BLOCK + t]!;
        dot -= wc.zero * a.sums[r * blocks + b]!;
        const dx = a.scales[r * blocks + b]!;
        acc = fround(acc + fround(fround(dot) * fround(wc.scales[c * blocks + b]! * dx)));
        if (wc.hasMins) acc = fround(acc + fround(wc.mins[c * blocks + b]! * fround(dx * a.sums[r * blocks + b]!)));
      }
      if (epilogue.bias) acc = fround(acc + epilogue.bias[c]!);
      if (epilogue.gelu) acc = fround(referenceGelu(acc));
      if (epilogue.residual) acc = fround(acc + epilogue.residual[r * n + c]!);
      y[r * n + c] = acc;
    }
  }
  return y;
}
