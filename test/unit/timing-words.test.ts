// Words from token times: splitting (spaces / characters), punctuation, OpenAI's boundary heuristics, placement in segments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mergePunctuations, mergeWords, placeWords, splitToWordTokens, wordsFromAlignment, type SegmentForWords, type WordTiming } from '../../src/core/timing/words.ts';
import type { TokenAlignment } from '../../src/core/timing/alignment.ts';
import { MurmurError } from '../../src/core/errors.ts';
import type { WhisperTokenizer } from '../../src/core/tokenizer/tokenizer.ts';
import { DEFAULT_ASSETS_DIR, syntheticTokenizer } from '../../scripts/synthetic/generate.ts';

const skip = existsSync(`${DEFAULT_ASSETS_DIR}/multilingual.tiktoken`) ? false : `${DEFAULT_ASSETS_DIR} is absent (reference data folder not mounted)`;
const tokenizers = new Map<number, Promise<WhisperTokenizer>>();
const tokenizer = (nVocab: number) => tokenizers.get(nVocab) ?? tokenizers.set(nVocab, syntheticTokenizer(nVocab)).get(nVocab)!;

/** Token i starts at i · step seconds; probabilities as given (default 0.5). */
function evenAlignment(tokens: number[], step = 0.1, probabilities?: number[]): TokenAlignment {
  return { tokens, startTimes: [...tokens, 0].map((_, i) => +(i * step).toFixed(6)), probabilities: probabilities ?? tokens.map(() => 0.5) };
}
const summary = (words: WordTiming[]) => words.map((w) => [w.word, +w.start.toFixed(2), +w.end.toFixed(2)]);

test('English splits at spaces and attaches punctuation both ways', { skip }, async () => {
  const tok = await tokenizer(51864);
  const tokens = tok.encode(' Hello, world! (Yes) "quoted" it\'s the end.');
  const probabilities = tokens.map((_, i) => (i + 1) / 20);
  const { words } = mergeWords(tok, evenAlignment(tokens, 0.1, probabilities));
  assert.deepEqual(summary(words), [
    [' Hello,', 0, 0.1],
    [' world!', 0.2, 0.3],
    [' (Yes)', 0.4, 0.6],
    [' "quoted"', 0.7, 1.0],
    [" it's", 1.1, 1.3],
    [' the', 1.3, 1.4],
    [' end.', 1.4, 1.5],
  ]);
  // Every token lands in exactly one word, in order.
  assert.deepEqual(words.flatMap((w) => w.tokens), tokens);
  // A word's probability is the mean over the tokens it had before punctuation joined it: " it's" is tokens 11 and 12.
  assert.ok(Math.abs(words[4]!.probability - (12 / 20 + 13 / 20) / 2) < 1e-12);
});

test('Chinese and Japanese split at characters; multi-token characters stay whole', { skip }, async () => {
  const tok = await tokenizer(51865);
  const zh = tok.encode('你好，世界。我们走吧！');
  const split = splitToWordTokens(tok, [...zh, tok.eot], 'zh');
  assert.deepEqual(split.words, ['你好', '，', '世界', '。', '我们', '走吧', '！', '<|endoftext|>']);
  // '，' and '！' take three byte tokens each: never split inside a character.
  assert.deepEqual(split.wordTokens.map((t) => t.length), [1, 3, 1, 1, 1, 1, 3, 1]);
  assert.deepEqual(summary(mergeWords(tok, evenAlignment(zh), { language: 'zh' }).words), [
    ['你好，', 0, 0.1],
    ['世界。', 0.4, 0.5],
    ['我们', 0.6, 0.7],
    ['走吧！', 0.7, 0.8],
  ]);
  const ja = tok.encode('こんにちは、世界。');
  assert.deepEqual(summary(mergeWords(tok, evenAlignment(ja), { language: 'ja' }).words), [
    ['こんにちは、', 0, 0.1],
    ['世界。', 0.2, 0.3],
  ]);
  // Split at spaces the same text is one word: it has no spaces, and full-width marks are not ASCII punctuation.
  assert.deepEqual(splitToWordTokens(tok, zh, 'en').words, ['你好，世界。我们走吧！']);
});

test('merge_punctuations: prepended marks join the next word, appended ones the previous, in Python\'s substring sense', () => {
  const w = (word: string, start: number): WordTiming => ({ word, tokens: [start], start, end: start + 1, probability: 1 });
  const words = [w(' "', 0), w(' Quote', 1), w('"', 2), w(' (', 3), w(' -', 4), w(' x', 5), w(' ', 6), w('.', 7)];
  mergePunctuations(words);
  // A bare space counts as prepended punctuation (Python's '' in "..." is true), so it joins the '.' after it.
  assert.deepEqual(words.map((x) => x.word), ['', ' " Quote"', '', '', '', ' ( - x', '', ' .']);
  assert.deepEqual(words.map((x) => x.tokens), [[], [0, 1, 2], [], [], [], [3, 4, 5], [], [6, 7]]);
});

test('a word longer than twice the median at a sentence boundary is cut', { skip }, async () => {
  const tok = await tokenizer(51864);
  const tokens = tok.encode(' One two. Three four');
  // Token starts: ' One' 0, ' two' 0.2, '.' 0.4, ' Three' 2.4 (after a long '.'), ' four' 4.6, end 4.8.
  const alignment: TokenAlignment = { tokens, startTimes: [0, 0.2, 0.4, 2.4, 4.6, 4.8], probabilities: tokens.map(() => 0.9) };
  assert.equal(tokens.length, 5);
  const merged = mergeWords(tok, alignment);
  // Durations 0.2, 0.2, 2.0, 2.2, 0.2: median 0.2, max 0.4. '.' is cut to 0.4 s; ' Three' after it starts 0.4 s before its end.
  assert.ok(Math.abs(merged.medianDuration - 0.2) < 1e-9);
  assert.deepEqual(summary(merged.words), [
    [' One', 0, 0.2],
    [' two.', 0.2, 0.4],
    [' Three', 4.2, 4.6],
    [' four', 4.6, 4.8],
  ]);
  assert.throws(() => wordsFromAlignment(tok, { tokens, startTimes: [0], probabilities: [] }), MurmurError);
});

test('placeWords hands words to their segments, offsets by seek, and trims a long first word after a pause', { skip }, async () => {
  const tok = await tokenizer(51864);
  const first = tok.encode(' Hello there.');
  const second = tok.encode(' Bye now');
  const ts = (s: number) => tok.timestampToken(s);
  // Window starts at 10 s (seek 1000 frames). Token starts relative to the window.
  const tokens = [...first, ...second];
  const alignment: TokenAlignment = { tokens, startTimes: [0.0, 3.0, 3.3, 3.4, 3.7, 4.0], probabilities: tokens.map(() => 0.8) };
  const merged = mergeWords(tok, alignment);
  // Appended punctuation brings its tokens, not its time: ' there.' ends where ' there' did.
  assert.deepEqual(summary(merged.words), [[' Hello', 0, 3], [' there.', 3, 3.3], [' Bye', 3.4, 3.7], [' now', 3.7, 4]]);
  const segments: SegmentForWords[] = [
    { seek: 1000, start: 12.5, end: 13.4, tokens: [ts(2.5), ...first, ts(3.4)] },
    { seek: 1000, start: 13.4, end: 14.0, tokens: [ts(3.4), ...second, ts(4.0)] },
  ];
  const last = placeWords(segments, merged, 9, tok.eot);
  // Token durations 3, 0.3, 0.1, 0.3, 0.3: median 0.3, max 0.6. ' Hello' (10 → 13 s) ends 4 s after the
  // last speech at 9 s and is longer than 0.6 s: it starts at 13 − 0.6 = 12.4, and so does the segment.
  assert.deepEqual(summary(segments[0]!.words!), [[' Hello', 12.4, 13], [' there.', 13, 13.3]]);
  assert.deepEqual(summary(segments[1]!.words!), [[' Bye', 13.4, 13.7], [' now', 13.7, 14]]);
  assert.deepEqual([segments[0]!.start, segments[0]!.end, segments[1]!.start, segments[1]!.end], [12.4, 13.3, 13.4, 14]);
  assert.equal(last, 14);
  assert.equal(placeWords([], merged, 5, tok.eot), 5);

  // No pause before it (last speech 12.9 s): the word is not trimmed, but the segment's own start (12.8),
  // more than 0.5 s after the word's, wins, less the median: 13 − 0.3 = 12.7.
  const again: SegmentForWords[] = [{ seek: 1000, start: 12.8, end: 13.4, tokens: [ts(2.8), ...first, ts(3.4)] }];
  placeWords(again, mergeWords(tok, alignment), 12.9, tok.eot);
  assert.deepEqual(summary(again[0]!.words!), [[' Hello', 12.7, 13], [' there.', 13, 13.3]]);
  assert.equal(again[0]!.start, 12.8);
});
