// The decoding stack on a real backend: a DecoderSession over the reference backend and the
// 'mini' synthetic model gives, at temperature 0 without timestamps, exactly the tokens of the
// existing greedyDecode; beam search and timestamps run through the same session.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createDecoderSession, type DecoderSession } from '../../src/core/decoding/session.ts';
import type { ModelParameters } from '../../src/core/model/whisper.ts';
import type { WeightTensor } from '../../src/core/model/weights.ts';
import type { RefTensor } from '../../src/core/reference/tensor.ts';
import { decodeWindow } from '../../src/core/decoding/options.ts';
import { greedyDecode } from '../../src/core/decoding/greedy.ts';
import { createLogitsSource, encode } from '../../src/core/model/whisper.ts';
import { referenceOps as ops } from '../../src/core/reference/backend.ts';
import { logMelWindow, SAMPLE_RATE } from '../../src/core/audio/mel.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { cachedSyntheticModel, DEFAULT_ASSETS_DIR } from '../../scripts/synthetic/generate.ts';

/** A DecoderSession that keeps only token histories and asks one LogitsSource per sequence: reorder is a plain permutation. */
function uncachedSession(params: ModelParameters<WeightTensor>, features: RefTensor): DecoderSession {
  return {
    nVocab: params.dims.nVocab,
    nTextCtx: params.dims.nTextCtx,
    begin(sequences) {
      const sources = Array.from({ length: sequences }, () => createLogitsSource(ops, params, features));
      let histories = Array.from({ length: sequences }, () => [] as number[]);
      return {
        sequences,
        async step(tokens) {
          tokens.forEach((row, s) => histories[s]!.push(...row));
          const logits: Float32Array[] = [];
          for (let s = 0; s < sequences; s++) logits.push(await sources[s]!.next(histories[s]!));
          return { logits };
        },
        reorder(order) {
          histories = order.map((source) => histories[source]!.slice());
        },
        dispose() {
          for (const source of sources) source.dispose();
        },
      };
    },
  };
}

const skip = existsSync(`${DEFAULT_ASSETS_DIR}/gpt2.tiktoken`) ? false : `${DEFAULT_ASSETS_DIR} is absent (reference data folder not mounted)`;

test('reference backend, mini model: decodeWindow at temperature 0 equals greedyDecode; beams and timestamps run', { skip }, async () => {
  const { path } = await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' });
  const model = await loadModel(path);
  const params = { dims: model.dims, weights: model.weights };
  const tone = Float32Array.from({ length: 2 * SAMPLE_RATE }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 440 * i) / SAMPLE_RATE));
  const features = encode(ops, params, logMelWindow(tone, model.dims.nMels));
  try {
    const maxTokens = 40;
    const source = createLogitsSource(ops, params, features);
    const expected = await greedyDecode(source, model, { maxTokens });
    source.dispose();
    assert.ok(expected.tokens.length > 0);

    const session = createDecoderSession(ops, params, features);
    const result = await decodeWindow(session, model, { withoutTimestamps: true, sampleLen: maxTokens, suppressTokens: model.generation.suppressTokens });
    assert.deepEqual(result.tokens, expected.tokens);
    const expectedSum = expected.logProbs.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(result.sumLogProb - expectedSum) < 1e-3, `${result.sumLogProb} vs ${expectedSum}`);
    assert.ok(result.noSpeechProb >= 0 && result.noSpeechProb <= 1);
    assert.equal(result.language, 'en');

    const beam = await decodeWindow(session, model, { withoutTimestamps: true, sampleLen: 12, beamSize: 3 });
    assert.ok(beam.tokens.length > 0 && beam.tokens.length <= 12);
    assert.ok(Number.isFinite(beam.sumLogProb));
    // The same search over a session without cache reordering (each sequence recomputed from its tokens).
    const recomputed = await decodeWindow(uncachedSession(params, features), model, { withoutTimestamps: true, sampleLen: 12, beamSize: 3 });
    assert.deepEqual(beam.tokens, recomputed.tokens);
    assert.ok(Math.abs(beam.sumLogProb - recomputed.sumLogProb) < 1e-3);

    const timed = await decodeWindow(session, model, { sampleLen: 12 });
    const first = timed.tokens[0]!;
    assert.ok(first >= model.tokenizer.timestampBegin && first <= model.tokenizer.timestampBegin + 50, 'starts with a timestamp ≤ 1 s');
  } finally {
    ops.release(features);
  }
});

test('reference backend: a batch step returns every position and the cross-attention weights when asked', { skip }, async () => {
  const { path } = await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' });
  const model = await loadModel(path);
  const params = { dims: model.dims, weights: model.weights };
  const features = encode(ops, params, logMelWindow(new Float32Array(SAMPLE_RATE), model.dims.nMels));
  const session = createDecoderSession(ops, params, features);
  const batch = session.begin(2);
  try {
    const tok = model.tokenizer;
    const out = await batch.step([[tok.sot, tok.noTimestamps], [tok.sot, 400]], { allPositions: true, crossAttention: true });
    assert.equal(out.allLogits?.length, 2);
    assert.equal(out.allLogits![0]!.length, 2);
    assert.deepEqual(out.allLogits![0]![1], out.logits[0]);
    assert.deepEqual(out.allLogits![0]![0], out.allLogits![1]![0], 'both sequences start with <|startoftranscript|>');
    assert.notDeepEqual(out.logits[0], out.logits[1]);
    const { nTextLayer, nTextHead, nAudioCtx } = model.dims;
    assert.equal(out.crossAttention?.length, nTextLayer);
    for (const layer of out.crossAttention!) assert.equal(layer.length, 2 * nTextHead * 2 * nAudioCtx);
    // Reordering: both sequences continue the second one, so the same next token gives the same logits.
    batch.reorder([1, 1]);
    const next = await batch.step([[500], [500]]);
    assert.deepEqual(next.logits[0], next.logits[1]);
    assert.equal(next.allLogits, undefined);
    assert.throws(() => batch.reorder([0, 2]), /reorder names sequence 2/);
  } finally {
    batch.dispose();
    ops.release(features);
  }
  await assert.rejects(() => batch.step([[1], [1]]), /disposed/);
});
