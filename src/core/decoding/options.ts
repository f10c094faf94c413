/**
 * What one window's decoding is asked to do and what it gives back: OpenAI's DecodingOptions and
 * DecodingResult in camelCase, plus the temperature-fallback thresholds of its transcribe().
 */
import type { Task } from '../tokenizer/tokenizer.ts';
import type { DecodingSetup } from './greedy.ts';

export interface DecodingOptions {
  /** Default 'transcribe'. */
  task?: Task;
  /** Language code or name; absent on a multilingual model: detected from this window. */
  language?: string;
  /** 0 (default): greedy or beam search; above 0: sampling from softmax(logits / temperature). */
  temperature?: number;
  /** Most tokens to sample; default nTextCtx / 2. */
  sampleLen?: number;
  /** Sampling only (temperature > 0): independent candidates, the best-scoring one wins. */
  bestOf?: number;
  /** Temperature 0 only: beam search with this many beams instead of greedy. */
  beamSize?: number;
  /** Beam search: stop once round(beamSize · patience) sequences have finished (default 1). */
  patience?: number;
  /**
   * Ranking of finished candidates: undefined/null divides the summed log-prob by the length;
   * a value α in [0, 1] divides by ((5 + length) / 6)^α (Google NMT's penalty).
   */
  lengthPenalty?: number | null;
  /** Earlier text (or its tokens) to condition on, placed after <|startofprev|>. */
  prompt?: string | number[];
  /** Text (or tokens) the transcript of this window is forced to start with. */
  prefix?: string | number[];
  /**
   * Tokens never sampled: ids, or a comma-separated string of ids; -1 stands for the default set
   * (the model's list and the tokenizer's non-speech tokens). Default '-1'. Control tokens are
   * always suppressed.
   */
  suppressTokens?: number[] | string;
  /** Suppress a blank (" ") and end-of-text as the first sampled token. Default true. */
  suppressBlank?: boolean;
  /** Decode text only: the prompt ends with <|notimestamps|> and timestamps are never sampled. */
  withoutTimestamps?: boolean;
  /** Latest allowed first timestamp, seconds (default 1.0); null for no limit. */
  maxInitialTimestamp?: number | null;
  /** Seed of the sampler's pseudo-random generator (temperature > 0), for reproducible runs. */
  seed?: number;
}

export interface DecodingResult {
  /** Language code, given or detected. */
  language: string;
  /** Per language code, when the language was detected from this window. */
  languageProbs?: Record<string, number>;
  /** The sampled text and timestamp tokens, without the prompt and the final <|endoftext|>. */
  tokens: number[];
  /** The text of the text tokens, trimmed. */
  text: string;
  /** sumLogProb / (tokens.length + 1), as OpenAI counts it (the end-of-text included). */
  avgLogProb: number;
  /** Summed log-probability of the sampled tokens and the end-of-text. */
  sumLogProb: number;
  /** Probability of <|nospeech|> at the start-of-transcript position. */
  noSpeechProb: number;
  temperature: number;
  /** gzip-style compressibility of the text; high values mean a repetition loop. */
  compressionRatio: number;
}

export interface FallbackOptions extends DecodingOptions {
  /** Tried in order until a result passes the thresholds; default [0, 0.2, 0.4, 0.6, 0.8, 1.0]. */
  temperatures?: number[];
  /** Retry when the compression ratio is above this (default 2.4; null: never). */
  compressionRatioThreshold?: number | null;
  /** Retry when the average log-probability is below this (default -1.0; null: never). */
  logProbThreshold?: number | null;
  /**
   * With a no-speech probability above this (default 0.6) and an average log-probability below
   * logProbThreshold, the window is silent: no retry (the caller skips it). null: never silent.
   */
  noSpeechThreshold?: number | null;
}

/** What decoding needs besides the audio: the tokenizer, the model's generation settings and sizes (a WhisperModel fits). */
export type DecodingSetupInput = DecodingSetup;

export { decodeWindow, decodeWithFallback, detectLanguage, DEFAULT_TEMPERATURES } from './decode.ts';
export { compressionRatio } from './compression.ts';
