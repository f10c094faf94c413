// The decoding stack against scripted sessions (no model): logit filters, greedy, beam search and
// patience, best-of sampling, temperature fallback, silence, language detection, prompt layout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { decodeWindow, decodeWithFallback, detectLanguage } from '../../src/core/decoding/options.ts';
import { resolveSuppressTokens, suppressBlank, timestampRules } from '../../src/core/decoding/filters.ts';
import { initialTokens } from '../../src/core/decoding/prompt.ts';
import { MurmurError, AbortError } from '../../src/core/errors.ts';
import type { WhisperTokenizer } from '../../src/core/tokenizer/tokenizer.ts';
import { DEFAULT_ASSETS_DIR, syntheticTokenizer } from '../../scripts/synthetic/generate.ts';
import { distribution, fakeSession, rawLogits, setupFor, type Script } from './decoding-fixture.ts';

const haveAssets = existsSync(`${DEFAULT_ASSETS_DIR}/gpt2.tiktoken`) && existsSync(`${DEFAULT_ASSETS_DIR}/multilingual.tiktoken`);
const skip = haveAssets ? false : `${DEFAULT_ASSETS_DIR} is absent (reference data folder not mounted)`;
let english: Promise<WhisperTokenizer> | undefined;
let multilingual: Promise<WhisperTokenizer> | undefined;
const englishTokenizer = () => (english ??= syntheticTokenizer(51864));
const multilingualTokenizer = () => (multilingual ??= syntheticTokenizer(51865));

function word(tok: WhisperTokenizer, text: string): number {
  const ids = tok.encode(text);
  assert.equal(ids.length, 1, `${JSON.stringify(text)} is one token`);
  return ids[0]!;
}

/** A script over the sampled tokens: neutral logits while the prompt (of `promptLength`) is fed. */
function afterPrompt(tok: WhisperTokenizer, promptLength: number, next: (sampled: number[]) => Float32Array): Script {
  return (history) => (history.length < promptLength ? new Float32Array(tok.nVocab) : next(history.slice(promptLength)));
}

test('suppress blank masks " " and end-of-text at the first sampled position only', { skip }, async () => {
  const tok = await englishTokenizer();
  const filter = suppressBlank(tok);
  const first = new Float32Array(tok.nVocab);
  filter.apply(first, []);
  assert.equal(first[220], -Infinity);
  assert.equal(first[tok.eot], -Infinity);
  assert.equal(first[221], 0);
  const later = new Float32Array(tok.nVocab);
  filter.apply(later, [400]);
  assert.equal(later[220], 0);
  assert.equal(later[tok.eot], 0);
});

test('timestamp rules: pairs, monotonic, no text first, max initial timestamp, forced timestamps', { skip }, async () => {
  const tok = await englishTokenizer();
  const ts = (i: number) => tok.timestampBegin + i;
  const rules = timestampRules(tok, 50);
  const after = (sampled: number[], logits: Float32Array = new Float32Array(tok.nVocab)) => {
    rules.apply(logits, sampled);
    return logits;
  };
  // First position: a timestamp no later than 1.0 s; no text, no end-of-text, never <|notimestamps|>.
  const first = after([]);
  assert.equal(first[400], -Infinity);
  assert.equal(first[tok.eot], -Infinity);
  assert.equal(first[tok.noTimestamps], -Infinity);
  assert.equal(first[ts(0)], 0);
  assert.equal(first[ts(50)], 0);
  assert.equal(first[ts(51)], -Infinity);
  // An open pair [<|0.10|> text <|0.40|>]: its closing timestamp (not earlier) or end-of-text, no text.
  const open = after([ts(5), 400, ts(20)], rawLogits(tok.nVocab, { [tok.eot]: 10, 400: 10 }, 0));
  assert.equal(open[400], -Infinity);
  assert.equal(open[tok.eot], 10);
  assert.equal(open[ts(19)], -Infinity);
  assert.equal(open[ts(20)], 0);
  assert.equal(open[ts(30)], 0);
  // A closed pair: text must follow.
  const closed = after([ts(5), 400, ts(20), ts(20)]);
  assert.equal(closed[400], 0);
  assert.ok(closed.subarray(tok.timestampBegin).every((v) => v === -Infinity));
  // Inside text: the next timestamp must be later than the last one (segments have non-zero length).
  const inText = after([ts(5), 400], rawLogits(tok.nVocab, { 400: 10 }, 0));
  assert.equal(inText[ts(5)], -Infinity);
  assert.equal(inText[ts(6)], 0);
  assert.equal(inText[400], 10);
  // With every token equally likely the ~1500 timestamps together win: text (and end-of-text) are masked.
  const even = after([ts(5), 400]);
  assert.equal(even[400], -Infinity);
  assert.equal(even[tok.eot], -Infinity);
  assert.equal(even[ts(6)], 0);
  // Timestamps together more likely than the best text token: a timestamp it is.
  const spread = rawLogits(tok.nVocab, { 400: 5, [ts(6)]: 3, [ts(7)]: 3, [ts(8)]: 3, [ts(9)]: 3, [ts(10)]: 3, [ts(11)]: 3, [ts(12)]: 3, [ts(13)]: 3 });
  after([ts(5), 400], spread);
  assert.equal(spread[400], -Infinity, 'ln(8) + 3 > 5: text is masked');
  const fewer = rawLogits(tok.nVocab, { 400: 5, [ts(6)]: 3, [ts(7)]: 3, [ts(8)]: 3 });
  after([ts(5), 400], fewer);
  assert.equal(fewer[400], 5, 'ln(3) + 3 < 5: text stays');
});

test('decoding with timestamps never emits an illegal token the model prefers', { skip }, async () => {
  const tok = await englishTokenizer();
  const ts = (i: number) => tok.timestampBegin + i;
  const hello = word(tok, ' hello');
  // The model always wants to go back to <|0.00|> or jump to 2 s; after text it wants <|0.00|> again.
  const script = afterPrompt(tok, 1, (sampled) => {
    if (sampled.length === 0) return rawLogits(tok.nVocab, { [ts(100)]: 9, [ts(0)]: 8, [ts(10)]: 1 });
    if (sampled.length === 1) return rawLogits(tok.nVocab, { [ts(0)]: 9, [hello]: 8 });
    if (sampled.length === 2) return rawLogits(tok.nVocab, { [ts(0)]: 9, [ts(30)]: 8, [hello]: 1 });
    return rawLogits(tok.nVocab, { [ts(0)]: 9, [tok.eot]: 8, [ts(40)]: 1 });
  });
  const result = await decodeWindow(fakeSession(tok.nVocab, script).session, setupFor(tok));
  // 2 s is past the 1 s limit; going back to 0 is illegal; the pair closes with a later timestamp or ends.
  assert.deepEqual(result.tokens, [ts(0), hello, ts(30)]);
  assert.equal(result.text, 'hello');
  assert.equal(tok.decodeWithTimestamps(result.tokens), '<|0.00|> hello<|0.60|>');
  // A later maxInitialTimestamp (or none) lets the 2 s start through.
  const late = await decodeWindow(fakeSession(tok.nVocab, script).session, setupFor(tok), { maxInitialTimestamp: 3 });
  assert.equal(late.tokens[0], ts(100));
  const unlimited = await decodeWindow(fakeSession(tok.nVocab, script).session, setupFor(tok), { maxInitialTimestamp: null });
  assert.equal(unlimited.tokens[0], ts(100));
});

test('suppress blank and the suppress list apply through decodeWindow; without timestamps none are sampled', { skip }, async () => {
  const tok = await englishTokenizer();
  const hello = word(tok, ' hello');
  const dash = tok.encode(' -')[0]!;
  const script = afterPrompt(tok, 2, (sampled) =>
    sampled.length === 0 ? rawLogits(tok.nVocab, { 220: 9, [tok.eot]: 8, [tok.timestampBegin]: 7, [dash]: 6, [hello]: 1 }) : rawLogits(tok.nVocab, { [tok.timestampBegin + 3]: 9, [tok.eot]: 1 }),
  );
  const setup = setupFor(tok);
  const result = await decodeWindow(fakeSession(tok.nVocab, script).session, setup, { withoutTimestamps: true });
  assert.deepEqual(result.tokens, [hello], 'blank, eot, timestamps and the non-speech " -" are suppressed');
  const noBlankRule = await decodeWindow(fakeSession(tok.nVocab, script).session, setup, { withoutTimestamps: true, suppressBlank: false });
  assert.deepEqual(noBlankRule.tokens, [220]);
  // An explicit list replaces the default set: " -" is allowed again.
  const explicit = await decodeWindow(fakeSession(tok.nVocab, script).session, setup, { withoutTimestamps: true, suppressTokens: '' });
  assert.deepEqual(explicit.tokens, [dash]);
  const listed = await decodeWindow(fakeSession(tok.nVocab, script).session, setup, { withoutTimestamps: true, suppressTokens: `${dash}, 11` });
  assert.deepEqual(listed.tokens, [hello]);

  const ids = resolveSuppressTokens('-1', tok, setupFor(tok, [11, 13]).generation, { withoutTimestamps: false, nVocab: tok.nVocab });
  for (const id of [11, 13, ...tok.nonSpeechTokens(), tok.sot, tok.startOfPrev, tok.noSpeech, tok.noTimestamps]) assert.ok(ids.includes(id), `${id} suppressed`);
  assert.ok(!ids.includes(tok.eot) && !ids.includes(tok.timestampBegin));
  assert.throws(() => resolveSuppressTokens('1,x', tok, setup.generation, { withoutTimestamps: false, nVocab: tok.nVocab }), /"x" is not a token id/);
  assert.throws(() => resolveSuppressTokens([99999], tok, setup.generation, { withoutTimestamps: false, nVocab: tok.nVocab }), MurmurError);
});

/** Step 1: A (0.5) or B (0.4); after A the model is unsure (ten tokens at 0.1); after B it ends; after A C it ends. */
function gardenPath(tok: WhisperTokenizer) {
  const [a, b] = [word(tok, ' good'), word(tok, ' bad')];
  const spread = Array.from({ length: 10 }, (_, i) => 1000 + i);
  const script = afterPrompt(tok, 2, (sampled) => {
    if (sampled.length === 0) return distribution(tok.nVocab, { [a]: 0.5, [b]: 0.4, 300: 0.1 });
    if (sampled[0] === a && sampled.length === 1) return distribution(tok.nVocab, Object.fromEntries(spread.map((id) => [id, 0.1])));
    return distribution(tok.nVocab, { [tok.eot]: 1 });
  });
  return { a, b, c: spread[0]!, script };
}

test('beam search finds the higher-scoring sequence greedy misses, in one batch with reorders', { skip }, async () => {
  const tok = await englishTokenizer();
  const { a, b, c, script } = gardenPath(tok);
  const setup = setupFor(tok);
  const greedy = await decodeWindow(fakeSession(tok.nVocab, script).session, setup, { withoutTimestamps: true });
  assert.deepEqual(greedy.tokens, [a, c]);
  assert.ok(Math.abs(greedy.sumLogProb - (Math.log(0.5) + Math.log(0.1))) < 1e-6);
  assert.ok(Math.abs(greedy.avgLogProb - greedy.sumLogProb / 3) < 1e-12);
  const { session, log } = fakeSession(tok.nVocab, script);
  const beam = await decodeWindow(session, setup, { withoutTimestamps: true, beamSize: 2 });
  assert.deepEqual(beam.tokens, [b]);
  assert.ok(Math.abs(beam.sumLogProb - Math.log(0.4)) < 1e-6);
  assert.deepEqual(log.begins, [2], 'both beams decode side by side in one batch');
});

test('patience keeps beam search going until round(beamSize · patience) sequences have finished', { skip }, async () => {
  const tok = await englishTokenizer();
  const [a, b, x] = [word(tok, ' yes'), word(tok, ' no'), word(tok, ' maybe')];
  // A then end-of-text is found first (score ln .6 + ln .6); A X end scores better per token but finishes later.
  const script = afterPrompt(tok, 2, (sampled) => {
    if (sampled.length === 0) return distribution(tok.nVocab, { [a]: 0.6, [b]: 0.4 });
    if (sampled.length === 1 && sampled[0] === a) return distribution(tok.nVocab, { [tok.eot]: 0.6, [x]: 0.4 });
    if (sampled.length === 1) return distribution(tok.nVocab, { [tok.eot]: 0.1, [x]: 0.9 });
    return distribution(tok.nVocab, { [tok.eot]: 1 });
  });
  const setup = setupFor(tok);
  const impatient = await decodeWindow(fakeSession(tok.nVocab, script).session, setup, { withoutTimestamps: true, beamSize: 1 });
  assert.deepEqual(impatient.tokens, [a]);
  const patient = await decodeWindow(fakeSession(tok.nVocab, script).session, setup, { withoutTimestamps: true, beamSize: 1, patience: 2 });
  assert.deepEqual(patient.tokens, [a, x]);
  // The length penalty changes the ranking: with α = 1, ((5 + n) / 6) grows slower than n, favouring the short one.
  const penalized = await decodeWindow(fakeSession(tok.nVocab, script).session, setup, { withoutTimestamps: true, beamSize: 1, patience: 2, lengthPenalty: 1 });
  assert.deepEqual(penalized.tokens, [a]);
});

test('best-of sampling decodes every candidate in one batch and keeps the best-scoring one', { skip }, async () => {
  const tok = await englishTokenizer();
  const [a, b, c] = [word(tok, ' yes'), word(tok, ' no'), word(tok, ' maybe')];
  // A then end: ln .5 per token. B then end or B C end: worse.
  const script = afterPrompt(tok, 2, (sampled) => {
    if (sampled.length === 0) return distribution(tok.nVocab, { [a]: 0.5, [b]: 0.5 });
    if (sampled[0] === b && sampled.length === 1) return distribution(tok.nVocab, { [tok.eot]: 0.5, [c]: 0.5 });
    return distribution(tok.nVocab, { [tok.eot]: 1 });
  });
  const setup = setupFor(tok);
  const singles = new Set<string>();
  for (let seed = 1; seed <= 12; seed++) {
    const one = await decodeWindow(fakeSession(tok.nVocab, script).session, setup, { withoutTimestamps: true, temperature: 1, seed });
    singles.add(one.tokens.join(','));
  }
  assert.ok(singles.size > 1, 'single samples differ between seeds');
  for (let seed = 1; seed <= 4; seed++) {
    const { session, log } = fakeSession(tok.nVocab, script);
    const best = await decodeWindow(session, setup, { withoutTimestamps: true, temperature: 1, bestOf: 10, seed });
    assert.deepEqual(log.begins, [10]);
    assert.deepEqual(best.tokens, [a], `seed ${seed}`);
    assert.ok(Math.abs(best.sumLogProb - Math.log(0.5)) < 1e-6);
    assert.equal(best.temperature, 1);
  }
  // Same seed, same result.
  const again = async () => (await decodeWindow(fakeSession(tok.nVocab, script).session, setup, { withoutTimestamps: true, temperature: 0.7, seed: 5 })).tokens;
  assert.deepEqual(await again(), await again());
});

test('fallback retries a looping output at a higher temperature and stops at the first good one', { skip }, async () => {
  const tok = await englishTokenizer();
  const [loop, done] = [word(tok, ' hello'), word(tok, ' world')];
  // Greedy always prefers " hello" by a hair; " world" ends the text.
  const script = afterPrompt(tok, 2, (sampled) =>
    sampled[sampled.length - 1] === done ? distribution(tok.nVocab, { [tok.eot]: 1 }) : rawLogits(tok.nVocab, { [loop]: 1, [done]: 0.99 }),
  );
  const setup = setupFor(tok);
  const greedy = await decodeWindow(fakeSession(tok.nVocab, script).session, setup, { withoutTimestamps: true });
  assert.equal(greedy.tokens.length, 224, 'greedy loops to the token limit');
  assert.ok(greedy.compressionRatio > 2.4);

  const { session, log } = fakeSession(tok.nVocab, script);
  const result = await decodeWithFallback(session, setup, { withoutTimestamps: true, seed: 3 });
  assert.equal(result.temperature, 0.2);
  assert.equal(log.begins.length, 2, 'temperature 0, then 0.2');
  assert.ok(result.compressionRatio <= 2.4);
  assert.ok(result.avgLogProb >= -1);
  assert.equal(result.tokens[result.tokens.length - 1], done);
  // Without thresholds nothing is retried.
  const accepted = await decodeWithFallback(fakeSession(tok.nVocab, script).session, setup, { withoutTimestamps: true, compressionRatioThreshold: null });
  assert.equal(accepted.temperature, 0);
  // Beam options apply at temperature 0 only; best-of above it.
  const { session: s2, log: l2 } = fakeSession(tok.nVocab, script);
  await decodeWithFallback(s2, setup, { withoutTimestamps: true, seed: 3, beamSize: 2, bestOf: 3, temperatures: [0, 0.5], logProbThreshold: 0 });
  assert.deepEqual(l2.begins, [2, 3]);
});

test('a window with high no-speech probability and improbable text is silent: no retries', { skip }, async () => {
  const tok = await englishTokenizer();
  const words = Array.from({ length: 1000 }, (_, i) => 2000 + i);
  const script: Script = (history) => {
    if (history.length === 1) return rawLogits(tok.nVocab, { [tok.noSpeech]: 15 }, 0); // at <|startoftranscript|>
    if (history.length === 2) return distribution(tok.nVocab, Object.fromEntries(words.map((id) => [id, 1 / words.length])));
    return distribution(tok.nVocab, { [tok.eot]: 1 });
  };
  const setup = setupFor(tok);
  const { session, log } = fakeSession(tok.nVocab, script);
  const result = await decodeWithFallback(session, setup, { withoutTimestamps: true });
  const expected = Math.exp(15) / (Math.exp(15) + tok.nVocab - 1);
  assert.ok(Math.abs(result.noSpeechProb - expected) < 1e-6, `${result.noSpeechProb} vs ${expected}`);
  assert.ok(result.noSpeechProb > 0.6 && result.avgLogProb < -1, `${result.noSpeechProb} ${result.avgLogProb}`);
  assert.equal(log.begins.length, 1);
  assert.equal(result.temperature, 0);
  // Not silent when the no-speech check is off: every temperature is tried (all improbable), the last one returned.
  const { session: s2, log: l2 } = fakeSession(tok.nVocab, script);
  const retried = await decodeWithFallback(s2, setup, { withoutTimestamps: true, noSpeechThreshold: null, seed: 1 });
  assert.equal(l2.begins.length, 6);
  assert.equal(retried.temperature, 1);
});

test('language detection: softmax over the language tokens after <|startoftranscript|>', { skip }, async () => {
  const tok = await multilingualTokenizer();
  const [de, en, fr] = ['de', 'en', 'fr'].map((code) => tok.languageToken(code)) as [number, number, number];
  const hello = word(tok, ' the');
  const script: Script = (history) => {
    if (history.length === 1) return rawLogits(tok.nVocab, { [de]: 3, [en]: 2, [fr]: 1, 500: 100 });
    return history[history.length - 1] === hello ? distribution(tok.nVocab, { [tok.eot]: 1 }) : distribution(tok.nVocab, { [hello]: 1 });
  };
  const detected = await detectLanguage(fakeSession(tok.nVocab, script).session, tok);
  const total = Math.exp(3) + Math.exp(2) + Math.exp(1);
  assert.equal(detected.language, 'de');
  assert.ok(Math.abs(detected.probabilities.de! - Math.exp(3) / total) < 1e-6);
  assert.ok(Math.abs(detected.probabilities.fr! - Math.exp(1) / total) < 1e-6);
  assert.equal(detected.probabilities.ja, 0);
  assert.equal(Object.keys(detected.probabilities).length, tok.languages.length);

  // decodeWindow detects when no language is given and decodes with it.
  const { session, log } = fakeSession(tok.nVocab, script);
  const result = await decodeWindow(session, setupFor(tok), { withoutTimestamps: true });
  assert.equal(result.language, 'de');
  assert.ok(result.languageProbs && Math.abs(result.languageProbs.de! - Math.exp(3) / total) < 1e-6);
  assert.deepEqual(log.steps.slice(1, 3), [[tok.sot], [de, tok.transcribe, tok.noTimestamps]]);
  assert.deepEqual(result.tokens, [hello]);
  // Given: no detection; translate puts the task token in.
  const { session: s2, log: l2 } = fakeSession(tok.nVocab, script);
  const given = await decodeWindow(s2, setupFor(tok), { withoutTimestamps: true, language: 'french', task: 'translate' });
  assert.equal(given.language, 'fr');
  assert.equal(given.languageProbs, undefined);
  assert.deepEqual(l2.steps.slice(0, 2), [[tok.sot], [fr, tok.translate, tok.noTimestamps]]);
  const englishOnly = await englishTokenizer();
  assert.deepEqual(await detectLanguage(fakeSession(englishOnly.nVocab, script).session, englishOnly), { language: 'en', probabilities: { en: 1 } });
});

test('prompt and prefix layout: startofprev, the last nTextCtx/2 − 1 prompt tokens, sot sequence, prefix', { skip }, async () => {
  const tok = await englishTokenizer();
  const prompt = tok.encode(' Previously on the show.');
  const prefix = tok.encode(' And so');
  const layout = initialTokens(tok, { prompt: 'Previously on the show. ', prefix: ' And so', withoutTimestamps: true, sampleLen: 224 }, 448);
  assert.deepEqual(layout.tokens, [tok.startOfPrev, ...prompt, tok.sot, tok.noTimestamps, ...prefix]);
  assert.equal(layout.sotIndex, prompt.length + 1);
  assert.equal(layout.sampleBegin, layout.tokens.length);
  const long = Array.from({ length: 400 }, (_, i) => 1000 + i);
  const truncated = initialTokens(tok, { prompt: long, sampleLen: 224 }, 448);
  assert.deepEqual(truncated.tokens, [tok.startOfPrev, ...long.slice(-223), tok.sot]);
  assert.throws(() => initialTokens(tok, { prompt: [1, -2], sampleLen: 224 }, 448), /prompt token 1 is -2/);

  // Through decodeWindow: the prompt is fed through <|startoftranscript|> first (no-speech), then the rest; the prefix is not part of the result.
  const word1 = word(tok, ' hello');
  const script: Script = (history) => (history[history.length - 1] === word1 ? distribution(tok.nVocab, { [tok.eot]: 1 }) : distribution(tok.nVocab, { [word1]: 1 }));
  const { session, log } = fakeSession(tok.nVocab, script);
  const result = await decodeWindow(session, setupFor(tok), { prompt, prefix: ' And so', withoutTimestamps: true });
  assert.deepEqual(log.steps.slice(0, 2), [[tok.startOfPrev, ...prompt, tok.sot], [tok.noTimestamps, ...prefix]]);
  assert.deepEqual(result.tokens, [word1]);
  assert.equal(result.text, 'hello');
});

test('invalid options are typed errors; aborting stops decoding', { skip }, async () => {
  const tok = await englishTokenizer();
  const { session } = fakeSession(tok.nVocab, () => new Float32Array(tok.nVocab));
  const setup = setupFor(tok);
  const bad = async (options: object, pattern: RegExp) => assert.rejects(() => decodeWindow(session, setup, options), (e: unknown) => e instanceof MurmurError && pattern.test(e.message));
  await bad({ beamSize: 2, bestOf: 2, temperature: 0 }, /can't be given together/);
  await bad({ bestOf: 3 }, /bestOf with greedy/);
  await bad({ patience: 2 }, /give beamSize/);
  await bad({ temperature: -1 }, /temperature must be/);
  await bad({ lengthPenalty: 2, beamSize: 2 }, /lengthPenalty/);
  await bad({ beamSize: 0 }, /beamSize must be/);
  await bad({ language: 'de' }, /English-only/);
  await assert.rejects(() => decodeWithFallback(session, setup, { temperatures: [] }), /temperatures is empty/);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(() => decodeWindow(session, setup, {}, controller.signal), AbortError);
  const nan = fakeSession(tok.nVocab, () => new Float32Array(tok.nVocab).fill(NaN)).session;
  await assert.rejects(() => decodeWindow(nan, setup, { withoutTimestamps: true }), /NaN logit/);
});
