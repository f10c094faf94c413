/**
 * Our encoder against OpenAI's own tiktoken (the official WASM bindings) built from the same
 * .tiktoken file, plus the encode/decode round trip, on sentences and 10,000 random strings.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Tiktoken } from 'tiktoken';
import { type VocabularyKind, MISSING_ASSETS, SENTENCES, loadTokenizer, randomStrings, rankFileText } from './tokenizer-fixtures.ts';

const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const RANDOM_COUNT = 10_000;

function referenceEncoder(kind: VocabularyKind): Tiktoken | undefined {
  const text = rankFileText(kind);
  const tokenizer = loadTokenizer(kind);
  if (text === undefined || tokenizer === undefined) return undefined;
  // tiktoken's parser rejects the empty token (`= 50256`); it can never be produced, so leaving it
  // out changes no encoding.
  const ranks = text
    .split('\n')
    .filter((line) => !line.startsWith('= '))
    .join('\n');
  return new Tiktoken(ranks, { '<|endoftext|>': tokenizer.eot }, GPT2_PATTERN);
}

for (const kind of ['english', 'multilingual'] as const) {
  describe(`tokenizer matches tiktoken (${kind})`, () => {
    it('encodes sentences in many languages as tiktoken does', (t) => {
      const tokenizer = loadTokenizer(kind);
      const reference = referenceEncoder(kind);
      if (!tokenizer || !reference) return t.skip(MISSING_ASSETS);
      try {
        for (const sentence of SENTENCES) {
          assert.deepEqual(tokenizer.encode(sentence), Array.from(reference.encode_ordinary(sentence)), sentence);
        }
      } finally {
        reference.free();
      }
    });

    it(`encodes ${RANDOM_COUNT} random Unicode strings as tiktoken does, and decodes them back`, (t) => {
      const tokenizer = loadTokenizer(kind);
      const reference = referenceEncoder(kind);
      if (!tokenizer || !reference) return t.skip(MISSING_ASSETS);
      let tokens = 0;
      try {
        for (const text of randomStrings(kind === 'english' ? 1 : 2, RANDOM_COUNT)) {
          const ids = tokenizer.encode(text);
          tokens += ids.length;
          const expected: Uint32Array = reference.encode_ordinary(text);
          if (ids.length !== expected.length || ids.some((id, i) => id !== expected[i])) {
            assert.fail(`encodings differ for ${JSON.stringify(text)}: ${ids} vs ${Array.from(expected)}`);
          }
          const decoded = tokenizer.decode(ids);
          if (decoded !== text) assert.fail(`round trip changed ${JSON.stringify(text)} into ${JSON.stringify(decoded)}`);
        }
      } finally {
        reference.free();
      }
      assert.ok(tokens > RANDOM_COUNT * 10, `the random strings are not trivially short (${tokens} tokens)`);
    });

    it('encodes a long piece without spaces as tiktoken does', (t) => {
      const tokenizer = loadTokenizer(kind);
      const reference = referenceEncoder(kind);
      if (!tokenizer || !reference) return t.skip(MISSING_ASSETS);
      try {
        const text = `${'abcab'.repeat(600)} ${'日本語'.repeat(400)} ${'!?'.repeat(500)}${' '.repeat(300)}x`;
        assert.deepEqual(tokenizer.encode(text), Array.from(reference.encode_ordinary(text)));
      } finally {
        reference.free();
      }
    });
  });
}
