/**
 * The tokens a window's decoding starts from, laid out as OpenAI does:
 *   [<|startofprev|>, ...previous text (its last nTextCtx/2 − 1 tokens)]
 *   <|startoftranscript|> [language] [task] [<|notimestamps|>] ...prefix
 */
import type { Task, WhisperTokenizer } from '../tokenizer/tokenizer.ts';
import { MurmurError } from '../errors.ts';

export interface InitialTokens {
  tokens: number[];
  /** Index of <|startoftranscript|>, whose logits give the no-speech probability. */
  sotIndex: number;
  /** Where sampled tokens begin (after the prefix). */
  sampleBegin: number;
}

export interface PromptLayout {
  language?: string;
  task?: Task;
  withoutTimestamps?: boolean;
  prompt?: string | number[];
  prefix?: string | number[];
  sampleLen: number;
}

/** Text is encoded with a leading space, as it would follow earlier words. */
function toTokens(tokenizer: WhisperTokenizer, value: string | number[], what: string): number[] {
  if (typeof value === 'string') return tokenizer.encode(` ${value.trim()}`);
  value.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= tokenizer.nVocab) throw new MurmurError('DECODING_OPTIONS', `${what} token ${i} is ${id}, not a token id of this ${tokenizer.nVocab}-token vocabulary`);
  });
  return value.slice();
}

const isGiven = (value: string | number[] | undefined): value is string | number[] => value !== undefined && value.length > 0;

export function initialTokens(tokenizer: WhisperTokenizer, layout: PromptLayout, nTextCtx: number): InitialTokens {
  const start = tokenizer.sotSequence({ language: layout.language, task: layout.task });
  if (layout.withoutTimestamps) start.push(tokenizer.noTimestamps);
  let tokens = start;
  if (isGiven(layout.prefix)) {
    let prefix = toTokens(tokenizer, layout.prefix, 'prefix');
    // The prefix shares the first half of the context with the sampled tokens.
    const room = Math.floor(nTextCtx / 2) - layout.sampleLen;
    if (room > 0) prefix = prefix.slice(-room);
    tokens = [...tokens, ...prefix];
  }
  let sotIndex = 0;
  if (isGiven(layout.prompt)) {
    const previous = toTokens(tokenizer, layout.prompt, 'prompt').slice(-(Math.floor(nTextCtx / 2) - 1));
    tokens = [tokenizer.startOfPrev, ...previous, ...tokens];
    sotIndex = previous.length + 1;
  }
  if (tokens.length >= nTextCtx) {
    throw new MurmurError('DECODING_OPTIONS', `the prompt, start sequence and prefix take ${tokens.length} tokens, more than the decoder context of ${nTextCtx} leaves room for`);
  }
  return { tokens, sotIndex, sampleBegin: tokens.length };
}
