// Cases, inputs and reference results for the WGSL kernels (attention, layer norm, conv1d,
// embeddings, logits), shared by the Node and browser tests: a case is a plain object, so the
// browser page rebuilds the same inputs from it and only the GPU's output crosses the boundary.
// Nothing here imports node:*.
import { encodeTensor } from '../../src/core/model/dtype.ts';
import type { Conv1dOptions } from '../../src/core/model/ops.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import { gelu } from '../../src/core/reference/math.ts';
import { runAttention } from '../../src/kernels-wgsl/attention.ts';
import { convOutputFrames, runConv1d } from '../../src/kernels-wgsl/conv.ts';
import { runAddPositionalEmbedding, runEmbed } from '../../src/kernels-wgsl/embedding.ts';
import { runLayerNorm, type LayerNormVariant } from '../../src/kernels-wgsl/layernorm.ts';
import type { AttentionVariant, ConvVariant } from '../../src/kernels-wgsl/variants.ts';
import { packSuppressionMask, runLogits } from '../../src/kernels-wgsl/logits.ts';
import type { TokenSelection } from '../../src/core/model/ops.ts';

/** What the logits tests compare: ids exactly, log-probs and the normaliser within a tolerance. */
export type LogitsRow = Pick<TokenSelection, 'ids' | 'logProbs' | 'logSumExp'>;
import { testValues } from './smoke-reference.ts';

const { ops } = createReferenceBackend();

/**
 * The first value off by more than `tolerance` × max(1, |expected|), with the worst scaled error,
 * or undefined when all match. NaN never matches.
 */
export function scaledMismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-4): string | undefined {
  if (actual.length !== expected.length) return `${actual.length} values, expected ${expected.length}`;
  let worst = 0;
  let first: string | undefined;
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(actual[i]! - expected[i]!) / Math.max(1, Math.abs(expected[i]!));
    if (!(error <= tolerance)) {
      first ??= `index ${i}: got ${actual[i]}, expected ${expected[i]}`;
      worst = Number.isNaN(error) ? NaN : Math.max(worst, error);
    }
  }
  return first && `${first} (worst scaled error ${worst.toExponential(2)})`;
}

// ---------------------------------------------------------------------------------------------
// Attention

export interface AttentionCase {
  name: string;
  heads: number;
  headDim: number;
  sequences: number;
  queryRows: number;
  capacity: number;
  length: number;
  shared: boolean;
  causal?: { queryOffset: number };
  returnWeights?: boolean;
}

export const ATTENTION_CASES: readonly AttentionCase[] = [
  { name: 'encoder self-attention, 97 keys, headDim 64', heads: 2, headDim: 64, sequences: 1, queryRows: 97, capacity: 97, length: 97, shared: true },
  { name: 'encoder self-attention, 300 keys, headDim 24', heads: 3, headDim: 24, sequences: 1, queryRows: 300, capacity: 300, length: 300, shared: true },
  {
    name: 'decoder step over a KV cache of 3 sequences (causal, 37 of 448 rows)',
    heads: 2, headDim: 64, sequences: 3, queryRows: 1, capacity: 448, length: 37, shared: false, causal: { queryOffset: 36 },
  },
  {
    name: 'decoder prompt of 9 rows after 20 cached (causal, headDim 24)',
    heads: 2, headDim: 24, sequences: 2, queryRows: 9, capacity: 448, length: 29, shared: false, causal: { queryOffset: 20 },
  },
  {
    name: 'decoder prompt of 5 rows from position 0 (causal)',
    heads: 1, headDim: 64, sequences: 1, queryRows: 5, capacity: 448, length: 5, shared: false, causal: { queryOffset: 0 },
  },
  {
    name: 'cross-attention shared by 3 sequences, with weights (297 of 300 keys)',
    heads: 2, headDim: 64, sequences: 3, queryRows: 2, capacity: 300, length: 297, shared: true, returnWeights: true,
  },
  {
    name: 'cross-attention of 1 sequence, headDim 24, with weights',
    heads: 3, headDim: 24, sequences: 1, queryRows: 3, capacity: 97, length: 97, shared: true, returnWeights: true,
  },
  {
    name: 'causal self-attention with weights (zeros past each row\'s keys)',
    heads: 2, headDim: 24, sequences: 2, queryRows: 3, capacity: 448, length: 10, shared: false, causal: { queryOffset: 7 }, returnWeights: true,
  },
];

function attentionInputs(c: AttentionCase) {
  const cols = c.heads * c.headDim;
  const keyRows = c.shared ? c.capacity : c.sequences * c.capacity;
  return {
    cols,
    keyRows,
    // Queries spread wider than keys so some softmax rows are peaked and others flat.
    q: testValues(c.sequences * c.queryRows * cols, { seed: 11 + c.queryRows, range: 2 }),
    key: testValues(keyRows * cols, { seed: 12 + c.length, range: 1 }),
    value: testValues(keyRows * cols, { seed: 13 + c.capacity, range: 1 }),
  };
}

export function referenceAttention(c: AttentionCase): { output: Float32Array; weights?: Float32Array } {
  const { cols, keyRows, q, key, value } = attentionInputs(c);
  const result = ops.attention(
    ops.upload(q, c.sequences * c.queryRows, cols),
    { key: ops.upload(key, keyRows, cols), value: ops.upload(value, keyRows, cols), capacity: c.capacity, length: c.length, shared: c.shared },
    { heads: c.heads, sequences: c.sequences, causal: c.causal, returnWeights: c.returnWeights },
  );
  return { output: result.output.data, ...(result.weights ? { weights: result.weights.data } : {}) };
}

export function runGpuAttention(device: GPUDevice, c: AttentionCase, variant?: AttentionVariant): Promise<{ output: Float32Array; weights?: Float32Array }> {
  const { cols, q, key, value } = attentionInputs(c);
  return runAttention(device, {
    q, key, value, cols,
    heads: c.heads, sequences: c.sequences, capacity: c.capacity, length: c.length, shared: c.shared,
    causal: c.causal, returnWeights: c.returnWeights, variant,
  });
}

// ---------------------------------------------------------------------------------------------
// Layer norm

export interface LayerNormCase {
  rows: number;
  cols: number;
  /** Added to every input: a large mean tests the two-pass variance. */
  offset: number;
}

export const LAYER_NORM_CASES: readonly LayerNormCase[] = [
  { rows: 1, cols: 1, offset: 0 },
  { rows: 3, cols: 5, offset: 0 },
  { rows: 5, cols: 384, offset: 0 },
  { rows: 7, cols: 1001, offset: 100 },
  { rows: 2, cols: 1280, offset: -3 },
];

function layerNormInputs(c: LayerNormCase) {
  return {
    x: testValues(c.rows * c.cols, { seed: 21 + c.cols, range: 2 }).map((v) => v + c.offset),
    gamma: testValues(c.cols, { seed: 22 + c.cols, range: 1.5 }),
    beta: testValues(c.cols, { seed: 23 + c.cols, range: 0.5 }),
  };
}

export function referenceLayerNorm(c: LayerNormCase): Float32Array {
  const { x, gamma, beta } = layerNormInputs(c);
  return ops.layerNorm(ops.upload(x, c.rows, c.cols), {
    weight: encodeTensor(gamma, [c.cols], 'f32'),
    bias: encodeTensor(beta, [c.cols], 'f32'),
  }).data;
}

export function runGpuLayerNorm(device: GPUDevice, c: LayerNormCase, variant?: LayerNormVariant): Promise<Float32Array> {
  const { x, gamma, beta } = layerNormInputs(c);
  return runLayerNorm(device, x, c.rows, gamma, beta, variant);
}

// ---------------------------------------------------------------------------------------------
// Convolution

export interface ConvCase extends Conv1dOptions {
  name: string;
  frames: number;
  inChannels: number;
  outChannels: number;
  bias: boolean;
}

export const CONV_CASES: readonly ConvCase[] = [
  { name: 'conv1: 80 mels channels-first, 37 frames, stride 1, GELU', frames: 37, inChannels: 80, outChannels: 24, stride: 1, inputLayout: 'channels-first', gelu: true, bias: true },
  { name: 'conv2: time-major, 37 frames, stride 2, GELU', frames: 37, inChannels: 24, outChannels: 20, stride: 2, inputLayout: 'time-major', gelu: true, bias: true },
  { name: 'stride 2 over an even frame count, no GELU', frames: 16, inChannels: 7, outChannels: 65, stride: 2, inputLayout: 'time-major', bias: true },
  { name: 'one frame, channels-first, stride 2, no bias', frames: 1, inChannels: 3, outChannels: 5, stride: 2, inputLayout: 'channels-first', gelu: true, bias: false },
];

function convInputs(c: ConvCase) {
  // Inputs wide enough that the GELU sees both tails and the bend.
  return {
    x: testValues(c.frames * c.inChannels, { seed: 31 + c.frames, range: 2 }),
    weight: testValues(c.outChannels * c.inChannels * 3, { seed: 32 + c.outChannels, range: 3 / Math.sqrt(c.inChannels) }),
    bias: c.bias ? testValues(c.outChannels, { seed: 33, range: 1 }) : undefined,
  };
}

export function referenceConv(c: ConvCase): Float32Array {
  const { x, weight, bias } = convInputs(c);
  const input = c.inputLayout === 'channels-first' ? ops.upload(x, c.inChannels, c.frames) : ops.upload(x, c.frames, c.inChannels);
  const weights = { weight: encodeTensor(weight, [c.outChannels, c.inChannels, 3], 'f32'), bias: bias && encodeTensor(bias, [c.outChannels], 'f32') };
  const y = ops.conv1d(input, weights, { stride: c.stride, inputLayout: c.inputLayout, gelu: c.gelu });
  if (y.rows !== convOutputFrames(c.frames, c.stride)) throw new Error('conv output frames disagree with the reference');
  return y.data;
}

export function runGpuConv(device: GPUDevice, c: ConvCase, variant?: ConvVariant): Promise<Float32Array> {
  const { x, weight, bias } = convInputs(c);
  return runConv1d(device, { ...c, x, weight, bias, variant });
}

/** GELU inputs over [-10, 10] in steps of 1/200: both tails, the bend and zero. */
const GELU_INPUTS = Float32Array.from({ length: 4001 }, (_, i) => -10 + i / 200);

export function referenceGelu(): Float32Array {
  return Float32Array.from(GELU_INPUTS, (v) => gelu(v));
}

/** The conv kernel's fused GELU alone: one channel and the kernel [0, 1, 0] pass x straight through. */
export function runGpuGelu(device: GPUDevice): Promise<Float32Array> {
  return runConv1d(device, {
    x: GELU_INPUTS, frames: GELU_INPUTS.length, inChannels: 1, outChannels: 1, weight: new Float32Array([0, 1, 0]),
    stride: 1, inputLayout: 'time-major', gelu: true,
  });
}

// ---------------------------------------------------------------------------------------------
// Embeddings

export interface EmbedCase {
  vocabulary: number;
  contexts: number;
  width: number;
  tokens: number[];
  positions: number[];
}

export const EMBED_CASE: EmbedCase = { vocabulary: 103, contexts: 17, width: 37, tokens: [0, 102, 5, 5, 77], positions: [0, 16, 3, 4, 9] };

function embedTables(c: EmbedCase) {
  return {
    tokenEmbedding: testValues(c.vocabulary * c.width, { seed: 41, range: 1 }),
    positionalEmbedding: testValues(c.contexts * c.width, { seed: 42, range: 1 }),
  };
}

export function referenceEmbed(c: EmbedCase): Float32Array {
  const { tokenEmbedding, positionalEmbedding } = embedTables(c);
  return ops.embed(c.tokens, c.positions, encodeTensor(tokenEmbedding, [c.vocabulary, c.width], 'f32'), encodeTensor(positionalEmbedding, [c.contexts, c.width], 'f32')).data;
}

export function runGpuEmbed(device: GPUDevice, c: EmbedCase): Promise<Float32Array> {
  const { tokenEmbedding, positionalEmbedding } = embedTables(c);
  return runEmbed(device, c.tokens, c.positions, tokenEmbedding, positionalEmbedding, c.width);
}

export interface PositionsCase {
  rows: number;
  cols: number;
  tableRows: number;
}

export const POSITIONS_CASE: PositionsCase = { rows: 13, cols: 37, tableRows: 20 };

function positionsInputs(c: PositionsCase) {
  return { x: testValues(c.rows * c.cols, { seed: 51, range: 3 }), table: testValues(c.tableRows * c.cols, { seed: 52, range: 1 }) };
}

export function referencePositions(c: PositionsCase): Float32Array {
  const { x, table } = positionsInputs(c);
  return ops.addPositionalEmbedding(ops.upload(x, c.rows, c.cols), encodeTensor(table, [c.tableRows, c.cols], 'f32')).data;
}

export function runGpuPositions(device: GPUDevice, c: PositionsCase): Promise<Float32Array> {
  const { x, table } = positionsInputs(c);
  return runAddPositionalEmbedding(device, x, c.rows, table);
}

// ---------------------------------------------------------------------------------------------
// Logits

export interface LogitsCase {
  name: string;
  rows: number;
  vocabulary: number;
  topK: number;
  /** none; a shared mask (every 7th token and row 0's best three); or a mask per row (each row's best three). */
  mask: 'none' | 'shared' | 'per-row';
  /** Every logit equal: ties must rank the lower id first. */
  ties?: boolean;
}

export const WHISPER_VOCABULARY = 51865;

export const LOGITS_CASES: readonly LogitsCase[] = [
  { name: '1 row, argmax only', rows: 1, vocabulary: WHISPER_VOCABULARY, topK: 1, mask: 'none' },
  { name: '2 rows, top 5, shared mask', rows: 2, vocabulary: WHISPER_VOCABULARY, topK: 5, mask: 'shared' },
  { name: '3 rows, top 8, mask per row', rows: 3, vocabulary: WHISPER_VOCABULARY, topK: 8, mask: 'per-row' },
  { name: 'equal logits rank the lower id first', rows: 1, vocabulary: 1000, topK: 4, mask: 'none', ties: true },
];

/** Distinct values: a permutation of an evenly spaced grid over [-12, 12) per row. */
function logitsInputs(c: LogitsCase) {
  const logits = new Float32Array(c.rows * c.vocabulary);
  for (let r = 0; r < c.rows; r++) {
    if (c.ties) continue;
    const order = Array.from({ length: c.vocabulary }, (_, i) => i);
    const random = testValues(c.vocabulary, { seed: 61 + r, range: 1 });
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(((random[i]! + 1) / 2) * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let i = 0; i < c.vocabulary; i++) logits[r * c.vocabulary + i] = (order[i]! / c.vocabulary) * 24 - 12;
  }
  const suppressedRows: Uint8Array[] = [];
  if (c.mask !== 'none') {
    const maskRows = c.mask === 'shared' ? 1 : c.rows;
    for (let r = 0; r < maskRows; r++) {
      const suppressed = new Uint8Array(c.vocabulary);
      if (c.mask === 'shared') for (let i = 0; i < c.vocabulary; i += 7) suppressed[i] = 1;
      for (const id of rankedIds(logits.subarray(r * c.vocabulary, (r + 1) * c.vocabulary), new Uint8Array(c.vocabulary)).slice(0, 3)) suppressed[id] = 1;
      suppressedRows.push(suppressed);
    }
  }
  const mask = suppressedRows.length > 0 ? concatWords(suppressedRows.map(packSuppressionMask)) : undefined;
  return { logits, suppressedRows, mask };
}

function concatWords(parts: Uint32Array[]): Uint32Array {
  const out = new Uint32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Unsuppressed ids by descending value, lower id first on ties. */
function rankedIds(row: ArrayLike<number>, suppressed: Uint8Array): number[] {
  const ids: number[] = [];
  for (let i = 0; i < row.length; i++) if (!suppressed[i]) ids.push(i);
  return ids.sort((a, b) => row[b]! - row[a]! || a - b);
}

/** In double: the log-softmax over the unsuppressed tokens and its top k. */
export function referenceLogits(c: LogitsCase): LogitsRow[] {
  const { logits, suppressedRows } = logitsInputs(c);
  return Array.from({ length: c.rows }, (_, r) => {
    const row = logits.subarray(r * c.vocabulary, (r + 1) * c.vocabulary);
    const suppressed = suppressedRows[c.mask === 'shared' ? 0 : r] ?? new Uint8Array(c.vocabulary);
    let max = -Infinity;
    for (let i = 0; i < row.length; i++) if (!suppressed[i]) max = Math.max(max, row[i]!);
    let sum = 0;
    for (let i = 0; i < row.length; i++) if (!suppressed[i]) sum += Math.exp(row[i]! - max);
    const logSumExp = max + Math.log(sum);
    const ids = rankedIds(row, suppressed).slice(0, c.topK);
    const possible = ids.length;
    // Fewer possible tokens than k: the lowest suppressed ids follow, at -Infinity.
    for (let id = 0; ids.length < c.topK; id++) if (suppressed[id]) ids.push(id);
    return { ids, logProbs: ids.map((id, j) => (j >= possible ? -Infinity : row[id]! - logSumExp)), logSumExp };
  });
}

export function runGpuLogits(device: GPUDevice, c: LogitsCase): Promise<LogitsRow[]> {
  const { logits, mask } = logitsInputs(c);
  return runLogits(device, { logits, rows: c.rows, topK: c.topK, mask, maskPerRow: c.mask === 'per-row' });
}

/** Where the GPU's rows differ from the reference: ids exactly, log-probs within `tolerance`. */
export function logitsMismatch(actual: readonly LogitsRow[], expected: readonly LogitsRow[], tolerance = 1e-4): string | undefined {
  if (actual.length !== expected.length) return `${actual.length} rows, expected ${expected.length}`;
  for (let r = 0; r < expected.length; r++) {
    const a = actual[r]!;
    const e = expected[r]!;
    if (a.ids.join() !== e.ids.join()) return `row ${r}: ids [${a.ids}], expected [${e.ids}]`;
    const logProbs = scaledMismatch(a.logProbs, e.logProbs, tolerance);
    if (logProbs) return `row ${r} log-probs: ${logProbs}`;
    const logSumExp = scaledMismatch([a.logSumExp], [e.logSumExp], tolerance);
    if (logSumExp) return `row ${r} log-sum-exp: ${logSumExp}`;
  }
  return undefined;
}
