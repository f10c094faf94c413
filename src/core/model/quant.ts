/**
 * whisper.cpp's ggml quantization blocks, 32 values each, byte-exact with ggml:
 *
 *   q8_0: f16 d, 32 × int8 q                      value = q·d
 *   q4_0: f16 d, 16 bytes of nibbles              value = (q − 8)·d
 *   q4_1: f16 d, f16 m, 16 bytes of nibbles       value = q·d + m
 *   q5_0: f16 d, u32 qh, 16 bytes of nibbles      value = (q − 16)·d, q's 5th bit from qh
 *   q5_1: f16 d, f16 m, u32 qh, 16 bytes          value = q·d + m
 *
 * Nibble order: byte j holds value j in its low nibble and value j + 16 in its high nibble;
 * bit j of qh is the 5th bit of value j.
 *
 * The encoders reproduce ggml's reference quantizers (the ones its quantize tool uses to write
 * model files), including their float32 arithmetic and truncating casts, so that a file we write
 * is the file whisper.cpp would write. Every intermediate goes through Math.fround: a single
 * +, −, ×, ÷ of float32 operands done in double and then rounded to float32 gives the float32
 * result exactly, so this matches C's float arithmetic step by step.
 */
import type { WeightDType } from './weights.ts';
import { f16ToF32, f32ToF16 } from './dtype.ts';

const BLOCK = 32;

type QuantDType = 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1';
const BLOCK_BYTES: Record<QuantDType, number> = { q8_0: 34, q4_0: 18, q4_1: 20, q5_0: 22, q5_1: 24 };

function blockBytes(dtype: WeightDType): number {
  const size = BLOCK_BYTES[dtype as QuantDType];
  if (size === undefined) throw new RangeError(`${dtype} is not a block-quantized dtype`);
  return size;
}

// A table makes widening a half a single load; decoding a vocabulary-sized matrix reads one per block.
let halfTable: Float32Array | undefined;
function halves(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = f16ToF32(h);
  }
  return halfTable;
}

/** Widen `count` values (whole blocks) of `dtype` blocks in `bytes` into `out`. */
export function decodeBlocks(dtype: WeightDType, bytes: Uint8Array, out: Float32Array, count: number): void {
  const size = blockBytes(dtype);
  if (count % BLOCK !== 0) throw new RangeError(`${count} values are not whole ${dtype} blocks of ${BLOCK}`);
  const blocks = count / BLOCK;
  if (bytes.length < blocks * size) throw new RangeError(`${blocks} ${dtype} blocks need ${blocks * size} bytes, got ${bytes.length}`);
  if (out.length < count) throw new RangeError(`output holds ${out.length} values, ${count} needed`);
  const half = halves();
  switch (dtype) {
    case 'q8_0':
      for (let b = 0, p = 0, o = 0; b < blocks; b++, p += 34, o += BLOCK) {
        const d = half[bytes[p]! | (bytes[p + 1]! << 8)]!;
        for (let j = 0; j < BLOCK; j++) out[o + j] = ((bytes[p + 2 + j]! << 24) >> 24) * d;
      }
      return;
    case 'q4_0':
      for (let b = 0, p = 0, o = 0; b < blocks; b++, p += 18, o += BLOCK) {
        const d = half[bytes[p]! | (bytes[p + 1]! << 8)]!;
        for (let j = 0; j < 16; j++) {
          const q = bytes[p + 2 + j]!;
          out[o + j] = ((q & 0x0f) - 8) * d;
          out[o + j + 16] = ((q >> 4) - 8) * d;
        }
      }
      return;
    case 'q4_1':
      for (let b = 0, p = 0, o = 0; b < blocks; b++, p += 20, o += BLOCK) {
        const d = half[bytes[p]! | (bytes[p + 1]! << 8)]!;
        const m = half[bytes[p + 2]! | (bytes[p + 3]! << 8)]!;
        for (let j = 0; j < 16; j++) {
          const q = bytes[p + 4 + j]!;
          out[o + j] = (q & 0x0f) * d + m;
          out[o + j + 16] = (q >> 4) * d + m;
        }
      }
      return;
    case 'q5_0':
      for (let b = 0, p = 0, o = 0; b < blocks; b++, p += 22, o += BLOCK) {
        const d = half[bytes[p]! | (bytes[p + 1]! << 8)]!;
        const qh = bytes[p + 2]! | (bytes[p + 3]! << 8) | (bytes[p + 4]! << 16) | (bytes[p + 5]! << 24);
        for (let j = 0; j < 16; j++) {
          const q = bytes[p + 6 + j]!;
          out[o + j] = (((q & 0x0f) | (((qh >>> j) & 1) << 4)) - 16) * d;
          out[o + j + 16] = (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d;
        }
      }
      return;
    case 'q5_1':
      for (let b = 0, p = 0, o = 0; b < blocks; b++, p += 24, o += BLOCK) {
        const d = half[bytes[p]! | (bytes[p + 1]! << 8)]!;
        const m = half[bytes[p + 2]! | (bytes[p + 3]! << 8)]!;
        const qh = bytes[p + 4]! | (bytes[p + 5]! << 8) | (bytes[p + 6]! << 16) | (bytes[p + 7]! << 24);
        for (let j = 0; j < 16; j++) {
          const q = bytes[p + 8 + j]!;
          out[o + j] = ((q & 0x0f) | (((qh >>> j) & 1) << 4)) * d + m;
          out[o + j + 16] = ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d + m;
        }
      }
      return;
  }
}

/** Narrow `values` (whole blocks) into `dtype` blocks in `out`, rounding exactly as ggml's reference quantizers. */
export function encodeBlocks(dtype: WeightDType, values: Float32Array, out: Uint8Array): void {
  const size = blockBytes(dtype);
  if (values.length % BLOCK !== 0) throw new RangeError(`${values.length} values are not whole ${dtype} blocks of ${BLOCK}`);
  const blocks = values.length / BLOCK;
  if (out.length < blocks * size) throw new RangeError(`${blocks} ${dtype} blocks need ${blocks * size} bytes, got ${out.length}`);
  const encode = ENCODERS[dtype as QuantDType];
  for (let b = 0; b < blocks; b++) encode(values, b * BLOCK, out, b * size);
}

type BlockEncoder = (x: Float32Array, at: number, out: Uint8Array, to: number) => void;

const fround = Math.fround;

/** C's float-to-small-integer cast: truncate toward zero (NaN, undefined in C, becomes 0 as on x86). */
function truncate(v: number): number {
  return v | 0;
}

function writeHalf(out: Uint8Array, to: number, value: number): void {
  const h = f32ToF16(value);
  out[to] = h & 0xff;
  out[to + 1] = h >>> 8;
}

function writeU32(out: Uint8Array, to: number, value: number): void {
  out[to] = value & 0xff;
  out[to + 1] = (value >>> 8) & 0xff;
  out[to + 2] = (value >>> 16) & 0xff;
  out[to + 3] = value >>> 24;
}

/** The value of largest magnitude, the first one on ties, as the symmetric quantizers pick it. */
function signedAbsMax(x: Float32Array, at: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < BLOCK; j++) {
    const v = x[at + j]!;
    const a = Math.abs(v);
    if (amax < a) {
      amax = a;
      max = v;
    }
  }
  return max;
}

function minMax(x: Float32Array, at: number): [number, number] {
  let min = 3.4028234663852886e38;
  let max = -3.4028234663852886e38;
  for (let j = 0; j < BLOCK; j++) {
    const v = x[at + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

const ENCODERS: Record<QuantDType, BlockEncoder> = {
  q8_0(x, at, out, to) {
    let amax = 0;
    for (let j = 0; j < BLOCK; j++) {
      const a = Math.abs(x[at + j]!);
      amax = amax > a ? amax : a;
    }
    const d = fround(amax / 127);
    const id = d !== 0 ? fround(1 / d) : 0; // C tests d != 0, so NaN stays NaN
    writeHalf(out, to, d);
    for (let j = 0; j < BLOCK; j++) {
      const v = fround(x[at + j]! * id);
      // roundf: halves away from zero.
      const q = v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
      out[to + 2 + j] = truncate(q) & 0xff;
    }
  },
  q4_0(x, at, out, to) {
    const d = fround(signedAbsMax(x, at) / -8);
    const id = d !== 0 ? fround(1 / d) : 0;
    writeHalf(out, to, d);
    for (let j = 0; j < 16; j++) {
      const lo = Math.min(15, (truncate(fround(fround(x[at + j]! * id) + 8.5)) << 24) >> 24);
      const hi = Math.min(15, (truncate(fround(fround(x[at + 16 + j]! * id) + 8.5)) << 24) >> 24);
      out[to + 2 + j] = (lo & 0xff) | ((hi << 4) & 0xff);
    }
  },
  q4_1(x, at, out, to) {
    const [min, max] = minMax(x, at);
    const d = fround(fround(max - min) / 15);
    const id = d !== 0 ? fround(1 / d) : 0;
    writeHalf(out, to, d);
    writeHalf(out, to + 2, min);
    for (let j = 0; j < 16; j++) {
      const lo = Math.min(15, (truncate(fround(fround(fround(x[at + j]! - min) * id) + 0.5)) << 24) >> 24);
      const hi = Math.min(15, (truncate(fround(fround(fround(x[at + 16 + j]! - min) * id) + 0.5)) << 24) >> 24);
      out[to + 4 + j] = (lo & 0xff) | ((hi << 4) & 0xff);
    }
  },
  q5_0(x, at, out, to) {
    const d = fround(signedAbsMax(x, at) / -16);
    const id = d !== 0 ? fround(1 / d) : 0;
    writeHalf(out, to, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const lo = Math.min(31, (truncate(fround(fround(x[at + j]! * id) + 16.5)) << 24) >> 24) & 0xff;
      const hi = Math.min(31, (truncate(fround(fround(x[at + 16 + j]! * id) + 16.5)) << 24) >> 24) & 0xff;
      out[to + 6 + j] = (lo & 0x0f) | ((hi & 0x0f) << 4);
      qh |= ((lo & 0x10) >> 4) << j;
      qh |= ((hi & 0x10) >> 4) << (j + 16);
    }
    writeU32(out, to + 2, qh >>> 0);
  },
  q5_1(x, at, out, to) {
    const [min, max] = minMax(x, at);
    const d = fround(fround(max - min) / 31);
    const id = d !== 0 ? fround(1 / d) : 0;
    writeHalf(out, to, d);
    writeHalf(out, to + 2, min);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const lo = truncate(fround(fround(fround(x[at + j]! - min) * id) + 0.5)) & 0xff;
      const hi = truncate(fround(fround(fround(x[at + 16 + j]! - min) * id) + 0.5)) & 0xff;
      out[to + 8 + j] = (lo & 0x0f) | ((hi & 0x0f) << 4);
      qh |= ((lo & 0x10) >> 4) << j;
      qh |= ((hi & 0x10) >> 4) << (j + 16);
    }
    writeU32(out, to + 4, qh >>> 0);
  },
};
