// Weights larger than one storage binding, in Node: with `maxBindingBytes` lowering the limit the
// backend plans with, linear weights are stored as row chunks (the tied logits over the
// embedding, MLP weights) and the token table the embedding lookup reads is chunked too. Encoder
// output and the logits of a few greedy steps must equal the unsplit backend's (each output
// column is computed by the same kernel over the same K, so bit-exact is expected; ≤ 1e-6 is
// asserted). Plus what cannot be split: a table that is not a linear weight, and a linear weight
// of which 64 rows (one row group) already exceed the limit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel, type SyntheticModelOptions } from '../../scripts/synthetic/generate.ts';
import { SYNTHETIC_PRESETS } from '../../scripts/synthetic/presets.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import type { WhisperModel } from '../../src/core/model/model.ts';
import { createLogitsSource, encode, type MelInput } from '../../src/core/model/whisper.ts';
import { defaultPrompt } from '../../src/core/decoding/greedy.ts';
import { createWebGpuBackend, GpuWeightTooLargeError, type GpuWeight, type WebGpuBackend, type WebGpuBackendOptions } from '../../src/kernels-wgsl/backend.ts';
import { isSplitLinear } from '../../src/kernels-wgsl/linear-layers.ts';
import { skipWithoutSharedData } from '../shared-data.ts';
import { acquireNodeGpu, deviceOrSkip, type NodeGpu } from './node-gpu.ts';
import { testMel } from './webgpu-backend-cases.ts';
import { argmax, maxDifference } from '../backend-parity.ts';

const TOLERANCE = 1e-6;
const KiB = 1024;
const skip = skipWithoutSharedData('whisper-assets/gpt2.tiktoken');

interface DecodeRun {
  encoded: Float32Array;
  logits: Float32Array[];
  /** Chunks of the tied embedding's linear layer, its table, and the first encoder block's fc1 and fc2 (1 when not split). */
  chunks: { logits: number; table: number; fc1: number; fc2: number };
  linearKernels: Record<string, number>;
}

function chunkCount(weight: GpuWeight): number {
  return weight.linear && isSplitLinear(weight.linear) ? weight.linear.chunks.length : 1;
}

/** The test mel's first 2 · nAudioCtx frames (the encoder takes exactly that many). */
function melFor(model: WhisperModel): MelInput {
  const full = testMel(model);
  const nFrames = 2 * model.dims.nAudioCtx;
  const data = new Float32Array(full.nMels * nFrames);
  for (let mel = 0; mel < full.nMels; mel++) data.set(full.data.subarray(mel * full.nFrames, mel * full.nFrames + nFrames), mel * nFrames);
  return { data, nMels: full.nMels, nFrames };
}

/** Encodes the test mel and feeds `steps` greedy tokens, keeping every step's logits. */
async function decode(backend: WebGpuBackend, model: WhisperModel, steps: number): Promise<DecodeRun> {
  const weights = await backend.prepareWeights(model.dims, model.weights);
  const block = weights.encoder.blocks[0]!;
  const embedding = weights.decoder.tokenEmbedding;
  const chunks = { logits: chunkCount(embedding), table: embedding.tableChunks?.length ?? 1, fc1: chunkCount(block.mlp.fc1.weight), fc2: chunkCount(block.mlp.fc2.weight) };
  const parameters = { dims: model.dims, weights };
  const { ops } = backend;
  const features = encode(ops, parameters, melFor(model));
  const encoded = await ops.read(features);
  const source = createLogitsSource(ops, parameters, features);
  const logits: Float32Array[] = [];
  try {
    const tokens = defaultPrompt(model.tokenizer);
    for (let step = 0; step < steps; step++) {
      const values = await source.next(tokens);
      logits.push(values);
      tokens.push(argmax(values));
    }
  } finally {
    source.dispose();
    ops.release(features);
    backend.releaseWeights(weights);
  }
  return { encoded, logits, chunks, linearKernels: backend.stats().linearKernels };
}

interface SplitCase {
  name: string;
  model: SyntheticModelOptions;
  backend: Omit<WebGpuBackendOptions, 'device' | 'maxBindingBytes'>;
  maxBindingBytes: number;
  steps: number;
  expect: (chunks: DecodeRun['chunks']) => void;
}

// mini's MLP weights cannot be split alone: fc2 [64, 256] is one row group as large as fc1, so a
// limit that splits fc1 refuses fc2; and the tables that cannot be split (the encoder's positional
// embedding [1500, width], conv2 [width, width, 3]) are larger than fc1 up to a width of ~400.
// At twice the width with 100 audio frames, 232 KiB splits fc1 and fc2 and keeps every table whole.
const wideMini = { ...SYNTHETIC_PRESETS.mini, nAudioCtx: 100, nAudioState: 128, nTextState: 128 };

const CASES: SplitCase[] = [
  {
    name: 'f32, width 128, 232 KiB: the embedding in 116 chunks (the table shares them), fc1 and fc2 in 2',
    model: { dims: wideMini, seed: 5, format: 'ggml', dtype: 'f32' },
    backend: {},
    maxBindingBytes: 232 * KiB,
    steps: 4,
    expect: (chunks) => assert.deepEqual(chunks, { logits: 116, table: 116, fc1: 2, fc2: 2 }),
  },
  {
    name: 'q8_0 blocks, 1.5 MiB: the quantized embedding in 3 chunks, its f32 table in 9',
    model: { preset: 'mini', seed: 3, format: 'ggml', dtype: 'q8_0' },
    backend: {},
    maxBindingBytes: 1536 * KiB,
    // The prompt step and one single-row step: each quantized product over the vocabulary takes seconds on SwiftShader.
    steps: 2,
    expect: (chunks) => assert.deepEqual(chunks, { logits: 3, table: 9, fc1: 1, fc2: 1 }),
  },
  {
    name: "layout 'blocked', f32 tiles, 5 MiB: the embedding in 3 chunks, its table in 3",
    model: { preset: 'mini', seed: 3, format: 'ggml', dtype: 'f32' },
    backend: { layout: 'blocked' },
    maxBindingBytes: 5 * 1024 * KiB,
    steps: 4,
    expect: (chunks) => assert.deepEqual(chunks, { logits: 3, table: 3, fc1: 1, fc2: 1 }),
  },
];

describe('weights split across bindings in Node', () => {
  let gpu: NodeGpu | undefined;
  before(async () => {
    gpu = await acquireNodeGpu();
  });
  after(() => gpu?.context?.device.destroy());

  for (const c of CASES) {
    test(`${c.name}: encoder output and ${c.steps} steps of logits equal the unsplit backend's`, { skip, timeout: 240_000 }, async (t) => {
      const context = deviceOrSkip(gpu, t);
      if (!context) return;
      const model = await loadModel((await cachedSyntheticModel(c.model)).path);
      const whole = await createWebGpuBackend({ ...c.backend, device: context.device });
      const split = await createWebGpuBackend({ ...c.backend, device: context.device, maxBindingBytes: c.maxBindingBytes });
      try {
        const expected = await decode(whole, model, c.steps);
        const started = performance.now();
        const actual = await decode(split, model, c.steps);
        t.diagnostic(`split run ${(performance.now() - started).toFixed(0)} ms, chunks ${JSON.stringify(actual.chunks)}, kernels ${JSON.stringify(actual.linearKernels)}`);
        assert.deepEqual(expected.chunks, { logits: 1, table: 1, fc1: 1, fc2: 1 }, 'the unsplit backend split nothing');
        c.expect(actual.chunks);
        const encoderError = maxDifference(actual.encoded, expected.encoded);
        const stepErrors = actual.logits.map((logits, step) => maxDifference(logits, expected.logits[step]!));
        t.diagnostic(`worst errors: encoder ${encoderError.toExponential(2)}, logits ${Math.max(...stepErrors).toExponential(2)}`);
        assert.ok(encoderError <= TOLERANCE, `encoder output off by ${encoderError}`);
        stepErrors.forEach((error, step) => assert.ok(error <= TOLERANCE, `step ${step}: logits off by ${error}`));
        assert.equal(split.stats().pool.inUseBytes, 0, 'chunk scratch buffers went back to the pool');
      } finally {
        whole.dispose();
        split.dispose();
      }
    });
  }

  test('what cannot be split is refused before any upload, naming the tensor and the limit', { skip }, async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const model = await loadModel((await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'f16' })).path);
    // The encoder's positional embedding [1500, 64] f32 is 384000 bytes: a table, not splittable.
    const small = await createWebGpuBackend({ device: context.device, maxBindingBytes: 100 * KiB });
    // fc2 [64, 256] in f32 or f16 is one row group; at 16 KiB even 64 of its rows are too many.
    const tiny = await createWebGpuBackend({ device: context.device, maxBindingBytes: 16 * KiB, layout: 'blocked' });
    try {
      await assert.rejects(small.prepareWeights(model.dims, model.weights), (e: unknown) => {
        assert.ok(e instanceof GpuWeightTooLargeError, String(e));
        assert.equal(e.tensor, 'encoder.positional_embedding');
        assert.match(e.message, /\[1500,64\] needs 384000 bytes as f32 values, more than this device's maxBindingBytes option \(102400 bytes\)/);
        return true;
      });
      await assert.rejects(tiny.prepareWeights(model.dims, model.weights), (e: unknown) => {
        assert.ok(e instanceof GpuWeightTooLargeError, String(e));
        assert.match(e.tensor, /mlp\.2\.weight$/);
        assert.match(e.message, /\[64,256\] cannot be split: 64 of its rows need 65536 bytes as f32 tiles, more than this device's maxBindingBytes option \(16384 bytes\)/);
        return true;
      });
      assert.equal(small.stats().pool.allocatedBytes + tiny.stats().pool.allocatedBytes, 0);
    } finally {
      small.dispose();
      tiny.dispose();
    }
  });
});
