// WhisperOps.selectTokens in the 'webnn' backend: TopK, log-sum-exps, suppression and the
// timestamp rule lowered into the decoder-step graph (src/onnx/lower-select.ts), so a step's graph
// returns the summary, never the logits; checked against the reference backend's host selection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-web';
import { createOnnxBackend, type OrtModule } from '../../src/onnx/backend.ts';
import { decodeModel } from '../../src/onnx/onnx-schema.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import { createDecoderSession } from '../../src/core/decoding/session.ts';
import { packTokenRanges } from '../../src/core/decoding/select-tokens.ts';
import { encode, type MelInput } from '../../src/core/model/whisper.ts';
import type { TokenSelection, TokenSelectionRequest } from '../../src/core/model/ops.ts';
import { MurmurError } from '../../src/core/errors.ts';
import { createRandom, syntheticWeights } from '../../scripts/synthetic/weights.ts';
import { presetDims } from '../../scripts/synthetic/presets.ts';

const dims = presetDims('mini');
const loaded = syntheticWeights(dims, 3, 'f32');
const random = createRandom(5);
const mel: MelInput = { data: Float32Array.from({ length: dims.nMels * 2 * dims.nAudioCtx }, () => random.uniform() * 2 - 1), nMels: dims.nMels, nFrames: 2 * dims.nAudioCtx };
const TIMESTAMP_BEGIN = 50363;
const suppress = packTokenRanges([[50257, 50363], [220, 221]], dims.nVocab);

/** Step i's request: the rules change with i the way decoding's do (ranges per row, gathered ids); one k per search, as decoding asks. */
function requestAt(step: number, sequences: number, topK = 3): TokenSelectionRequest {
  return {
    topK,
    suppress,
    suppressRanges: Array.from({ length: sequences }, (_, s) => (step % 3 === 0 ? [] : [[0, 100 * (s + 1)], [TIMESTAMP_BEGIN + step, dims.nVocab]] as const)),
    ...(step === 1 ? {} : { timestampBegin: TIMESTAMP_BEGIN }),
    ...(step === 0 ? { gather: [50362, 50363, 7] } : {}),
  };
}

function assertClose(actual: TokenSelection, expected: TokenSelection, what: string): number {
  assert.equal(actual.nanToken, expected.nanToken, what);
  assert.deepEqual(actual.ids, expected.ids, `${what}: ids`);
  assert.equal(actual.timestampsWin, expected.timestampsWin, `${what}: timestampsWin`);
  const pairs: [number, number][] = [
    ...actual.logProbs.map((v, i) => [v, expected.logProbs[i]!] as [number, number]),
    [actual.logSumExp, expected.logSumExp],
    [actual.rawLogSumExp, expected.rawLogSumExp],
    [actual.timestampLogSumExp, expected.timestampLogSumExp],
    [actual.maxTextLogit, expected.maxTextLogit],
    ...actual.gathered.map((v, i) => [v, expected.gathered[i]!] as [number, number]),
  ];
  assert.equal(actual.gathered.length, expected.gathered.length);
  let worst = 0;
  for (const [a, b] of pairs) {
    if (a === b) continue;
    const difference = Math.abs(a - b);
    assert.ok(difference < 1e-3, `${what}: ${a} vs ${b}`);
    worst = Math.max(worst, difference);
  }
  return worst;
}

for (const layout of ['row-major', 'channels-first'] as const) {
  test(`selectTokens in the ${layout} decoder graph: the reference's selections over 2 beams and 8 steps, no logits returned, one decoder session`, { timeout: 120_000 }, async (t) => {
    const created: Uint8Array[] = [];
    const spy = { ...ort, InferenceSession: { create: (bytes: Uint8Array, options: ort.InferenceSession.SessionOptions) => (created.push(bytes), ort.InferenceSession.create(bytes, options)) } } as unknown as OrtModule;
    const backend = await createOnnxBackend({ layout, providers: ['wasm'], ort: spy });
    const reference = createReferenceBackend();
    const weights = await backend.prepareWeights(dims, loaded);
    const features = encode(backend.ops, { dims, weights }, mel);
    const refFeatures = encode(reference.ops, { dims, weights: loaded }, mel);
    const batch = createDecoderSession(backend.ops, { dims, weights }, features).begin(2);
    const refBatch = createDecoderSession(reference.ops, { dims, weights: loaded }, refFeatures).begin(2);
    assert.ok(batch.select, 'the webnn backend offers selectTokens');
    let tokens = [[50257, 50362], [50257, 50362]];
    let worst = 0;
    for (let step = 0; step < 8; step++) {
      const request = requestAt(step, 2);
      const got = await batch.select!(tokens, request);
      const want = await refBatch.select!(tokens, request);
      got.forEach((row, s) => (worst = Math.max(worst, assertClose(row, want[s]!, `step ${step} sequence ${s}`))));
      if (step === 2) {
        batch.reorder([1, 1]);
        refBatch.reorder([1, 1]);
      }
      tokens = got.map((row) => [row.ids[0]!]);
    }
    await assert.rejects(() => batch.select!(tokens, { topK: 9 }), (e: unknown) => e instanceof MurmurError && /topK/.test(e.message));
    batch.dispose();
    refBatch.dispose();
    backend.ops.release(features);
    assert.equal(backend.ops.liveHandles, 0, 'every handle was released (the logits too)');

    const steps = backend.sessions.filter((s) => s.ops.includes('selectTokens'));
    assert.equal(steps.length, 1, 'every request, prompt or one token, runs the one decoder-step session');
    assert.equal(steps[0]!.runs, 8);
    const stepModel = decodeModel(created[backend.sessions.indexOf(steps[0]!)]!);
    const outputs = stepModel.graph.output.map((o) => o.type.tensorType.shape?.dim.map((d) => ('dimValue' in d ? d.dimValue : d.dimParam)));
    assert.equal(outputs.length, 2 * dims.nTextLayer + 4, 'present caches and the four summary outputs');
    assert.ok(outputs.every((shape) => !shape || !shape.includes(dims.nVocab)), 'no output is vocabulary-sized');
    assert.ok(!stepModel.graph.node.some((n) => n.opType === 'TopK'), 'the best tokens are ArgMax rounds, not TopK (WebNN has none)');
    assert.equal(stepModel.graph.node.filter((n) => n.opType === 'ArgMax').length, 1 + 3 + 2, 'one ArgMax for the first NaN, one per best token, one per round after the first for the lowest untaken id');
    t.diagnostic(`${layout}: worst difference from the reference's host selection ${worst.toExponential(2)}; sessions ${backend.sessions.map((s) => `${s.ops.length} ops × ${s.runs}`).join(', ')}`);
    backend.releaseWeights(weights);
    backend.dispose();
  });
}
