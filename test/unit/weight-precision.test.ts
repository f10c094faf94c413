// Load-time precision (src/core/device/weight-precision.ts): which tensors narrow, to what bytes, and
// what stays (positional embeddings, convolutions, rows that are not whole quantization blocks, anything
// already at or below the target).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPrecision, matrixPrecision } from '../../src/core/device/weight-precision.ts';
import { decodeTensor, encodeTensor } from '../../src/core/model/dtype.ts';
import type { WhisperDims } from '../../src/core/model/dims.ts';
import type { WhisperModel } from '../../src/core/model/model.ts';
import { syntheticWeights } from '../../scripts/synthetic/weights.ts';

const dims: WhisperDims = { nMels: 4, nAudioCtx: 8, nAudioState: 32, nAudioHead: 2, nAudioLayer: 1, nTextCtx: 6, nTextState: 32, nTextHead: 2, nTextLayer: 1, nVocab: 40 };
const modelOf = (weights: WhisperModel['weights'], d = dims) => ({ source: 'synthetic', format: 'huggingface', dims: d, weights }) as unknown as WhisperModel;

test('q8 narrows every matrix but the positional embeddings to q8_0 blocks equal to the encoder’s; the rest is untouched', () => {
  const model = modelOf(syntheticWeights(dims, 1));
  const applied = applyPrecision(model, 'q8');
  const { weights } = applied.model;
  assert.equal(applied.precision, 'q8');
  assert.equal(matrixPrecision(model), 'f32');
  // 4 attention projections × 3 (encoder self, decoder self, decoder cross) + 2 MLP × 2 + the token embedding.
  assert.equal(applied.converted, 4 * 3 + 2 * 2 + 1);
  const fc1 = model.weights.encoder.blocks[0]!.mlp.fc1.weight;
  assert.deepEqual(weights.encoder.blocks[0]!.mlp.fc1.weight, encodeTensor(decodeTensor(fc1), fc1.shape, 'q8_0'));
  assert.equal(weights.decoder.tokenEmbedding.dtype, 'q8_0');
  assert.equal(weights.encoder.positionalEmbedding, model.weights.encoder.positionalEmbedding);
  assert.equal(weights.encoder.conv1.weight, model.weights.encoder.conv1.weight);
  assert.equal(weights.encoder.blocks[0]!.mlp.fc1.bias, model.weights.encoder.blocks[0]!.mlp.fc1.bias);
  assert.ok(applied.bytesAfter < applied.bytesBefore);
  assert.match(applied.reason, /^precision q8: 17 matrices converted to q8_0 at load/);
});

test('rows that are not whole blocks of 32 keep their dtype for q8/q4 (named), but narrow to f16; at or below the target nothing changes', () => {
  const odd = { ...dims, nAudioState: 20, nTextState: 20 };
  const model = modelOf(syntheticWeights(odd, 2), odd);
  const q4 = applyPrecision(model, 'q4');
  assert.equal(q4.converted, 0);
  assert.equal(q4.model, model);
  assert.match(q4.reason, /17 matrices kept \(rows not whole blocks of 32: encoder\.blocks\.0\.attn\.query\.weight/);
  const f16 = applyPrecision(model, 'f16');
  assert.equal(f16.converted, 17);
  const again = applyPrecision(f16.model, 'f16');
  assert.equal(again.model, f16.model);
  const widened = applyPrecision(f16.model, 'f32');
  assert.equal(widened.model, f16.model);
  assert.equal(widened.precision, 'f16');
  assert.match(widened.reason, /f16 matrices stay as stored: weights are never widened/);
});
