/**
 * Token times from cross-attention (OpenAI's find_alignment): one decoder pass over the whole
 * transcript with the alignment heads' attention kept, normalised per head, median-filtered,
 * averaged, and aligned to the tokens with DTW.
 */
import { MurmurError } from '../errors.ts';
import type { WhisperTokenizer } from '../tokenizer/tokenizer.ts';
import { dtw, medianFilter, rowStartTimes } from './dtw.ts';

/** Seconds per audio row of the encoder output (two mel frames of 10 ms). */
export const TIME_PRECISION = 0.02;

export interface AlignmentStepOptions {
  /** Logits for every fed position, not only the last. */
  allPositions?: boolean;
  /** Every decoder layer's cross-attention weights. */
  crossAttention?: boolean;
}

export interface AlignmentStepResult {
  /** [sequences, nVocab]: the next-token logits after each sequence's last new token. */
  logits: Float32Array;
  /** [sequences × newTokens, nVocab], sequence-major, when allPositions was asked for. */
  allLogits?: Float32Array;
  /**
   * Per decoder layer, [sequences × heads × newTokens, audioRows] softmax weights (sequence, then
   * head, then token), when crossAttention was asked for.
   */
  crossAttention?: Float32Array[];
}

/**
 * What alignment needs of a decoder over one window's audio: the shape of the decoding stack's
 * DecoderSession (begin a fresh pass, feed tokens), so any session can be handed in.
 */
export interface AlignmentSession {
  begin(sequences: number): void | Promise<void>;
  step(tokens: readonly (readonly number[])[], options: AlignmentStepOptions): AlignmentStepResult | Promise<AlignmentStepResult>;
}

export interface AlignmentSetup {
  tokenizer: WhisperTokenizer;
  /** [decoder layer, head] pairs (GenerationConfig.alignmentHeads). */
  alignmentHeads: readonly (readonly [number, number])[];
  nTextCtx: number;
  nTextHead: number;
}

export interface AlignmentOptions {
  /** Width of the median filter along time (odd); OpenAI's default 7. */
  medianFilterWidth?: number;
  /** Sharpens (> 1) or flattens the attention before normalising, as OpenAI's qk_scale; default 1. */
  qkScale?: number;
}

/** Per-token times and probabilities, ready to be grouped into words. */
export interface TokenAlignment {
  /** The text tokens aligned. */
  tokens: number[];
  /**
   * Start time in seconds of each text token, then of end-of-text (the end of the last token):
   * tokens.length + 1 values, never decreasing, relative to the window start.
   */
  startTimes: number[];
  /** Probability the model gave each text token, among text tokens only. */
  probabilities: number[];
}

/**
 * The [rows, columns] matrix OpenAI aligns: each head's weights over the first `columns` audio
 * rows renormalised (a softmax over fewer logits is the full one renormalised), standardised per
 * audio row over all token positions, median-filtered along time, averaged over heads; then the
 * token rows [firstRow, firstRow + rows) kept.
 */
export function alignmentMatrix(
  heads: readonly Float32Array[],
  tokenCount: number,
  audioRows: number,
  options: { columns: number; firstRow: number; rows: number; medianFilterWidth?: number; qkScale?: number },
): Float32Array {
  const { columns, firstRow, rows } = options;
  const width = options.medianFilterWidth ?? 7;
  const qkScale = options.qkScale ?? 1;
  if (heads.length === 0) throw new MurmurError('ALIGNMENT', 'no alignment heads to align with');
  if (!Number.isInteger(columns) || columns < 1 || columns > audioRows) {
    throw new MurmurError('ALIGNMENT', `cannot keep ${columns} of ${audioRows} audio rows`);
  }
  if (firstRow < 0 || rows < 1 || firstRow + rows > tokenCount) throw new MurmurError('ALIGNMENT', `token rows ${firstRow}..${firstRow + rows} are outside 0..${tokenCount}`);
  if (!(qkScale > 0) || !Number.isFinite(qkScale)) throw new MurmurError('ALIGNMENT', `qkScale must be a positive number, got ${qkScale}`);

  const sum = new Float64Array(rows * columns);
  const normalized = new Float32Array(tokenCount * columns);
  for (const [index, head] of heads.entries()) {
    if (head.length !== tokenCount * audioRows) {
      throw new MurmurError('ALIGNMENT', `alignment head ${index} has ${head.length} weights, expected ${tokenCount} tokens × ${audioRows} audio rows`);
    }
    for (let t = 0; t < tokenCount; t++) {
      let total = 0;
      for (let c = 0; c < columns; c++) {
        const w = head[t * audioRows + c]!;
        if (!(w >= 0) || !Number.isFinite(w)) throw new MurmurError('ALIGNMENT', `alignment head ${index} has weight ${w} at token ${t}, audio row ${c}`);
        const scaled = qkScale === 1 ? w : w ** qkScale;
        normalized[t * columns + c] = scaled;
        total += scaled;
      }
      // Every kept weight underflowed to zero: uniform attention rather than 0/0.
      const inverse = total > 0 ? 1 / total : 0;
      for (let c = 0; c < columns; c++) normalized[t * columns + c] = total > 0 ? normalized[t * columns + c]! * inverse : 1 / columns;
    }
    // Standardise each audio row over the token axis (population std, as OpenAI's unbiased=False).
    for (let c = 0; c < columns; c++) {
      let mean = 0;
      for (let t = 0; t < tokenCount; t++) mean += normalized[t * columns + c]!;
      mean /= tokenCount;
      let variance = 0;
      for (let t = 0; t < tokenCount; t++) variance += (normalized[t * columns + c]! - mean) ** 2;
      const std = Math.sqrt(variance / tokenCount);
      // A constant column carries no timing; zero keeps it neutral instead of 0/0.
      const scale = std > 0 ? 1 / std : 0;
      for (let t = 0; t < tokenCount; t++) normalized[t * columns + c] = (normalized[t * columns + c]! - mean) * scale;
    }
    const filtered = medianFilter(normalized.subarray(firstRow * columns, (firstRow + rows) * columns), columns, width);
    for (let k = 0; k < filtered.length; k++) sum[k] += filtered[k]!;
  }
  const matrix = new Float32Array(rows * columns);
  for (let k = 0; k < matrix.length; k++) matrix[k] = sum[k]! / heads.length;
  return matrix;
}

/** Start time in seconds of each row of an alignment matrix: where DTW on its negation enters the row. */
export function rowTimesFromMatrix(matrix: Float32Array, rows: number, columns: number): number[] {
  const cost = new Float32Array(matrix.length);
  for (let k = 0; k < matrix.length; k++) cost[k] = -matrix[k]!;
  const starts = rowStartTimes(dtw(cost, rows, columns), rows);
  return Array.from(starts, (index) => index * TIME_PRECISION);
}

/**
 * Align `textTokens` (no special tokens) to the first `numFrames` mel frames of the window the
 * session decodes: one pass over [sot sequence, notimestamps, text, eot] with cross-attention.
 */
export async function findAlignment(
  session: AlignmentSession,
  setup: AlignmentSetup,
  sotSequence: readonly number[],
  textTokens: readonly number[],
  numFrames: number,
  options: AlignmentOptions = {},
): Promise<TokenAlignment> {
  const { tokenizer, alignmentHeads, nTextCtx, nTextHead } = setup;
  if (textTokens.length === 0) return { tokens: [], startTimes: [], probabilities: [] };
  for (const [i, token] of textTokens.entries()) {
    if (!Number.isInteger(token) || token < 0 || token >= tokenizer.eot) {
      throw new MurmurError('ALIGNMENT', `text token ${i} (${token}) is not a text token (ids 0..${tokenizer.eot - 1})`);
    }
  }
  if (alignmentHeads.length === 0) throw new MurmurError('ALIGNMENT', 'the model has no alignment heads; word timestamps need them');
  const sequence = [...sotSequence, tokenizer.noTimestamps, ...textTokens, tokenizer.eot];
  if (sequence.length > nTextCtx) {
    throw new MurmurError('ALIGNMENT', `${textTokens.length} text tokens with a ${sotSequence.length}-token start do not fit the decoder context of ${nTextCtx}`);
  }
  if (!Number.isInteger(numFrames) || numFrames < 2) throw new MurmurError('ALIGNMENT', `numFrames must be a whole number of mel frames ≥ 2, got ${numFrames}`);

  await session.begin(1);
  const result = await session.step([sequence], { allPositions: true, crossAttention: true });
  const { allLogits, crossAttention } = result;
  if (!allLogits || !crossAttention) throw new MurmurError('ALIGNMENT', 'the decoder session returned no per-position logits or no cross-attention');
  const length = sequence.length;

  const heads = alignmentHeads.map(([layer, head]) => {
    const weights = crossAttention[layer];
    if (!weights) throw new MurmurError('ALIGNMENT', `alignment head [${layer}, ${head}] names layer ${layer}, the decoder has ${crossAttention.length}`);
    if (!Number.isInteger(head) || head < 0 || head >= nTextHead) throw new MurmurError('ALIGNMENT', `alignment head [${layer}, ${head}] is outside the ${nTextHead} heads`);
    if (weights.length % (nTextHead * length) !== 0) {
      throw new MurmurError('ALIGNMENT', `layer ${layer} cross-attention has ${weights.length} weights, not ${nTextHead} heads × ${length} tokens × audio rows`);
    }
    const rowsPerToken = weights.length / (nTextHead * length);
    return { weights: weights.subarray(head * length * rowsPerToken, (head + 1) * length * rowsPerToken), audioRows: rowsPerToken };
  });
  const audioRows = heads[0]!.audioRows;
  const columns = Math.min(Math.floor(numFrames / 2), audioRows);
  const firstRow = sotSequence.length;
  const rows = textTokens.length + 1;
  const matrix = alignmentMatrix(
    heads.map((h) => h.weights),
    length,
    audioRows,
    { columns, firstRow, rows, ...options },
  );
  const startTimes = rowTimesFromMatrix(matrix, rows, columns);
  const probabilities = textTokenProbabilities(allLogits, length, tokenizer.eot, firstRow, textTokens);
  return { tokens: [...textTokens], startTimes, probabilities };
}

/**
 * The probability of each text token at its position, softmax over text tokens only (ids below
 * end-of-text), as OpenAI scores words.
 */
export function textTokenProbabilities(allLogits: Float32Array, positions: number, eot: number, firstRow: number, textTokens: readonly number[]): number[] {
  if (allLogits.length % positions !== 0) throw new MurmurError('ALIGNMENT', `${allLogits.length} logits do not divide into ${positions} positions`);
  const nVocab = allLogits.length / positions;
  if (nVocab < eot) throw new MurmurError('ALIGNMENT', `logits of width ${nVocab} cannot hold the ${eot} text tokens`);
  return textTokens.map((token, i) => {
    const base = (firstRow + i) * nVocab;
    let max = -Infinity;
    for (let id = 0; id < eot; id++) max = Math.max(max, allLogits[base + id]!);
    if (!Number.isFinite(max)) throw new MurmurError('NUMERIC', `the logits at position ${firstRow + i} are not finite`);
    let total = 0;
    for (let id = 0; id < eot; id++) total += Math.exp(allLogits[base + id]! - max);
    return Math.exp(allLogits[base + token]! - max) / total;
  });
}
