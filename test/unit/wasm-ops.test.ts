// The WASM layer norm, convolution (im2col + packed matmul), embeddings and logits tail against
// the reference backend (and the reference greedy pick) on awkward shapes, in both builds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { referenceOps } from '../../src/core/reference/backend.ts';
import { RefTensor } from '../../src/core/reference/tensor.ts';
import { encodeTensor } from '../../src/core/model/dtype.ts';
import { pickGreedy } from '../../src/core/decoding/greedy.ts';
import { MurmurError } from '../../src/core/errors.ts';
import { convOutputFrames, convWeightMatrix } from '../../src/kernels-wasm/ops.ts';
import { assertClose, loadVariants, randomSource } from './wasm-ops-fixture.ts';

const { variants, relaxedMissing } = await loadVariants();
const random = randomSource(51865);
const f32 = (values: Float32Array, shape: number[]) => encodeTensor(values, shape, 'f32');
const isShape = (pattern: RegExp) => (error: unknown) => error instanceof MurmurError && error.code === 'SHAPE' && pattern.test(error.message);

for (const [name, kernels] of variants) {
  test(`${name}: layer norm matches the reference at widths 1, 7, 384, 1001`, (t) => {
    if (!kernels) return t.skip(relaxedMissing);
    for (const [rows, cols] of [[3, 1], [5, 7], [9, 384], [4, 1001]] as const) {
      // An offset mean and a spread scale: the two-pass variance must not cancel.
      const x = random.values(rows * cols, 3).map((v, i) => v + (i % cols === 0 ? 0 : 40));
      const gamma = random.values(cols);
      const beta = random.values(cols);
      const expected = referenceOps.layerNorm(new RefTensor(x, rows, cols), { weight: f32(gamma, [cols]), bias: f32(beta, [cols]) }).data;
      assertClose(kernels.layerNorm(x, rows, cols, gamma, beta), expected, 1e-4, `[${rows}, ${cols}]`);
    }
    assert.equal(kernels.heap.allocatedBytes, 0);
  });

  test(`${name}: conv1d matches the reference for both layouts and strides, odd lengths, GELU on and off`, (t) => {
    if (!kernels) return t.skip(relaxedMissing);
    for (const [inChannels, outChannels, frames] of [[3, 5, 1], [5, 7, 2], [13, 17, 31], [80, 24, 67]] as const) {
      const weight = random.values(outChannels * inChannels * 3);
      const bias = random.values(outChannels);
      const packed = kernels.packConvWeights(weight, outChannels, inChannels);
      for (const inputLayout of ['channels-first', 'time-major'] as const) {
        const x = random.values(inChannels * frames);
        const [rows, cols] = inputLayout === 'channels-first' ? [inChannels, frames] : [frames, inChannels];
        for (const stride of [1, 2] as const) {
          for (const gelu of [false, true]) {
            const options = { stride, inputLayout, gelu };
            const expected = referenceOps.conv1d(new RefTensor(x, rows, cols), { weight: f32(weight, [outChannels, inChannels, 3]), bias: f32(bias, [outChannels]) }, options);
            assert.equal(expected.rows, convOutputFrames(frames, stride));
            const actual = kernels.conv1d(x, inChannels, frames, packed, bias, options);
            assertClose(actual, expected.data, 1e-4, `${inChannels}→${outChannels} × ${frames} ${inputLayout} stride ${stride}${gelu ? ' gelu' : ''}`);
          }
        }
      }
      packed.release();
    }
    assert.equal(kernels.heap.allocatedBytes, 0);
  });

  test(`${name}: positional embedding and token embedding match the reference`, (t) => {
    if (!kernels) return t.skip(relaxedMissing);
    const width = 37;
    const table = random.values(50 * width);
    const x = random.values(23 * width);
    const expectedAdd = referenceOps.addPositionalEmbedding(new RefTensor(x, 23, width), f32(table, [50, width])).data;
    assertClose(kernels.addPositionalEmbedding(x, 23, width, table), expectedAdd, 1e-6, 'addPositionalEmbedding');

    const tokenTable = random.values(101 * width);
    const tokens = [0, 100, 7, 7, 55, 3, 99];
    const positions = [0, 1, 2, 49, 3, 3, 10];
    const expected = referenceOps.embed(tokens, positions, f32(tokenTable, [101, width]), f32(table, [50, width])).data;
    assertClose(kernels.embed(tokens, positions, tokenTable, table, width), expected, 1e-6, 'embed');
    assert.throws(() => kernels.embed([101], [0], tokenTable, table, width), isShape(/token id 101 outside the vocabulary of 101/));
    assert.throws(() => kernels.embed([1], [50], tokenTable, table, width), isShape(/position 50 outside the context of 50/));
    assert.throws(() => kernels.embed([1, 2], [0], tokenTable, table, width), isShape(/2 tokens but 1 positions/));
    assert.throws(() => kernels.addPositionalEmbedding(random.values(51 * width), 51, width, table), isShape(/cannot cover \[51, 37\]/));
    assert.equal(kernels.heap.allocatedBytes, 0);
  });
}

/** Allowed tokens sorted by logit (descending, lower id first on ties), log-probs in double. */
function referenceTop(logits: Float32Array, allowed: (id: number) => boolean, k: number): { ids: number[]; logProbs: number[] } {
  const ids: number[] = [];
  for (let id = 0; id < logits.length; id++) if (allowed(id)) ids.push(id);
  if (ids.length === 0) return { ids: Array(k).fill(-1), logProbs: Array(k).fill(-Infinity) };
  let max = -Infinity;
  for (const id of ids) max = Math.max(max, logits[id]!);
  let total = 0;
  for (const id of ids) total += Math.exp(logits[id]! - max);
  const logSumExp = max + Math.log(total);
  ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
  const top = ids.slice(0, k);
  while (top.length < k) top.push(-1);
  return { ids: top, logProbs: top.map((id) => (id < 0 ? -Infinity : logits[id]! - logSumExp)) };
}

const VOCABULARY = 51865;

for (const [name, kernels] of variants) {
  test(`${name}: logits top-k over a vocabulary of ${VOCABULARY} with a suppression mask matches the reference`, (t) => {
    if (!kernels) return t.skip(relaxedMissing);
    const rows = 3;
    const logits = random.values(rows * VOCABULARY, 4);
    // Ties at the top of row 1 (the lower id must win) and a suppressed maximum in row 2.
    logits[VOCABULARY + 500] = 30;
    logits[VOCABULARY + 20000] = 30;
    logits[2 * VOCABULARY + 50257] = 100;
    const mask = new Uint8Array(VOCABULARY);
    for (let id = 50257; id < VOCABULARY; id++) mask[id] = 1;
    for (let id = 0; id < VOCABULARY; id += 97) mask[id] = 1;
    for (const topK of [1, 5, 8]) {
      const result = kernels.logitsTopK(logits, rows, VOCABULARY, topK, mask);
      for (let r = 0; r < rows; r++) {
        const row = logits.subarray(r * VOCABULARY, (r + 1) * VOCABULARY);
        const expected = referenceTop(row, (id) => mask[id] === 0, topK);
        assert.deepEqual([...result.ids.subarray(r * topK, (r + 1) * topK)], expected.ids, `row ${r} top ${topK} ids`);
        assertClose(result.logProbs.subarray(r * topK, (r + 1) * topK), Float32Array.from(expected.logProbs), 1e-5, `row ${r} top ${topK} log-probs`);
        const greedy = pickGreedy(row, (id) => mask[id] === 1);
        assert.equal(result.ids[r * topK], greedy.token, `row ${r}: argmax is the greedy pick`);
        assert.ok(Math.abs(result.logProbs[r * topK]! - greedy.logProb) <= 1e-5 * Math.max(1, Math.abs(greedy.logProb)), `row ${r}: greedy log-prob`);
      }
    }
    assert.equal(kernels.logitsTopK(logits, rows, VOCABULARY, 1, mask).ids[1], 500, 'ties go to the lower id');
    assert.equal(kernels.heap.allocatedBytes, 0);
  });

  test(`${name}: logits top-k with per-row masks, no mask, too few tokens, all suppressed, and NaN`, (t) => {
    if (!kernels) return t.skip(relaxedMissing);
    const vocabulary = 23;
    const logits = random.values(3 * vocabulary);
    logits[2 * vocabulary + 4] = -Infinity;
    const masks = new Uint8Array(3 * vocabulary).fill(1);
    masks.fill(0, 0, vocabulary); // row 0: everything allowed
    masks[vocabulary + 22] = 0; // row 1: only the last token (the scalar tail of the scan)
    masks[vocabulary + 3] = 0; // ... and one in the vector part
    // row 2: nothing allowed
    const result = kernels.logitsTopK(logits, 3, vocabulary, 4, masks);
    const expected0 = referenceTop(logits.subarray(0, vocabulary), () => true, 4);
    assert.deepEqual([...result.ids.subarray(0, 4)], expected0.ids);
    assertClose(result.logProbs.subarray(0, 4), Float32Array.from(expected0.logProbs), 1e-5, 'row 0');
    const expected1 = referenceTop(logits.subarray(vocabulary, 2 * vocabulary), (id) => id === 22 || id === 3, 4);
    assert.deepEqual([...result.ids.subarray(4, 8)], expected1.ids);
    assert.deepEqual([...result.logProbs.subarray(6, 8)], [-Infinity, -Infinity], 'empty slots are -Infinity');
    assertClose(result.logProbs.subarray(4, 6), Float32Array.from(expected1.logProbs.slice(0, 2)), 1e-5, 'row 1');
    assert.deepEqual([...result.ids.subarray(8, 12)], [-1, -1, -1, -1], 'row 2: nothing allowed');
    assert.equal(result.logSumExp[2], -Infinity);

    const unmasked = kernels.logitsTopK(logits, 3, vocabulary, 2);
    for (let r = 0; r < 3; r++) {
      const expected = referenceTop(logits.subarray(r * vocabulary, (r + 1) * vocabulary), () => true, 2);
      assert.deepEqual([...unmasked.ids.subarray(r * 2, r * 2 + 2)], expected.ids, `unmasked row ${r}`);
      assertClose(unmasked.logProbs.subarray(r * 2, r * 2 + 2), Float32Array.from(expected.logProbs), 1e-5, `unmasked row ${r}`);
    }

    const nan = logits.slice();
    nan[vocabulary + 9] = NaN;
    assert.throws(() => kernels.logitsTopK(nan, 3, vocabulary, 1), (e: unknown) => e instanceof MurmurError && e.code === 'NUMERIC' && /row 1 contains a NaN/.test(e.message));
    assert.throws(() => kernels.logitsTopK(logits, 3, vocabulary, 9), isShape(/top 9 is outside 1\.\.8/));
    assert.throws(() => kernels.logitsTopK(logits, 3, vocabulary, 1, new Uint8Array(5)), isShape(/mask of 5 flags/));
    assert.equal(kernels.heap.allocatedBytes, 0);
  });
}

test('the conv weight is reordered tap-major: W\'[o, k·in + c] = W[o, c, k]', () => {
  const weight = Float32Array.from({ length: 2 * 3 * 3 }, (_, i) => i);
  // o = 1, c = 2, k = 0 is at 1·9 + 2·3 + 0 = 15; it lands at column 0·3 + 2 of row 1.
  assert.equal(convWeightMatrix(weight, 2, 3)[1 * 9 + 2], 15);
  assert.deepEqual([...convWeightMatrix(weight, 2, 3).subarray(0, 9)], [0, 3, 6, 1, 4, 7, 2, 5, 8]);
  assert.throws(() => convWeightMatrix(weight, 2, 4), isShape(/18 weight values are not \[2, 4, 3\]/));
});

test('conv1d and layer norm reject bad shapes with MurmurErrors', () => {
  const kernels = variants[0]![1]!;
  const packed = kernels.packConvWeights(random.values(4 * 3 * 3), 4, 3);
  assert.throws(() => kernels.conv1d(random.values(2 * 5), 2, 5, packed, undefined, { stride: 1, inputLayout: 'time-major' }), isShape(/packed weight of 9 columns for 2 input channels \(expected 6\)/));
  assert.throws(() => kernels.conv1d(random.values(14), 3, 5, packed, undefined, { stride: 1, inputLayout: 'time-major' }), isShape(/14 values where 15/));
  assert.throws(() => kernels.conv1d(random.values(15), 3, 5, packed, random.values(3), { stride: 2, inputLayout: 'channels-first' }), isShape(/bias of 3 values for 4 outputs/));
  packed.release();
  assert.throws(() => kernels.layerNorm(random.values(6), 2, 3, random.values(2), random.values(3)), isShape(/gamma: 2 values where 3/));
  assert.equal(kernels.heap.allocatedBytes, 0);
});
