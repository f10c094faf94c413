// Decoding through a backend's selectTokens op (the suppression rules, log-softmax and top-k
// computed where the logits are; only a summary per sequence comes back) gives exactly the tokens,
// log-probabilities and probabilities of decoding from the full logits: on scripted sessions for
// every rule (timestamp grammar, forced timestamps, max initial timestamp, suppress blank and list,
// beams, no-speech, language detection), and on the reference backend with the mini models.
// The scripted suite of decoding.test.ts also runs once more here with the op offered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { decodeWindow, decodeWithFallback, detectLanguage } from '../../src/core/decoding/options.ts';
import { createDecoderSession } from '../../src/core/decoding/session.ts';
import { checkSelectionRequest, packTokenRanges, selectTokensOnHost } from '../../src/core/decoding/select-tokens.ts';
import type { DecodingOptions, FallbackOptions } from '../../src/core/decoding/options.ts';
import type { WhisperOps } from '../../src/core/model/ops.ts';
import type { WeightTensor } from '../../src/core/model/weights.ts';
import type { RefTensor } from '../../src/core/reference/tensor.ts';
import { encode } from '../../src/core/model/whisper.ts';
import { referenceOps } from '../../src/core/reference/backend.ts';
import { logMelWindow, SAMPLE_RATE } from '../../src/core/audio/mel.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { MurmurError } from '../../src/core/errors.ts';
import type { WhisperTokenizer } from '../../src/core/tokenizer/tokenizer.ts';
import { cachedSyntheticModel, DEFAULT_ASSETS_DIR, syntheticTokenizer } from '../../scripts/synthetic/generate.ts';
import { distribution, fakeSession, offerTokenSelection, rawLogits, setupFor, type Script } from './decoding-fixture.ts';

const haveAssets = existsSync(`${DEFAULT_ASSETS_DIR}/gpt2.tiktoken`) && existsSync(`${DEFAULT_ASSETS_DIR}/multilingual.tiktoken`);
const skip = haveAssets ? false : `${DEFAULT_ASSETS_DIR} is absent (reference data folder not mounted)`;
let english: Promise<WhisperTokenizer> | undefined;
let multilingual: Promise<WhisperTokenizer> | undefined;
const englishTokenizer = () => (english ??= syntheticTokenizer(51864));
const multilingualTokenizer = () => (multilingual ??= syntheticTokenizer(51865));

/** Decodes with full logits, then with the op offered; both must agree exactly, and the op path must read no logits at temperature 0. */
async function bothWays(tok: WhisperTokenizer, script: Script, options: FallbackOptions, fallback = false) {
  const run = async (select: boolean) => {
    const { session, log } = fakeSession(tok.nVocab, script, 448, select);
    const result = fallback ? await decodeWithFallback(session, setupFor(tok), options) : await decodeWindow(session, setupFor(tok), options as DecodingOptions);
    return { result, log };
  };
  const full = await run(false);
  const selected = await run(true);
  assert.deepEqual(selected.result, full.result);
  assert.deepEqual(selected.log.steps, full.log.steps, 'the same tokens were fed');
  assert.equal(full.log.selectSteps, 0);
  if ((options.temperature ?? 0) === 0 && !fallback) {
    assert.equal(selected.log.logitSteps, 0, 'no step read the logits');
    assert.ok(selected.log.selectSteps > 0);
  }
  return selected.result;
}

test('host selection: suppression bitset and ranges, timestamp rule, top-k ties and impossible tokens, gather, NaN', () => {
  const cols = 70;
  const logits = new Float32Array(2 * cols);
  for (let i = 0; i < cols; i++) logits[i] = (i % 7) - 3; // row 0: ties every 7 ids
  for (let i = 0; i < cols; i++) logits[cols + i] = i < 60 ? -50 : 1; // row 1: timestamps (60..) dominate
  logits[cols + 5] = 2;
  const suppress = packTokenRanges([[3, 4], [10, 11]], cols);
  const rows = selectTokensOnHost(logits, 2, cols, { topK: 3, suppress, suppressRanges: [[[0, 2], [60, 70]], [[61, 70]]], timestampBegin: 60, gather: [3, 64] });
  // Row 0: the value 3 is at ids 6, 13, 20, ...; none suppressed; ties keep the lower id first.
  assert.deepEqual(rows[0]!.ids, [6, 13, 20]);
  assert.equal(rows[0]!.timestampsWin, false);
  assert.deepEqual(rows[0]!.gathered, [logits[3], logits[64]], 'gathered logits are raw, before suppression');
  const [first] = selectTokensOnHost(logits.subarray(0, cols), 1, cols, { topK: 3, suppressRanges: [[[0, 7]]] });
  assert.deepEqual(first!.ids, [13, 20, 27]);
  // Row 1: text best is 2 (id 5); the only timestamp left (60) has logit 1 < 2: text stays.
  assert.deepEqual(rows[1]!.ids.slice(0, 2), [5, 60]);
  assert.equal(rows[1]!.timestampsWin, false);
  assert.equal(rows[1]!.maxTextLogit, 2);
  // Without the range the nine other timestamps join: ln(10) + 1 > 2, so text is suppressed.
  const [wins] = selectTokensOnHost(logits.subarray(cols), 1, cols, { topK: 3, suppress, timestampBegin: 60 });
  assert.equal(wins!.timestampsWin, true);
  assert.deepEqual(wins!.ids, [60, 61, 62]);
  assert.ok(Math.abs(wins!.logProbs[0]! - Math.log(0.1)) < 1e-12);
  // Fewer possible tokens than k: the rest are the lowest impossible ids at -Infinity.
  const [few] = selectTokensOnHost(logits.subarray(0, cols), 1, cols, { topK: 3, suppressRanges: [[[0, 69]]] });
  assert.deepEqual(few!.ids, [69, 0, 1]);
  assert.deepEqual(few!.logProbs, [0, -Infinity, -Infinity]);
  const [none] = selectTokensOnHost(logits.subarray(0, cols), 1, cols, { topK: 1, suppressRanges: [[[0, cols]]] });
  assert.equal(none!.logSumExp, -Infinity);
  const nan = logits.slice(0, cols);
  nan[9] = NaN;
  nan[40] = NaN;
  assert.equal(selectTokensOnHost(nan, 1, cols, { topK: 1 })[0]!.nanToken, 9);
  assert.equal(rows[0]!.nanToken, -1);
  // Bad requests are typed errors naming the problem.
  const bad = (request: Parameters<typeof checkSelectionRequest>[0], pattern: RegExp) =>
    assert.throws(() => checkSelectionRequest(request, 2, cols), (e: unknown) => e instanceof MurmurError && pattern.test(e.message));
  bad({ topK: 9 }, /topK must be a whole number from 1 to 8/);
  bad({ topK: 1, suppress: new Uint32Array(2) }, /bitset has 2 words/);
  bad({ topK: 1, suppressRanges: [[]] }, /1 rows of suppressed ranges for 2 rows/);
  bad({ topK: 1, suppressRanges: [[[5, 2]], []] }, /row 0 suppresses the range \[5, 2\)/);
  bad({ topK: 1, gather: [70] }, /gather asks for token 70/);
  bad({ topK: 1, timestampBegin: 71 }, /timestampBegin 71/);
});

test('scripted: timestamp grammar, max initial timestamp and forced timestamps agree with and without the op', { skip }, async () => {
  const tok = await englishTokenizer();
  const ts = (i: number) => tok.timestampBegin + i;
  const hello = tok.encode(' hello')[0]!;
  const script: Script = (history) => {
    const sampled = history.slice(1);
    if (history.length < 1 || sampled.length === 0) return rawLogits(tok.nVocab, { [ts(100)]: 9, [ts(0)]: 8, [ts(10)]: 1, [hello]: 3 }, -5);
    if (sampled.length === 1) return rawLogits(tok.nVocab, { [ts(0)]: 9, [hello]: 8 }, -5);
    if (sampled.length === 2) return rawLogits(tok.nVocab, { [ts(0)]: 9, [ts(30)]: 8, [hello]: 1 }, -5);
    // The timestamps together outweigh the best text token: the rule forces a timestamp.
    if (sampled.length === 3) return rawLogits(tok.nVocab, { [hello]: 5, [ts(40)]: 3, [ts(41)]: 3, [ts(42)]: 3, [ts(43)]: 3, [ts(44)]: 3, [ts(45)]: 3, [ts(46)]: 3, [ts(47)]: 3 }, -8);
    return rawLogits(tok.nVocab, { [ts(0)]: 9, [tok.eot]: 8, [ts(60)]: 1, [hello]: 2 }, -5);
  };
  const result = await bothWays(tok, script, {});
  assert.equal(result.tokens[0], ts(0), 'the 2 s start is past the 1 s limit');
  for (const options of [{ maxInitialTimestamp: 3 }, { maxInitialTimestamp: null }, { suppressBlank: false }, { sampleLen: 3 }] as DecodingOptions[]) {
    await bothWays(tok, script, options);
  }
});

test('scripted: suppress blank, suppress lists and no timestamps agree with and without the op', { skip }, async () => {
  const tok = await englishTokenizer();
  const hello = tok.encode(' hello')[0]!;
  const dash = tok.encode(' -')[0]!;
  const script: Script = (history) =>
    history.length <= 2 ? rawLogits(tok.nVocab, { 220: 9, [tok.eot]: 8, [tok.timestampBegin]: 7, [dash]: 6, [hello]: 1 }, -3) : rawLogits(tok.nVocab, { [tok.timestampBegin + 3]: 9, [tok.eot]: 1, [hello]: 0.5 }, -3);
  for (const options of [{}, { suppressBlank: false }, { suppressTokens: '' }, { suppressTokens: `${dash}, 11` }] as DecodingOptions[]) {
    await bothWays(tok, script, { ...options, withoutTimestamps: true });
    await bothWays(tok, script, options);
  }
});

test('scripted: beam search and patience agree with and without the op, reorders included', { skip }, async () => {
  const tok = await englishTokenizer();
  const [a, b, x] = [tok.encode(' yes')[0]!, tok.encode(' no')[0]!, tok.encode(' maybe')[0]!];
  const spread = Array.from({ length: 10 }, (_, i) => 1000 + i);
  const script: Script = (history) => {
    const sampled = history.slice(2);
    if (history.length < 2 || sampled.length === 0) return distribution(tok.nVocab, { [a]: 0.5, [b]: 0.4, 300: 0.1 });
    if (sampled[0] === a && sampled.length === 1) return distribution(tok.nVocab, { ...Object.fromEntries(spread.map((id) => [id, 0.09])), [tok.eot]: 0.1 });
    if (sampled.length === 1) return distribution(tok.nVocab, { [tok.eot]: 0.3, [x]: 0.7 });
    if (sampled.length < 4) return distribution(tok.nVocab, { [x]: 0.5, [tok.eot]: 0.5 });
    return distribution(tok.nVocab, { [tok.eot]: 1 });
  };
  for (const options of [{ beamSize: 2 }, { beamSize: 3, patience: 2 }, { beamSize: 5, lengthPenalty: 1 }, { beamSize: 1, patience: 2 }] as DecodingOptions[]) {
    await bothWays(tok, script, { ...options, withoutTimestamps: true });
  }
  // With timestamps the per-beam rules differ between beams.
  const ts = (i: number) => tok.timestampBegin + i;
  const timed: Script = (history) => rawLogits(tok.nVocab, { [ts(0)]: 2, [ts(1)]: 1.5, [a]: 1, [b]: 0.9, [tok.eot]: history.length > 5 ? 3 : -1 }, -4);
  await bothWays(tok, timed, { beamSize: 3 });
});

test('scripted: no-speech probability, silence and fallback agree with and without the op', { skip }, async () => {
  const tok = await englishTokenizer();
  const words = Array.from({ length: 1000 }, (_, i) => 2000 + i);
  const script: Script = (history) => {
    if (history.length === 1) return rawLogits(tok.nVocab, { [tok.noSpeech]: 15 }, 0);
    if (history.length === 2) return distribution(tok.nVocab, Object.fromEntries(words.map((id) => [id, 1 / words.length])));
    return distribution(tok.nVocab, { [tok.eot]: 1 });
  };
  const silent = await bothWays(tok, script, { withoutTimestamps: true }, true);
  assert.ok(silent.noSpeechProb > 0.6);
  // English-only with timestamps: the start-of-transcript step is also the first token's step.
  await bothWays(tok, script, {});
  await bothWays(tok, script, { withoutTimestamps: true, seed: 2, noSpeechThreshold: null, temperatures: [0, 0.5] }, true);
});

test('scripted: language detection and decoding in the detected language agree with and without the op', { skip }, async () => {
  const tok = await multilingualTokenizer();
  const [de, en, fr] = ['de', 'en', 'fr'].map((code) => tok.languageToken(code)) as [number, number, number];
  const the = tok.encode(' the')[0]!;
  const script: Script = (history) => {
    if (history.length === 1) return rawLogits(tok.nVocab, { [de]: 3, [en]: 2, [fr]: 1, 500: 100 });
    return history[history.length - 1] === the ? distribution(tok.nVocab, { [tok.eot]: 1 }) : distribution(tok.nVocab, { [the]: 1 });
  };
  const full = await detectLanguage(fakeSession(tok.nVocab, script, 448, false).session, tok);
  const { session, log } = fakeSession(tok.nVocab, script, 448, true);
  assert.deepEqual(await detectLanguage(session, tok), full);
  assert.equal(log.logitSteps, 0);
  const result = await bothWays(tok, script, { withoutTimestamps: true });
  assert.equal(result.language, 'de');
});

/** referenceOps without the optional op: decoding falls back to reading the logits. */
function withoutSelect(): WhisperOps<RefTensor, WeightTensor> {
  const { selectTokens: _unused, ...rest } = referenceOps;
  return rest;
}

test('reference backend, mini models: every decoding path gives the same result with and without selectTokens', { skip, timeout: 120_000 }, async () => {
  const tone = Float32Array.from({ length: 2 * SAMPLE_RATE }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 440 * i) / SAMPLE_RATE));
  for (const preset of ['mini', 'mini-multilingual'] as const) {
    const model = await loadModel((await cachedSyntheticModel({ preset, seed: 7, format: 'huggingface', dtype: 'f32' })).path);
    const params = { dims: model.dims, weights: model.weights };
    const features = encode(referenceOps, params, logMelWindow(tone, model.dims.nMels));
    const runs: FallbackOptions[] = [
      { sampleLen: 24, temperatures: [0] },
      { sampleLen: 24, temperatures: [0], withoutTimestamps: true },
      { sampleLen: 12, temperatures: [0], beamSize: 3 },
      { sampleLen: 12, temperatures: [0], beamSize: 2, withoutTimestamps: true, patience: 1.5 },
      { sampleLen: 16, temperatures: [0], maxInitialTimestamp: null, suppressBlank: false },
      // Temperature 0, then sampling (which reads the logits) once the result is judged improbable.
      { sampleLen: 12, temperatures: [0, 0.4], seed: 1, logProbThreshold: 10 },
    ];
    for (const options of runs) {
      const decode = (ops: WhisperOps<RefTensor, WeightTensor>) => decodeWithFallback(createDecoderSession(ops, params, features), model, options);
      const full = await decode(withoutSelect());
      const selected = await decode(referenceOps);
      assert.deepEqual(selected, full, `${preset} ${JSON.stringify(options)}`);
    }
    referenceOps.release(features);
  }
});

// The scripted suite once more, every session offering the op.
offerTokenSelection(true);
await import('./decoding.test.ts');
