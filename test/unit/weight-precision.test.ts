// Load-time precision (src/core/device/weight-precision.ts): which tensors narrow, to what bytes, and
// what stays (positional embeddings, convolutions, rows that are not whole quantization blocks, anything
// already at or below the target).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPrecision, matrixPrecision, precisionConversions } from '../../src/core/device/weight-precision.ts';
import { decodeTensor, encodeTensor } from '../../src/core/model/dtype.ts';
import { mapWeights, weightSlots } from '../../src/core/model/weights.ts';
import type { WeightTensor } from '../../src/core/model/weights.ts';
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

/** The model as a loader gives it: every tensor a view into one file-sized buffer. */
function packedInOneBuffer(weights: WhisperModel['weights']): { weights: WhisperModel['weights']; file: ArrayBuffer } {
  const slots = weightSlots(dims);
  const total = slots.reduce((sum, slot) => sum + slot.get(weights).bytes.byteLength, 64);
  const file = new ArrayBuffer(total);
  let offset = 64;
  const packed = mapWeights(dims, weights, (tensor: WeightTensor) => {
    const view = new Uint8Array(file, offset, tensor.bytes.byteLength);
    view.set(tensor.bytes);
    offset += tensor.bytes.byteLength;
    return { ...tensor, bytes: view };
  });
  return { weights: packed, file };
}

test('a narrowed model owns its bytes: the tensors left as they were are copies, none views the file buffer', () => {
  const { weights, file } = packedInOneBuffer(syntheticWeights(dims, 3));
  const model = modelOf(weights);
  const applied = applyPrecision(model, 'q8');
  assert.ok(applied.converted > 0);
  const kept: string[] = [];
  for (const slot of weightSlots(dims)) {
    const before = slot.get(model.weights);
    const after = slot.get(applied.model.weights);
    assert.notEqual(after.bytes.buffer, file, `${slot.name} still views the file buffer`);
    assert.equal(after.bytes.byteLength, after.bytes.buffer.byteLength, `${slot.name} is a view into a larger buffer`);
    if (after.dtype === before.dtype) {
      kept.push(slot.name);
      assert.deepEqual(after.bytes, before.bytes, `${slot.name}: the copy has the same bytes`);
    }
  }
  assert.ok(kept.includes('encoder.positional_embedding') && kept.includes('encoder.conv1.bias'), kept.join(', '));
  // The given model still views its file, untouched.
  assert.equal(model.weights.encoder.conv1.weight.bytes.buffer, file);
  // Nothing converted: the model as given, views and all (the caller holds that file anyway).
  const same = applyPrecision(model, 'f32');
  assert.equal(same.model, model);
});

test('the same precision applied to a narrowed model returns the first result without converting again', () => {
  const model = modelOf(syntheticWeights(dims, 4));
  const before = precisionConversions();
  const first = applyPrecision(model, 'q4');
  assert.equal(precisionConversions(), before + 1);
  const again = applyPrecision(first.model, 'q4');
  assert.equal(again, first, 'the first result, with its reason and byte counts');
  assert.equal(precisionConversions(), before + 1);
  // The original model is converted afresh: nothing is cached on it, so keeping it does not keep a narrowed copy alive.
  assert.equal(applyPrecision(model, 'q4').converted, first.converted);
  assert.equal(precisionConversions(), before + 2);
});
