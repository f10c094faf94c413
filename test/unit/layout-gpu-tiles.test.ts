// GPU tile-major weights (src/core/layout/gpu-tiles.ts): f32 tiles and q8_0 tiles with their
// scales beside them round-trip on awkward shapes with zero padding, and the matmuls reading only
// the tiles equal the reference linear on the row-major (or ggml q8_0) weight.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MurmurError } from '../../src/core/errors.ts';
import { decodeTensor, encodeTensor, f16ToF32, f32ToF16 } from '../../src/core/model/dtype.ts';
import { GPU_TILE_K, GPU_TILE_N, gpuTilesMatmul, gpuTilesQ8Matmul, packGpuTiles, packGpuTilesQ8, unpackGpuTiles, unpackGpuTilesQ8 } from '../../src/core/layout/index.ts';
import { assertClose } from './wasm-ops-fixture.ts';
import { LAYOUT_SHAPES, layoutProblem, nonZeros, referenceLinear, referenceLinearF32 } from './layout-fixture.ts';

const roundUp = (v: number, to: number) => Math.ceil(v / to) * to;
const TILE_SHAPES = [{}, { tileN: 16, tileK: 32 }, { tileN: 8, tileK: 4 }, { tileN: 3, tileK: 5 }];
const Q8_TILE_SHAPES = [{}, { tileN: 16, tileK: 64 }, { tileN: 5, tileK: 32 }];

for (const [m, k, n] of LAYOUT_SHAPES) {
  test(`${m}×${k}×${n}: f32 tiles round-trip and their matmul equals the reference, for several tile shapes`, () => {
    const { x, w, bias } = layoutProblem(m, k, n, 3);
    const expected = referenceLinearF32(x, m, k, w, n, bias);
    for (const shape of TILE_SHAPES) {
      const tiles = packGpuTiles(w, n, k, shape);
      const [tn, tk] = [shape.tileN ?? GPU_TILE_N, shape.tileK ?? GPU_TILE_K];
      assert.deepEqual([tiles.paddedN, tiles.paddedK], [roundUp(n, tn), roundUp(k, tk)]);
      assert.equal(tiles.data.length, tiles.paddedN * tiles.paddedK, '(N/TN, K/TK, TN, TK)');
      assert.deepEqual(unpackGpuTiles(tiles), w, `${tn}×${tk} round trip`);
      assert.equal(nonZeros(tiles.data), nonZeros(w), `${tn}×${tk}: zero padding`);
      const kTiles = tiles.paddedK / tk;
      assert.equal(tiles.data[((Math.floor((n - 1) / tn) * kTiles + Math.floor((k - 1) / tk)) * tn + ((n - 1) % tn)) * tk + ((k - 1) % tk)], w[n * k - 1]);
      assertClose(gpuTilesMatmul(x, m, tiles, { bias }), expected, 1e-5, `${tn}×${tk} matmul`);
    }
  });

  const k32 = roundUp(k, 32);
  test(`${m}×${k32}×${n}: q8_0 tiles (scales beside each block) round-trip and their matmul equals the reference`, () => {
    const { x, w, bias } = layoutProblem(m, k32, n, 4);
    const tensor = encodeTensor(w, [n, k32], 'q8_0');
    const decoded = decodeTensor(tensor);
    const expected = referenceLinear(x, m, k32, tensor, bias);
    for (const shape of Q8_TILE_SHAPES) {
      const tiles = packGpuTilesQ8(tensor, shape);
      const [tn, tk] = [shape.tileN ?? GPU_TILE_N, shape.tileK ?? GPU_TILE_K];
      assert.equal(tiles.wordsPerTile, (tn * tk) / 32 + (tn * tk) / 4);
      assert.equal(tiles.words.length, (roundUp(n, tn) / tn) * (roundUp(k32, tk) / tk) * tiles.wordsPerTile);
      assert.deepEqual(unpackGpuTilesQ8(tiles), decoded, `${tn}×${tk} round trip`);
      // Every non-zero word is a scale or a quant word of a real block: padding is zero.
      assert.ok(nonZeros(tiles.words) <= (n * k32) / 32 + (n * k32) / 4, `${tn}×${tk}: zero padding`);
      assertClose(gpuTilesQ8Matmul(x, m, tiles, { bias }), expected, 1e-5, `${tn}×${tk} q8_0 matmul`);
    }
  });
}

test('the first tile holds the first block scale, then its quants, low byte first', () => {
  const w = Float32Array.from({ length: 2 * 32 }, (_, i) => (i < 32 ? (i - 16) / 16 : 0.5));
  const tensor = encodeTensor(w, [2, 32], 'q8_0');
  const tiles = packGpuTilesQ8(tensor, { tileN: 2, tileK: 32 });
  const floats = new Float32Array(tiles.words.buffer);
  const half = (v: number) => f16ToF32(f32ToF16(v));
  assert.equal(floats[0], half(1 / 127), 'row 0 scale: ggml d = max|w| / 127 in f16, widened');
  assert.equal(floats[1], half(0.5 / 127), 'row 1 scale');
  // Row 0's first quant word holds values −16/16 … −13/16 as q = round(v / d), low byte first.
  const q = (v: number) => Math.round(v / half(1 / 127)) & 0xff;
  assert.deepEqual([0, 8, 16, 24].map((shift) => (tiles.words[2]! >>> shift) & 0xff), [-1, -15 / 16, -14 / 16, -13 / 16].map(q));
  assert.equal(tiles.words.length, 2 + 16);
});

test('misshapen weights are refused with a SHAPE error naming the problem', () => {
  const refused = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof MurmurError && e.code === 'SHAPE' && pattern.test(e.message), String(pattern));
  refused(() => packGpuTiles(new Float32Array(5), 2, 3), /holds 5 values, but \[2, 3\] needs 6/);
  refused(() => packGpuTiles(new Float32Array(6), 2, 3, { tileN: 0 }), /tile height must be a positive multiple of 1, got 0/);
  refused(() => packGpuTilesQ8(encodeTensor(new Float32Array(64), [2, 32], 'q8_0'), { tileK: 48 }), /tileK of a q8_0 weight must be a positive multiple of 32, got 48/);
  refused(() => packGpuTilesQ8(encodeTensor(new Float32Array(64), [2, 32], 'f32')), /takes a 2-D q8_0 tensor, got f32/);
  refused(() => gpuTilesMatmul(new Float32Array(5), 2, packGpuTiles(new Float32Array(6), 2, 3)), /x holds 5 values, but \[2, 3\] needs 6/);
});
