// Rockchip-style tiles (src/core/layout/rockchip-tiles.ts): every packer round-trips on awkward
// shapes with zeros in the padding, and the matmuls that read only the packed tiles equal the
// reference linear on the row-major inputs (f32, f16-rounded and int8-quantized weights).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MurmurError } from '../../src/core/errors.ts';
import { f16ToF32, f32ToF16 } from '../../src/core/model/dtype.ts';
import {
  packRockchipA,
  packRockchipB,
  packRockchipC,
  packRockchipInt8B,
  quantizeRockchipInt8B,
  rockchipMatmul,
  rockchipMatmulInt8,
  unpackRockchipA,
  unpackRockchipB,
  unpackRockchipC,
  unpackRockchipInt8B,
} from '../../src/core/layout/index.ts';
import { assertClose } from './wasm-ops-fixture.ts';
import { LAYOUT_SHAPES, layoutProblem, nonZeros, referenceLinearF32 } from './layout-fixture.ts';

const roundUp = (v: number, to: number) => Math.ceil(v / to) * to;

for (const [m, k, n] of LAYOUT_SHAPES) {
  test(`${m}×${k}×${n}: A, B (f32, f16), int8 B and C round-trip, padded with zeros to their tiles`, () => {
    const { x, w } = layoutProblem(m, k, n);
    const a = packRockchipA(x, m, k);
    assert.equal(a.paddedK, roundUp(k, 32));
    assert.equal(a.data.length, (a.paddedK / 8) * m * 8, 'A is (K/8, M, 8)');
    assert.deepEqual(unpackRockchipA(a), x);
    assert.equal(nonZeros(a.data), nonZeros(x), 'the padding of A is zero');
    // Spot-check the index formula on the last value: (k / 8, m, k % 8).
    assert.equal(a.data[(Math.floor((k - 1) / 8) * m + (m - 1)) * 8 + ((k - 1) % 8)], x[m * k - 1]);

    const b = packRockchipB(w, n, k);
    assert.deepEqual([b.paddedN, b.paddedK], [roundUp(n, 16), roundUp(k, 32)]);
    assert.equal(b.data.length, b.paddedN * b.paddedK, 'B is (N/16, K/32, 16, 32)');
    assert.deepEqual(unpackRockchipB(b), w);
    assert.equal(nonZeros(b.data), nonZeros(w), 'the padding of B is zero');
    const kTiles = b.paddedK / 32;
    assert.equal(b.data[((Math.floor((n - 1) / 16) * kTiles + Math.floor((k - 1) / 32)) * 16 + ((n - 1) % 16)) * 32 + ((k - 1) % 32)], w[n * k - 1]);

    const half = packRockchipB(w, n, k, 'f16');
    assert.ok(half.data instanceof Uint16Array);
    assert.deepEqual(unpackRockchipB(half), Float32Array.from(w, (v) => f16ToF32(f32ToF16(v))));

    const int8 = quantizeRockchipInt8B(w, n, k);
    assert.deepEqual([int8.paddedN, int8.paddedK], [roundUp(n, 32), roundUp(k, 32)]);
    assert.equal(int8.data.length, int8.paddedN * int8.paddedK, 'int8 B is (N/32, K/32, 32, 32)');
    const quants = unpackRockchipInt8B(int8);
    assert.deepEqual(unpackRockchipInt8B(packRockchipInt8B(quants, int8.scales.subarray(0, n), n, k)), quants);
    for (let i = 0; i < n * k; i++) {
      const scale = int8.scales[Math.floor(i / k)]!;
      assert.ok(Math.abs(quants[i]! * scale - w[i]!) <= scale / 2 + 1e-7, `int8 value ${i} within half a step`);
    }
    assert.ok(int8.scales.subarray(n).every((s) => s === 0), 'padding channels have zero scales');

    const y = Float32Array.from({ length: m * n }, (_, i) => i - 3.5);
    const c = packRockchipC(y, m, n);
    assert.equal(c.data.length, (roundUp(n, 4) / 4) * m * 4, 'C is (N/4, M, 4)');
    assert.deepEqual(unpackRockchipC(c), y);
  });

  test(`${m}×${k}×${n}: matmuls over packed A and B tiles equal the reference linear`, () => {
    const { x, w } = layoutProblem(m, k, n, 2);
    const a = packRockchipA(x, m, k);
    const expected = referenceLinearF32(x, m, k, w, n);
    assertClose(unpackRockchipC(rockchipMatmul(a, packRockchipB(w, n, k))), expected, 1e-5, 'f32 B');

    const rounded = Float32Array.from(w, (v) => f16ToF32(f32ToF16(v)));
    assertClose(unpackRockchipC(rockchipMatmul(a, packRockchipB(w, n, k, 'f16'))), referenceLinearF32(x, m, k, rounded, n), 1e-5, 'f16 B');

    const int8 = quantizeRockchipInt8B(w, n, k);
    const quants = unpackRockchipInt8B(int8);
    const dequantized = Float32Array.from(quants, (q, i) => q * int8.scales[Math.floor(i / k)]!);
    assertClose(unpackRockchipC(rockchipMatmulInt8(a, int8)), referenceLinearF32(x, m, k, dequantized, n), 1e-5, 'int8 B');
  });
}

test('mismatched or misshapen inputs are refused with a SHAPE error naming the sizes', () => {
  const refused = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof MurmurError && e.code === 'SHAPE' && pattern.test(e.message), String(pattern));
  refused(() => packRockchipA(new Float32Array(10), 3, 4), /holds 10 values, but \[3, 4\] needs 12/);
  refused(() => packRockchipB(new Float32Array(6), 0, 6), /n|rows must be a positive integer, got 0/);
  refused(() => packRockchipA(new Float32Array(12), 3, 4, 6), /padded width must be a positive multiple of 8, got 6/);
  refused(() => rockchipMatmul(packRockchipA(new Float32Array(3 * 40), 3, 40), packRockchipB(new Float32Array(2 * 33), 2, 33)), /A has k = 40 \(padded 64\), B has k = 33/);
  refused(() => packRockchipInt8B(new Int8Array(6), new Float32Array(3), 2, 3), /scales holds 3 values, but 2 output channels needs 2/);
});
