// The WASM flash attention against the reference backend's attention: multi-head, causal with a
// cache offset, per-sequence caches and shared cross-attention K/V, returned softmax weights, odd
// head sizes, more keys than one block; both builds. Plus the work-unit split a thread pool uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { referenceOps } from '../../src/core/reference/backend.ts';
import { RefTensor } from '../../src/core/reference/tensor.ts';
import { MurmurError } from '../../src/core/errors.ts';
import type { AttentionCall } from '../../src/kernels-wasm/ops.ts';
import { assertClose, loadVariants, randomSource } from './wasm-ops-fixture.ts';

const { variants, relaxedMissing } = await loadVariants();
const random = randomSource(97);

interface Case {
  name: string;
  cols: number;
  queryRows: number;
  /** Rows stored in key/value (≥ what the call needs, to check the kernel ignores the rest). */
  kvRows: number;
  call: AttentionCall;
  /** Scale of q and k: larger makes the softmax peakier. */
  scale?: number;
}

const CASES: Case[] = [
  { name: '3 heads of 24 over 97 keys', cols: 72, queryRows: 13, kvRows: 97, call: { heads: 3, sequences: 1, capacity: 97, length: 97, shared: false } },
  { name: 'headDim 64, 300 keys, 2 heads, weights', cols: 128, queryRows: 37, kvRows: 300, call: { heads: 2, sequences: 1, capacity: 300, length: 300, shared: false, returnWeights: true } },
  {
    name: 'causal self-attention, 2 sequences, cache offset 5, capacity 24',
    cols: 72, queryRows: 7, kvRows: 48,
    call: { heads: 3, sequences: 2, capacity: 24, length: 12, shared: false, causal: { queryOffset: 5 }, returnWeights: true },
  },
  {
    name: 'causal, one new token at offset 70 (keys span two blocks)',
    cols: 64, queryRows: 1, kvRows: 3 * 80,
    call: { heads: 1, sequences: 3, capacity: 80, length: 71, shared: false, causal: { queryOffset: 70 }, returnWeights: true },
  },
  {
    name: 'causal prompt from 0, 19 rows (two query blocks)',
    cols: 40, queryRows: 19, kvRows: 32,
    call: { heads: 2, sequences: 1, capacity: 32, length: 19, shared: false, causal: { queryOffset: 0 }, returnWeights: true },
  },
  {
    name: 'shared cross-attention, 3 sequences, 150 of 160 keys, weights',
    cols: 72, queryRows: 5, kvRows: 160,
    call: { heads: 3, sequences: 3, capacity: 160, length: 150, shared: true, returnWeights: true },
  },
  // Blocked path (keys packed into panels): non-causal, no weights, ≥ 16 queries, head width a multiple of 8.
  { name: 'blocked: 2 heads of 64, 83 queries over 131 keys (partial panels and blocks)', cols: 128, queryRows: 83, kvRows: 131, call: { heads: 2, sequences: 1, capacity: 131, length: 131, shared: false } },
  { name: 'blocked: 3 heads of 8, 2 sequences, 21 of 30 keys', cols: 24, queryRows: 18, kvRows: 60, call: { heads: 3, sequences: 2, capacity: 30, length: 21, shared: false } },
  { name: 'blocked: shared keys, 2 sequences of 17 queries, 70 of 75 keys, peaky', cols: 32, queryRows: 17, kvRows: 75, call: { heads: 2, sequences: 2, capacity: 75, length: 70, shared: true }, scale: 3.5 },
  { name: 'odd headDim 5 with 7 heads', cols: 35, queryRows: 6, kvRows: 9, call: { heads: 7, sequences: 1, capacity: 9, length: 9, shared: false } },
  { name: 'one key', cols: 8, queryRows: 3, kvRows: 4, call: { heads: 2, sequences: 1, capacity: 4, length: 1, shared: false, returnWeights: true } },
  { name: 'peaky softmax (scores up to ~100)', cols: 64, queryRows: 9, kvRows: 130, call: { heads: 1, sequences: 1, capacity: 130, length: 130, shared: false, returnWeights: true }, scale: 3.5 },
];

function reference(c: Case, q: Float32Array, k: Float32Array, v: Float32Array) {
  const { heads, sequences, capacity, length, shared, causal, returnWeights } = c.call;
  return referenceOps.attention(
    new RefTensor(q, q.length / c.cols, c.cols),
    { key: new RefTensor(k, c.kvRows, c.cols), value: new RefTensor(v, c.kvRows, c.cols), capacity, length, shared },
    { heads, sequences, ...(causal ? { causal } : {}), ...(returnWeights ? { returnWeights } : {}) },
  );
}

for (const [name, kernels] of variants) {
  for (const c of CASES) {
    test(`${name}: attention, ${c.name}`, (t) => {
      if (!kernels) return t.skip(relaxedMissing);
      const q = random.values(c.call.sequences * c.queryRows * c.cols, c.scale);
      const k = random.values(c.kvRows * c.cols, c.scale);
      const v = random.values(c.kvRows * c.cols);
      const expected = reference(c, q, k, v);
      const actual = kernels.attention(q, k, v, c.cols, c.call);
      assertClose(actual.output, expected.output.data, 1e-4, 'output');
      if (c.call.returnWeights) {
        assert.ok(actual.weights, 'weights returned');
        assertClose(actual.weights, expected.weights!.data, 1e-4, 'weights');
        // Masked positions are exactly zero, as in the reference.
        expected.weights!.data.forEach((w, i) => {
          if (w === 0) assert.equal(actual.weights![i], 0, `weight ${i} is masked`);
        });
      } else {
        assert.equal(actual.weights, undefined);
      }
      assert.equal(kernels.heap.allocatedBytes, 0, 'every block is freed');
    });
  }
}

test('attention work units split anywhere give the same result as one call', async (t) => {
  const kernels = variants[0]![1]!;
  const c = CASES[2]!;
  const q = random.values(c.call.sequences * c.queryRows * c.cols);
  const k = random.values(c.kvRows * c.cols);
  const v = random.values(c.kvRows * c.cols);
  const whole = kernels.attention(q, k, v, c.cols, c.call);
  const { heap, kernels: exports } = kernels;
  const units = exports.attentionWorkUnits(3, 2, c.queryRows);
  assert.equal(units, 2 * 3 * 1, 'one unit per sequence and head for 7 query rows');
  const blocks = [q, k, v, q, whole.weights!].map((a) => heap.allocate(a.length * 4));
  const scratch = [heap.allocate(exports.attentionScratchBytes()), heap.allocate(exports.attentionScratchBytes())];
  try {
    const [qAt, kAt, vAt, outAt, wAt] = blocks as [number, number, number, number, number];
    heap.f32(qAt, q.length).set(q);
    heap.f32(kAt, k.length).set(k);
    heap.f32(vAt, v.length).set(v);
    // Two "threads" with their own scratch, interleaved unit ranges.
    for (const [start, end, s] of [[0, 1, 0], [4, 6, 1], [1, 4, 0]] as const) {
      exports.attention(qAt, kAt, vAt, outAt, wAt, c.cols, 3, 2, c.queryRows, 24, 12, 0, 5, scratch[s]!, start, end);
    }
    assert.deepEqual(heap.f32(outAt, q.length).slice(), whole.output, 'output bit-identical');
    assert.deepEqual(heap.f32(wAt, whole.weights!.length).slice(), whole.weights, 'weights bit-identical');
  } finally {
    for (const at of [...blocks, ...scratch]) heap.free(at);
  }
  t.diagnostic(`${units} units`);
});

test('blocked attention: packing and work units split anywhere give the same result as one call', () => {
  const kernels = variants[0]![1]!;
  const c = CASES.find((x) => x.name.startsWith('blocked: 3 heads'))!;
  const { heads, sequences, capacity, length } = c.call;
  const q = random.values(sequences * c.queryRows * c.cols);
  const k = random.values(c.kvRows * c.cols);
  const v = random.values(c.kvRows * c.cols);
  const whole = kernels.attention(q, k, v, c.cols, c.call);
  const { heap, kernels: exports } = kernels;
  const packedBytes = exports.attentionPackedKeyBytes(c.cols, heads, sequences, c.queryRows, length, 0, -1, 0);
  assert.ok(packedBytes > 0, 'this call takes the blocked path');
  assert.equal(exports.attentionPackedKeyBytes(c.cols, heads, sequences, c.queryRows, length, 0, 0, 0), 0, 'causal calls do not');
  assert.equal(exports.attentionPackedKeyBytes(c.cols, heads, sequences, c.queryRows, length, 0, -1, 1), 0, 'calls wanting weights do not');
  const units = exports.attentionWorkUnits(heads, sequences, c.queryRows);
  const packUnits = exports.attentionPackUnits(heads, sequences, 0);
  assert.equal(units, 2 * 3 * 2);
  assert.equal(packUnits, 6);
  const blocks = [q, k, v, q].map((a) => heap.allocate(a.length * 4));
  const packed = heap.allocate(packedBytes);
  const scratch = [heap.allocate(exports.attentionScratchBytes()), heap.allocate(exports.attentionScratchBytes())];
  try {
    const [qAt, kAt, vAt, outAt] = blocks as [number, number, number, number];
    heap.f32(qAt, q.length).set(q);
    heap.f32(kAt, k.length).set(k);
    heap.f32(vAt, v.length).set(v);
    for (const [start, end] of [[4, 6], [0, 1], [1, 4]] as const) exports.attentionPackKeys(kAt, vAt, packed, c.cols, heads, capacity, length, start, end);
    for (const [start, end, s] of [[0, 5, 0], [9, 12, 1], [5, 9, 0]] as const) {
      exports.attentionBlocked(qAt, packed, outAt, c.cols, heads, sequences, c.queryRows, length, 0, scratch[s]!, start, end);
    }
    assert.deepEqual(heap.f32(outAt, q.length).slice(), whole.output, 'output bit-identical');
  } finally {
    for (const at of [...blocks, packed, ...scratch]) heap.free(at);
  }
});

test('attention rejects shapes the reference rejects, with MurmurErrors', () => {
  const kernels = variants[0]![1]!;
  const isShape = (pattern: RegExp) => (error: unknown) => error instanceof MurmurError && error.code === 'SHAPE' && pattern.test(error.message);
  const q = random.values(2 * 8);
  const kv = random.values(4 * 8);
  const call: AttentionCall = { heads: 2, sequences: 1, capacity: 4, length: 4, shared: false };
  assert.throws(() => kernels.attention(q, kv, kv, 8, { ...call, heads: 3 }), isShape(/8 channels do not split into 3 heads/));
  assert.throws(() => kernels.attention(q, kv, kv, 8, { ...call, sequences: 3 }), isShape(/2 query rows do not split into 3 sequences/));
  assert.throws(() => kernels.attention(q, kv, kv, 8, { ...call, length: 5 }), isShape(/5 valid keys in a capacity of 4/));
  assert.throws(() => kernels.attention(q, kv, kv, 8, { ...call, length: 0 }), isShape(/length must be a positive integer/));
  assert.throws(() => kernels.attention(q, kv, kv, 8, { ...call, capacity: 5, length: 5 }), isShape(/cannot hold 5 rows/));
  assert.throws(() => kernels.attention(q, kv, kv, 8, { ...call, causal: { queryOffset: 3 } }), isShape(/need 5 keys, only 4 are valid/));
  assert.throws(() => kernels.attention(q, kv, kv.subarray(8), 8, call), isShape(/value/));
  assert.equal(kernels.heap.allocatedBytes, 0);
});
