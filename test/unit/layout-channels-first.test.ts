// Channels-first activations (src/core/layout/channels-first.ts): (B, S, C) ↔ (B, C, 1, S) with
// the sequence axis padded to 64 bytes round-trips, the linear as a 1×1 convolution equals the
// reference linear, and per-head split attention equals plain row-major attention.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MurmurError } from '../../src/core/errors.ts';
import { f16ToF32 } from '../../src/core/model/dtype.ts';
import { gelu } from '../../src/core/reference/math.ts';
import {
  channelsFirstHead,
  channelsFirstSequenceMultiple,
  channelsFirstToF16,
  conv1x1ChannelsFirst,
  packChannelsFirst,
  splitHeadAttentionChannelsFirst,
  unpackChannelsFirst,
} from '../../src/core/layout/index.ts';
import { assertClose, randomSource } from './wasm-ops-fixture.ts';
import { LAYOUT_SHAPES, layoutProblem, nonZeros, referenceLinearF32 } from './layout-fixture.ts';

test('the sequence axis is padded to 64 bytes: 16 f32 values, 32 f16 values', () => {
  assert.equal(channelsFirstSequenceMultiple('f32'), 16);
  assert.equal(channelsFirstSequenceMultiple('f16'), 32);
  assert.equal(packChannelsFirst(new Float32Array(3 * 17), 1, 17, 3).paddedSequence, 32);
  assert.equal(packChannelsFirst(new Float32Array(3 * 17), 1, 17, 3, { dtype: 'f16' }).paddedSequence, 32);
  assert.equal(packChannelsFirst(new Float32Array(3 * 33), 1, 33, 3, { dtype: 'f16' }).paddedSequence, 64);
  assert.equal(packChannelsFirst(new Float32Array(3 * 1500), 1, 1500, 3).paddedSequence, 1504);
});

for (const [batch, sequence, channels] of [[1, 1, 1], [1, 37, 83], [2, 17, 5], [3, 1500, 24], [1, 64, 384]] as const) {
  test(`(B ${batch}, S ${sequence}, C ${channels}) round-trips through (B, C, 1, S padded), zeros in the padding`, () => {
    const x = randomSource(batch * 31 + sequence).values(batch * sequence * channels);
    for (const dtype of ['f32', 'f16'] as const) {
      const t = packChannelsFirst(x, batch, sequence, channels, { dtype });
      assert.equal(t.paddedSequence % channelsFirstSequenceMultiple(dtype), 0);
      assert.equal(t.data.length, batch * channels * t.paddedSequence);
      assert.deepEqual(unpackChannelsFirst(t), x, dtype);
      assert.equal(nonZeros(t.data), nonZeros(x), `${dtype}: zero padding`);
      // Value (b, s, c) lands at (b, c, 0, s).
      const [b, s, c] = [batch - 1, sequence - 1, channels - 1];
      assert.equal(t.data[(b * channels + c) * t.paddedSequence + s], x[(b * sequence + s) * channels + c]);
    }
    const f16 = channelsFirstToF16(packChannelsFirst(x, batch, sequence, channels, { dtype: 'f16' }));
    assert.ok(f16.length % 32 === 0 && Math.abs(f16ToF32(f16[0]!) - x[0]!) <= Math.abs(x[0]!) * 1e-3);
  });
}

for (const [m, k, n] of LAYOUT_SHAPES) {
  test(`S ${m}, C ${k} → ${n}: the linear as a 1×1 convolution over channels-first equals the reference linear`, () => {
    const { x, w, bias } = layoutProblem(m, k, n, 5);
    const residual = randomSource(m + n).values(m * n);
    const input = packChannelsFirst(x, 1, m, k);
    const plain = conv1x1ChannelsFirst(input, w, n);
    assert.equal(plain.paddedSequence, input.paddedSequence, 'the output keeps the padding');
    assertClose(unpackChannelsFirst(plain), referenceLinearF32(x, m, k, w, n), 1e-5, 'x·Wᵀ');
    const fused = conv1x1ChannelsFirst(input, w, n, { bias, gelu: true, residual: packChannelsFirst(residual, 1, m, n) });
    const expected = referenceLinearF32(x, m, k, w, n, bias).map((v, i) => gelu(v) + residual[i]!);
    assertClose(unpackChannelsFirst(fused), expected, 1e-5, 'gelu(x·Wᵀ + b) + r');
    assert.equal(nonZeros(fused.data), nonZeros(expected), 'padded positions stay zero after the bias');
  });
}

/** Row-major multi-head attention, written plainly: q [sq, C], k/v [sk, C]. */
function rowMajorAttention(q: Float32Array, k: Float32Array, v: Float32Array, sq: number, sk: number, channels: number, heads: number, causal: boolean): Float32Array {
  const d = channels / heads;
  const out = new Float32Array(sq * channels);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < sq; i++) {
      const limit = causal ? i + 1 + (sk - sq) : sk;
      const scores = Array.from({ length: limit }, (_, j) => {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[i * channels + h * d + c]! * k[j * channels + h * d + c]!;
        return dot / Math.sqrt(d);
      });
      const max = Math.max(...scores);
      const weights = scores.map((s) => Math.exp(s - max));
      const total = weights.reduce((a, b) => a + b, 0);
      for (let c = 0; c < d; c++) out[i * channels + h * d + c] = weights.reduce((sum, p, j) => sum + p * v[j * channels + h * d + c]!, 0) / total;
    }
  }
  return out;
}

for (const [sq, sk, channels, heads, causal] of [[7, 7, 12, 3, true], [5, 19, 16, 4, false], [1, 9, 6, 2, true], [33, 33, 64, 1, false]] as const) {
  test(`per-head split attention in channels-first equals row-major attention (q ${sq}, kv ${sk}, ${heads} heads${causal ? ', causal' : ''})`, () => {
    const random = randomSource(sq * sk + channels);
    const [q, k, v] = [random.values(sq * channels), random.values(sk * channels), random.values(sk * channels)];
    const out = splitHeadAttentionChannelsFirst(packChannelsFirst(q, 1, sq, channels), packChannelsFirst(k, 1, sk, channels), packChannelsFirst(v, 1, sk, channels), heads, { causal });
    assertClose(unpackChannelsFirst(out), rowMajorAttention(q, k, v, sq, sk, channels, heads, causal), 1e-5, 'attention');
    const head = channelsFirstHead(packChannelsFirst(q, 1, sq, channels), heads, heads - 1);
    assert.equal(head.channels, channels / heads);
    assert.equal(head.data[0], q[(heads - 1) * (channels / heads)], "the last head's first channel");
  });
}

test('misshapen inputs are refused with a SHAPE error naming the sizes', () => {
  const refused = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof MurmurError && e.code === 'SHAPE' && pattern.test(e.message), String(pattern));
  refused(() => packChannelsFirst(new Float32Array(5), 1, 2, 3), /holds 5 values, but \(B 1, S 2, C 3\) needs 6/);
  const t = packChannelsFirst(new Float32Array(6), 1, 2, 3);
  refused(() => conv1x1ChannelsFirst(t, new Float32Array(7), 2), /weight holds 7 values, but \[2, 3\] needs 6/);
  refused(() => conv1x1ChannelsFirst(t, new Float32Array(6), 2, { residual: t }), /residual \(1, 3, 1, 16\) does not match the output \(1, 2, 1, 16\)/);
  refused(() => channelsFirstHead(t, 2, 0), /3 channels do not split into 2 heads/);
  refused(() => channelsFirstToF16(t), /pack with dtype 'f16'/);
});
