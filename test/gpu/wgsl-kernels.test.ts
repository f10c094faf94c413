import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MurmurError } from '../../src/core/errors.ts';
import { readFloat32 } from '../../src/kernels-wgsl/device.ts';
import { runAttention } from '../../src/kernels-wgsl/attention.ts';
import { recordAddPositionalEmbedding, runEmbed } from '../../src/kernels-wgsl/embedding.ts';
import { recordLayerNorm } from '../../src/kernels-wgsl/layernorm.ts';
import { packSuppressionMask, runLogits } from '../../src/kernels-wgsl/logits.ts';
import { createStorage, destroyAll, runRecorded, uploadStorage } from '../../src/kernels-wgsl/wgsl-common.ts';
import { acquireNodeGpu, deviceOrSkip, type NodeGpu } from './node-gpu.ts';
import { testValues } from './smoke-reference.ts';
import {
  ATTENTION_CASES,
  CONV_CASES,
  EMBED_CASE,
  LAYER_NORM_CASES,
  LOGITS_CASES,
  logitsMismatch,
  POSITIONS_CASE,
  referenceAttention,
  referenceConv,
  referenceEmbed,
  referenceGelu,
  referenceLayerNorm,
  referenceLogits,
  referencePositions,
  runGpuAttention,
  runGpuConv,
  runGpuEmbed,
  runGpuGelu,
  runGpuLayerNorm,
  runGpuLogits,
  runGpuPositions,
  scaledMismatch,
} from './wgsl-kernel-cases.ts';

describe('WGSL kernels on WebGPU in Node (Dawn) against the reference backend', () => {
  let gpu: NodeGpu | undefined;
  before(async () => {
    gpu = await acquireNodeGpu();
  });
  after(() => gpu?.context?.device.destroy());

  describe('attention', () => {
    for (const c of ATTENTION_CASES) {
      test(c.name, async (t) => {
        const context = deviceOrSkip(gpu, t);
        if (!context) return;
        const actual = await runGpuAttention(context.device, c);
        const expected = referenceAttention(c);
        assert.equal(scaledMismatch(actual.output, expected.output), undefined, 'output');
        assert.equal(actual.weights === undefined, expected.weights === undefined, 'weights returned only when asked for');
        if (expected.weights) assert.equal(scaledMismatch(actual.weights!, expected.weights), undefined, 'weights');
      });
    }

    test('a causal window longer than the valid keys is refused, naming the positions', async (t) => {
      const context = deviceOrSkip(gpu, t);
      if (!context) return;
      const values = new Float32Array(4 * 8);
      await assert.rejects(
        runAttention(context.device, { q: values.subarray(0, 16), key: values, value: values, cols: 8, heads: 2, sequences: 1, capacity: 4, length: 3, shared: true, causal: { queryOffset: 2 } }),
        (error: unknown) => error instanceof MurmurError && /positions 2\.\.3 need 4 keys, only 3/.test(error.message),
      );
    });
  });

  test('layer norm, including a single column and a large mean', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    for (const c of LAYER_NORM_CASES) {
      assert.equal(scaledMismatch(await runGpuLayerNorm(context.device, c), referenceLayerNorm(c)), undefined, `[${c.rows}, ${c.cols}] + ${c.offset}`);
    }
  });

  describe('conv1d', () => {
    for (const c of CONV_CASES) {
      test(c.name, async (t) => {
        const context = deviceOrSkip(gpu, t);
        if (!context) return;
        assert.equal(scaledMismatch(await runGpuConv(context.device, c), referenceConv(c)), undefined);
      });
    }

    test('the fused GELU is exact-erf GELU to 1e-6 over [-10, 10]', async (t) => {
      const context = deviceOrSkip(gpu, t);
      if (!context) return;
      const y = await runGpuGelu(context.device);
      const expected = referenceGelu();
      assert.equal(scaledMismatch(y, expected, 1e-6), undefined);
    });
  });

  describe('embeddings', () => {
    test('token embedding gather plus positional rows', async (t) => {
      const context = deviceOrSkip(gpu, t);
      if (!context) return;
      assert.equal(scaledMismatch(await runGpuEmbed(context.device, EMBED_CASE), referenceEmbed(EMBED_CASE)), undefined);
    });

    test('the encoder adds the first rows of its positional table', async (t) => {
      const context = deviceOrSkip(gpu, t);
      if (!context) return;
      assert.equal(scaledMismatch(await runGpuPositions(context.device, POSITIONS_CASE), referencePositions(POSITIONS_CASE)), undefined);
    });

    test('a token id outside the vocabulary is refused before anything runs', async (t) => {
      const context = deviceOrSkip(gpu, t);
      if (!context) return;
      const table = new Float32Array(10 * 4);
      await assert.rejects(runEmbed(context.device, [3, 10], [0, 1], table, table, 4), (error: unknown) => error instanceof MurmurError && /token id 10 outside the vocabulary of 10/.test(error.message));
    });
  });

  describe('logits: suppression, log-softmax, argmax and top k', () => {
    for (const c of LOGITS_CASES) {
      test(`${c.name} (vocabulary ${c.vocabulary})`, async (t) => {
        const context = deviceOrSkip(gpu, t);
        if (!context) return;
        assert.equal(logitsMismatch(await runGpuLogits(context.device, c), referenceLogits(c)), undefined);
      });
    }

    test('a row with fewer unsuppressed tokens than k reports the lowest suppressed ids at -Infinity for the rest', async (t) => {
      const context = deviceOrSkip(gpu, t);
      if (!context) return;
      const vocabulary = 40;
      const suppressed = new Uint8Array(vocabulary).fill(1);
      suppressed[17] = 0;
      const logits = testValues(2 * vocabulary, { seed: 5 });
      // Each row's mask starts at a word boundary: row 0 keeps token 17 only, row 1 keeps none.
      const maskRows = new Uint32Array([...packSuppressionMask(suppressed), ...packSuppressionMask(new Uint8Array(vocabulary).fill(1))]);
      const rows = await runLogits(context.device, { logits, rows: 2, topK: 2, mask: maskRows, maskPerRow: true });
      assert.deepEqual(rows[0]!.ids, [17, 0]);
      assert.equal(rows[0]!.logProbs[0], 0, 'the only candidate has probability 1');
      assert.equal(rows[0]!.logProbs[1], -Infinity);
      assert.deepEqual(rows[1]!.ids, [0, 1]);
      assert.deepEqual(rows[1]!.logProbs, [-Infinity, -Infinity]);
      assert.equal(rows[1]!.logSumExp, -Infinity);
    });
  });

  test('several kernels recorded into one command encoder run in order in one submission', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const { device } = context;
    const rows = 6;
    const cols = 33;
    const x = testValues(rows * cols, { seed: 3 });
    const table = testValues(8 * cols, { seed: 4, range: 1 });
    const gamma = new Float32Array(cols).fill(1);
    const beta = new Float32Array(cols);
    const buffers = {
      x: uploadStorage(device, 'x', x),
      gamma: uploadStorage(device, 'gamma', gamma),
      beta: uploadStorage(device, 'beta', beta),
      table: uploadStorage(device, 'table', table),
      normed: createStorage(device, 'normed', rows * cols),
      output: createStorage(device, 'output', rows * cols),
    };
    try {
      await runRecorded(device, 'layerNorm + positions', (recording) => {
        recordLayerNorm(recording, { x: buffers.x, rows, cols, gamma: buffers.gamma, beta: buffers.beta, output: buffers.normed });
        recordAddPositionalEmbedding(recording, { x: buffers.normed, rows, cols, table: buffers.table, tableRows: 8, output: buffers.output });
      });
      const actual = await readFloat32(device, buffers.output, rows * cols);
      const expected = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) {
        const row = x.subarray(r * cols, (r + 1) * cols);
        const mean = row.reduce((s, v) => s + v, 0) / cols;
        const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / cols;
        for (let c = 0; c < cols; c++) expected[r * cols + c] = (row[c]! - mean) / Math.sqrt(variance + 1e-5) + table[r * cols + c]!;
      }
      assert.equal(scaledMismatch(actual, expected), undefined);
    } finally {
      destroyAll(Object.values(buffers));
    }
  });
});
