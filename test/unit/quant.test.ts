import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeBlocks, encodeBlocks } from '../../src/core/model/quant.ts';
import { decodeRows, decodeTensor, encodeTensor, f16ToF32 } from '../../src/core/model/dtype.ts';

type Quant = 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1';
const QUANTS: Quant[] = ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1'];
const BLOCK_BYTES: Record<Quant, number> = { q8_0: 34, q4_0: 18, q4_1: 20, q5_0: 22, q5_1: 24 };

function decodeOne(dtype: Quant, block: number[]): number[] {
  const out = new Float32Array(32);
  decodeBlocks(dtype, Uint8Array.from(block), out, 32);
  return [...out];
}

function encodeOne(dtype: Quant, values: number[]): number[] {
  const out = new Uint8Array(BLOCK_BYTES[dtype]);
  encodeBlocks(dtype, Float32Array.from(values), out);
  return [...out];
}

/** A 32-value block: `fill` everywhere except the given positions. */
function block(fill: number, at: Record<number, number>): number[] {
  const values = new Array<number>(32).fill(fill);
  for (const [i, v] of Object.entries(at)) values[Number(i)] = v;
  return values;
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

// ---- decoding hand-built blocks (expected values worked out from the format definition) ----

test('q8_0 decodes int8 quants times the f16 scale', () => {
  // d = 0.5 (f16 0x3800), quants 0, 1, -1, 127, -128, then zeros
  const bytes = [0x00, 0x38, 0x00, 0x01, 0xff, 0x7f, 0x80, ...new Array(27).fill(0)];
  assert.deepEqual(decodeOne('q8_0', bytes), block(0, { 1: 0.5, 2: -0.5, 3: 63.5, 4: -64 }));
});

test('q4_0 puts values 0..15 in the low nibbles and 16..31 in the high nibbles, offset by 8', () => {
  // d = 2 (0x4000); byte 0 = 0x1f: value 0 = (15-8)*2, value 16 = (1-8)*2; byte 1 = 0x80: value 1 = -16, value 17 = 0
  const bytes = [0x00, 0x40, 0x1f, 0x80, ...new Array(14).fill(0x88)];
  assert.deepEqual(decodeOne('q4_0', bytes), block(0, { 0: 14, 16: -14, 1: -16 }));
});

test('q4_1 decodes q*d + m', () => {
  // d = 0.25 (0x3400), m = -1 (0xbc00); byte 0 = 0xf0: value 0 = -1, value 16 = 15*0.25-1
  const bytes = [0x00, 0x34, 0x00, 0xbc, 0xf0, ...new Array(15).fill(0x44)];
  assert.deepEqual(decodeOne('q4_1', bytes), block(0, { 0: -1, 16: 2.75 }));
});

test('q5_0 takes the fifth bit of value j from bit j of the little-endian qh', () => {
  // d = 1; qh = bit 0 | bit 17; byte 0 = 0x21: value 0 = (1|16)-16 = 1, value 16 = 2-16;
  // byte 1 = 0x0f: value 1 = 15-16, value 17 = (0|16)-16 = 0; other bytes 0 with no high bit: -16
  const bytes = [0x00, 0x3c, 0x01, 0x00, 0x02, 0x00, 0x21, 0x0f, ...new Array(14).fill(0)];
  assert.deepEqual(decodeOne('q5_0', bytes), block(-16, { 0: 1, 16: -14, 1: -1, 17: 0 }));
});

test('q5_1 decodes five-bit quants times d plus m', () => {
  // d = 0.5 (0x3800), m = 10 (0x4900), qh = bit 31; byte 15 = 0xf3: value 15 = 3*0.5+10, value 31 = 31*0.5+10
  const bytes = [0x00, 0x38, 0x00, 0x49, 0x00, 0x00, 0x00, 0x80, ...new Array(15).fill(0), 0xf3];
  assert.deepEqual(decodeOne('q5_1', bytes), block(10, { 15: 11.5, 31: 25.5 }));
});

// ---- encoding: ggml's reference quantizers, byte for byte ----

test('q8_0 scales by max|x|/127 and rounds halves away from zero', () => {
  const values = block(0, { 0: 127, 1: -63.5, 2: 0.5, 3: -0.5, 4: 1.5, 5: -2.5 });
  assert.deepEqual(encodeOne('q8_0', values), [0x00, 0x3c, 0x7f, 0xc0, 0x01, 0xff, 0x02, 0xfd, ...new Array(26).fill(0)]);
});

test('q4_0 takes d from the first value of largest magnitude, d = max/-8, and clamps at 15', () => {
  // -8 comes before 8, so d = -8/-8 = 1; 8 → trunc(16.5) = 16 → 15; 1 → 9; 0.5 → trunc(9.0) = 9; 0.25 → 8
  const values = block(0, { 0: -8, 1: 8, 2: 1, 3: 0.5, 4: 0.25 });
  assert.deepEqual(encodeOne('q4_0', values), [0x00, 0x3c, 0x80, 0x8f, 0x89, 0x89, 0x88, ...new Array(11).fill(0x88)]);
  // With the positive value first, d = -1 and the roles swap: 8 → 0, -8 → 15.
  const swapped = block(0, { 0: 8, 1: -8 });
  assert.deepEqual(encodeOne('q4_0', swapped), [0x00, 0xbc, 0x80, 0x8f, ...new Array(14).fill(0x88)]);
});

test('q4_1 spans min..max in 15 steps and rounds halves up', () => {
  // min -1, max 0.875: d = 0.125 (0x3000), m = -1 (0xbc00), id = 8
  // 0.875 → 15; 0 → 8; -0.5 → 4; -0.9375 → trunc(0.5 + 0.5) = 1; -0.96875 → trunc(0.25 + 0.5) = 0
  const values = block(-1, { 1: 0.875, 2: 0, 3: -0.5, 4: -0.9375, 16: -0.96875 });
  assert.deepEqual(encodeOne('q4_1', values), [0x00, 0x30, 0x00, 0xbc, 0x00, 0x0f, 0x08, 0x04, 0x01, ...new Array(11).fill(0)]);
});

test('q5_0 uses d = max/-16, clamps at 31 and stores fifth bits in qh', () => {
  // max = -16: d = 1, q = trunc(x + 16.5): -16 → 0, 15 → 31, 16 → 32 → 31, 0 → 16, 1 → 17
  // qh = bits 1, 2, 3, 17 = 0x0002000e
  const values = block(-16, { 1: 15, 2: 16, 3: 0, 17: 1 });
  assert.deepEqual(encodeOne('q5_0', values), [0x00, 0x3c, 0x0e, 0x00, 0x02, 0x00, 0x00, 0x1f, 0x0f, 0x00, ...new Array(12).fill(0)]);
});

test('q5_1 spans min..max in 31 steps', () => {
  // min -1, max 2.875: d = 0.125, id = 8: 2.875 → 31, 1 → 16, -0.9375 → 1; qh = bits 0, 1
  const values = block(-1, { 0: 2.875, 1: 1, 16: -0.9375 });
  assert.deepEqual(encodeOne('q5_1', values), [0x00, 0x30, 0x00, 0xbc, 0x03, 0x00, 0x00, 0x00, 0x1f, ...new Array(15).fill(0)]);
});

test('blocks of zeros and constant blocks quantize without dividing by zero', () => {
  for (const dtype of QUANTS) {
    // The symmetric types store d = 0/-8 = -0 as ggml does, so compare values, not signs of zero.
    const decoded = decodeOne(dtype, encodeOne(dtype, new Array(32).fill(0))).map((v) => v + 0);
    assert.deepEqual(decoded, new Array(32).fill(0), dtype);
  }
  // q4_1/q5_1 keep a constant block exactly (as m) when it is an f16 value.
  assert.deepEqual(decodeOne('q4_1', encodeOne('q4_1', new Array(32).fill(1.5))), new Array(32).fill(1.5));
  assert.deepEqual(decodeOne('q5_1', encodeOne('q5_1', new Array(32).fill(-3))), new Array(32).fill(-3));
});

// ---- round trips of random data stay within each format's error bound ----

/** Bound on |scale - f16(scale)|: relative for normal halves, absolute in the subnormal range. */
const f16Error = (x: number) => x * 2 ** -11 + 2 ** -25;

test('random round trips stay within half a step (plus f16 scale error)', () => {
  const random = seeded(7);
  const blocks = 400;
  const values = new Float32Array(blocks * 32);
  for (let b = 0; b < blocks; b++) {
    const scale = 10 ** (random() * 4 - 3); // 0.001 .. 10
    const offset = b % 3 === 0 ? scale * (random() * 4 - 2) : 0; // some blocks far from zero
    for (let j = 0; j < 32; j++) values[b * 32 + j] = offset + scale * (random() * 2 - 1);
  }
  for (const dtype of QUANTS) {
    const tensor = encodeTensor(values, [blocks, 32], dtype);
    const decoded = decodeTensor(tensor);
    const size = BLOCK_BYTES[dtype];
    for (let b = 0; b < blocks; b++) {
      const d = Math.abs(f16ToF32(tensor.bytes[b * size]! | (tensor.bytes[b * size + 1]! << 8)));
      const hasMin = dtype === 'q4_1' || dtype === 'q5_1';
      const m = hasMin ? Math.abs(f16ToF32(tensor.bytes[b * size + 2]! | (tensor.bytes[b * size + 3]! << 8))) : 0;
      const levels = { q8_0: 127, q4_0: 8, q4_1: 15, q5_0: 16, q5_1: 31 }[dtype];
      // Symmetric types cannot reach +|max| when max is negative (and vice versa): one step there.
      let signedMax = 0;
      for (let j = 0; j < 32; j++) if (Math.abs(values[b * 32 + j]!) > Math.abs(signedMax)) signedMax = values[b * 32 + j]!;
      for (let j = 0; j < 32; j++) {
        const x = values[b * 32 + j]!;
        const error = Math.abs(decoded[b * 32 + j]! - x);
        const clamped = (dtype === 'q4_0' || dtype === 'q5_0') && Math.sign(x) === -Math.sign(signedMax) && Math.abs(x) > (levels - 0.5) * d;
        const bound = (clamped ? d : d / 2) + levels * f16Error(d) + f16Error(m) + Math.abs(x) * 2 ** -22;
        assert.ok(error <= bound, `${dtype} block ${b} value ${j}: |${decoded[b * 32 + j]} - ${x}| = ${error} > ${bound}`);
      }
    }
  }
});

test('decodeRows of a quantized matrix matches the same rows of decodeTensor', () => {
  const random = seeded(3);
  const values = Float32Array.from({ length: 10 * 64 }, () => random() - 0.5);
  for (const dtype of QUANTS) {
    const tensor = encodeTensor(values, [10, 64], dtype);
    const all = decodeTensor(tensor);
    const rows = decodeRows(tensor, 3, 4, new Float32Array(4 * 64));
    assert.deepEqual([...rows], [...all.subarray(3 * 64, 7 * 64)], dtype);
  }
});

test('partial blocks and short buffers are RangeErrors, not garbage', () => {
  assert.throws(() => decodeBlocks('q8_0', new Uint8Array(34), new Float32Array(31), 31), RangeError);
  assert.throws(() => decodeBlocks('q4_0', new Uint8Array(17), new Float32Array(32), 32), RangeError);
  assert.throws(() => encodeBlocks('q5_1', new Float32Array(40), new Uint8Array(48)), RangeError);
  assert.throws(() => decodeBlocks('f16', new Uint8Array(64), new Float32Array(32), 32), RangeError);
});

test('decoding a 51865 x 384 matrix takes well under a second', () => {
  const values = 51865 * 384;
  const random = seeded(11);
  for (const dtype of ['q8_0', 'q4_0'] as const) {
    const bytes = new Uint8Array((values / 32) * BLOCK_BYTES[dtype]);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (random() * 256) | 0;
    // Keep the scales finite so the output is ordinary numbers.
    for (let p = 0; p < bytes.length; p += BLOCK_BYTES[dtype]) bytes[p + 1]! &= 0x3b;
    const out = new Float32Array(values);
    const start = performance.now();
    decodeBlocks(dtype, bytes, out, values);
    const elapsed = performance.now() - start;
    assert.ok(elapsed < 1000, `${dtype} decode took ${elapsed.toFixed(0)} ms`);
    assert.ok(Number.isFinite(out[values - 1]!));
  }
});
