// The 'webnn' backend (src/onnx): whisper.ts lowered to ONNX graphs and run by onnxruntime-web,
// against the reference backend. In Node, WebNN is absent, so every graph's WebNN attempts fail
// (recorded with their reason) and onnxruntime's wasm provider runs the very same ModelProto bytes.
// The synthetic tiny.en model's parity test is in onnx-backend-tiny.test.ts (the reference encoder is slow).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-web';
import { createOnnxBackend, type OnnxBackend, type OrtModule } from '../../src/onnx/backend.ts';
import { decodeModel } from '../../src/onnx/onnx-schema.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import { createDecoderState, decodeStep, encode, releaseDecoderState, reorderDecoderState, type ModelParameters } from '../../src/core/model/whisper.ts';
import type { WhisperDims } from '../../src/core/model/dims.ts';
import type { WeightTensor, WhisperWeights } from '../../src/core/model/weights.ts';
import { MurmurError } from '../../src/core/errors.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { createTranscriber } from '../../src/core/transcriber.ts';
import { parseWav } from '../../src/core/audio/wav.ts';
import { readFile } from 'node:fs/promises';
import { comparableTranscript } from './transcriber-comparable.ts';
import { assertParity, greedy, maxDifference, randomMel } from '../backend-parity.ts';
import { SHARED_DATA, skipWithoutSharedData } from '../shared-data.ts';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { syntheticWeights } from '../../scripts/synthetic/weights.ts';
import { presetDims } from '../../scripts/synthetic/presets.ts';

const reference = createReferenceBackend();
const JFK = `${SHARED_DATA}/audio/jfk.wav`;
const skipJfk = skipWithoutSharedData('audio/jfk.wav');

async function withBackend<R>(run: (backend: OnnxBackend) => Promise<R>, options: Parameters<typeof createOnnxBackend>[0] = {}): Promise<R> {
  const backend = await createOnnxBackend(options);
  try {
    return await run(backend);
  } finally {
    backend.dispose();
  }
}

/** Every tensor of a weight tree by its path. */
function flattenWeights(tree: WhisperWeights<WeightTensor>): Record<string, WeightTensor> {
  const out: Record<string, WeightTensor> = {};
  const visit = (node: unknown, path: string) => {
    if (node && typeof node === 'object' && 'bytes' in node && 'shape' in node) out[path] = node as WeightTensor;
    else if (node && typeof node === 'object') for (const [key, child] of Object.entries(node)) visit(child, `${path}.${key}`);
  };
  visit(tree, '');
  return out;
}

const miniDims = presetDims('mini');
const miniMel = randomMel(miniDims, 5);
const miniWeights = syntheticWeights(miniDims, 3, 'f32');
const prompt = [50257, 50362];

for (const layout of ['row-major', 'channels-first'] as const) {
  test(`mini model, ${layout} graphs: logits within 1e-3 of the reference at every step of a 64-token greedy decode, same tokens, three sessions`, async (t) => {
    const expected = await greedy(reference.ops, { dims: miniDims, weights: miniWeights }, miniMel, prompt, 64);
    await withBackend(async (backend) => {
      assert.equal(backend.layout, layout);
      const weights = await backend.prepareWeights(miniDims, miniWeights);
      const actual = await greedy(backend.ops, { dims: miniDims, weights }, miniMel, prompt, 64);
      const worst = assertParity(actual, expected);
      // The encoder, the cross-attention K/V, and one decoder-step graph for the prompt and every one-token step.
      assert.deepEqual(backend.sessions.map((s) => s.runs), [1, 1, 64]);
      assert.equal(backend.sessions[0]!.ops[0], 'conv1d');
      assert.ok(backend.sessions[2]!.ops.includes('embed') && backend.sessions[2]!.ops.includes('writeCache'));
      assert.equal(backend.ops.liveHandles, 0, 'every handle was released');
      if (layout === 'channels-first') assert.ok(backend.sessions.every((s) => s.opTypes.includes('Conv') && !s.opTypes.includes('Gemm')), 'every linear is a Conv');
      t.diagnostic(`${layout}: worst logit difference ${worst.toExponential(2)} over 64 steps; ${actual.ms.toFixed(0)} ms (reference ${expected.ms.toFixed(0)} ms); ` +
        backend.sessions.map((s) => `${s.nodes} nodes, ${s.runs} runs on ${s.provider}`).join(' | '));
      backend.releaseWeights(weights);
    }, { layout });
  });
}

test('the decoder weights are held once: one decoder session serves the prompt and the one-token steps', async (t) => {
  const totalWeightBytes = Object.values(flattenWeights(miniWeights)).reduce((n, w) => n + w.bytes.byteLength, 0);
  const measure = (staticShapes: boolean) =>
    withBackend(async (backend) => {
      const weights = await backend.prepareWeights(miniDims, miniWeights);
      await greedy(backend.ops, { dims: miniDims, weights }, miniMel, prompt, 3);
      backend.releaseWeights(weights);
      return { sessions: backend.sessions.length, bytes: backend.sessions.reduce((n, s) => n + s.weightBytes, 0), each: backend.sessions.map((s) => s.weightBytes) };
    }, { staticShapes });
  const before = await measure(true);
  const after = await measure(false);
  const MiB = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;
  t.diagnostic(`static shapes: ${before.sessions} sessions, ${MiB(before.bytes)} of initializers (${before.each.map(MiB).join(' + ')}); ` +
    `dynamic rows: ${after.sessions} sessions, ${MiB(after.bytes)} (${after.each.map(MiB).join(' + ')}); the model's weights: ${MiB(totalWeightBytes)}`);
  assert.equal(before.sessions, 3, 'the encoder, the prompt step with the cross-attention K/V, the one-token step');
  assert.equal(after.sessions, 3, 'the encoder, the cross-attention K/V, every decoder step');
  assert.equal(after.bytes, totalWeightBytes, 'every weight is in exactly one session');
  assert.ok(before.bytes > after.bytes + 0.9 * (after.each[2] ?? 0), 'static shapes held the decoder-step weights twice');
});

test('WebNN is tried first and fails in Node with its reason recorded; wasm runs the same ModelProto bytes', async () => {
  const calls: { bytes: Uint8Array; provider: unknown }[] = [];
  const spy: OrtModule = {
    ...ort,
    InferenceSession: {
      create: (bytes: Uint8Array, options: ort.InferenceSession.SessionOptions) => {
        calls.push({ bytes, provider: options.executionProviders?.[0] });
        return ort.InferenceSession.create(bytes, options);
      },
    } as unknown as typeof ort.InferenceSession,
  } as OrtModule;
  await withBackend(
    async (backend) => {
      assert.equal(backend.provider, undefined, 'no provider before the first graph');
      const weights = await backend.prepareWeights(miniDims, miniWeights);
      await greedy(backend.ops, { dims: miniDims, weights }, miniMel, prompt, 3);
      assert.equal(backend.provider, 'wasm');
      assert.equal(backend.sessions.length, 3);
      for (const session of backend.sessions) {
        assert.deepEqual(session.attempts.map((a) => a.provider), ['webnn:npu', 'webnn:gpu', 'wasm']);
        for (const attempt of session.attempts.slice(0, 2)) assert.match(attempt.error ?? '', /WebNN/i, `${attempt.provider}'s failure says why`);
        assert.equal(session.attempts[2]!.error, undefined);
      }
      // Three providers tried per graph, each handed the identical bytes.
      assert.equal(calls.length, 9);
      for (let graph = 0; graph < 3; graph++) {
        const [npu, gpu, wasm] = calls.slice(graph * 3, graph * 3 + 3);
        assert.deepEqual([npu!.provider, gpu!.provider, wasm!.provider], [{ name: 'webnn', deviceType: 'npu' }, { name: 'webnn', deviceType: 'gpu' }, 'wasm']);
        assert.equal(gpu!.bytes, npu!.bytes);
        assert.equal(wasm!.bytes, npu!.bytes);
        assert.equal(wasm!.bytes.byteLength, backend.sessions[graph]!.bytes);
        assert.ok(decodeModel(wasm!.bytes).graph.node.length > 0);
      }
      backend.releaseWeights(weights);
    },
    { ort: spy },
  );
  await assert.rejects(
    withBackend(async (backend) => {
      const weights = await backend.prepareWeights(miniDims, miniWeights);
      await greedy(backend.ops, { dims: miniDims, weights }, miniMel, prompt, 1);
    }, { providers: [{ name: 'webnn', deviceType: 'gpu' }] }),
    (e: unknown) => e instanceof MurmurError && e.code === 'BACKEND' && /webnn:gpu: .*webnn/i.test(e.message),
  );
});

/** Small and awkward: 3 heads of 5, odd audio length, a context of 10, rows not multiples of 8. */
const smallDims: WhisperDims = { nMels: 4, nAudioCtx: 7, nAudioState: 15, nAudioHead: 3, nAudioLayer: 2, nTextCtx: 10, nTextState: 15, nTextHead: 3, nTextLayer: 2, nVocab: 40 };

test('chunked prompts, all logits, cross-attention weights, beams and reorders match the reference, in both layouts', async () => {
  for (const [dtype, layout] of [['f32', 'row-major'], ['bf16', 'row-major'], ['f32', 'channels-first']] as const) {
    const weights = syntheticWeights(smallDims, 7, dtype);
    const refModel: ModelParameters<WeightTensor> = { dims: smallDims, weights };
    const mel = randomMel(smallDims, 2);
    await withBackend(async (backend) => {
      const { ops } = backend;
      const model = { dims: smallDims, weights: await backend.prepareWeights(smallDims, weights) };
      const features = encode(ops, model, mel);
      const refFeatures = encode(reference.ops, refModel, mel);
      assert.ok(maxDifference(await ops.read(features), await reference.ops.read(refFeatures)) < 1e-5);

      const state = createDecoderState(ops, model, features, { sequences: 2 });
      const refState = createDecoderState(reference.ops, refModel, refFeatures, { sequences: 2 });
      const steps: [number[][], boolean][] = [[[[3, 17, 0], [39, 22, 8]], true], [[[5], [6]], false], [[[1, 2], [30, 9]], false], [[[4], [7]], false]];
      for (const [index, [tokens, allLogits]] of steps.entries()) {
        const options = { allLogits, crossAttentionWeights: true };
        const got = decodeStep(ops, model, state, tokens, options);
        const want = decodeStep(reference.ops, refModel, refState, tokens, options);
        assert.deepEqual(ops.shape(got.logits), reference.ops.shape(want.logits));
        assert.ok(maxDifference(await ops.read(got.logits), await reference.ops.read(want.logits)) < 1e-4, `${dtype} ${layout} step ${index} logits`);
        assert.equal(got.crossAttention?.length, smallDims.nTextLayer);
        for (const [layer, weightsOut] of got.crossAttention!.entries()) {
          assert.ok(maxDifference(await ops.read(weightsOut), await reference.ops.read(want.crossAttention![layer]!)) < 1e-5, `${dtype} ${layout} step ${index} layer ${layer} attention weights`);
          ops.release(weightsOut);
        }
        ops.release(got.logits);
        if (index === 0 || index === 2) {
          reorderDecoderState(ops, model, state, [1, 0]);
          reorderDecoderState(reference.ops, refModel, refState, [1, 0]);
        }
      }
      releaseDecoderState(ops, state);
      ops.release(features);
      assert.equal(ops.liveHandles, 0);
      backend.releaseWeights(model.weights);
    }, { layout });
  }
});

test("q8_0 and f16 weights, widened to f32 initializers, give the reference's logits on the same weights", async (t) => {
  for (const dtype of ['q8_0', 'f16'] as const) {
    const weights = syntheticWeights(miniDims, 3, dtype);
    const expected = await greedy(reference.ops, { dims: miniDims, weights }, miniMel, prompt, 4);
    const actual = await withBackend(async (backend) => greedy(backend.ops, { dims: miniDims, weights: await backend.prepareWeights(miniDims, weights) }, miniMel, prompt, 4));
    t.diagnostic(`${dtype}: worst logit difference ${assertParity(actual, expected).toExponential(2)}`);
  }
});

test('bad inputs are typed errors naming what was wrong', async () => {
  await withBackend(async (backend) => {
    const { ops } = backend;
    const model = { dims: smallDims, weights: await backend.prepareWeights(smallDims, syntheticWeights(smallDims, 7)) };
    const isShape = (pattern: RegExp) => (e: unknown) => e instanceof MurmurError && e.code === 'SHAPE' && pattern.test(e.message);
    const x = ops.upload(new Float32Array(2 * 15), 2, 15);
    assert.throws(() => ops.upload(new Float32Array(5), 2, 3), isShape(/5 values cannot be a \[2, 3\]/));
    assert.throws(() => ops.linear(ops.upload(new Float32Array(8), 2, 4), model.weights.encoder.blocks[0]!.attn.query), isShape(/input \[2, 4\] against weight \[15, 15\]/));
    assert.throws(() => ops.attention(x, { key: x, value: x, capacity: 2, length: 3, shared: true }, { heads: 3, sequences: 1 }), isShape(/3 valid keys in a capacity of 2/));
    assert.throws(() => ops.embed([40], [0], model.weights.decoder.tokenEmbedding, model.weights.decoder.positionalEmbedding), isShape(/token id 40 outside the vocabulary of 40/));
    assert.throws(() => ops.writeCache(ops.zeros(10, 15), x, { sequences: 1, capacity: 10, offset: 9 }), isShape(/rows 9\.\.10 exceed the capacity of 10/));
    assert.throws(() => ops.reorderCache(ops.zeros(20, 15), [0, 2], { capacity: 10, length: 1 }), isShape(/sequence 2 does not exist/));
    assert.throws(() => ops.layerNorm(reference.ops.upload(new Float32Array(30), 2, 15) as never, model.weights.encoder.lnPost), (e: unknown) => e instanceof MurmurError && e.code === 'BACKEND');
    ops.release(x);
    await assert.rejects(() => ops.read(x), (e: unknown) => e instanceof MurmurError && e.code === 'RELEASED');
    // A disposed backend's pending work fails at read, with a typed error.
    const y = ops.layerNorm(ops.upload(new Float32Array(30), 2, 15), model.weights.encoder.lnPost);
    backend.dispose();
    await assert.rejects(() => ops.read(y), (e: unknown) => e instanceof MurmurError && e.code === 'DISPOSED');
  });
});

test("createTranscriber({ backend: 'webnn' }) transcribes jfk.wav to the reference backend's transcript", { skip: skipJfk }, async (t) => {
  await assert.rejects(() => createTranscriber({ model: 'nowhere.bin', backend: 'webgl' as never }), (e: unknown) => e instanceof MurmurError && /"webnn"/.test(e.message));
  const { path } = await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'f16' });
  const model = await loadModel(path);
  const audio = parseWav(await readFile(JFK), JFK).channels[0]!;
  const reference = await createTranscriber({ model });
  const expected = await reference.transcribe(audio, { maxTokens: 24 });
  reference.dispose();
  const transcriber = await createTranscriber({ model, backend: 'webnn' });
  const start = performance.now();
  const result = await transcriber.transcribe(audio, { maxTokens: 24 });
  t.diagnostic(`webnn: ${(performance.now() - start).toFixed(0)} ms for ${result.segments.flatMap((s) => s.tokens).length} tokens`);
  assert.ok(result.segments.flatMap((s) => s.tokens).length > 0);
  assert.deepEqual(comparableTranscript(result), comparableTranscript(expected));
  transcriber.dispose();
  const channelsFirst = await createTranscriber({ model, backend: 'webnn', layout: 'channels-first' });
  assert.deepEqual(comparableTranscript(await channelsFirst.transcribe(audio, { maxTokens: 24 })), comparableTranscript(expected), 'channels-first graphs, the same transcript');
  channelsFirst.dispose();
  await assert.rejects(() => createTranscriber({ model, layout: 'channels-first' }), (e: unknown) => e instanceof MurmurError && /layout applies to the "webnn" backend/.test(e.message));
  await assert.rejects(() => createTranscriber({ model, backend: 'webnn', layout: 'blocked' }), (e: unknown) => e instanceof MurmurError && /"blocked"/.test(e.message));
});
