/**
 * Element types of weights, and the conversions between them and f32.
 *
 * `encodeTensor` and `decodeTensor` are the one place that knows every dtype's byte layout:
 * loaders keep file bytes as they are, backends and the synthetic-model writers go through here.
 * Quantized types are whisper.cpp's ggml blocks of 32 values along a row.
 */
import type { WeightDType, WeightTensor } from './weights.ts';
import { elementCount } from './weights.ts';
import { decodeBlocks, encodeBlocks } from './quant.ts';

/** Values per block and bytes per block; plain float types are blocks of one value. */
export const DTYPE_LAYOUT: Record<WeightDType, { blockValues: number; blockBytes: number }> = {
  f32: { blockValues: 1, blockBytes: 4 },
  f16: { blockValues: 1, blockBytes: 2 },
  bf16: { blockValues: 1, blockBytes: 2 },
  q8_0: { blockValues: 32, blockBytes: 34 },
  q4_0: { blockValues: 32, blockBytes: 18 },
  q4_1: { blockValues: 32, blockBytes: 20 },
  q5_0: { blockValues: 32, blockBytes: 22 },
  q5_1: { blockValues: 32, blockBytes: 24 },
};

export function isQuantized(dtype: WeightDType): boolean {
  return DTYPE_LAYOUT[dtype].blockValues > 1;
}

/** Bytes a tensor of this shape and dtype occupies; quantized rows must be whole blocks. */
export function tensorByteLength(dtype: WeightDType, shape: readonly number[]): number {
  const { blockValues, blockBytes } = DTYPE_LAYOUT[dtype];
  const n = elementCount(shape);
  if (n % blockValues !== 0) throw new RangeError(`${n} values are not whole ${dtype} blocks of ${blockValues}`);
  return (n / blockValues) * blockBytes;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE half (as its 16 bits) to a number; exact. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** A number to IEEE half bits, rounding to nearest even, overflowing to infinity. */
export function f32ToF16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  let e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function bf16ToF32(b: number): number {
  u32Scratch[0] = b << 16;
  return f32Scratch[0]!;
}

/** Round to nearest even on the dropped 16 bits, keeping NaN a NaN. */
export function f32ToBf16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

let f16Values: Float32Array | undefined;
/** Every half's f32 value (256 KiB, built on first use): widening f16 weights row by row is hot. */
function f16Table(): Float32Array {
  if (!f16Values) {
    f16Values = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Values[h] = f16ToF32(h);
  }
  return f16Values;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Widen `rowCount` rows starting at `rowStart` of a tensor to f32, into `out` (length rowCount × rowLength).
 * Rows are along the last axis; this is how the reference backend reads quantized weights
 * without ever widening a whole matrix.
 */
export function decodeRows(tensor: WeightTensor, rowStart: number, rowCount: number, out: Float32Array): Float32Array {
  const rowLength = tensor.shape[tensor.shape.length - 1] ?? 1;
  const { blockValues, blockBytes } = DTYPE_LAYOUT[tensor.dtype];
  const firstValue = rowStart * rowLength;
  const valueCount = rowCount * rowLength;
  const byteStart = (firstValue / blockValues) * blockBytes;
  const byteEnd = byteStart + (valueCount / blockValues) * blockBytes;
  decodeValues(tensor.dtype, tensor.bytes.subarray(byteStart, byteEnd), out, valueCount);
  return out;
}

/** The whole tensor as f32. */
export function decodeTensor(tensor: WeightTensor): Float32Array {
  const n = elementCount(tensor.shape);
  const out = new Float32Array(n);
  decodeValues(tensor.dtype, tensor.bytes, out, n);
  return out;
}

function decodeValues(dtype: WeightDType, bytes: Uint8Array, out: Float32Array, count: number): void {
  const dv = view(bytes);
  switch (dtype) {
    case 'f32':
      for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, true);
      return;
    case 'f16': {
      const table = f16Table();
      for (let i = 0; i < count; i++) out[i] = table[dv.getUint16(i * 2, true)]!;
      return;
    }
    case 'bf16':
      for (let i = 0; i < count; i++) out[i] = bf16ToF32(dv.getUint16(i * 2, true));
      return;
    default:
      decodeBlocks(dtype, bytes, out, count);
  }
}

/** Narrow f32 values into a tensor of `dtype` (the synthetic-model writers and load-time requantization use this). */
export function encodeTensor(values: Float32Array, shape: number[], dtype: WeightDType): WeightTensor {
  const n = elementCount(shape);
  if (values.length !== n) throw new RangeError(`${values.length} values for shape [${shape}]`);
  const bytes = new Uint8Array(tensorByteLength(dtype, shape));
  const dv = view(bytes);
  switch (dtype) {
    case 'f32':
      for (let i = 0; i < n; i++) dv.setFloat32(i * 4, values[i]!, true);
      break;
    case 'f16':
      for (let i = 0; i < n; i++) dv.setUint16(i * 2, f32ToF16(values[i]!), true);
      break;
    case 'bf16':
      for (let i = 0; i < n; i++) dv.setUint16(i * 2, f32ToBf16(values[i]!), true);
      break;
    default:
      encodeBlocks(dtype, values, bytes);
  }
  return { dtype, shape: [...shape], bytes };
}
