// The 'webnn' backend's WebNN attempts get static shapes: a graph's named sizes (dim_params) fixed to
// the step's with freeDimensionOverrides, one session per step shape, while providers that take
// free dimensions (wasm) keep one session per graph. Node has no WebNN, so a fake provider chain
// stands in: the onnxruntime module is injected, 'webnn' attempts are captured (options, bytes,
// feeds) and either refused or run on onnxruntime's wasm provider with the very options WebNN got
// (so the overrides are applied by onnxruntime, which rejects a feed that does not match them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-web';
import { createOnnxBackend, type OnnxBackend, type OnnxBackendOptions, type OrtModule } from '../../src/onnx/backend.ts';
import { decodeModel } from '../../src/onnx/onnx-schema.ts';
import { GraphBuilder } from '../../src/onnx/graph.ts';
import { DataType } from '../../src/onnx/onnx-schema.ts';
import { layoutDisagreement } from '../../src/onnx/webnn-layout.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import { createLogitsSource, encode, type MelInput, type ModelParameters } from '../../src/core/model/whisper.ts';
import { createDecoderSession } from '../../src/core/decoding/session.ts';
import { packTokenRanges } from '../../src/core/decoding/select-tokens.ts';
import type { WhisperOps } from '../../src/core/model/ops.ts';
import type { WeightTensor, WhisperWeights } from '../../src/core/model/weights.ts';
import { MurmurError } from '../../src/core/errors.ts';
import { createRandom, syntheticWeights } from '../../scripts/synthetic/weights.ts';
import { presetDims } from '../../scripts/synthetic/presets.ts';

const dims = presetDims('mini');
const loaded = syntheticWeights(dims, 3, 'f32');
const random = createRandom(5);
const mel: MelInput = { data: Float32Array.from({ length: dims.nMels * 2 * dims.nAudioCtx }, () => random.uniform() * 2 - 1), nMels: dims.nMels, nFrames: 2 * dims.nAudioCtx };
const prompt = [50257, 50362];
const STEPS = 8;
const reference = createReferenceBackend();

interface Creation {
  provider: string;
  options: ort.InferenceSession.SessionOptions;
  bytes: Uint8Array;
  /** Each run's feed shapes by input name. */
  runs: Record<string, readonly number[]>[];
  released: boolean;
}

/** An onnxruntime whose WebNN takes graphs on the device types `accepts` allows (running them on wasm with WebNN's options) and refuses the rest. */
function fakeWebNn(accepts: (deviceType: string) => boolean): { ort: OrtModule; created: Creation[] } {
  const created: Creation[] = [];
  const create = async (bytes: Uint8Array, options: ort.InferenceSession.SessionOptions) => {
    const provider = options.executionProviders![0]!;
    const name = typeof provider === 'string' ? provider : provider.name;
    const deviceType = typeof provider === 'string' ? undefined : (provider as { deviceType?: string }).deviceType;
    const creation: Creation = { provider: deviceType ? `${name}:${deviceType}` : name, options, bytes, runs: [], released: false };
    created.push(creation);
    if (name === 'webnn' && !accepts(deviceType ?? '')) throw new Error(`fake WebNN: no ${deviceType} device`);
    const session = await ort.InferenceSession.create(bytes, name === 'webnn' ? { ...options, executionProviders: ['wasm'] } : options);
    return {
      run(feeds: Record<string, ort.Tensor>) {
        creation.runs.push(Object.fromEntries(Object.entries(feeds).map(([input, tensor]) => [input, tensor.dims])));
        return session.run(feeds);
      },
      release() {
        creation.released = true;
        return session.release();
      },
    };
  };
  return { ort: { ...ort, InferenceSession: { create } as unknown as typeof ort.InferenceSession } as OrtModule, created };
}

/**
 * The graph a WebNN attempt was offered is static once its overrides apply: every named size of
 * every input is overridden (nothing else is), and every run fed exactly those sizes.
 */
function assertStaticForWebNn(creation: Creation): Record<string, number> {
  const overrides = { ...(creation.options.freeDimensionOverrides ?? {}) };
  const { graph } = decodeModel(creation.bytes);
  const named = new Set<string>();
  const resolved = new Map<string, number[]>();
  for (const input of graph.input) {
    const shape = (input.type.tensorType.shape?.dim ?? []).map((d) => {
      if ('dimValue' in d && d.dimValue !== undefined) return Number(d.dimValue);
      const name = (d as { dimParam: string }).dimParam;
      named.add(name);
      assert.ok(name in overrides, `input ${input.name}'s dimension "${name}" is not fixed for ${creation.provider}`);
      return overrides[name]!;
    });
    assert.ok(input.type.tensorType.shape, `input ${input.name} declares its shape`);
    resolved.set(input.name, shape);
  }
  assert.deepEqual(Object.keys(overrides).sort(), [...named].sort(), 'only the graph\'s named sizes are overridden');
  for (const run of creation.runs) for (const [input, fed] of Object.entries(run)) assert.deepEqual([...fed], resolved.get(input), `${input} fed as overridden`);
  return overrides;
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

async function greedy<T, W>(ops: WhisperOps<T, W>, model: ModelParameters<W>): Promise<{ tokens: number[]; logits: Float32Array[] }> {
  const features = encode(ops, model, mel);
  const source = createLogitsSource(ops, model, features);
  const tokens = [...prompt];
  const logits: Float32Array[] = [];
  try {
    for (let i = 0; i < STEPS; i++) {
      const row = await source.next(tokens);
      logits.push(row);
      tokens.push(argmax(row));
    }
    return { tokens: tokens.slice(prompt.length), logits };
  } finally {
    source.dispose();
    ops.release(features);
  }
}

const expected = greedy(reference.ops, { dims, weights: loaded });

async function assertParity(backend: OnnxBackend): Promise<number> {
  const weights = await backend.prepareWeights(dims, loaded);
  const actual = await greedy(backend.ops, { dims, weights });
  const want = await expected;
  let worst = 0;
  actual.logits.forEach((row, step) => {
    for (let i = 0; i < row.length; i++) worst = Math.max(worst, Math.abs(row[i]! - want.logits[step]![i]!));
    assert.ok(worst < 1e-3, `step ${step}: logits off by ${worst}`);
  });
  assert.deepEqual(actual.tokens, want.tokens);
  assert.equal(backend.ops.liveHandles, 0);
  return worst;
}

function totalWeightBytes(tree: WhisperWeights<WeightTensor>): number {
  let bytes = 0;
  const visit = (node: unknown) => {
    if (node && typeof node === 'object' && 'bytes' in node && 'shape' in node) bytes += (node as WeightTensor).bytes.byteLength;
    else if (node && typeof node === 'object') for (const child of Object.values(node)) visit(child);
  };
  visit(tree);
  return bytes;
}

async function withBackend<R>(options: OnnxBackendOptions, run: (backend: OnnxBackend) => Promise<R>): Promise<R> {
  const backend = await createOnnxBackend(options);
  try {
    return await run(backend);
  } finally {
    backend.dispose();
  }
}

for (const layout of ['row-major', 'channels-first'] as const) {
  test(`${layout}: WebNN gets each decoder step shape as a static graph (freeDimensionOverrides), its own session per shape, the reference's logits`, { timeout: 60_000 }, async (t) => {
    const fake = fakeWebNn((deviceType) => deviceType === 'gpu');
    const webnnContexts = [{ options: { deviceType: 'npu' as const }, created: false, reason: 'NotSupportedError' }, { options: { deviceType: 'gpu' as const }, created: true, preferredInputLayout: 'nhwc' }];
    await withBackend({ layout, ort: fake.ort, webnnContexts }, async (backend) => {
      const worst = await assertParity(backend);
      const { sessions } = backend;
      // The encoder and the cross-attention K/V name no size; the decoder step: the prompt's rows, then one row.
      assert.deepEqual(sessions.map((s) => [s.provider, s.shapes, s.freeDimensionOverrides?.rows, s.runs]), [
        ['webnn:gpu', 'static', undefined, 1],
        ['webnn:gpu', 'static', undefined, 1],
        ['webnn:gpu', 'overridden', prompt.length, 1],
        ['webnn:gpu', 'overridden', 1, STEPS - 1],
      ]);
      // WebNN's NPU is asked once per graph; at the decoder's second shape it is not asked again.
      assert.deepEqual(sessions[3]!.attempts.map((a) => [a.provider, a.notAskedAgain ?? false, a.error !== undefined]), [['webnn:npu', true, true], ['webnn:gpu', false, false]]);
      assert.deepEqual(fake.created.map((c) => c.provider), ['webnn:npu', 'webnn:gpu', 'webnn:npu', 'webnn:gpu', 'webnn:npu', 'webnn:gpu', 'webnn:gpu']);
      for (const creation of fake.created.filter((c) => c.provider === 'webnn:gpu')) assertStaticForWebNn(creation);
      assert.deepEqual(fake.created.filter((c) => c.provider === 'webnn:gpu').map((c) => c.options.freeDimensionOverrides?.rows), [undefined, undefined, prompt.length, 1]);
      // Memory: each weight is held once, but for the decoder step's, held once per step shape.
      const total = totalWeightBytes(loaded);
      const held = sessions.reduce((n, s) => n + s.weightBytes, 0);
      assert.equal(sessions[2]!.weightBytes, sessions[3]!.weightBytes);
      assert.equal(held, total + sessions[3]!.weightBytes, 'the model once, plus a second copy of the decoder-step weights');
      // The GPU context prefers NHWC: the graphs' Convs are NCHW, and the reason says so, once.
      assert.equal(backend.reasons.length, 1);
      assert.match(backend.reasons[0]!, /webnn:gpu prefers nhwc/);
      assert.equal(backend.reasons[0], layoutDisagreement(layout, 'webnn:gpu', 'nhwc'));
      t.diagnostic(`worst logit difference ${worst.toExponential(2)}; decoder weights ${(sessions[3]!.weightBytes / 2 ** 20).toFixed(2)} MiB held twice (prompt and one-token shapes) of ${(held / 2 ** 20).toFixed(2)} MiB`);
    });
  });
}

test('WebNN refusing every graph: its attempts were static, the wasm fallback runs the dynamic graph, one decoder session for every step', { timeout: 60_000 }, async () => {
  const fake = fakeWebNn(() => false);
  await withBackend({ ort: fake.ort, webnnContexts: [] }, async (backend) => {
    await assertParity(backend);
    const { sessions } = backend;
    assert.deepEqual(sessions.map((s) => [s.provider, s.shapes, s.runs]), [['wasm', 'static', 1], ['wasm', 'static', 1], ['wasm', 'dynamic', STEPS]]);
    assert.equal(sessions[2]!.freeDimensionOverrides, undefined);
    assert.deepEqual(sessions[2]!.attempts.map((a) => [a.provider, a.shapes, a.freeDimensionOverrides?.rows]), [['webnn:npu', 'overridden', prompt.length], ['webnn:gpu', 'overridden', prompt.length], ['wasm', 'dynamic', undefined]]);
    // Each WebNN device asked once per graph; the one-token steps went straight to the shared wasm session.
    assert.deepEqual(fake.created.map((c) => c.provider), ['webnn:npu', 'webnn:gpu', 'wasm', 'webnn:npu', 'webnn:gpu', 'wasm', 'webnn:npu', 'webnn:gpu', 'wasm']);
    const [npu, gpu, wasm] = fake.created.slice(6);
    assert.deepEqual(npu!.options.freeDimensionOverrides, gpu!.options.freeDimensionOverrides);
    assert.equal(npu!.bytes, wasm!.bytes, 'the same ModelProto bytes, only the options differ');
    assert.equal(wasm!.options.freeDimensionOverrides, undefined);
    assert.ok(decodeModel(wasm!.bytes).graph.input.some((i) => i.type.tensorType.shape?.dim.some((d) => 'dimParam' in d && d.dimParam === 'rows')), 'the fallback keeps the named row dimension');
    assert.equal(new Set(wasm!.runs.map((run) => run.input0?.[0])).size, 2, 'the wasm session was fed both row counts');
    assert.deepEqual(backend.reasons, [], 'no preferred layout known');
  });
});

test('at most webnnShapesPerGraph step shapes of a graph keep a WebNN session: the least recently used is released', { timeout: 60_000 }, async () => {
  const fake = fakeWebNn(() => true);
  await withBackend({ ort: fake.ort, webnnShapesPerGraph: 1, webnnContexts: [] }, async (backend) => {
    await assertParity(backend);
    assert.deepEqual(backend.sessions.map((s) => [s.provider, s.shapes, s.released]), [
      ['webnn:npu', 'static', false],
      ['webnn:npu', 'static', false],
      ['webnn:npu', 'overridden', true],
      ['webnn:npu', 'overridden', false],
    ]);
    assert.deepEqual(fake.created.map((c) => c.released), [false, false, true, false]);
  });
  assert.ok(fake.created.every((c) => c.released), 'dispose released the rest');
  await assert.rejects(createOnnxBackend({ ort: fake.ort, webnnShapesPerGraph: 0 }), (e: unknown) => e instanceof MurmurError && /webnnShapesPerGraph/.test(e.message));
});

test('staticShapes: every graph names no size, so WebNN gets no overrides and each step shape is its own graph', { timeout: 60_000 }, async () => {
  const fake = fakeWebNn(() => true);
  await withBackend({ ort: fake.ort, staticShapes: true, webnnContexts: [] }, async (backend) => {
    await assertParity(backend);
    assert.deepEqual(backend.sessions.map((s) => [s.shapes, s.runs]), [['static', 1], ['static', 1], ['static', STEPS - 1]]);
    for (const creation of fake.created) assert.deepEqual(assertStaticForWebNn(creation), {});
  });
});

test('token selection on WebNN: suppressed ranges are fed in buckets, so changing rules keep one session per row count', { timeout: 60_000 }, async () => {
  const fake = fakeWebNn((deviceType) => deviceType === 'npu');
  const suppress = packTokenRanges([[50257, 50363]], dims.nVocab);
  await withBackend({ ort: fake.ort, webnnContexts: [] }, async (backend) => {
    const weights = await backend.prepareWeights(dims, loaded);
    const features = encode(backend.ops, { dims, weights }, mel);
    const refFeatures = encode(reference.ops, { dims, weights: loaded }, mel);
    const batch = createDecoderSession(backend.ops, { dims, weights }, features).begin(2);
    const refBatch = createDecoderSession(reference.ops, { dims, weights: loaded }, refFeatures).begin(2);
    let tokens = [prompt, prompt];
    for (let step = 0; step < 6; step++) {
      // 0, 1, 2 or 3 ranges per row, varying by step and row.
      const suppressRanges = [0, 1].map((s) => Array.from({ length: (step + s) % 4 }, (_, i) => [100 * i, 100 * i + 50] as [number, number]));
      const request = { topK: 2, suppress, suppressRanges, timestampBegin: 50363 };
      const got = await batch.select!(tokens, request);
      const want = await refBatch.select!(tokens, request);
      got.forEach((row, s) => assert.deepEqual(row.ids, want[s]!.ids, `step ${step} sequence ${s}`));
      tokens = got.map((row) => [row.ids[0]!]);
    }
    batch.dispose();
    refBatch.dispose();
    backend.ops.release(features);
    const steps = backend.sessions.filter((s) => s.ops.includes('selectTokens'));
    assert.deepEqual(steps.map((s) => [s.provider, s.shapes, s.freeDimensionOverrides, s.runs]), [
      ['webnn:npu', 'overridden', { gathered: 1, ranges: 4, rows: 2 * prompt.length }, 1],
      ['webnn:npu', 'overridden', { gathered: 1, ranges: 4, rows: 2 }, 5],
    ]);
    for (const creation of fake.created) assertStaticForWebNn(creation);
    backend.releaseWeights(weights);
  });
});

test('freeDimensions: each named size once, from the feeds; a name fed two sizes is an error', () => {
  const g = new GraphBuilder();
  g.int64Input([1, 2, 3], ['rows']);
  g.input(DataType.INT64, [3, 'ranges', 2], () => new BigInt64Array(24), [3, 4, 2]);
  g.int64Input([5, 6, 7], ['rows', 1]);
  assert.deepEqual(g.freeDimensions(), { ranges: 4, rows: 3 });
  g.int64Input([1, 2], ['rows']);
  assert.throws(() => g.freeDimensions(), (e: unknown) => e instanceof MurmurError && /"rows" is 3 in one graph input and 2 in input3/.test(e.message));
  assert.equal(layoutDisagreement('row-major', 'webnn:npu', 'nchw'), undefined);
  assert.equal(layoutDisagreement('row-major', 'webnn:npu', undefined), undefined);
  assert.match(layoutDisagreement('row-major', 'webnn:npu', 'nhwc')!, /two encoder stem Convs/);
});
