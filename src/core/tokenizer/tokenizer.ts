/**
 * Whisper's tokenizer, token for token the one OpenAI's whisper/tokenizer.py builds on tiktoken:
 * GPT-2 byte-level BPE ranks (gpt2.tiktoken for `.en` models, multilingual.tiktoken otherwise)
 * followed by the special tokens in Whisper's fixed order.
 */
import { TokenizerError } from '../errors.ts';
import { isMultilingual, languageCount } from '../model/dims.ts';
import { BytePairEncoder } from './bpe.ts';
import { ranksFromTokenizerJson, ranksFromVocabFiles } from './huggingface.ts';
import { LANGUAGES, toLanguageCode } from './languages.ts';
import {
  SPECIAL_TOKEN_ALIASES,
  TIMESTAMP_COUNT,
  TIMESTAMPS_PER_SECOND,
  specialTokenCount,
  specialTokenNames,
} from './specials.ts';
import { createTokenTextDecoder, type TokenTextDecoder } from './text-decoder.ts';
import { parseTiktokenRanks } from './tiktoken-file.ts';

export type { TokenTextDecoder } from './text-decoder.ts';

export type Task = 'transcribe' | 'translate';

export interface TokenizerOptions {
  /** The model's vocabulary size (dims.nVocab): 51864, 51865 or 51866. */
  nVocab: number;
  /** Where the data came from, for error messages. */
  source?: string;
}

export interface HuggingFaceTokenizerOptions {
  source?: string;
  /** When given, the files must describe a vocabulary of exactly this size. */
  nVocab?: number;
}

/** Symbols Whisper never starts a token with when it transcribes speech (OpenAI's list). */
const NON_SPEECH_SYMBOLS = [
  ...'"#()*+/:;<=>@[\\]^_`{|}~「」『』',
  ...'<< >> <<< >>> -- --- -( -[ (\' (" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪'.split(' '),
];
/** Musical signs are suppressed even when they take several tokens (their first token goes). */
const MUSICAL_SYMBOLS = ['♩', '♪', '♫', '♬', '♭', '♮', '♯'];

export class WhisperTokenizer {
  readonly source: string;
  readonly nVocab: number;
  readonly isMultilingual: boolean;
  /** Codes of the languages that have a token, in token order (99, or 100 for large-v3). */
  readonly languages: readonly string[];

  readonly eot: number;
  readonly sot: number;
  readonly translate: number;
  readonly transcribe: number;
  readonly startOfLm: number;
  readonly startOfPrev: number;
  readonly noSpeech: number;
  readonly noTimestamps: number;
  /** `<|0.00|>`; timestamp i is timestampBegin + i, i * 20 ms. */
  readonly timestampBegin: number;

  private readonly bpe: BytePairEncoder;
  private readonly specialNames: readonly string[];
  private readonly specialIds: ReadonlyMap<string, number>;
  private nonSpeech: readonly number[] | undefined;

  private constructor(ranks: readonly (Uint8Array | undefined)[], nVocab: number, source: string) {
    if (!Number.isInteger(nVocab) || nVocab <= 0) throw new TokenizerError(`${source}: nVocab ${nVocab} is not a positive integer`);
    const languages = languageCount({ nVocab });
    const specials = specialTokenCount(Math.max(languages, 0));
    if (languages < 1 || languages > LANGUAGES.length || ranks.length + specials !== nVocab) {
      const implied = nVocab - ranks.length - specialTokenCount(0);
      throw new TokenizerError(
        `${source}: ${ranks.length} BPE tokens + ${specials} special tokens = ${ranks.length + specials}, but nVocab is ${nVocab}` +
          ` (that would need ${implied} language tokens; Whisper vocabularies have 51864, 51865 or 51866 entries)`,
      );
    }
    this.source = source;
    this.nVocab = nVocab;
    this.isMultilingual = isMultilingual({ nVocab });
    this.languages = LANGUAGES.slice(0, languages);
    this.bpe = new BytePairEncoder(ranks, source);

    this.eot = ranks.length;
    this.specialNames = specialTokenNames(languages);
    this.specialIds = new Map(this.specialNames.map((name, index) => [name, this.eot + index]));
    this.sot = this.eot + 1;
    this.translate = this.sot + languages + 1;
    this.transcribe = this.translate + 1;
    this.startOfLm = this.translate + 2;
    this.startOfPrev = this.translate + 3;
    this.noSpeech = this.translate + 4;
    this.noTimestamps = this.translate + 5;
    this.timestampBegin = this.translate + 6;
  }

  /** From the byte string of each BPE token id (holes allowed); specials follow as in Whisper. */
  static fromRanks(ranks: (Uint8Array | undefined)[], options: TokenizerOptions): WhisperTokenizer {
    return new WhisperTokenizer(ranks.map((bytes) => bytes?.slice()), options.nVocab, options.source ?? 'tokenizer ranks');
  }

  /** From the text of OpenAI's gpt2.tiktoken / multilingual.tiktoken. */
  static fromTiktoken(fileText: string, options: TokenizerOptions): WhisperTokenizer {
    const source = options.source ?? 'tiktoken file';
    return new WhisperTokenizer(parseTiktokenRanks(fileText, source), options.nVocab, source);
  }

  /** From a parsed Hugging Face `tokenizer.json`. */
  static fromHuggingFace(tokenizerJson: unknown, options: HuggingFaceTokenizerOptions = {}): WhisperTokenizer {
    const source = options.source ?? 'tokenizer.json';
    const { ranks, nVocab } = ranksFromTokenizerJson(tokenizerJson, source, options.nVocab);
    return new WhisperTokenizer(ranks, nVocab, source);
  }

  /** From parsed `vocab.json`, the text of `merges.txt` and parsed `added_tokens.json` (either may be absent). */
  static fromHuggingFaceFiles(
    vocabJson: unknown,
    mergesText: string | undefined,
    addedTokensJson: unknown | undefined,
    options: HuggingFaceTokenizerOptions = {},
  ): WhisperTokenizer {
    const source = options.source ?? 'vocab.json';
    const { ranks, nVocab } = ranksFromVocabFiles(vocabJson, mergesText, addedTokensJson, source, options.nVocab);
    return new WhisperTokenizer(ranks, nVocab, source);
  }

  /**
   * From the token list of a whisper.cpp ggml file: the BPE tokens' raw bytes in id order.
   * Files converted from the old vocab.json also list `<|endoftext|>` (and some converters more
   * specials) after the ranks; those must match Whisper's names and are dropped.
   */
  static fromGgmlVocab(tokens: Uint8Array[], options: TokenizerOptions): WhisperTokenizer {
    const source = options.source ?? 'ggml vocabulary';
    const languages = languageCount({ nVocab: options.nVocab });
    const rankCount = options.nVocab - specialTokenCount(languages);
    let ranks: Uint8Array[] = tokens;
    if (languages > 0 && languages <= LANGUAGES.length && rankCount > 0 && tokens.length > rankCount) {
      const names = specialTokenNames(languages);
      const decoder = new TextDecoder();
      const listsSpecials = tokens.slice(rankCount).every((bytes, i) => {
        const text = decoder.decode(bytes);
        return (SPECIAL_TOKEN_ALIASES[text] ?? text) === names[i];
      });
      if (listsSpecials) ranks = tokens.slice(0, rankCount);
    }
    return new WhisperTokenizer(ranks, options.nVocab, source);
  }

  /** Token ids of plain text. Special-token names in it (`<|en|>`) are encoded as ordinary text. */
  encode(text: string): number[] {
    return this.bpe.encodeOrdinary(text);
  }

  /** Text of the text tokens among `ids` (specials skipped). An incomplete character at the end is left out. */
  decode(ids: readonly number[]): string {
    const decoder = this.createDecoder();
    return decoder.push(ids) + decoder.flush();
  }

  /** Like decode, with timestamp tokens written as `<|1.08|>` where they occur. */
  decodeWithTimestamps(ids: readonly number[]): string {
    const decoder = this.createDecoder();
    let text = '';
    for (const id of ids) {
      if (this.timestampOf(id) !== undefined) text += decoder.flush() + this.specialNames[id - this.eot];
      else text += decoder.push(id);
    }
    return text + decoder.flush();
  }

  /** A streaming decoder: feed ids as they are generated, get text as soon as characters are complete. */
  createDecoder(): TokenTextDecoder {
    return createTokenTextDecoder((id) => {
      this.checkId(id);
      return id < this.eot ? this.bpe.tokens[id] : undefined;
    });
  }

  /** A token's bytes; for a special token, the UTF-8 of its name (as tiktoken gives it). */
  tokenToBytes(id: number): Uint8Array {
    this.checkId(id);
    if (id >= this.eot) return new TextEncoder().encode(this.specialNames[id - this.eot]);
    return this.bpe.tokens[id]!.slice();
  }

  /** A special token's name (`<|en|>`); for a text token, its text (U+FFFD for a partial character). */
  idToString(id: number): string {
    this.checkId(id);
    if (id >= this.eot) return this.specialNames[id - this.eot];
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(this.bpe.tokens[id]);
  }

  /** The id of a special token by name, e.g. `<|startoflm|>` or `<|nocaptions|>`. */
  specialTokenId(name: string): number {
    const id = this.specialIds.get(SPECIAL_TOKEN_ALIASES[name] ?? name);
    if (id === undefined) throw new TokenizerError(`${this.source}: no special token ${JSON.stringify(name)}`);
    return id;
  }

  isSpecial(id: number): boolean {
    return Number.isInteger(id) && id >= this.eot && id < this.nVocab;
  }

  /** The language token for a code ("de") or English name ("german"). */
  languageToken(language: string): number {
    const code = toLanguageCode(language);
    const index = code === undefined ? -1 : this.languages.indexOf(code);
    if (index < 0) {
      const why = code === undefined ? 'is not a language Whisper knows' : `has no token in this ${this.languages.length}-language vocabulary`;
      throw new TokenizerError(`${this.source}: language ${JSON.stringify(language)} ${why}`);
    }
    return this.sot + 1 + index;
  }

  /** The language code of a language token, else undefined. */
  languageOf(tokenId: number): string | undefined {
    const index = tokenId - this.sot - 1;
    return Number.isInteger(index) && index >= 0 && index < this.languages.length ? this.languages[index] : undefined;
  }

  /** Seconds of a timestamp token, else undefined. */
  timestampOf(id: number): number | undefined {
    const index = id - this.timestampBegin;
    if (!Number.isInteger(index) || index < 0 || index >= TIMESTAMP_COUNT) return undefined;
    return index / TIMESTAMPS_PER_SECOND;
  }

  /** The timestamp token nearest to `seconds` (0 to 30). */
  timestampToken(seconds: number): number {
    const index = Math.round(seconds * TIMESTAMPS_PER_SECOND);
    if (!Number.isFinite(seconds) || index < 0 || index >= TIMESTAMP_COUNT) {
      throw new TokenizerError(`${this.source}: no timestamp token for ${seconds} s (0 to 30 s)`);
    }
    return this.timestampBegin + index;
  }

  /**
   * The prompt start as OpenAI builds it: `[sot]` for English-only models; for multilingual ones
   * `[sot, language?, task]` (language left out when not given, for the model to detect; task
   * defaults to transcribe).
   */
  sotSequence(options: { language?: string; task?: Task } = {}): number[] {
    const { language, task } = options;
    if (task !== undefined && task !== 'transcribe' && task !== 'translate') {
      throw new TokenizerError(`${this.source}: task ${JSON.stringify(task)} is neither "transcribe" nor "translate"`);
    }
    if (!this.isMultilingual) {
      if (language !== undefined && toLanguageCode(language) !== 'en') {
        throw new TokenizerError(`${this.source}: an English-only model cannot take language ${JSON.stringify(language)}`);
      }
      if (task === 'translate') throw new TokenizerError(`${this.source}: an English-only model cannot translate`);
      return [this.sot];
    }
    const sequence = [this.sot];
    if (language !== undefined) sequence.push(this.languageToken(language));
    sequence.push(task === 'translate' ? this.translate : this.transcribe);
    return sequence;
  }

  /**
   * Tokens to suppress so the model does not write speaker tags or non-speech annotations
   * (`♪♪♪`, `( SPEAKING FOREIGN LANGUAGE )`, `[DAVID] Hey`) while keeping ordinary punctuation;
   * the same set as OpenAI's `non_speech_tokens`, sorted.
   */
  nonSpeechTokens(): number[] {
    if (this.nonSpeech === undefined) {
      const ids = new Set<number>([this.encode(' -')[0], this.encode(" '")[0]]);
      for (const symbol of [...NON_SPEECH_SYMBOLS, ...MUSICAL_SYMBOLS]) {
        const musical = MUSICAL_SYMBOLS.includes(symbol);
        for (const tokens of [this.encode(symbol), this.encode(` ${symbol}`)]) {
          if (tokens.length === 1 || musical) ids.add(tokens[0]);
        }
      }
      this.nonSpeech = [...ids].sort((a, b) => a - b);
    }
    return this.nonSpeech.slice();
  }

  /** The byte string of every BPE token id below eot (holes undefined), e.g. to write other formats. */
  bpeRanks(): (Uint8Array | undefined)[] {
    return this.bpe.tokens.map((bytes) => bytes?.slice());
  }

  /**
   * The parts BPE splits `bytes` into using only tokens of rank below `maxRank`: for a token's
   * own rank, the merge that forms it (how Hugging Face derives merges.txt).
   */
  mergeParts(bytes: Uint8Array, maxRank: number): Uint8Array[] {
    return this.bpe.mergeParts(bytes, maxRank);
  }

  /** The id of a BPE token's bytes, or undefined when no token has them. */
  rankOf(bytes: Uint8Array): number | undefined {
    return this.bpe.rankOf(bytes);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.nVocab) {
      throw new TokenizerError(`${this.source}: token id ${id} is outside the vocabulary (0 to ${this.nVocab - 1})`);
    }
    if (id < this.eot && this.bpe.tokens[id] === undefined) {
      throw new TokenizerError(`${this.source}: token id ${id} has no bytes in this vocabulary`);
    }
  }
}
