// The WebGPU backend's selectTokens op in Node: against the reference implementation of the op on
// random logits with every kind of suppression (bitset, ranges per row, the timestamp rule, rows
// with nothing left, NaN), and in a real decode on the mini model: a decoder step reads back a
// few dozen bytes instead of the vocabulary's logits, and greedy decoding picks the reference
// backend's tokens.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { createDecoderSession } from '../../src/core/decoding/session.ts';
import { decodeWindow, type DecodingOptions } from '../../src/core/decoding/options.ts';
import { packTokenRanges, selectTokensOnHost } from '../../src/core/decoding/select-tokens.ts';
import type { TokenRange, TokenSelection, TokenSelectionRequest, WhisperOps } from '../../src/core/model/ops.ts';
import { encode } from '../../src/core/model/whisper.ts';
import type { WhisperWeights } from '../../src/core/model/weights.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import { createWebGpuBackend, type GpuTensor, type GpuWeight } from '../../src/kernels-wgsl/backend.ts';
import { skipWithoutSharedData } from '../shared-data.ts';
import { acquireNodeGpu, deviceOrSkip, type NodeGpu } from './node-gpu.ts';
import { testMel } from './webgpu-backend-cases.ts';
import { testValues } from './smoke-reference.ts';

const VOCABULARY = 51865;
const TIMESTAMP_BEGIN = 50365;
const TOLERANCE = 1e-4;

function close(actual: number, expected: number, what: string): void {
  if (actual === expected) return;
  assert.ok(Math.abs(actual - expected) <= TOLERANCE * Math.max(1, Math.abs(expected)), `${what}: ${actual}, expected ${expected}`);
}

function assertSelectionsClose(actual: TokenSelection[], expected: TokenSelection[], what: string): void {
  assert.equal(actual.length, expected.length);
  expected.forEach((e, r) => {
    const a = actual[r]!;
    const at = `${what}, row ${r}`;
    assert.equal(a.nanToken, e.nanToken, `${at}: first NaN`);
    if (e.nanToken >= 0) return; // the rest means nothing then
    assert.deepEqual(a.ids, e.ids, `${at}: ids`);
    e.logProbs.forEach((p, j) => close(a.logProbs[j]!, p, `${at}: log-prob ${j}`));
    close(a.logSumExp, e.logSumExp, `${at}: log-sum-exp`);
    close(a.rawLogSumExp, e.rawLogSumExp, `${at}: raw log-sum-exp`);
    close(a.timestampLogSumExp, e.timestampLogSumExp, `${at}: timestamp log-sum-exp`);
    close(a.maxTextLogit, e.maxTextLogit, `${at}: best text logit`);
    assert.equal(a.timestampsWin, e.timestampsWin, `${at}: timestamp rule`);
    assert.deepEqual(a.gathered, e.gathered, `${at}: gathered logits`);
    assert.equal(a.nanToken, e.nanToken, `${at}: first NaN`);
  });
}

/** Random logits in [-8, 8]; row r's timestamps shifted by shifts[r] (so the rule goes either way). */
function randomLogits(rows: number, seed: number, shifts: number[]): Float32Array {
  const logits = testValues(rows * VOCABULARY, { seed, range: 8 });
  for (let r = 0; r < rows; r++) for (let i = TIMESTAMP_BEGIN; i < VOCABULARY; i++) logits[r * VOCABULARY + i]! += shifts[r] ?? 0;
  return logits;
}

describe('the WebGPU selectTokens op in Node', () => {
  let gpu: NodeGpu | undefined;
  before(async () => {
    gpu = await acquireNodeGpu();
  });
  after(() => gpu?.context?.device.destroy());

  test(`equals the reference implementation within ${TOLERANCE} on random logits with masks, ranges, the timestamp rule and NaN`, { timeout: 120_000 }, async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const backend = await createWebGpuBackend({ device: context.device });
    const suppressIds: TokenRange[] = [[50257, 50365], [220, 221], [11, 12]];
    for (let id = 5; id < TIMESTAMP_BEGIN; id += 13) suppressIds.push([id, id + 1]);
    const suppress = packTokenRanges(suppressIds, VOCABULARY);
    const cases: { name: string; rows: number; shifts: number[]; request: TokenSelectionRequest; nan?: [row: number, id: number][] }[] = [
      { name: 'argmax only, nothing suppressed', rows: 1, shifts: [0], request: { topK: 1 } },
      {
        name: 'beam of 5: bitset, ranges per row, timestamp rule both ways, gathered logits',
        rows: 4,
        shifts: [-12, 3, 0, -4],
        request: {
          topK: 6,
          suppress,
          suppressRanges: [[[50363, 50364]], [[0, 50256], [TIMESTAMP_BEGIN, TIMESTAMP_BEGIN + 40]], [], [[TIMESTAMP_BEGIN + 51, VOCABULARY], [0, TIMESTAMP_BEGIN]]],
          timestampBegin: TIMESTAMP_BEGIN,
          gather: [50362, 50259, 50260, 7],
        },
      },
      {
        name: 'top 8 with text gone, everything gone, and NaN logits',
        rows: 3,
        shifts: [0, 0, 0],
        request: { topK: 8, suppressRanges: [[[0, TIMESTAMP_BEGIN + 3]], [[0, VOCABULARY]], [[100, 200]]], timestampBegin: TIMESTAMP_BEGIN },
        nan: [[2, 40000], [2, 900]],
      },
    ];
    try {
      const last: TokenSelection[][] = [];
      for (const [index, c] of cases.entries()) {
        const logits = randomLogits(c.rows, 40 + index, c.shifts);
        for (const [row, id] of c.nan ?? []) logits[row * VOCABULARY + id] = NaN;
        const expected = selectTokensOnHost(logits, c.rows, VOCABULARY, c.request);
        const x = backend.ops.upload(logits, c.rows, VOCABULARY);
        const actual = await backend.ops.selectTokens!(x, c.request);
        backend.ops.release(x);
        assertSelectionsClose(actual, expected, c.name);
        last.push(expected);
        if (c.shifts.length === 4) {
          assert.deepEqual(expected.map((row) => row.timestampsWin), [false, true, true, true], 'the case exercises the rule both ways');
        }
      }
      const rows = last[2]!;
      assert.equal(rows[1]!.logSumExp, -Infinity, 'a row with nothing left');
      assert.equal(rows[2]!.nanToken, 900);
      assert.equal(backend.stats().pool.inUseBytes, 0);
    } finally {
      backend.dispose();
    }
  });

  test('decoding on the mini model: a step reads back the selection only, and greedy picks the reference tokens', { skip: skipWithoutSharedData('whisper-assets/gpt2.tiktoken'), timeout: 240_000 }, async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const model = await loadModel((await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'f16' })).path);
    const mel = testMel(model);
    const webgpu = await createWebGpuBackend({ device: context.device });
    const reference = createReferenceBackend();
    /** One window decoded on `ops`, counting decoder steps (each reads logits or a selection once). */
    const decodeOn = async <T, W>(ops: WhisperOps<T, W>, weights: WhisperWeights<W>, options: DecodingOptions) => {
      const params = { dims: model.dims, weights };
      const features = encode(ops, params, mel);
      try {
        let steps = 0;
        const counted: WhisperOps<T, W> = {
          ...ops,
          read: (x) => (steps++, ops.read(x)),
          ...(ops.selectTokens ? { selectTokens: (x: T, request: TokenSelectionRequest) => (steps++, ops.selectTokens!(x, request)) } : {}),
        };
        const result = await decodeWindow(createDecoderSession(counted, params, features), model, options);
        return { result, steps };
      } finally {
        ops.release(features);
      }
    };
    const gpuWeights = await webgpu.prepareWeights(model.dims, model.weights);
    const { selectTokens: _unused, ...gpuWithoutSelect } = webgpu.ops;
    try {
      for (const [index, options] of ([{ sampleLen: 12 }, { sampleLen: 12, withoutTimestamps: true }] as DecodingOptions[]).entries()) {
        const expected = await decodeOn(reference.ops, model.weights, options);
        const bytes = webgpu.stats().bytesRead;
        const selected = await decodeOn(webgpu.ops, gpuWeights, options);
        const selectedBytes = (webgpu.stats().bytesRead - bytes) / selected.steps;
        t.diagnostic(`${JSON.stringify(options)}: ${selected.steps} steps, ${selectedBytes.toFixed(1)} bytes read per step with selectTokens`);
        assert.deepEqual(selected.result.tokens, expected.result.tokens, 'greedy tokens equal the reference backend');
        close(selected.result.sumLogProb, expected.result.sumLogProb, 'summed log-prob');
        close(selected.result.noSpeechProb, expected.result.noSpeechProb, 'no-speech probability');
        assert.ok(selected.steps >= 3);
        assert.ok(selectedBytes <= 64, `${selectedBytes} bytes per step`);
        if (index > 0) continue;
        // The same decode without the op reads every step's logits.
        const before = webgpu.stats().bytesRead;
        const full = await decodeOn(gpuWithoutSelect as WhisperOps<GpuTensor, GpuWeight>, gpuWeights, options);
        const fullBytes = (webgpu.stats().bytesRead - before) / full.steps;
        t.diagnostic(`without selectTokens: ${fullBytes.toFixed(0)} bytes read per step`);
        assert.deepEqual(full.result.tokens, expected.result.tokens);
        assert.equal(fullBytes, model.dims.nVocab * 4);
      }
      // Beam search reads back beamSize + 1 candidates per beam.
      let bytes = webgpu.stats().bytesRead;
      const beam = await decodeOn(webgpu.ops, gpuWeights, { sampleLen: 6, beamSize: 3 });
      const beamBytes = (webgpu.stats().bytesRead - bytes) / beam.steps;
      t.diagnostic(`beam 3: ${beam.steps} steps, ${beamBytes.toFixed(1)} bytes read per step`);
      assert.ok(beamBytes <= 3 * (2 * 4 + 6) * 4 + 4, `${beamBytes} bytes per beam step`);
      const expectedBeam = await decodeOn(reference.ops, model.weights, { sampleLen: 6, beamSize: 3 });
      assert.deepEqual(beam.result.tokens, expectedBeam.result.tokens, 'beam search tokens equal the reference backend');
    } finally {
      webgpu.releaseWeights(gpuWeights);
      webgpu.dispose();
    }
  });
});
