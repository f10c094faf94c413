// Hallucination guards: repetition loops, word and segment anomaly scores, skipping silence before suspect segments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  detectRepetitionLoop,
  isAnomalousWord,
  isSegmentAnomaly,
  segmentAnomalyScore,
  skipHallucinatedSilence,
  wordAnomalyScore,
  type TimedSegment,
  type TimedWord,
} from '../../src/core/timing/hallucination.ts';
import { MurmurError } from '../../src/core/errors.ts';

test('a pattern repeated to the end of the output is found, with where the loop starts', () => {
  const intro = [11, 12, 13, 14, 15, 16];
  const pattern = [40, 41, 42];
  const looping = [...intro, ...pattern, ...pattern, ...pattern, ...pattern, ...pattern];
  assert.deepEqual(detectRepetitionLoop(looping), { start: 6, period: 3, repeats: 5, coverage: 15 / 21 });
  // A partial repeat at the end still counts; the stretch starts where the periodic part does.
  const partial = [...looping, 40];
  assert.deepEqual(detectRepetitionLoop(partial), { start: 6, period: 3, repeats: 5, coverage: 16 / 22 });
  // ABAB... is period 2, not 4 or 6.
  assert.equal(detectRepetitionLoop([1, 2, 3, ...Array.from({ length: 12 }, (_, i) => (i % 2 ? 8 : 9))])?.period, 2);
  // One token over and over.
  assert.deepEqual(detectRepetitionLoop([5, 6, ...Array(12).fill(7)]), { start: 2, period: 1, repeats: 12, coverage: 12 / 14 });
});

test('normal text is not a loop: too few repeats, too short a stretch, or too small a share', () => {
  assert.equal(detectRepetitionLoop([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), undefined);
  // "very very very" at the end: 3 repeats of one token.
  assert.equal(detectRepetitionLoop([1, 2, 3, 4, 9, 9, 9]), undefined);
  // Four repeats of a 2-token pattern are only 8 tokens, under the 10-token floor.
  assert.equal(detectRepetitionLoop([1, 2, 3, 4, 8, 9, 8, 9, 8, 9, 8, 9]), undefined);
  // A loop of 12 tokens at the end of 100 covers 12%: allowed unless the share is lowered.
  const long = [...Array.from({ length: 88 }, (_, i) => 100 + i), ...Array(6).fill([1, 2]).flat()];
  assert.equal(detectRepetitionLoop(long), undefined);
  assert.equal(detectRepetitionLoop(long, { minCoverage: 0.1 })?.start, 88);
  assert.equal(detectRepetitionLoop([]), undefined);
  assert.throws(() => detectRepetitionLoop([1], { maxPeriod: 0 }), MurmurError);
});

test('timestamps between repeats can be left out of the comparison; the start maps back to the full sequence', () => {
  // Text 1 2 3 after each of the rising timestamps 1000, 1001, ...
  const tokens = [7, 8];
  for (let k = 0; k < 5; k++) tokens.push(1000 + 2 * k, 1, 2, 3, 1001 + 2 * k);
  assert.equal(detectRepetitionLoop(tokens), undefined);
  const loop = detectRepetitionLoop(tokens, { consider: (t) => t < 1000 });
  assert.deepEqual(loop, { start: 3, period: 3, repeats: 5, coverage: 15 / 17 });
});

test('word anomaly scores match OpenAI hand-computed values', () => {
  const word = (start: number, end: number, probability?: number): TimedWord => ({ word: ' x', start, end, ...(probability === undefined ? {} : { probability }) });
  assert.equal(wordAnomalyScore(word(0, 0.5, 0.9)), 0);
  assert.equal(wordAnomalyScore(word(0, 0.5, 0.1)), 1);
  // 0.05 s: (0.133 − 0.05) · 15 = 1.245.
  assert.ok(Math.abs(wordAnomalyScore(word(1, 1.05, 0.9)) - 1.245) < 1e-9);
  // 3.5 s at probability 0.1: 1 + 1.5.
  assert.ok(Math.abs(wordAnomalyScore(word(0, 3.5, 0.1)) - 2.5) < 1e-9);
  // No probability counts as 0.
  assert.equal(wordAnomalyScore(word(0, 0.5)), 1);
  assert.equal(isAnomalousWord(word(0, 0.5, 0.1)), true);
  assert.equal(isAnomalousWord(word(0, 0.1, 0.9)), false); // 0.495
});

test('segment anomaly: punctuation ignored, first 8 words scored, score ≥ 3 or nearly every word anomalous', () => {
  const w = (word: string, duration: number, probability: number): TimedWord => ({ word, start: 0, end: duration, probability });
  const segment = (words: TimedWord[]): TimedSegment => ({ start: 0, end: 1, words });
  // Two improbable words (2) + one 0.1 s word (0.495); '.' is skipped: 2.495 over 3 words.
  const mixed = segment([w(' a', 0.5, 0.1), w('.', 0.01, 0.01), w(' b', 0.5, 0.1), w(' c', 0.1, 0.9)]);
  const scored = segmentAnomalyScore(mixed);
  assert.equal(scored.words, 3);
  assert.ok(Math.abs(scored.score - 2.495) < 1e-9);
  assert.equal(isSegmentAnomaly(mixed), false);
  // One word with score 1: 1 + 0.01 ≥ 1.
  assert.equal(isSegmentAnomaly(segment([w(' uh', 0.5, 0.05)])), true);
  // Three improbable among ten good words after the first eight do not count.
  const late = segment([...Array.from({ length: 8 }, () => w(' ok', 0.4, 0.9)), w(' a', 0.5, 0.01), w(' b', 0.5, 0.01), w(' c', 0.5, 0.01)]);
  assert.equal(segmentAnomalyScore(late).score, 0);
  // A 6 s word: score 4 ≥ 3.
  assert.equal(isSegmentAnomaly(segment([w(' long', 6, 0.9), ...Array.from({ length: 7 }, () => w(' ok', 0.4, 0.9))])), true);
  assert.equal(isSegmentAnomaly(segment([])), false);
  assert.equal(isSegmentAnomaly(undefined), false);
});

const good = (start: number, end: number): TimedWord => ({ word: ' fine', start, end, probability: 0.9 });
const bad = (start: number, end: number): TimedWord => ({ word: ' uh', start, end, probability: 0.05 });
const seg = (words: TimedWord[]): TimedSegment => ({ start: words[0]!.start, end: words.at(-1)!.end, words });
const base = { threshold: 2, previousSeek: 0, segmentSize: 3000, singleTimestampEnding: false, lastSpeechTimestamp: 0, contentFrames: 10000 };

test('silence skip: with enough silence after the last word, seek to it; otherwise to the window end', () => {
  const segments = [seg([good(0.5, 1), good(1, 2)]), seg([good(2.2, 3), good(3, 4)])];
  assert.deepEqual(skipHallucinatedSilence({ ...base, segments, seek: 1234 }), { seek: 400, keep: 2, retry: false });
  const late = [seg([good(0.5, 1), good(28.5, 29)])];
  assert.deepEqual(skipHallucinatedSilence({ ...base, segments: late, seek: 1234 }), { seek: 3000, keep: 1, retry: false });
  // A single timestamp at the end: the loop's own seek stands.
  assert.deepEqual(skipHallucinatedSilence({ ...base, segments, seek: 3000, singleTimestampEnding: true }), { seek: 3000, keep: 2, retry: false });
});

test('silence skip: a suspect first segment after a long gap makes the window start again there', () => {
  // Window at 20 s; a suspect segment at 26 s, 6 s into the window.
  const segments = [seg([bad(26, 26.5)]), seg([good(27, 28)])];
  const decision = skipHallucinatedSilence({ ...base, previousSeek: 2000, seek: 5000, segments });
  assert.deepEqual(decision, { seek: 2600, keep: 0, retry: true });
});

test('silence skip: a suspect segment with silence on both sides is dropped with what follows it', () => {
  // Speech to 5 s, then a suspect word at 12 s, then speech again at 20 s.
  const segments = [seg([good(1, 3), good(3, 5)]), seg([bad(12, 12.5)]), seg([good(20, 21)])];
  assert.deepEqual(skipHallucinatedSilence({ ...base, segments, seek: 2100 }), { seek: 1200, keep: 1, retry: false });
  // Near the end of the audio (content ends at 13 s): seek to the end.
  assert.deepEqual(skipHallucinatedSilence({ ...base, segments, seek: 2100, contentFrames: 1300 }), { seek: 1300, keep: 1, retry: false });
  // Speech right before it (last word ends 11 s, the suspect segment starts 12 s): kept.
  const close = [seg([good(1, 2), good(10.5, 11)]), seg([bad(12, 12.5)]), seg([good(20, 21)])];
  // ... but a segment of overlong words is itself suspect, and then both go.
  const longWords = [seg([good(1, 3), good(3, 11)]), seg([bad(12, 12.5)]), seg([good(20, 21)])];
  assert.deepEqual(skipHallucinatedSilence({ ...base, segments: longWords, seek: 2100 }), { seek: 100, keep: 0, retry: false });
  assert.equal(skipHallucinatedSilence({ ...base, segments: close, seek: 2100 }).keep, 3);
  assert.throws(() => skipHallucinatedSilence({ ...base, segments, seek: 0, threshold: -1 }), /≥ 0 seconds, got -1/);
});
