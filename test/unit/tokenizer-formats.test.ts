/**
 * Loading Whisper's tokenizer from Hugging Face files (as our writer produces them and in the
 * variants the published openai/whisper-* repositories use) and from ggml token lists.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { writeHuggingFaceTokenizerJson, writeHuggingFaceVocabFiles } from '../../scripts/synthetic/tokenizer-json.ts';
import { TokenizerError } from '../../src/core/errors.ts';
import { WhisperTokenizer } from '../../src/core/tokenizer/tokenizer.ts';
import { MISSING_ASSETS, SENTENCES, loadTokenizer, randomStrings } from './tokenizer-fixtures.ts';

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}
interface TokenizerJson {
  added_tokens: AddedToken[];
  pre_tokenizer: unknown;
  model: { type: string; vocab: Record<string, number>; merges: string[] };
}

const SAMPLES = [...SENTENCES, ...randomStrings(7, 1500)];

function assertSameEncodings(actual: WhisperTokenizer, expected: WhisperTokenizer): void {
  assert.equal(actual.nVocab, expected.nVocab);
  assert.equal(actual.eot, expected.eot);
  assert.equal(actual.timestampBegin, expected.timestampBegin);
  for (const text of SAMPLES) assert.deepEqual(actual.encode(text), expected.encode(text), JSON.stringify(text));
  for (const id of [0, 220, 50255, expected.eot - 1]) assert.deepEqual(actual.tokenToBytes(id), expected.tokenToBytes(id));
}

/** The writer's output after a trip through JSON text, as a loader would see a real file. */
const writtenJson = new Map<WhisperTokenizer, string>();
function tokenizerJson(tok: WhisperTokenizer): TokenizerJson {
  if (!writtenJson.has(tok)) writtenJson.set(tok, JSON.stringify(writeHuggingFaceTokenizerJson(tok)));
  return JSON.parse(writtenJson.get(tok)!) as TokenizerJson;
}

describe('Hugging Face tokenizer.json', () => {
  for (const kind of ['english', 'multilingual'] as const) {
    it(`written by our writer loads back and encodes identically (${kind})`, (t) => {
      const tok = loadTokenizer(kind);
      if (!tok) return t.skip(MISSING_ASSETS);
      const json = tokenizerJson(tok);
      assert.equal(json.model.type, 'BPE');
      assert.equal(json.added_tokens.length, tok.nVocab - tok.eot);
      assert.deepEqual(json.added_tokens[1], { id: tok.sot, content: '<|startoftranscript|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
      assert.equal(json.added_tokens.at(-1)!.content, '<|30.00|>');
      assertSameEncodings(WhisperTokenizer.fromHuggingFace(json, { source: 'written tokenizer.json' }), tok);
    });
  }

  it("derives GPT-2's merges from the ranks", (t) => {
    const tok = loadTokenizer('english');
    if (!tok) return t.skip(MISSING_ASSETS);
    const { merges, vocab } = tokenizerJson(tok).model;
    // GPT-2's merges.txt has exactly 50000 merges and begins with these.
    assert.equal(merges.length, 50_000);
    assert.deepEqual(merges.slice(0, 5), ['Ġ t', 'Ġ a', 'h e', 'i n', 'r e']);
    assert.equal(vocab['Ġthe'], 262);
    assert.equal(vocab['<|endoftext|>'], 50256);
  });

  it("loads the published multilingual layout: '' and <|endoftext|> in the vocabulary, old names, no timestamps", (t) => {
    const tok = loadTokenizer('multilingual');
    if (!tok) return t.skip(MISSING_ASSETS);
    const json = tokenizerJson(tok);
    assert.equal(json.model.vocab[''], 50256);
    assert.equal(json.model.vocab['<|endoftext|>'], 50257);
    json.added_tokens = json.added_tokens
      .filter((token) => token.content.match(/^<\|\d/) === null)
      .map((token) => ({ ...token, content: token.content === '<|nospeech|>' ? '<|nocaptions|>' : token.content }));
    json.model.merges = json.model.merges.map((merge) => merge.split(' ')) as unknown as string[]; // newer files write pairs
    const loaded = WhisperTokenizer.fromHuggingFace(json);
    assertSameEncodings(loaded, tok);
    assert.equal(loaded.idToString(50362), '<|nospeech|>');
    assert.equal(loaded.idToString(50364), '<|0.00|>');
  });

  it('rejects a special token at the wrong id, naming it and both ids', (t) => {
    const tok = loadTokenizer('multilingual');
    if (!tok) return t.skip(MISSING_ASSETS);
    const json = tokenizerJson(tok);
    const transcribe = json.added_tokens.find((token) => token.content === '<|transcribe|>')!;
    const translate = json.added_tokens.find((token) => token.content === '<|translate|>')!;
    [transcribe.id, translate.id] = [translate.id, transcribe.id];
    assert.throws(
      () => WhisperTokenizer.fromHuggingFace(json),
      (e) => e instanceof TokenizerError && /<\|(transcribe|translate)\|>/.test(e.message) && /50358/.test(e.message) && /50359/.test(e.message),
    );
  });

  it('rejects files that are not Whisper byte-level BPE vocabularies', (t) => {
    const tok = loadTokenizer('multilingual');
    if (!tok) return t.skip(MISSING_ASSETS);
    const reject = (mutate: (json: TokenizerJson) => void, pattern: RegExp): void => {
      const json = tokenizerJson(tok);
      mutate(json);
      assert.throws(() => WhisperTokenizer.fromHuggingFace(json), (e) => e instanceof TokenizerError && pattern.test(e.message), String(pattern));
    };
    reject((json) => json.added_tokens.push({ id: 51865, content: '<|extra|>', special: true }), /<\|extra\|>/);
    reject((json) => (json.model.type = 'Unigram'), /Unigram/);
    reject((json) => (json.pre_tokenizer = { type: 'Metaspace' }), /ByteLevel/);
    reject((json) => (json.model.vocab['hello world'] = 12), /hello world/);
    reject((json) => {
      delete json.model.vocab['<|endoftext|>'];
      json.added_tokens.shift();
    }, /endoftext/);
    assert.throws(() => WhisperTokenizer.fromHuggingFace(tokenizerJson(tok), { nVocab: 51866 }), (e) => e instanceof TokenizerError && /51866/.test(e.message));
    assert.throws(() => WhisperTokenizer.fromHuggingFace([]), TokenizerError);
  });
});

describe('Hugging Face vocab.json + merges.txt + added_tokens.json', () => {
  it('written by our writer loads back and encodes identically', (t) => {
    const tok = loadTokenizer('multilingual');
    if (!tok) return t.skip(MISSING_ASSETS);
    const { vocabJson, mergesText, addedTokensJson } = writeHuggingFaceVocabFiles(tok);
    assert.ok(mergesText.startsWith('#version: 0.2\n'));
    assert.equal(addedTokensJson['<|startoftranscript|>'], 50258);
    assertSameEncodings(WhisperTokenizer.fromHuggingFaceFiles(vocabJson, mergesText, addedTokensJson), tok);
  });

  it('loads the published English-only layout (<|iw|>, <|nocaptions|>, no timestamps)', (t) => {
    const tok = loadTokenizer('english');
    if (!tok) return t.skip(MISSING_ASSETS);
    const { vocabJson, mergesText, addedTokensJson } = writeHuggingFaceVocabFiles(tok);
    const added: Record<string, number> = {};
    for (const [name, id] of Object.entries(addedTokensJson)) {
      if (/^<\|\d/.test(name)) continue;
      added[name === '<|he|>' ? '<|iw|>' : name === '<|nospeech|>' ? '<|nocaptions|>' : name] = id;
    }
    assert.equal(vocabJson['<|endoftext|>'], 50256);
    const loaded = WhisperTokenizer.fromHuggingFaceFiles(vocabJson, mergesText, added, { nVocab: 51864 });
    assertSameEncodings(loaded, tok);
    assert.equal(loaded.languageToken('he'), tok.languageToken('he'));
  });

  it('needs the added tokens (or nVocab) to know the language count', (t) => {
    const tok = loadTokenizer('english');
    if (!tok) return t.skip(MISSING_ASSETS);
    const { vocabJson } = writeHuggingFaceVocabFiles(tok);
    assert.throws(() => WhisperTokenizer.fromHuggingFaceFiles(vocabJson, undefined, undefined), (e) => e instanceof TokenizerError && /translate/.test(e.message));
    assertSameEncodings(WhisperTokenizer.fromHuggingFaceFiles(vocabJson, undefined, undefined, { nVocab: 51864 }), tok);
  });
});

describe('ggml vocabulary', () => {
  for (const kind of ['english', 'multilingual'] as const) {
    it(`gives the same tokenizer as the tiktoken file (${kind})`, (t) => {
      const tok = loadTokenizer(kind);
      if (!tok) return t.skip(MISSING_ASSETS);
      const tokens = tok.bpeRanks() as Uint8Array[];
      assertSameEncodings(WhisperTokenizer.fromGgmlVocab(tokens, { nVocab: tok.nVocab }), tok);
      // Files converted from the old vocab.json list <|endoftext|> after the ranks.
      const withEot = [...tokens, new TextEncoder().encode('<|endoftext|>')];
      assertSameEncodings(WhisperTokenizer.fromGgmlVocab(withEot, { nVocab: tok.nVocab }), tok);
      const withJunk = [...tokens, new TextEncoder().encode('junk')];
      assert.throws(() => WhisperTokenizer.fromGgmlVocab(withJunk, { nVocab: tok.nVocab }), TokenizerError);
    });
  }
});
