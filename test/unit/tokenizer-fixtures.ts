/**
 * Shared by the tokenizer tests: Whisper's rank files from ../shared/data (tests skip when the
 * folder is absent) and a seeded generator of awkward Unicode strings.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WhisperTokenizer } from '../../src/core/tokenizer/tokenizer.ts';
import { createRandom } from '../../src/core/decoding/math.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const assetsDir = resolve(repoRoot, '../shared/data/whisper-assets');

export type VocabularyKind = 'english' | 'multilingual';

export const RANK_FILES: Record<VocabularyKind, { file: string; nVocab: number }> = {
  english: { file: 'gpt2.tiktoken', nVocab: 51864 },
  multilingual: { file: 'multilingual.tiktoken', nVocab: 51865 },
};

export const MISSING_ASSETS = `Whisper rank files not found in ${assetsDir} (../shared/data is absent)`;

const textCache = new Map<VocabularyKind, string | undefined>();

/** The .tiktoken file's text, or undefined when the reference data is absent. */
export function rankFileText(kind: VocabularyKind): string | undefined {
  if (!textCache.has(kind)) {
    const path = resolve(assetsDir, RANK_FILES[kind].file);
    textCache.set(kind, existsSync(path) ? readFileSync(path, 'utf8') : undefined);
  }
  return textCache.get(kind);
}

const tokenizerCache = new Map<string, WhisperTokenizer | undefined>();

export function loadTokenizer(kind: VocabularyKind, nVocab = RANK_FILES[kind].nVocab): WhisperTokenizer | undefined {
  const key = `${kind}:${nVocab}`;
  if (!tokenizerCache.has(key)) {
    const text = rankFileText(kind);
    tokenizerCache.set(key, text === undefined ? undefined : WhisperTokenizer.fromTiktoken(text, { nVocab, source: RANK_FILES[kind].file }));
  }
  return tokenizerCache.get(key);
}

/**
 * Code point ranges that have been stable across Unicode versions, so the letter/number classes
 * of tiktoken's Rust regex and of V8 agree on them.
 */
const CHARACTER_CLASSES: readonly (readonly [number, number])[][] = [
  [[0x61, 0x7a], [0x41, 0x5a]], // ASCII letters
  [[0x30, 0x39]], // ASCII digits
  [[0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]], // ASCII punctuation
  [[0x20, 0x20], [0x09, 0x0d], [0xa0, 0xa0], [0x85, 0x85], [0x2000, 0x200a], [0x3000, 0x3000], [0x2028, 0x2029], [0xfeff, 0xfeff]], // white space, and U+FEFF which is not
  [[0xa1, 0xff]], // Latin-1
  [[0x100, 0x17f], [0x391, 0x3a9], [0x3b1, 0x3c9], [0x410, 0x44f]], // Latin Extended-A, Greek, Cyrillic
  [[0x4e00, 0x9fa5], [0x3041, 0x3096], [0x30a1, 0x30fa], [0xac00, 0xd7a3]], // CJK, kana, Hangul
  [[0x621, 0x64a], [0x905, 0x939], [0x93e, 0x94d], [0x5d0, 0x5ea]], // Arabic, Devanagari letters and signs, Hebrew
  [[0x300, 0x36f]], // combining marks
  [[0x1f300, 0x1f5ff], [0x1f600, 0x1f64f], [0x1f3fb, 0x1f3ff], [0x200d, 0x200d], [0xfe0f, 0xfe0f], [0x2600, 0x26ff]], // emoji, ZWJ, VS16
  [[0x660, 0x669], [0xff10, 0xff19], [0xb2, 0xb3], [0xbc, 0xbe], [0x2160, 0x216f]], // other numbers
  [[0x1d400, 0x1d433], [0x20000, 0x2a6d6]], // astral letters
];

const CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'", "'S", "''", ' ', '  ', '\n'];

function pick(random: () => number, ranges: readonly (readonly [number, number])[]): string {
  const [low, high] = ranges[Math.floor(random() * ranges.length)];
  return String.fromCodePoint(low + Math.floor(random() * (high - low + 1)));
}

/** `count` strings of 0..40 runs, each run 1..4 characters of one class or a contraction. */
export function randomStrings(seed: number, count: number): string[] {
  const random = createRandom(seed);
  const strings: string[] = [];
  for (let s = 0; s < count; s++) {
    let text = '';
    const runs = Math.floor(random() * 41);
    for (let r = 0; r < runs; r++) {
      if (random() < 0.12) {
        text += CONTRACTIONS[Math.floor(random() * CONTRACTIONS.length)];
        continue;
      }
      const ranges = CHARACTER_CLASSES[Math.floor(random() * CHARACTER_CLASSES.length)];
      const length = 1 + Math.floor(random() * 4);
      for (let i = 0; i < length; i++) text += pick(random, ranges);
    }
    strings.push(text);
  }
  return strings;
}

export const SENTENCES = [
  'And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.',
  "It's 3:45 p.m. — we'll meet at O'Brien's; they've said 'I'd rather not'.",
  'Die Straße ist naß, und Größe zählt nicht: Übermäßig schöne Grüße aus München!',
  '東京都は日本の首都です。今日はいい天気ですね！カタカナもひらがなも漢字も。',
  'مرحبا بكم في عالم الذكاء الاصطناعي، كيف حالك اليوم؟ ١٢٣٤٥',
  'नमस्ते, आप कैसे हैं? मैं ठीक हूँ। धन्यवाद! १२३',
  '你好，世界！我们今天去北京吧。粤语：唔该晒。',
  '안녕하세요, 만나서 반갑습니다. 오늘 날씨가 좋네요.',
  'Привет, как дела? Ёжик в тумане — 2024 год.',
  'Emoji: 🎉👍🏽 👩‍👩‍👧‍👦 🇯🇵 ❤️‍🔥 ♪♪ ♫ and done.',
  '   leading spaces, trailing tabs\t\t\n\nnew paragraphs   \r\n',
  '<|endoftext|> <|startoftranscript|><|en|> are only text here',
  'Numbers: 1234567890 3.14159 ½ ² ٣ ５６ x²+y²',
  'Ελληνικά: Καλημέρα κόσμε; עברית: שלום עולם',
  "Combining: e\u0301 n\u0303 a\u030a\u0323 and NBSP\u00a0here, NEL\u0085there, BOM\ufeffalso",
];
