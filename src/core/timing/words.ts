/**
 * From token times to words, as OpenAI's timing.py does it: split the tokens into words (at
 * spaces, or at every complete character for languages written without spaces), give each word
 * the times of its first token and of the token after it, trim implausibly long words at
 * sentence and pause boundaries, attach punctuation to its neighbour, and hand the words out to
 * the segments they were decoded in.
 */
import { HOP_LENGTH, SAMPLE_RATE } from '../audio/mel.ts';
import { MurmurError } from '../errors.ts';
import type { WhisperTokenizer } from '../tokenizer/tokenizer.ts';
import { findAlignment, type AlignmentOptions, type AlignmentSession, type AlignmentSetup, type TokenAlignment } from './alignment.ts';

export interface WordTiming {
  /** The word's text with its leading space and any attached punctuation. */
  word: string;
  tokens: number[];
  /** Seconds. */
  start: number;
  end: number;
  /** Mean probability of the word's tokens. */
  probability: number;
}

/** OpenAI's defaults: punctuation joined to the word after it, and to the word before it. */
export const PREPEND_PUNCTUATIONS = '"\'“¿([{-';
export const APPEND_PUNCTUATIONS = '"\'.。,，!！?？:：”)]}、';
/** Languages written without spaces between words. */
export const NO_SPACE_LANGUAGES: ReadonlySet<string> = new Set(['zh', 'ja', 'th', 'lo', 'my', 'yue']);
const ASCII_PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
const SENTENCE_END_MARKS = '.。!！?？';
const REPLACEMENT = '\ufffd';

// Python's `a in b` for strings: a substring test, true for the empty string.
const within = (part: string, text: string) => text.includes(part);

function decodeBytes(tokenizer: WhisperTokenizer, tokens: readonly number[]): string {
  const parts = tokens.map((id) => tokenizer.tokenToBytes(id));
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  // Incomplete characters become U+FFFD, which is what tells a split point from the middle of a character.
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
}

/**
 * Split at every point where the tokens so far decode to whole characters: a group ends once its
 * text has no replacement character that the full text does not also have there.
 */
export function splitTokensOnUnicode(tokenizer: WhisperTokenizer, tokens: readonly number[]): { words: string[]; wordTokens: number[][] } {
  const full = decodeBytes(tokenizer, tokens);
  const words: string[] = [];
  const wordTokens: number[][] = [];
  let current: number[] = [];
  let offset = 0;
  for (const token of tokens) {
    current.push(token);
    const decoded = decodeBytes(tokenizer, current);
    const bad = decoded.indexOf(REPLACEMENT);
    if (bad < 0 || full[offset + bad] === REPLACEMENT) {
      words.push(decoded);
      wordTokens.push(current);
      current = [];
      offset += decoded.length;
    }
  }
  return { words, wordTokens };
}

/** Split at spaces: a new word starts at a special token, a leading space or a punctuation mark. */
export function splitTokensOnSpaces(tokenizer: WhisperTokenizer, tokens: readonly number[]): { words: string[]; wordTokens: number[][] } {
  const pieces = splitTokensOnUnicode(tokenizer, tokens);
  const words: string[] = [];
  const wordTokens: number[][] = [];
  pieces.words.forEach((piece, i) => {
    const pieceTokens = pieces.wordTokens[i]!;
    const special = pieceTokens[0]! >= tokenizer.eot;
    const startsWord = special || piece.startsWith(' ') || within(piece.trim(), ASCII_PUNCTUATION) || words.length === 0;
    if (startsWord) {
      words.push(piece);
      wordTokens.push([...pieceTokens]);
    } else {
      words[words.length - 1] += piece;
      wordTokens[wordTokens.length - 1]!.push(...pieceTokens);
    }
  });
  return { words, wordTokens };
}

export function splitToWordTokens(tokenizer: WhisperTokenizer, tokens: readonly number[], language: string | undefined): { words: string[]; wordTokens: number[][] } {
  return language !== undefined && NO_SPACE_LANGUAGES.has(language) ? splitTokensOnUnicode(tokenizer, tokens) : splitTokensOnSpaces(tokenizer, tokens);
}

/** Words with the times and probabilities of their tokens (OpenAI's find_alignment result). */
export function wordsFromAlignment(tokenizer: WhisperTokenizer, alignment: TokenAlignment, language?: string): WordTiming[] {
  const { tokens, startTimes, probabilities } = alignment;
  if (tokens.length === 0) return [];
  if (startTimes.length !== tokens.length + 1 || probabilities.length !== tokens.length) {
    throw new MurmurError('ALIGNMENT', `an alignment of ${tokens.length} tokens needs ${tokens.length + 1} start times and ${tokens.length} probabilities, got ${startTimes.length} and ${probabilities.length}`);
  }
  const { words, wordTokens } = splitToWordTokens(tokenizer, [...tokens, tokenizer.eot], language);
  if (wordTokens.length <= 1) return [];
  const result: WordTiming[] = [];
  let boundary = 0;
  for (let k = 0; k + 1 < wordTokens.length; k++) {
    const next = boundary + wordTokens[k]!.length;
    const slice = probabilities.slice(boundary, Math.min(next, probabilities.length));
    const probability = slice.length > 0 ? slice.reduce((a, b) => a + b, 0) / slice.length : 0;
    result.push({ word: words[k]!, tokens: wordTokens[k]!, start: startTimes[boundary]!, end: startTimes[Math.min(next, tokens.length)]!, probability });
    boundary = next;
  }
  return result;
}

/**
 * Join opening punctuation to the following word and closing punctuation to the preceding one,
 * in place; a word that was joined keeps an empty text and no tokens (OpenAI's merge_punctuations).
 */
export function mergePunctuations(words: WordTiming[], prepended = PREPEND_PUNCTUATIONS, appended = APPEND_PUNCTUATIONS): void {
  let i = words.length - 2;
  let j = words.length - 1;
  while (i >= 0) {
    const previous = words[i]!;
    const following = words[j]!;
    if (previous.word.startsWith(' ') && within(previous.word.trim(), prepended)) {
      following.word = previous.word + following.word;
      following.tokens = [...previous.tokens, ...following.tokens];
      previous.word = '';
      previous.tokens = [];
    } else {
      j = i;
    }
    i--;
  }
  i = 0;
  j = 1;
  while (j < words.length) {
    const previous = words[i]!;
    const following = words[j]!;
    if (!previous.word.endsWith(' ') && within(following.word, appended)) {
      previous.word += following.word;
      previous.tokens = [...previous.tokens, ...following.tokens];
      following.word = '';
      following.tokens = [];
    } else {
      i = j;
    }
    j++;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface MergeOptions {
  /** Language code; zh, ja, th, lo, my and yue split at characters instead of spaces. */
  language?: string;
  prependPunctuations?: string;
  appendPunctuations?: string;
}

export interface MergedWords {
  /** The words in order, punctuation attached; times relative to the window start. */
  words: WordTiming[];
  /** Median length of the words that have one, at most 0.7 s. */
  medianDuration: number;
  /** Twice the median: longer words at boundaries get trimmed. */
  maxDuration: number;
}

/**
 * Words from token times: split, trim words longer than twice the median at sentence ends,
 * attach punctuation. Words that were merged into a neighbour are dropped.
 */
export function mergeWords(tokenizer: WhisperTokenizer, alignment: TokenAlignment, options: MergeOptions = {}): MergedWords {
  const words = wordsFromAlignment(tokenizer, alignment, options.language);
  const durations = words.map((w) => w.end - w.start).filter((d) => d !== 0);
  const medianDuration = Math.min(0.7, durations.length > 0 ? median(durations) : 0);
  const maxDuration = medianDuration * 2;
  if (durations.length > 0) {
    for (let i = 1; i < words.length; i++) {
      const word = words[i]!;
      if (word.end - word.start > maxDuration) {
        if (within(word.word, SENTENCE_END_MARKS)) word.end = word.start + maxDuration;
        else if (within(words[i - 1]!.word, SENTENCE_END_MARKS)) word.start = word.end - maxDuration;
      }
    }
  }
  mergePunctuations(words, options.prependPunctuations, options.appendPunctuations);
  return { words: words.filter((w) => w.tokens.length > 0), medianDuration, maxDuration };
}

/** What word timestamps need of a segment; start and end are adjusted and words filled in. */
export interface SegmentForWords {
  /** Mel frame where the segment's window starts. */
  seek: number;
  start: number;
  end: number;
  /** The segment's tokens; timestamps and other specials are ignored. */
  tokens: readonly number[];
  words?: WordTiming[];
}

const roundCentiseconds = (seconds: number) => Math.round(seconds * 100) / 100;

/**
 * Give each segment its words (times made absolute from the first segment's seek and rounded to
 * 10 ms), trim a long first word after a pause, and let the words and the segment's own
 * timestamps correct each other at both ends. Returns the new last-speech time.
 */
export function placeWords(segments: SegmentForWords[], merged: MergedWords, lastSpeechTimestamp: number, eot: number): number {
  if (segments.length === 0) return lastSpeechTimestamp;
  const { words: timings, medianDuration, maxDuration } = merged;
  const timeOffset = (segments[0]!.seek * HOP_LENGTH) / SAMPLE_RATE;
  let index = 0;
  for (const segment of segments) {
    const textCount = segment.tokens.filter((t) => t < eot).length;
    let saved = 0;
    const words: WordTiming[] = [];
    while (index < timings.length && saved < textCount) {
      const timing = timings[index]!;
      if (timing.word) {
        words.push({
          word: timing.word,
          tokens: [...timing.tokens],
          start: roundCentiseconds(timeOffset + timing.start),
          end: roundCentiseconds(timeOffset + timing.end),
          probability: timing.probability,
        });
      }
      saved += timing.tokens.length;
      index++;
    }

    if (words.length > 0) {
      const first = words[0]!;
      const second = words[1];
      // After a pause the first word tends to swallow the silence: keep it and the next within bounds.
      if (first.end - lastSpeechTimestamp > medianDuration * 4 && (first.end - first.start > maxDuration || (second !== undefined && second.end - first.start > maxDuration * 2))) {
        if (second !== undefined && second.end - second.start > maxDuration) {
          const boundary = Math.max(second.end / 2, second.end - maxDuration);
          first.end = second.start = boundary;
        }
        first.start = Math.max(0, first.end - maxDuration);
      }
      if (segment.start < first.end && segment.start - 0.5 > first.start) {
        first.start = Math.max(0, Math.min(first.end - medianDuration, segment.start));
      } else {
        segment.start = first.start;
      }
      const last = words[words.length - 1]!;
      if (segment.end > last.start && segment.end + 0.5 < last.end) {
        last.end = Math.max(last.start + medianDuration, segment.end);
      } else {
        segment.end = last.end;
      }
      lastSpeechTimestamp = segment.end;
    }
    segment.words = words;
  }
  return lastSpeechTimestamp;
}

export interface WordTimestampOptions extends AlignmentOptions, MergeOptions {
  /** The window's start-of-transcript sequence (sot, language, task). */
  sotSequence: readonly number[];
  /** Mel frames of real audio in the window (the rest is padding). */
  numFrames: number;
  /** End of the last speech before these segments, seconds. */
  lastSpeechTimestamp: number;
}

/**
 * Word timestamps for the segments of one window (OpenAI's add_word_timestamps): align all their
 * text tokens in one decoder pass, merge into words, place them. Returns the new last-speech time.
 */
export async function addWordTimestamps(segments: SegmentForWords[], session: AlignmentSession, setup: AlignmentSetup, options: WordTimestampOptions): Promise<number> {
  if (segments.length === 0) return options.lastSpeechTimestamp;
  const eot = setup.tokenizer.eot;
  const textTokens = segments.flatMap((segment) => segment.tokens.filter((t) => t < eot));
  const alignment = await findAlignment(session, setup, options.sotSequence, textTokens, options.numFrames, options);
  const merged = mergeWords(setup.tokenizer, alignment, options);
  return placeWords(segments, merged, options.lastSpeechTimestamp, eot);
}
