import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeTensor, encodeTensor } from '../../src/core/model/dtype.ts';
import { MurmurError } from '../../src/core/errors.ts';
import {
  packQuantizedBlocks,
  QUANT_TILE_N,
  QUANTIZED_DTYPES,
  quantizedMatmulVariant,
  recordQuantizedMatmul,
  uploadQuantizedWeights,
} from '../../src/kernels-wgsl/matmul-quant.ts';
import { createStorage, runRecorded } from '../../src/kernels-wgsl/wgsl-common.ts';
import { acquireNodeGpu, deviceOrSkip, type NodeGpu } from './node-gpu.ts';
import { quantCase, QUANT_EPILOGUES, quantMismatch, quantSweep, quantWeight, referenceQuantMatmul, runGpuQuantMatmul } from './wgsl-quant-cases.ts';

describe('quantized WGSL matmul on WebGPU in Node (Dawn) against the reference backend', () => {
  let gpu: NodeGpu | undefined;
  before(async () => {
    gpu = await acquireNodeGpu();
  });
  after(() => gpu?.context?.device.destroy());

  test('quantizedMatmulVariant: gemv for exactly M rows up to 8, tiled beyond', () => {
    assert.deepEqual(quantizedMatmulVariant(1), { kind: 'gemv', rows: 1 });
    assert.deepEqual(quantizedMatmulVariant(8), { kind: 'gemv', rows: 8 });
    assert.deepEqual(quantizedMatmulVariant(9), { kind: 'tiled' });
  });

  test('packing keeps every block: scales, fifth bits and quants land in their words, padding rows are zero', () => {
    const tensor = quantWeight(3, 64, 'q5_1', 3);
    const { words, paddedN } = packQuantizedBlocks(tensor);
    assert.equal(paddedN, QUANT_TILE_N);
    assert.equal(words.length, QUANT_TILE_N * 2 * 6);
    const bytes = tensor.bytes;
    const block = 5; // row 2, block 1
    const from = block * 24;
    assert.equal(words[block * 6]! & 0xffff, bytes[from]! | (bytes[from + 1]! << 8), 'd');
    assert.equal(words[block * 6]! >>> 16, bytes[from + 2]! | (bytes[from + 3]! << 8), 'm');
    assert.equal(words[block * 6 + 1], new DataView(bytes.buffer, bytes.byteOffset + from + 4, 4).getUint32(0, true), 'qh');
    assert.equal(words[block * 6 + 5], new DataView(bytes.buffer, bytes.byteOffset + from + 20, 4).getUint32(0, true), 'last quant word');
    assert.ok(words.subarray(3 * 2 * 6).every((w) => w === 0), 'padding rows are zero blocks');
  });

  for (const dtype of QUANTIZED_DTYPES) {
    test(`${dtype}: every awkward shape (M 1 3 17 70, N 1 7 33 130, K 32 96 416) and every epilogue`, async (t) => {
      const context = deviceOrSkip(gpu, t);
      if (!context) return;
      for (const { what, c } of quantSweep(dtype)) {
        const actual = await runGpuQuantMatmul(context.device, c);
        assert.equal(quantMismatch(actual, referenceQuantMatmul(c)), undefined, what);
      }
    });
  }

  test('the tiled kernel also handles few rows, and gemv agrees with it', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    for (const dtype of ['q8_0', 'q5_0'] as const) {
      const c = quantCase(3, quantWeight(33, 96, dtype, 4), QUANT_EPILOGUES[7]!, 2);
      const expected = referenceQuantMatmul(c);
      assert.equal(quantMismatch(await runGpuQuantMatmul(context.device, c, { kind: 'tiled' }), expected), undefined, `${dtype} tiled`);
      assert.equal(quantMismatch(await runGpuQuantMatmul(context.device, c, { kind: 'gemv', rows: 3 }), expected), undefined, `${dtype} gemv`);
    }
  });

  test('widening is exact: an identity-like x reads back the decoded weight', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const [n, k] = [7, 64];
    for (const dtype of QUANTIZED_DTYPES) {
      const weight = quantWeight(n, k, dtype, 8);
      const decoded = decodeTensor(weight);
      // Row i of x is the unit vector e_i: y[i, j] = W[j, i], no rounding at all.
      const m = k;
      const x = new Float32Array(m * k);
      for (let i = 0; i < k; i++) x[i * k + i] = 1;
      const actual = await runGpuQuantMatmul(context.device, { m, x, weight, gelu: false });
      for (let i = 0; i < m; i++) {
        // === rather than Object.is: the sum may give +0 where the decoded value is -0.
        for (let j = 0; j < n; j++) assert.ok(actual[i * n + j] === decoded[j * k + i], `${dtype} W[${j}, ${i}]: got ${actual[i * n + j]}, decoded ${decoded[j * k + i]}`);
      }
    }
  });

  test('bad weights and buffers are refused with typed errors naming the shape', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const { device } = context;
    const isShape = (pattern: RegExp) => (e: unknown) => e instanceof MurmurError && e.code === 'SHAPE' && pattern.test(e.message);
    assert.throws(() => uploadQuantizedWeights(device, { dtype: 'q8_0', shape: [4, 40], bytes: new Uint8Array(4 * 34) }), isShape(/\[4, 40\].*multiple of 32/));
    assert.throws(() => uploadQuantizedWeights(device, encodeTensor(new Float32Array(64), [2, 32], 'f32')), isShape(/f32 is not a block-quantized dtype/));
    assert.throws(() => uploadQuantizedWeights(device, { dtype: 'q4_0', shape: [2, 32], bytes: new Uint8Array(35) }), isShape(/\[2, 32\] takes 36 bytes, got 35/));
    assert.throws(() => uploadQuantizedWeights(device, quantWeight(2, 32, 'q4_0'), new Float32Array(3)), isShape(/bias of 3 values for the 2 outputs/));

    const weights = uploadQuantizedWeights(device, quantWeight(5, 32, 'q4_0'));
    const x = createStorage(device, 'x', 3 * 32);
    const output = createStorage(device, 'y', 3 * 5);
    const small = createStorage(device, 'small', 4);
    try {
      await assert.rejects(
        runRecorded(device, 'test', (rec) => recordQuantizedMatmul(rec, { x: small, m: 3, weights, output })),
        isShape(/x holds 16 bytes, fewer than the 384/),
      );
      await assert.rejects(
        runRecorded(device, 'test', (rec) => recordQuantizedMatmul(rec, { x, m: 3, weights, output: x })),
        isShape(/output buffer must not also be an input/),
      );
      await assert.rejects(
        runRecorded(device, 'test', (rec) => recordQuantizedMatmul(rec, { x, m: 3, weights, output, variant: { kind: 'gemv', rows: 2 } })),
        isShape(/gemv variant for 2 rows cannot multiply 3 rows/),
      );
    } finally {
      for (const b of [x, output, small]) b.destroy();
      weights.destroy();
    }
  });
});
