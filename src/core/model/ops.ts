/**
 * The operations the Whisper model definition (whisper.ts) is written in. Every backend —
 * the plain TypeScript reference, WGSL/WebGPU, WASM-SIMD, an ONNX graph builder — implements
 * this one interface, and the model definition lowers onto it unchanged.
 *
 * The granularity is the one fast backends want to fuse at: a convolution carries its GELU, a
 * linear carries its bias, GELU and residual add, attention is one op from Q/K/V to the mixed
 * values (scores, mask, softmax and weighted sum never leave the kernel).
 *
 * Activations (`T`) are always 2-D, row-major, [rows, cols]: one row per time step, token or
 * (for the decoder) sequence × token, one column per channel. Weights (`W`) are whatever handle
 * the backend mapped the weight schema into (see `mapWeights`); the model never looks inside.
 *
 * Every op returns a new handle and leaves its inputs alone, except the KV-cache writes, which
 * update the cache in place. Handles are released explicitly (`release`) so GPU backends can
 * pool buffers; a garbage-collected backend may treat release as a no-op.
 */
import type { LayerNormWeights, LinearWeights, WeightTensor, WhisperWeights } from './weights.ts';
import type { WhisperDims } from './dims.ts';

/** Work fused onto the end of a linear or convolution: out = gelu?(x·Wᵀ + b) + residual. */
export interface Epilogue<T> {
  gelu?: boolean;
  /** Added after the activation; same shape as the output. Not consumed. */
  residual?: T;
}

export interface Conv1dOptions {
  /** Whisper's conv1 has stride 1, conv2 stride 2; both have kernel 3 and padding 1. */
  stride: 1 | 2;
  /**
   * Layout of the input: the log-mel spectrogram arrives channels-first [nMels, frames];
   * conv2 reads conv1's time-major output [frames, channels]. The output is always time-major.
   */
  inputLayout: 'channels-first' | 'time-major';
  gelu?: boolean;
}

/**
 * Keys and values attention reads. A cache holds `capacity` rows per sequence, of which the first
 * `length` are valid; cross-attention K/V hold one audio's rows and every sequence shares them.
 */
export interface AttentionKeyValues<T> {
  key: T;
  value: T;
  /** Rows reserved per sequence in `key`/`value` (the cache capacity, or the audio length). */
  capacity: number;
  /** Valid rows per sequence, counted from the first. */
  length: number;
  /** True when all sequences read the same rows (cross-attention over one audio). */
  shared: boolean;
}

export interface AttentionOptions {
  heads: number;
  /** Independent sequences stacked in the query rows (sequence-major); 1 for the encoder. */
  sequences: number;
  /**
   * Causal masking for decoder self-attention: query row i of a sequence sits at absolute
   * position `queryOffset + i` and sees keys 0..queryOffset+i. Absent: every valid key is seen.
   */
  causal?: { queryOffset: number };
  /**
   * Also return the softmax weights, [sequences × heads × queryRows, length] (sequence, then
   * head, then query row), for word-level timestamps from cross-attention.
   */
  returnWeights?: boolean;
}

export interface AttentionResult<T> {
  /** [sequences × queryRows, heads × headDim]: heads concatenated, ready for the out projection. */
  output: T;
  weights?: T;
}

/** Token ids from `from` up to but not including `to`. */
export type TokenRange = readonly [from: number, to: number];

/** The most best tokens per row selectTokens reports (beam search asks for beamSize + 1). */
export const TOKEN_SELECTION_MAX_K = 8;

/**
 * What a decoder step needs from each row of logits, so that it reads back a few words per row
 * instead of the vocabulary: Whisper's suppression rules applied where the logits are, the
 * log-softmax normaliser, the best tokens with their log-probabilities, and a few raw logits.
 */
export interface TokenSelectionRequest {
  /** Best tokens reported per row, 1..TOKEN_SELECTION_MAX_K (and at most the vocabulary). */
  topK: number;
  /**
   * Tokens suppressed in every row: a bitset (bit id % 32 of word id >> 5 set: suppressed) of
   * ceil(cols / 32) words. Backends may keep their copy between calls, so a caller builds a new
   * array rather than changing one it passed before.
   */
  suppress?: Uint32Array;
  /** Per row, further suppressed token ranges (the rules that depend on what a row has sampled). */
  suppressRanges?: readonly (readonly TokenRange[])[];
  /**
   * Whisper's "timestamps win" rule, applied after every suppression: when log Σ exp over the
   * timestamp tokens [timestampBegin, cols) exceeds the best text logit in [0, timestampBegin),
   * the text tokens are suppressed as well.
   */
  timestampBegin?: number;
  /** Token ids whose raw logits (before any suppression) are reported per row. */
  gather?: readonly number[];
}

/** One row's answer to a TokenSelectionRequest. Suppressed tokens have log-probability -Infinity. */
export interface TokenSelection {
  /**
   * The topK tokens by log-probability, best first, the lower id first among equals (so ids[0]
   * is the argmax); when fewer than topK tokens are possible the rest are the lowest-numbered
   * impossible ones, at -Infinity, as a full sort would have them.
   */
  ids: number[];
  logProbs: number[];
  /** log Σ exp(logit) over the tokens not suppressed: the log-softmax normaliser (-Infinity: none left). */
  logSumExp: number;
  /** log Σ exp(logit) over every token, nothing suppressed (no-speech probability). */
  rawLogSumExp: number;
  /** With timestampBegin: log Σ exp over the timestamp tokens left after suppression, and the best text logit, before the rule. */
  timestampLogSumExp: number;
  maxTextLogit: number;
  /** The rule suppressed the text tokens. */
  timestampsWin: boolean;
  /** The raw logits of request.gather, in order. */
  gathered: number[];
  /** The lowest token id whose logit is NaN (a backend bug), or -1; when there is one, the other fields mean nothing. */
  nanToken: number;
}

export interface WhisperOps<T, W> {
  /** Copy host values into a new activation [rows, cols]. */
  upload(values: Float32Array, rows: number, cols: number): T;
  /** A new activation of zeros [rows, cols] (KV caches). */
  zeros(rows: number, cols: number): T;
  /** Copy an activation back to the host (asynchronous: a GPU has to finish first). */
  read(x: T): Promise<Float32Array>;
  shape(x: T): readonly [rows: number, cols: number];
  /** Give the handle's storage back; using it afterwards is an error. */
  release(x: T): void;

  /** Kernel 3, padding 1 over the time axis; weight [out, in, 3], bias [out]. */
  conv1d(x: T, w: LinearWeights<W>, options: Conv1dOptions): T;
  /** x + table[0..rows): the encoder's positional embedding. */
  addPositionalEmbedding(x: T, table: W): T;
  /** Over each row, eps 1e-5, biased variance (PyTorch's nn.LayerNorm). */
  layerNorm(x: T, w: LayerNormWeights<W>): T;
  /**
   * x [rows, in] · Wᵀ (W [out, in], any weight dtype) + bias, then the epilogue. The only matrix
   * product with weights in the model: projections, MLP and the tied logits all come here.
   */
  linear(x: T, w: LinearWeights<W>, epilogue?: Epilogue<T>): T;
  /**
   * Multi-head scaled dot-product attention: softmax(q·kᵀ / √headDim [+ causal mask]) · v per
   * head, headDim = cols / heads. q [sequences × queryRows, cols].
   */
  attention(q: T, kv: AttentionKeyValues<T>, options: AttentionOptions): AttentionResult<T>;
  /** tokenEmbedding[tokens[i]] + positionalEmbedding[positions[i]], one row per token. */
  embed(tokens: readonly number[], positions: readonly number[], tokenEmbedding: W, positionalEmbedding: W): T;
  /**
   * Write x [sequences × n, cols] into cache [sequences × capacity, cols] at rows
   * offset..offset+n of every sequence, in place.
   */
  writeCache(cache: T, x: T, options: { sequences: number; capacity: number; offset: number }): void;
  /**
   * Beam search: sequence s of the cache becomes old sequence order[s] (rows 0..length), in place.
   * order.length is the number of sequences.
   */
  reorderCache(cache: T, order: readonly number[], options: { capacity: number; length: number }): void;
  /** The listed rows of x, in order (the decoder keeps only each sequence's last row for logits). */
  gatherRows(x: T, rows: readonly number[]): T;
  /**
   * Optional: the end of a decoder step without reading the logits back. For each row of
   * logits [rows, nVocab], the request's suppression and timestamp rule, then the summary
   * decoding chooses tokens from (see TokenSelection). Does not consume `logits`.
   */
  selectTokens?(logits: T, request: TokenSelectionRequest): Promise<TokenSelection[]>;
}

/**
 * A backend: its ops, plus how it turns loaded weights into its own handles once per model
 * (upload to the GPU, repack for SIMD). The reference uses the loaded WeightTensors as they are.
 */
export interface WhisperBackend<T, W> {
  readonly name: string;
  readonly ops: WhisperOps<T, W>;
  /** How this backend runs the model, in sentences a person can read (its layout, its providers), when it has anything to say. */
  readonly reasons?: readonly string[];
  prepareWeights(dims: WhisperDims, weights: WhisperWeights<WeightTensor>): Promise<WhisperWeights<W>>;
  /** Release what prepareWeights created. */
  releaseWeights(weights: WhisperWeights<W>): void;
  dispose(): void;
}
