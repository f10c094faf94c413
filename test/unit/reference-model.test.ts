// The Whisper model definition on the reference backend: KV-cache decoding equals full recompute,
// batched sequences equal single ones, input checks, and the whole 'mini' model end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { referenceOps as ops } from '../../src/core/reference/backend.ts';
import type { RefTensor } from '../../src/core/reference/tensor.ts';
import { createDecoderState, createLogitsSource, decodeStep, encode, releaseDecoderState, reorderDecoderState } from '../../src/core/model/whisper.ts';
import type { ModelParameters } from '../../src/core/model/whisper.ts';
import type { WhisperDims } from '../../src/core/model/dims.ts';
import type { WeightTensor } from '../../src/core/model/weights.ts';
import { AudioError, MurmurError } from '../../src/core/errors.ts';
import { syntheticWeights } from '../../scripts/synthetic/weights.ts';
import { presetDims } from '../../scripts/synthetic/presets.ts';
import { argmax, maxDifference, randomMel } from '../backend-parity.ts';

/** Small and awkward: 3 heads of 5, odd audio length, a context of 10. */
const smallDims: WhisperDims = { nMels: 4, nAudioCtx: 7, nAudioState: 15, nAudioHead: 3, nAudioLayer: 2, nTextCtx: 10, nTextState: 15, nTextHead: 3, nTextLayer: 2, nVocab: 40 };

const small: ModelParameters<WeightTensor> = { dims: smallDims, weights: syntheticWeights(smallDims, 7) };

async function logitsRows(t: RefTensor): Promise<Float32Array[]> {
  const [rows, cols] = ops.shape(t);
  const data = await ops.read(t);
  return Array.from({ length: rows }, (_, r) => data.slice(r * cols, (r + 1) * cols));
}

test('the encoder turns 2·nAudioCtx mel frames into [nAudioCtx, nAudioState] finite features', async () => {
  const features = encode(ops, small, randomMel(smallDims, 1));
  assert.deepEqual(ops.shape(features), [smallDims.nAudioCtx, smallDims.nAudioState]);
  assert.ok((await ops.read(features)).every(Number.isFinite));
});

test('the encoder rejects a spectrogram of the wrong size, naming what is wrong', () => {
  const mel = randomMel(smallDims, 1);
  assert.throws(() => encode(ops, small, { ...mel, nFrames: 12, data: mel.data.subarray(0, 48) }), (e: unknown) => e instanceof AudioError && /14 mel frames/.test(e.message));
  assert.throws(() => encode(ops, small, { data: new Float32Array(5 * 14), nMels: 5, nFrames: 14 }), /4 mel bins/);
});

test('decoding token by token through the KV cache equals one pass over the whole sequence', async () => {
  const features = encode(ops, small, randomMel(smallDims, 2));
  const tokens = [3, 17, 0, 39, 22, 22, 8, 1, 30];

  const whole = createDecoderState(ops, small, features);
  const all = await logitsRows(decodeStep(ops, small, whole, [tokens], { allLogits: true }).logits);
  assert.equal(all.length, tokens.length);

  const incremental = createDecoderState(ops, small, features);
  for (let i = 0; i < tokens.length; i++) {
    const [row] = await logitsRows(decodeStep(ops, small, incremental, [[tokens[i]!]]).logits);
    assert.ok(maxDifference(row!, all[i]!) < 1e-5, `position ${i}: ${maxDifference(row!, all[i]!)}`);
  }

  // Chunks of 4, 2 and 3 tokens; without allLogits only each chunk's last row comes back.
  const chunked = createDecoderState(ops, small, features);
  let offset = 0;
  for (const size of [4, 2, 3]) {
    const [row] = await logitsRows(decodeStep(ops, small, chunked, [tokens.slice(offset, offset + size)]).logits);
    offset += size;
    assert.ok(maxDifference(row!, all[offset - 1]!) < 1e-5, `chunk ending at ${offset}`);
  }
  assert.equal(chunked.offset, tokens.length);
  // One more than the context of 10 is refused.
  assert.throws(() => decodeStep(ops, small, chunked, [[1, 2]]), /exceed the decoder context of 10/);
  assert.throws(() => decodeStep(ops, small, createDecoderState(ops, small, features), [[40]]), /token id 40/);
  for (const state of [whole, incremental, chunked]) releaseDecoderState(ops, state);
});

test('sequences decoded side by side equal each decoded alone, also after a beam reorder', async () => {
  const features = encode(ops, small, randomMel(smallDims, 3));
  const a = [5, 6, 7, 8];
  const b = [9, 1, 2, 3];
  const alone = async (sequence: number[]) => {
    const state = createDecoderState(ops, small, features);
    const [row] = await logitsRows(decodeStep(ops, small, state, [sequence]).logits);
    return row!;
  };
  const pair = createDecoderState(ops, small, features, { sequences: 2 });
  const rows = await logitsRows(decodeStep(ops, small, pair, [a.slice(0, 3), b.slice(0, 3)]).logits);
  assert.ok(maxDifference(rows[0]!, await alone(a.slice(0, 3))) < 1e-6);
  assert.ok(maxDifference(rows[1]!, await alone(b.slice(0, 3))) < 1e-6);

  // Both beams continue from b's prefix: then feed a's and b's last tokens.
  reorderDecoderState(ops, small, pair, [1, 1]);
  const next = await logitsRows(decodeStep(ops, small, pair, [[a[3]!], [b[3]!]]).logits);
  assert.ok(maxDifference(next[0]!, await alone([...b.slice(0, 3), a[3]!])) < 1e-6);
  assert.ok(maxDifference(next[1]!, await alone(b)) < 1e-6);
  assert.throws(() => decodeStep(ops, small, pair, [[1]]), MurmurError);
});

test('cross-attention weights come back per layer as [heads × tokens, audio rows] probability rows', async () => {
  const features = encode(ops, small, randomMel(smallDims, 4));
  const state = createDecoderState(ops, small, features);
  const { crossAttention } = decodeStep(ops, small, state, [[1, 2]], { crossAttentionWeights: true });
  assert.equal(crossAttention?.length, smallDims.nTextLayer);
  for (const layer of crossAttention!) {
    assert.deepEqual(ops.shape(layer), [smallDims.nTextHead * 2, smallDims.nAudioCtx]);
    for (const row of await logitsRows(layer)) {
      const sum = row.reduce((s, p) => s + p, 0);
      assert.ok(Math.abs(sum - 1) < 1e-5 && row.every((p) => p >= 0), `row sums to ${sum}`);
    }
  }
});

test("the 'mini' model: encoder and a 64-step greedy decode give finite logits, deterministically", async (t) => {
  const dims = presetDims('mini');
  const model: ModelParameters<WeightTensor> = { dims, weights: syntheticWeights(dims, 1) };
  const mel = randomMel(dims, 5);
  const run = async () => {
    const start = performance.now();
    const features = encode(ops, model, mel);
    const encoderMs = performance.now() - start;
    const source = createLogitsSource(ops, model, features);
    const sequence = [50257];
    const steps: Float32Array[] = [];
    const decodeStart = performance.now();
    for (let step = 0; step < 64; step++) {
      const logits = await source.next(sequence);
      assert.equal(logits.length, dims.nVocab);
      assert.ok(logits.every(Number.isFinite), `step ${step}: non-finite logits`);
      steps.push(logits);
      sequence.push(argmax(logits));
    }
    const perToken = (performance.now() - decodeStart) / 64;
    source.dispose();
    return { sequence, steps, encoderMs, perToken };
  };
  const first = await run();
  const second = await run();
  t.diagnostic(`mini encoder ${first.encoderMs.toFixed(0)} ms, decode ${first.perToken.toFixed(1)} ms/token`);
  assert.deepEqual(second.sequence, first.sequence);
  first.steps.forEach((logits, i) => assert.deepEqual(second.steps[i], logits, `step ${i} differs between runs`));
  // Random weights still make the logits depend on the input: not every step picks the same token.
  assert.ok(new Set(first.sequence.slice(1)).size > 1, 'greedy picks never change');
});
