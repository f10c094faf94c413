/**
 * What a loaded model is, whatever file it came from: dims, weights in the one schema, the
 * tokenizer, and the decoding settings the checkpoint ships with.
 */
import type { WhisperDims } from './dims.ts';
import type { WhisperWeights } from './weights.ts';
import type { WhisperTokenizer } from '../tokenizer/tokenizer.ts';

/** Decoding settings from generation_config.json / config.json, or Whisper's defaults for ggml files. */
export interface GenerationConfig {
  /** Token ids never sampled (OpenAI's `suppress_tokens`, already expanded from `-1`). */
  suppressTokens: number[];
  /** Token ids suppressed at the first sampled position (blank and end-of-text). */
  beginSuppressTokens: number[];
  /** [decoder layer, head] pairs whose cross-attention aligns with time, for word timestamps. */
  alignmentHeads: [number, number][] | undefined;
  /** Largest timestamp index allowed as the first timestamp (50 = 1.0 s). */
  maxInitialTimestampIndex: number;
}

export type ModelFileFormat = 'huggingface' | 'ggml';

export interface WhisperModel {
  /** Where it came from: a URL, a hub repo id, a file name. */
  source: string;
  format: ModelFileFormat;
  dims: WhisperDims;
  weights: WhisperWeights;
  tokenizer: WhisperTokenizer;
  generation: GenerationConfig;
  /** The mel filterbank stored in a ggml file ([nMels, 201]); absent for Hugging Face folders. */
  melFilters?: Float32Array;
}
