// Seeded synthetic weights: deterministic, real names and shapes, healthy scales; and the presets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createRandom, sinusoids, syntheticTensors, syntheticWeights } from '../../scripts/synthetic/weights.ts';
import { presetDims, SYNTHETIC_PRESETS } from '../../scripts/synthetic/presets.ts';
import { KNOWN_DIMS, type WhisperDims } from '../../src/core/model/dims.ts';
import { weightSlots } from '../../src/core/model/weights.ts';

const small: WhisperDims = { nMels: 4, nAudioCtx: 7, nAudioState: 16, nAudioHead: 2, nAudioLayer: 2, nTextCtx: 10, nTextState: 16, nTextHead: 2, nTextLayer: 2, nVocab: 64 };

function digest(tensors: { name: string; values: Float32Array }[]): string {
  const hash = createHash('sha256');
  for (const t of tensors) {
    hash.update(t.name);
    hash.update(new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength));
  }
  return hash.digest('hex');
}

function stats(values: Float32Array): { mean: number; std: number } {
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / values.length;
  let squares = 0;
  for (const v of values) squares += (v - mean) ** 2;
  return { mean, std: Math.sqrt(squares / values.length) };
}

test('the generator is a pure function of dims and seed', () => {
  assert.equal(digest(syntheticTensors(small, 3)), digest(syntheticTensors(small, 3)));
  assert.notEqual(digest(syntheticTensors(small, 3)), digest(syntheticTensors(small, 4)));
  // The PRNG stream is pinned: changing it changes every synthetic model (and must be deliberate).
  const random = createRandom(1);
  assert.deepEqual(
    Array.from({ length: 4 }, () => random.uniform()),
    [0.5686059963190928, 0.7539288493571803, 0.8893939367262647, 0.49002045521046966],
  );
  const normals = createRandom(1);
  assert.deepEqual(Array.from({ length: 3 }, () => normals.normal()), [0.026228538027076136, -1.062283922458964, -0.4832282415021664]);
});

test('tensors come in weightSlots order with the schema shapes, all finite', () => {
  const tensors = syntheticTensors(small, 1);
  const slots = weightSlots(small);
  assert.deepEqual(tensors.map((t) => t.name), slots.map((s) => s.name));
  tensors.forEach((t, i) => {
    assert.deepEqual(t.shape, slots[i]!.shape, t.name);
    assert.equal(t.values.length, t.shape.reduce((a, b) => a * b, 1), t.name);
    assert.ok(t.values.every(Number.isFinite), `${t.name} has a non-finite value`);
  });
});

test('scales: gains near 1, small biases, linear weights ~ N(0, 1/fan_in), sinusoidal encoder positions', () => {
  const dims = { ...small, nAudioState: 128, nTextState: 128 };
  const byName = new Map(syntheticTensors(dims, 2).map((t) => [t.name, t.values]));
  const gain = stats(byName.get('encoder.blocks.0.attn_ln.weight')!);
  assert.ok(Math.abs(gain.mean - 1) < 0.02 && gain.std < 0.1, `layer-norm gain ${JSON.stringify(gain)}`);
  const bias = stats(byName.get('decoder.blocks.1.mlp.0.bias')!);
  assert.ok(Math.abs(bias.mean) < 0.01 && bias.std < 0.05, `bias ${JSON.stringify(bias)}`);
  const fc2 = stats(byName.get('decoder.blocks.1.mlp.2.weight')!); // [128, 512]
  assert.ok(Math.abs(fc2.std * Math.sqrt(512) - 1) < 0.02, `fc2 std ${fc2.std}`);
  const conv1 = stats(byName.get('encoder.conv1.weight')!); // [128, 4, 3]
  assert.ok(Math.abs(conv1.std * Math.sqrt(12) - 1) < 0.05, `conv1 std ${conv1.std}`);
  const tokens = stats(byName.get('decoder.token_embedding.weight')!);
  assert.ok(tokens.std < 0.05, `token embedding std ${tokens.std}`);
  assert.deepEqual(byName.get('encoder.positional_embedding'), sinusoids(dims.nAudioCtx, dims.nAudioState));
  const positions = sinusoids(3, 8);
  // Row 0 is [sin 0 …, cos 0 …]; channel 0 of row t is sin(t) (timescale 1).
  assert.deepEqual(Array.from(positions.subarray(0, 8)), [0, 0, 0, 0, 1, 1, 1, 1]);
  assert.ok(Math.abs(positions[16]! - Math.sin(2)) < 1e-7);
});

test('syntheticWeights fills the schema in the asked dtype where whisper.cpp would use it', () => {
  const dims = { ...small, nAudioState: 32, nTextState: 32 };
  const f32 = syntheticWeights(dims, 1);
  assert.equal(f32.decoder.tokenEmbedding.dtype, 'f32');
  const q8 = syntheticWeights(dims, 1, 'q8_0');
  assert.equal(q8.decoder.blocks[0]!.attn.query.weight.dtype, 'q8_0');
  assert.equal(q8.encoder.conv1.weight.dtype, 'f16');
  assert.equal(q8.encoder.positionalEmbedding.dtype, 'f32');
  assert.equal(q8.decoder.ln.bias.dtype, 'f32');
  assert.equal(syntheticWeights(dims, 1, 'bf16').encoder.blocks[1]!.mlp.fc1.bias!.dtype, 'bf16');
});

test('presets: the real small models and the mini test models', () => {
  assert.deepEqual(presetDims('tiny.en'), KNOWN_DIMS['tiny.en']);
  assert.deepEqual(presetDims('base'), KNOWN_DIMS.base);
  assert.deepEqual(presetDims('mini'), { nMels: 80, nAudioCtx: 1500, nAudioState: 64, nAudioHead: 2, nAudioLayer: 2, nTextCtx: 448, nTextState: 64, nTextHead: 2, nTextLayer: 2, nVocab: 51864 });
  assert.deepEqual(presetDims('mini-multilingual'), { ...presetDims('mini'), nVocab: 51865 });
  assert.deepEqual(Object.keys(SYNTHETIC_PRESETS).sort(), ['base', 'mini', 'mini-multilingual', 'tiny', 'tiny.en']);
});
