/**
 * Whisper's special tokens: their names and order, which fix their ids (they follow the BPE ranks
 * in exactly this order, as OpenAI's whisper/tokenizer.py lays them out).
 */
import { LANGUAGES } from './languages.ts';

/** Timestamps run from 0.00 s to 30.00 s in 20 ms steps (50 a second). */
export const TIMESTAMP_COUNT = 1501;
export const TIMESTAMPS_PER_SECOND = 50;

/** The six control tokens between the language tokens and the timestamps. */
export const CONTROL_TOKENS = [
  '<|translate|>',
  '<|transcribe|>',
  '<|startoflm|>',
  '<|startofprev|>',
  '<|nospeech|>',
  '<|notimestamps|>',
] as const;

/** How many special tokens follow the ranks for a vocabulary with this many languages. */
export function specialTokenCount(languageCount: number): number {
  return 2 + languageCount + CONTROL_TOKENS.length + TIMESTAMP_COUNT;
}

/** `<|1.08|>` for timestamp index 54; built from integers so no float formatting can drift. */
export function timestampName(index: number): string {
  const hundredths = index * 2;
  return `<|${Math.floor(hundredths / 100)}.${String(hundredths % 100).padStart(2, '0')}|>`;
}

/** Every special token name, in id order starting at `<|endoftext|>`. */
export function specialTokenNames(languageCount: number): string[] {
  const names = ['<|endoftext|>', '<|startoftranscript|>'];
  for (const code of LANGUAGES.slice(0, languageCount)) names.push(`<|${code}|>`);
  names.push(...CONTROL_TOKENS);
  for (let i = 0; i < TIMESTAMP_COUNT; i++) names.push(timestampName(i));
  return names;
}

/**
 * Older spellings some published vocabularies still use for a special token: Hugging Face's
 * early Whisper files call `<|nospeech|>` `<|nocaptions|>` and Hebrew `<|iw|>`.
 */
export const SPECIAL_TOKEN_ALIASES: Readonly<Record<string, string>> = {
  '<|nocaptions|>': '<|nospeech|>',
  '<|iw|>': '<|he|>',
};
