// The WebGPU backend's plumbing in Node: the KV-cache and row ops against the reference, typed
// errors (a weight too large for the device, a lost device, GPU validation errors, misuse of
// handles), recordLinear's dispatch on the weight dtype, CPU-timed profiling, and the transcriber's
// 'webgpu' option end to end against the reference transcriber.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { comparableTranscript } from '../unit/transcriber-comparable.ts';
import { MurmurError } from '../../src/core/errors.ts';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { createTranscriber } from '../../src/core/transcriber.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import type { WhisperWeights, WeightTensor } from '../../src/core/model/weights.ts';
import { createWebGpuBackend, formatProfileTable, GpuDeviceLostError, GpuWeightTooLargeError } from '../../src/kernels-wgsl/backend.ts';
import { GpuKernelError, readFloat32, requestGpuDevice } from '../../src/kernels-wgsl/device.ts';
import { recordLinear, uploadLinearWeights } from '../../src/kernels-wgsl/matmul.ts';
import { uploadQuantizedWeights } from '../../src/kernels-wgsl/matmul-quant.ts';
import { createStorage, runRecorded, uploadStorage } from '../../src/kernels-wgsl/wgsl-common.ts';
import { encodeTensor } from '../../src/core/model/dtype.ts';
import { matmulMismatch } from './matmul-cases.ts';
import { skipWithoutSharedData } from '../shared-data.ts';
import { acquireNodeGpu, dawnGpu, deviceOrSkip, type NodeGpu } from './node-gpu.ts';
import { testAudio } from './webgpu-backend-cases.ts';

const MODEL = { preset: 'mini', seed: 3, format: 'ggml', dtype: 'f16' } as const;
const skipWithoutAssets = skipWithoutSharedData('whisper-assets/gpt2.tiktoken');

function seeded(count: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

describe('the WebGPU backend runtime in Node', () => {
  let gpu: NodeGpu | undefined;
  before(async () => {
    gpu = await acquireNodeGpu();
  });
  after(() => gpu?.context?.device.destroy());

  test('zeros, writeCache, reorderCache and gatherRows match the reference exactly', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const backend = await createWebGpuBackend({ device: context.device });
    const reference = createReferenceBackend().ops;
    const { ops } = backend;
    try {
      const [sequences, capacity, cols] = [3, 8, 6];
      const results: [string, Float32Array, Float32Array][] = [];
      const cache = ops.zeros(sequences * capacity, cols);
      const refCache = reference.zeros(sequences * capacity, cols);
      results.push(['zeros', await ops.read(cache), await reference.read(refCache)]);
      for (const [offset, n, seed] of [[0, 3, 1], [3, 2, 2], [5, 1, 3]] as const) {
        const values = seeded(sequences * n * cols, seed);
        const x = ops.upload(values, sequences * n, cols);
        ops.writeCache(cache, x, { sequences, capacity, offset });
        ops.release(x);
        reference.writeCache(refCache, reference.upload(values, sequences * n, cols), { sequences, capacity, offset });
      }
      results.push(['writeCache', await ops.read(cache), await reference.read(refCache)]);
      ops.reorderCache(cache, [2, 0, 0], { capacity, length: 6 });
      reference.reorderCache(refCache, [2, 0, 0], { capacity, length: 6 });
      results.push(['reorderCache', await ops.read(cache), await reference.read(refCache)]);
      const gathered = ops.gatherRows(cache, [23, 0, 9, 9]);
      results.push(['gatherRows', await ops.read(gathered), await reference.read(reference.gatherRows(refCache, [23, 0, 9, 9]))]);
      for (const [op, actual, expected] of results) assert.deepEqual([...actual], [...expected], op);
      for (const tensor of [cache, gathered]) ops.release(tensor);
      assert.equal(backend.stats().pool.inUseBytes, 0);
    } finally {
      backend.dispose();
    }
  });

  test('shape mismatches and use after release are MurmurErrors naming the problem', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const backend = await createWebGpuBackend({ device: context.device });
    const { ops } = backend;
    try {
      const x = ops.upload(seeded(12, 4), 3, 4);
      assert.throws(() => ops.upload(new Float32Array(5), 2, 3), (e: unknown) => e instanceof MurmurError && /5 values cannot be a \[2, 3\] tensor/.test(e.message));
      assert.throws(() => ops.gatherRows(x, [3]), (e: unknown) => e instanceof MurmurError && /row 3 of a \[3, 4\] tensor/.test(e.message));
      const cache = ops.zeros(8, 4);
      assert.throws(() => ops.writeCache(cache, x, { sequences: 1, capacity: 8, offset: 6 }), (e: unknown) => e instanceof MurmurError && /rows 6..8 exceed the capacity of 8/.test(e.message));
      assert.throws(() => ops.reorderCache(cache, [1, 5], { capacity: 4, length: 2 }), (e: unknown) => e instanceof MurmurError && /sequence 5 does not exist/.test(e.message));
      ops.release(x);
      assert.throws(() => ops.gatherRows(x, [0]), (e: unknown) => e instanceof MurmurError && e.code === 'RELEASED');
      assert.throws(() => ops.release(x), (e: unknown) => e instanceof MurmurError && /released twice/.test(e.message));
      ops.release(cache);
    } finally {
      backend.dispose();
    }
  });

  test('released weights are refused by the ops that would read them', { skip: skipWithoutAssets }, async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const model = await loadModel((await cachedSyntheticModel(MODEL)).path);
    const backend = await createWebGpuBackend({ device: context.device });
    try {
      const weights = await backend.prepareWeights(model.dims, model.weights);
      const x = backend.ops.upload(seeded(64, 12), 1, 64);
      const block = weights.decoder.blocks[0]!;
      const before = backend.ops.linear(x, block.mlp.fc1, { gelu: true });
      assert.deepEqual(backend.ops.shape(before), [1, 256]);
      backend.releaseWeights(weights);
      assert.throws(() => backend.ops.linear(x, block.mlp.fc1), (e: unknown) => e instanceof MurmurError && /decoder\.blocks\.0\.mlp\.0\.weight \[256,64\] has no linear layer on the GPU/.test(e.message));
      assert.throws(() => backend.ops.layerNorm(x, block.attnLn), (e: unknown) => e instanceof MurmurError && /decoder\.blocks\.0\.attn_ln\.weight \[64\] has no f32 values/.test(e.message));
      // What was recorded before the release still runs: releaseWeights submitted it first.
      assert.equal((await backend.ops.read(before)).length, 256);
    } finally {
      backend.dispose();
    }
  });

  test('a GPU validation error in a recording comes back from the read as a GpuKernelError naming the ops', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const backend = await createWebGpuBackend({ device: context.device });
    const { ops } = backend;
    try {
      const x = ops.upload(seeded(8, 5), 2, 4);
      // A destroyed buffer in a submission is a validation error, invisible until the GPU checks it.
      x.buffer.destroy();
      const y = ops.gatherRows(x, [1]);
      await assert.rejects(ops.read(y), (e: unknown) => e instanceof GpuKernelError && /gatherRows/.test(e.message) && /read/.test(e.message));
      // The backend goes on working afterwards.
      const z = ops.upload(seeded(4, 6), 1, 4);
      assert.deepEqual([...(await ops.read(z))], [...seeded(4, 6)]);
    } finally {
      backend.dispose();
    }
  });

  test('a lost device fails the read in flight and every later call with GpuDeviceLostError', async (t) => {
    if (!deviceOrSkip(gpu, t)) return;
    const { device } = await requestGpuDevice({ gpu: await dawnGpu() });
    const backend = await createWebGpuBackend({ device });
    const { ops } = backend;
    const x = ops.upload(seeded(64, 7), 8, 8);
    const reading = ops.read(x);
    device.destroy();
    await assert.rejects(reading, (e: unknown) => e instanceof GpuDeviceLostError && /read: the GPU device was lost \(destroyed/.test(e.message));
    assert.throws(() => ops.zeros(2, 2), (e: unknown) => e instanceof GpuDeviceLostError && /zeros/.test(e.message));
    await assert.rejects(async () => ops.read(x), GpuDeviceLostError);
    backend.dispose();
  });

  test('a table larger than one storage binding is refused before any upload, naming the tensor', { skip: skipWithoutAssets }, async (t) => {
    if (!deviceOrSkip(gpu, t)) return;
    const adapter = await (await dawnGpu()).requestAdapter();
    assert.ok(adapter);
    // Default limits: maxStorageBufferBindingSize is 128 MiB.
    const device = await adapter.requestDevice();
    const backend = await createWebGpuBackend({ device });
    try {
      const model = await loadModel((await cachedSyntheticModel(MODEL)).path);
      const limit = device.limits.maxStorageBufferBindingSize;
      const rows = Math.floor(limit / (64 * 4)) + 64;
      // A linear weight this large would be split into row chunks (webgpu-backend-split.test.ts); a positional embedding cannot be.
      const huge: WeightTensor = { dtype: 'f32', shape: [rows, 64], bytes: new Uint8Array(rows * 64 * 4) };
      const weights: WhisperWeights = { ...model.weights, decoder: { ...model.weights.decoder, positionalEmbedding: huge } };
      await assert.rejects(backend.prepareWeights(model.dims, weights), (e: unknown) => {
        assert.ok(e instanceof GpuWeightTooLargeError, String(e));
        assert.equal(e.tensor, 'decoder.positional_embedding');
        assert.match(e.message, new RegExp(`\\[${rows},64\\] needs \\d+ bytes as f32 values, more than this device's maxStorageBufferBindingSize \\(${limit} bytes\\)`));
        return true;
      });
      assert.equal(backend.stats().pool.allocatedBytes, 0);
    } finally {
      backend.dispose();
      device.destroy();
    }
  });

  test('recordLinear runs f32 and q8_0/q4_1 weights on their kernels, matching the reference linear', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const { device } = context;
    const [m, n, k] = [3, 40, 64];
    const values = seeded(n * k, 9);
    const bias = seeded(n, 10);
    const x = seeded(m * k, 11);
    const reference = createReferenceBackend().ops;
    for (const dtype of ['f32', 'q8_0', 'q4_1'] as const) {
      const tensor = encodeTensor(values, [n, k], dtype);
      const weights = dtype === 'f32' ? uploadLinearWeights(device, values, n, k, bias) : uploadQuantizedWeights(device, tensor, bias);
      const xBuffer = uploadStorage(device, 'x', x);
      const output = createStorage(device, 'y', m * n);
      try {
        await runRecorded(device, 'linear', (recording) => recordLinear(recording, { x: xBuffer, m, weights, output, gelu: true }));
        const actual = await readFloat32(device, output, m * n);
        const expected = reference.linear(reference.upload(x, m, k), { weight: tensor, bias: encodeTensor(bias, [n], 'f32') }, { gelu: true }).data;
        assert.equal(matmulMismatch(actual, expected), undefined, dtype);
      } finally {
        weights.destroy();
        xBuffer.destroy();
        output.destroy();
      }
    }
  });

  test('profiling without timestamps times one submission per op on the CPU', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const backend = await createWebGpuBackend({ device: context.device, profile: true, profileTiming: 'cpu' });
    const { ops } = backend;
    try {
      const x = ops.upload(seeded(64, 8), 8, 8);
      const y = ops.gatherRows(x, [7, 1]);
      const z = ops.zeros(4, 4);
      await ops.read(y);
      const rows = await backend.profile();
      assert.deepEqual(rows.map((row) => row.op).sort(), ['gatherRows', 'read', 'upload', 'zeros']);
      for (const row of rows) {
        assert.equal(row.timing, 'cpu');
        assert.equal(row.calls, 1, row.op);
        assert.ok(row.totalMs >= 0 && Number.isFinite(row.share));
        if (row.op !== 'read') assert.equal(row.passes, 1, `${row.op} ran one kernel`);
      }
      assert.equal(backend.stats().submissions, 4, 'one submission per op, the read included');
      const table = formatProfileTable(rows);
      assert.match(table, /^op\s+total ms\s+share\s+calls\s+ms\/call\s+timing/);
      assert.match(table, /\nkernels\s+[\d.]+\s+100\.0%\s+3/);
      assert.equal(rows.find((row) => row.op === 'read')?.share, 0, 'the read is a wait, not a kernel');
      for (const tensor of [x, y, z]) ops.release(tensor);
    } finally {
      backend.dispose();
    }
  });

  test("createTranscriber({ backend: 'webgpu', gpu }) transcribes like the reference transcriber", { skip: skipWithoutAssets, timeout: 120_000 }, async (t) => {
    if (!deviceOrSkip(gpu, t)) return;
    const model = await loadModel((await cachedSyntheticModel(MODEL)).path);
    const audio = testAudio(4);
    const reference = await createTranscriber({ model });
    const expected = await reference.transcribe(audio, { maxTokens: 6 });
    reference.dispose();
    const webgpu = await createTranscriber({ model, backend: 'webgpu', gpu: await dawnGpu() });
    const start = performance.now();
    const actual = await webgpu.transcribe(audio, { maxTokens: 6 });
    t.diagnostic(`webgpu transcription of 4 s (one 30 s window, ${actual.segments.flatMap((s) => s.tokens).length} tokens): ${(performance.now() - start).toFixed(0)} ms`);
    webgpu.dispose();
    assert.deepEqual(comparableTranscript(actual), comparableTranscript(expected));
    await assert.rejects(() => createTranscriber({ model, backend: 'reference', gpu: {} as GPU }), /gpu applies to the "webgpu" backend/);
  });
});
