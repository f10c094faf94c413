/**
 * WhisperTokenizer: special token layout, prompt building, decoding (streaming and with
 * timestamps), non-speech tokens and bad input. Parity with tiktoken is in
 * tokenizer-tiktoken.test.ts, file formats in tokenizer-formats.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenizerError } from '../../src/core/errors.ts';
import { KNOWN_DIMS } from '../../src/core/model/dims.ts';
import { LANGUAGES, LANGUAGE_NAMES, toLanguageCode } from '../../src/core/tokenizer/languages.ts';
import { WhisperTokenizer } from '../../src/core/tokenizer/tokenizer.ts';
import { MISSING_ASSETS, loadTokenizer, rankFileText } from './tokenizer-fixtures.ts';

// OpenAI's non_speech_tokens for each vocabulary, as published in Whisper configurations.
const NON_SPEECH_ENGLISH = [
  1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93, 357, 366, 438, 532, 685, 705, 796, 930,
  1058, 1220, 1267, 1279, 1303, 1343, 1377, 1391, 1635, 1782, 1875, 2162, 2361, 2488, 3467, 4008, 4211, 4600, 4808, 5299, 5855,
  6329, 7203, 9609, 9959, 10563, 10786, 11420, 11709, 11907, 13163, 13697, 13700, 14808, 15306, 16410, 16791, 17992, 19203, 19510,
  20724, 22305, 22935, 27007, 30109, 30420, 33409, 34949, 40283, 40493, 40549, 47282, 49146,
];
const NON_SPEECH_MULTILINGUAL = [
  1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93, 359, 503, 522, 542, 873, 893, 902, 918,
  922, 931, 1350, 1853, 1982, 2460, 2627, 3246, 3253, 3268, 3536, 3846, 3961, 4183, 4667, 6585, 6647, 7273, 9061, 9383, 10428,
  10929, 11938, 12033, 12331, 12562, 13793, 14157, 14635, 15265, 15618, 16553, 16604, 18362, 18956, 20075, 21675, 22520, 26130,
  26161, 26435, 28279, 29464, 31650, 32302, 32470, 36865, 42863, 47425, 49870, 50254,
];

/** The 256 single bytes then `extra`, padded with holes to the 50256 ranks of an English vocabulary. */
function byteRanks(extra: Uint8Array[] = []): (Uint8Array | undefined)[] {
  const ranks: (Uint8Array | undefined)[] = [...Array.from({ length: 256 }, (_, b) => Uint8Array.of(b)), ...extra];
  ranks.length = 50256;
  return ranks;
}

describe('languages', () => {
  it('lists 100 languages in Whisper token order, with names', () => {
    assert.equal(LANGUAGES.length, 100);
    assert.deepEqual(LANGUAGES.slice(0, 5), ['en', 'zh', 'de', 'es', 'ru']);
    assert.equal(LANGUAGES[20], 'he');
    assert.equal(LANGUAGES[98], 'su');
    assert.equal(LANGUAGES[99], 'yue');
    assert.equal(LANGUAGE_NAMES.yue, 'cantonese');
    assert.equal(LANGUAGE_NAMES.jw, 'javanese');
    assert.equal(toLanguageCode('German'), 'de');
    assert.equal(toLanguageCode('castilian'), 'es');
    assert.equal(toLanguageCode('klingon'), undefined);
  });
});

describe('special tokens', () => {
  it('lays out the English-only vocabulary as Whisper does', (t) => {
    const tok = loadTokenizer('english');
    if (!tok) return t.skip(MISSING_ASSETS);
    assert.equal(tok.isMultilingual, false);
    assert.equal(tok.nVocab, 51864);
    assert.deepEqual(
      [tok.eot, tok.sot, tok.translate, tok.transcribe, tok.startOfLm, tok.startOfPrev, tok.noSpeech, tok.noTimestamps, tok.timestampBegin],
      [50256, 50257, 50357, 50358, 50359, 50360, 50361, 50362, 50363],
    );
    assert.equal(tok.languages.length, 99);
    assert.equal(tok.languageToken('en'), 50258);
    assert.equal(tok.idToString(51863), '<|30.00|>');
    assert.deepEqual(tok.sotSequence(), [50257]);
    assert.deepEqual(tok.sotSequence({ language: 'en', task: 'transcribe' }), [50257]);
    assert.throws(() => tok.sotSequence({ task: 'translate' }), TokenizerError);
    assert.throws(() => tok.sotSequence({ language: 'fr' }), TokenizerError);
  });

  it('lays out the multilingual vocabulary as Whisper does', (t) => {
    const tok = loadTokenizer('multilingual');
    if (!tok) return t.skip(MISSING_ASSETS);
    assert.equal(tok.isMultilingual, true);
    assert.deepEqual(
      [tok.eot, tok.sot, tok.translate, tok.transcribe, tok.startOfLm, tok.startOfPrev, tok.noSpeech, tok.noTimestamps, tok.timestampBegin],
      [50257, 50258, 50358, 50359, 50360, 50361, 50362, 50363, 50364],
    );
    assert.equal(tok.languageToken('en'), 50259);
    assert.equal(tok.languageToken('de'), 50261);
    assert.equal(tok.languageToken('german'), 50261);
    assert.equal(tok.languageToken('su'), 50357);
    assert.equal(tok.languageOf(50262), 'es');
    assert.equal(tok.languageOf(50358), undefined);
    assert.equal(tok.languageOf(100), undefined);
    assert.throws(() => tok.languageToken('yue'), (e) => e instanceof TokenizerError && /yue/.test(e.message));
    assert.throws(() => tok.languageToken('xx'), (e) => e instanceof TokenizerError && /"xx"/.test(e.message));
    assert.equal(tok.idToString(50257), '<|endoftext|>');
    assert.equal(tok.idToString(50362), '<|nospeech|>');
    assert.equal(tok.specialTokenId('<|nocaptions|>'), 50362);
    assert.equal(tok.idToString(50364), '<|0.00|>');
    assert.equal(tok.idToString(51864), '<|30.00|>');
    assert.deepEqual(tok.sotSequence({ language: 'ja', task: 'translate' }), [50258, 50266, 50358]);
    assert.deepEqual(tok.sotSequence({ language: 'en' }), [50258, 50259, 50359]);
    assert.deepEqual(tok.sotSequence(), [50258, 50359]);
    assert.equal(tok.isSpecial(50256), false);
    assert.equal(tok.isSpecial(50257), true);
    assert.equal(tok.isSpecial(51865), false);
  });

  it('gives large-v3 (51866) a 100th language, yue, and shifts the rest by one', (t) => {
    const tok = loadTokenizer('multilingual', KNOWN_DIMS['large-v3'].nVocab);
    if (!tok) return t.skip(MISSING_ASSETS);
    assert.equal(tok.languages.length, 100);
    assert.equal(tok.languageToken('yue'), 50358);
    assert.deepEqual([tok.translate, tok.transcribe, tok.noSpeech, tok.noTimestamps, tok.timestampBegin], [50359, 50360, 50363, 50364, 50365]);
    assert.equal(tok.idToString(51865), '<|30.00|>');
  });

  it('maps timestamp tokens to seconds and back', (t) => {
    const tok = loadTokenizer('multilingual');
    if (!tok) return t.skip(MISSING_ASSETS);
    assert.equal(tok.timestampOf(50364), 0);
    assert.equal(tok.timestampOf(50364 + 54), 1.08);
    assert.equal(tok.timestampOf(51864), 30);
    assert.equal(tok.timestampOf(50363), undefined);
    assert.equal(tok.timestampOf(51865), undefined);
    assert.equal(tok.timestampToken(1.08), 50364 + 54);
    assert.throws(() => tok.timestampToken(31), TokenizerError);
    assert.equal(tok.idToString(50364 + 54), '<|1.08|>');
    assert.equal(tok.idToString(50364 + 1499), '<|29.98|>');
  });

  it("reproduces OpenAI's non-speech token lists", (t) => {
    const english = loadTokenizer('english');
    const multilingual = loadTokenizer('multilingual');
    if (!english || !multilingual) return t.skip(MISSING_ASSETS);
    assert.deepEqual(english.nonSpeechTokens(), NON_SPEECH_ENGLISH);
    assert.deepEqual(multilingual.nonSpeechTokens(), NON_SPEECH_MULTILINGUAL);
  });
});

describe('encoding and decoding', () => {
  it('encodes special-token names as ordinary text', (t) => {
    const tok = loadTokenizer('multilingual');
    if (!tok) return t.skip(MISSING_ASSETS);
    const ids = tok.encode('<|endoftext|><|en|>');
    assert.ok(ids.length > 2);
    assert.ok(ids.every((id) => id < tok.eot));
    assert.equal(tok.decode(ids), '<|endoftext|><|en|>');
    assert.deepEqual(tok.encode(''), []);
  });

  it('never produces the empty multilingual token 50256, yet decodes it as nothing', (t) => {
    const tok = loadTokenizer('multilingual');
    if (!tok) return t.skip(MISSING_ASSETS);
    assert.equal(tok.tokenToBytes(50256).length, 0);
    assert.equal(tok.decode([50256, ...tok.encode('hi')]), 'hi');
  });

  it('skips special tokens in decode and renders timestamps in decodeWithTimestamps', (t) => {
    const tok = loadTokenizer('multilingual');
    if (!tok) return t.skip(MISSING_ASSETS);
    const ids = [tok.sot, tok.languageToken('en'), tok.transcribe, tok.timestampBegin, ...tok.encode(' Hello'), tok.timestampBegin + 54, tok.eot];
    assert.equal(tok.decode(ids), ' Hello');
    assert.equal(tok.decodeWithTimestamps(ids), '<|0.00|> Hello<|1.08|>');
    assert.deepEqual(tok.tokenToBytes(tok.sot), new TextEncoder().encode('<|startoftranscript|>'));
  });

  it('decodes a character split across tokens only once it is complete', (t) => {
    const tok = loadTokenizer('english');
    if (!tok) return t.skip(MISSING_ASSETS);
    const text = '日本語の🎉👍🏽 done';
    const ids = tok.encode(text);
    const partial = ids.filter((id) => !isCompleteUtf8(tok.tokenToBytes(id)));
    assert.ok(partial.length > 0, 'some token holds only part of a character');

    const decoder = tok.createDecoder();
    let streamed = '';
    let withheld = 0;
    for (const id of ids) {
      const chunk = decoder.push(id);
      assert.ok(!chunk.includes('\ufffd'), `chunk ${JSON.stringify(chunk)} has a replacement character`);
      if (chunk === '') withheld++;
      streamed += chunk;
      assert.ok(text.startsWith(streamed), `${JSON.stringify(streamed)} is a prefix of the text`);
    }
    streamed += decoder.flush();
    assert.equal(streamed, text);
    assert.ok(withheld > 0);

    // A whole-list decode that stops mid-character leaves the partial character out.
    for (let end = 0; end <= ids.length; end++) {
      const prefix = tok.decode(ids.slice(0, end));
      assert.ok(!prefix.includes('\ufffd') && text.startsWith(prefix), `decode of ${end} tokens: ${JSON.stringify(prefix)}`);
    }
  });

  it('replaces bytes that can never form a character with U+FFFD', (t) => {
    const tok = loadTokenizer('english');
    if (!tok) return t.skip(MISSING_ASSETS);
    const lone = tok.rankOf(Uint8Array.of(0xff))!;
    assert.equal(tok.decode([lone, ...tok.encode('ok')]), '\ufffdok');
  });

  it('rejects ids outside the vocabulary', (t) => {
    const tok = loadTokenizer('english');
    if (!tok) return t.skip(MISSING_ASSETS);
    assert.throws(() => tok.decode([51864]), (e) => e instanceof TokenizerError && /51864/.test(e.message));
    assert.throws(() => tok.tokenToBytes(-1), TokenizerError);
    assert.throws(() => tok.idToString(1.5), TokenizerError);
  });

  it('encodes long text in roughly linear time', (t) => {
    const tok = loadTokenizer('english');
    if (!tok) return t.skip(MISSING_ASSETS);
    const start = performance.now();
    const ids = tok.encode('ab'.repeat(100_000));
    const seconds = (performance.now() - start) / 1000;
    assert.ok(ids.length > 1000);
    assert.equal(tok.decode(ids), 'ab'.repeat(100_000));
    // tiktoken's quadratic merge loop takes minutes on this; the heap takes well under a second.
    assert.ok(seconds < 10, `took ${seconds.toFixed(1)} s`);
  });
});

describe('bad tokenizer data', () => {
  it('names both counts when nVocab does not fit the ranks', (t) => {
    const text = rankFileText('english');
    if (!text) return t.skip(MISSING_ASSETS);
    assert.throws(
      () => WhisperTokenizer.fromTiktoken(text, { nVocab: 51865, source: 'gpt2.tiktoken' }),
      (e) => e instanceof TokenizerError && /gpt2\.tiktoken/.test(e.message) && /50256/.test(e.message) && /51865/.test(e.message),
    );
    assert.throws(() => WhisperTokenizer.fromRanks(byteRanks(), { nVocab: 51865 }), TokenizerError);
    assert.throws(() => WhisperTokenizer.fromRanks(byteRanks().slice(0, 256), { nVocab: 1865 }), TokenizerError);
    assert.throws(() => WhisperTokenizer.fromRanks(byteRanks(), { nVocab: NaN }), TokenizerError);
  });

  it('rejects malformed tiktoken lines, naming the line', () => {
    const cases = ['QQ== 0\nQg==\n', 'QQ== 0\n!!! 1\n', 'QQ== 0\nQg== one\n', 'QQ== 0\nQg== 0\n', 'QQ== 0\nQ 1\n', ''];
    for (const text of cases) {
      assert.throws(
        () => WhisperTokenizer.fromTiktoken(text, { nVocab: 51864, source: 'bad.tiktoken' }),
        (e) => e instanceof TokenizerError && /bad\.tiktoken/.test(e.message) && (text === '' || /line 2/.test(e.message)),
        JSON.stringify(text),
      );
    }
  });

  it('accepts holes in the ranks, but not a missing single byte or the same bytes twice', () => {
    const sparse = WhisperTokenizer.fromRanks(byteRanks([Uint8Array.of(0x61, 0x62)]), { nVocab: 51864 });
    assert.deepEqual(sparse.encode('abc'), [256, 0x63]);
    assert.equal(sparse.eot, 50256);
    assert.throws(() => sparse.decode([300]), (e) => e instanceof TokenizerError && /300/.test(e.message));
    const missing = byteRanks();
    missing[65] = undefined;
    assert.throws(() => WhisperTokenizer.fromRanks(missing, { nVocab: 51864 }), (e) => e instanceof TokenizerError && /0x41/.test(e.message));
    assert.throws(
      () => WhisperTokenizer.fromRanks(byteRanks([Uint8Array.of(1)]), { nVocab: 51864 }),
      (e) => e instanceof TokenizerError && /same bytes/.test(e.message),
    );
  });
});

function isCompleteUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}
