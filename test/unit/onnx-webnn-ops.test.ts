// Every graph the 'webnn' backend offers WebNN keeps to the ONNX ops onnxruntime-web's WebNN
// execution provider takes (src/onnx/webnn-ops.ts): a node of any other type would run on
// onnxruntime's CPU provider between NPU partitions, every step. The graphs are captured from a
// fake provider chain (WebNN accepted, run on onnxruntime's wasm provider with WebNN's options)
// through a greedy and a beam-3 decode of the mini model, in both layouts: the encoder, the
// cross-attention K/V, the decoder steps with their token selection, the beam reorder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-web';
import { createOnnxBackend, type OrtModule } from '../../src/onnx/backend.ts';
import { createOnnxOps } from '../../src/onnx/trace-ops.ts';
import { DataType, decodeModel, encodeModel, type ModelMessage } from '../../src/onnx/onnx-schema.ts';
import { WEBNN_SUPPORTED_OPS, WEBNN_OPS_SOURCE, unsupportedByWebNn } from '../../src/onnx/webnn-ops.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import { createDecoderSession } from '../../src/core/decoding/session.ts';
import { packTokenRanges, selectTokensOnHost } from '../../src/core/decoding/select-tokens.ts';
import { encode, type MelInput } from '../../src/core/model/whisper.ts';
import type { TokenSelectionRequest } from '../../src/core/model/ops.ts';
import { createRandom, syntheticWeights } from '../../scripts/synthetic/weights.ts';
import { presetDims } from '../../scripts/synthetic/presets.ts';

const dims = presetDims('mini');
const loaded = syntheticWeights(dims, 3, 'f32');
const random = createRandom(7);
const mel: MelInput = { data: Float32Array.from({ length: dims.nMels * 2 * dims.nAudioCtx }, () => random.uniform() * 2 - 1), nMels: dims.nMels, nFrames: 2 * dims.nAudioCtx };
const prompt = [50257, 50362];
const TIMESTAMP_BEGIN = 50363;
const suppress = packTokenRanges([[50257, TIMESTAMP_BEGIN], [220, 221]], dims.nVocab);

/**
 * Op types allowed in a graph offered to WebNN although WebNN's execution provider lacks them, each
 * with the reason it stays. Empty: none is needed; an entry here must say which node falls back.
 */
const ALLOWED_FALLBACKS: ReadonlyMap<string, string> = new Map();

/** onnxruntime whose WebNN takes every graph, running it on wasm with the options WebNN got; the models offered to WebNN are kept. */
function capturingWebNn(): { ort: OrtModule; offered: ModelMessage[] } {
  const offered: ModelMessage[] = [];
  const create = async (bytes: Uint8Array, options: ort.InferenceSession.SessionOptions) => {
    const provider = options.executionProviders![0]!;
    if ((typeof provider === 'string' ? provider : provider.name) === 'webnn') offered.push(decodeModel(bytes));
    return ort.InferenceSession.create(bytes, { ...options, executionProviders: ['wasm'] });
  };
  return { ort: { ...ort, InferenceSession: { create } as unknown as typeof ort.InferenceSession } as OrtModule, offered };
}

/**
 * Operands WebNN's execution provider needs as initializers (its operator table's conditions: Slice
 * bounds, Pad pads, Reshape/Expand shapes, reduction axes) that are not: fed ones can never be, while
 * ones computed from the row count become constants when onnxruntime folds the graph with a WebNN
 * attempt's freeDimensionOverrides.
 */
function nonConstantOperands(model: ModelMessage): { fed: string[]; computed: string[] } {
  const constants = new Set(model.graph.initializer.map((t) => t.name));
  const fedNames = new Set(model.graph.input.map((i) => i.name));
  const mustBeConstant: Record<string, readonly number[]> = { Slice: [1, 2, 3, 4], Pad: [1], Reshape: [1], Expand: [1], Tile: [1], ReduceSum: [1], Squeeze: [1], Unsqueeze: [1] };
  const found = { fed: [] as string[], computed: [] as string[] };
  for (const node of model.graph.node) {
    for (const at of mustBeConstant[node.opType] ?? []) {
      const name = node.input[at];
      if (name && !constants.has(name)) (fedNames.has(name) ? found.fed : found.computed).push(`${node.opType} input ${at}`);
    }
  }
  return found;
}

for (const layout of ['row-major', 'channels-first'] as const) {
  test(`${layout}: every graph of a greedy and a beam-3 decode uses only ops WebNN's execution provider takes (${WEBNN_OPS_SOURCE})`, { timeout: 120_000 }, async (t) => {
    const fake = capturingWebNn();
    const backend = await createOnnxBackend({ layout, ort: fake.ort, webnnContexts: [] });
    const reference = createReferenceBackend();
    try {
      const weights = await backend.prepareWeights(dims, loaded);
      const features = encode(backend.ops, { dims, weights }, mel);
      const refFeatures = encode(reference.ops, { dims, weights: loaded }, mel);
      const session = createDecoderSession(backend.ops, { dims, weights }, features);
      const refSession = createDecoderSession(reference.ops, { dims, weights: loaded }, refFeatures);
      const request = (sequences: number, topK: number, step: number): TokenSelectionRequest => ({
        topK,
        suppress,
        suppressRanges: Array.from({ length: sequences }, (_, s) => (step === 0 ? [[TIMESTAMP_BEGIN + 1, dims.nVocab]] : [[0, 50 * (s + 1)]])),
        timestampBegin: TIMESTAMP_BEGIN,
        ...(step === 0 ? { gather: [50362, TIMESTAMP_BEGIN] } : {}),
      });
      for (const { sequences, topK } of [{ sequences: 1, topK: 1 }, { sequences: 3, topK: 4 }]) {
        const batch = session.begin(sequences);
        const refBatch = refSession.begin(sequences);
        let tokens = Array.from({ length: sequences }, () => [...prompt]);
        for (let step = 0; step < 4; step++) {
          const got = await batch.select!(tokens, request(sequences, topK, step));
          const want = await refBatch.select!(tokens, request(sequences, topK, step));
          got.forEach((row, s) => assert.deepEqual(row.ids, want[s]!.ids, `${sequences} sequences, step ${step}, row ${s}`));
          if (sequences > 1) {
            // A beam step: the best rows continue, the caches follow them.
            const order = Array.from({ length: sequences }, (_, s) => (s === sequences - 1 ? 0 : s));
            batch.reorder(order);
            refBatch.reorder(order);
            tokens = order.map((from, s) => [got[from]!.ids[s % topK]!]);
          } else tokens = got.map((row) => [row.ids[0]!]);
        }
        batch.dispose();
        refBatch.dispose();
      }
      backend.ops.release(features);
      reference.ops.release(refFeatures);
      backend.releaseWeights(weights);

      const kinds = backend.sessions.map((s) => (s.ops.includes('conv1d') ? 'encoder' : s.ops.includes('selectTokens') ? 'step' : s.ops.includes('reorderCache') ? 'reorder' : s.ops.join('+')));
      assert.ok(kinds.includes('encoder') && kinds.includes('reorder'), `graphs built: ${kinds.join(', ')}`);
      assert.ok(kinds.some((k) => /^linear/.test(k)), 'the cross-attention K/V graph');
      assert.ok(backend.sessions.every((s) => s.provider === 'webnn:npu'), 'every graph went to the (fake) WebNN');
      assert.equal(fake.offered.length, backend.sessions.length);
      assert.ok(kinds.filter((k) => k === 'step').length >= 4, 'prompt and one-token steps, greedy and beam');

      const offered = fake.offered.flatMap((model) => model.graph.node.map((node) => node.opType));
      const unsupported = unsupportedByWebNn(offered);
      assert.deepEqual(unsupported, [...ALLOWED_FALLBACKS.keys()].sort(), `ops WebNN's execution provider would hand back to the CPU: ${unsupported.join(', ')}`);
      const operands = fake.offered.map(nonConstantOperands);
      assert.deepEqual([...new Set(operands.flatMap((o) => o.fed))], [], 'no operand WebNN needs constant is a fed input');
      const computed = [...new Set(operands.flatMap((o) => o.computed))].sort();
      t.diagnostic(`${fake.offered.length} graphs (${kinds.join(', ')}), ${new Set(offered).size} op types: ${[...new Set(offered)].sort().join(' ')}; ` +
        `operands WebNN needs constant computed from the row count (folded under the overrides): ${computed.join(', ') || 'none'}`);
    } finally {
      backend.dispose();
    }
  });
}

test('the best tokens as ArgMax rounds rank as the host does: ties to the lower id, -Infinity rows and tails, every k', { timeout: 60_000 }, async () => {
  const cols = 40;
  const rows = [
    Array.from({ length: cols }, (_, i) => (i % 5 === 0 ? 2 : i % 7 === 0 ? 3 : -1)), // ties at the top and below
    Array.from({ length: cols }, (_, i) => (i === 9 ? 4 : i === 3 ? 1 : -Infinity)), // two finite, then only -Infinity
    Array.from({ length: cols }, () => -Infinity), // nothing left at all
    Array.from({ length: cols }, (_, i) => Math.sin(i * 1.7) * 3),
  ];
  const logits = Float32Array.from(rows.flat());
  let sessions = 0;
  const ops = createOnnxOps(async (planned) => {
    sessions++;
    assert.deepEqual(unsupportedByWebNn(planned.graph.nodes.map((n) => n.opType)), []);
    const session = await ort.InferenceSession.create(encodeModel(planned.graph.model('select')), { executionProviders: ['wasm'] });
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of planned.graph.inputs) feeds[input.name] = new ort.Tensor(input.dataType === DataType.INT64 ? 'int64' : input.dataType === DataType.BOOL ? 'bool' : 'float32', input.data() as never, [...input.shape]);
    const results = await session.run(feeds);
    await session.release();
    return planned.graph.outputNames.map((name) => results[name]!.data as Float32Array);
  });
  for (let k = 1; k <= 8; k++) {
    for (const extra of [{}, { suppressRanges: rows.map((_, r) => [[0, 4 * r]] as [number, number][]), timestampBegin: 30 }]) {
      const request: TokenSelectionRequest = { topK: k, ...extra };
      const x = ops.upload(logits, rows.length, cols);
      const got = await ops.selectTokens(x, request);
      ops.release(x);
      const want = selectTokensOnHost(logits, rows.length, cols, request);
      got.forEach((row, r) => {
        assert.deepEqual(row.ids, want[r]!.ids, `k ${k}, row ${r}: ids`);
        assert.deepEqual(row.logProbs.map((v) => (Number.isFinite(v) ? Math.round(v * 1e4) : v)), want[r]!.logProbs.map((v) => (Number.isFinite(v) ? Math.round(v * 1e4) : v)), `k ${k}, row ${r}: log-probabilities`);
      });
    }
  }
  assert.equal(sessions, 16);
});

test('the WebNN op set: what onnxruntime 1.30 lists, without the ops it lacks', () => {
  assert.equal(WEBNN_SUPPORTED_OPS.size, 107);
  for (const op of ['ArgMax', 'ReduceMax', 'Where', 'ScatterND', 'Gemm', 'Conv', 'LayerNormalization', 'IsInf', 'IsNaN']) assert.ok(WEBNN_SUPPORTED_OPS.has(op), op);
  assert.deepEqual(unsupportedByWebNn(['Add', 'TopK', 'Range', 'Mod', 'TopK', 'NonZero']), ['Mod', 'NonZero', 'Range', 'TopK']);
});
