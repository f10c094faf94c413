/**
 * The end of a decoder step on WebGPU (WhisperOps.selectTokens): for each row of logits, apply
 * the suppression (a bitset shared by every row or one per row, plus a few token ranges per row)
 * and Whisper's "timestamps win" rule, take the log-softmax over what is left and pick the top k
 * (k ≤ 8) with their log-probabilities, the first being the argmax; also the raw log-sum-exp
 * (no-speech probability), a few raw logits (language detection) and the first NaN. A step then
 * reads back a few dozen bytes per row instead of the vocabulary-wide logits.
 *
 * One workgroup per row, two sweeps over the row. The first keeps, per invocation over a strided
 * slice, running (max, sum of exponentials) pairs — the text tokens left, the timestamp tokens
 * left, and every token — merged in a tree; that decides the timestamp rule and gives the
 * normaliser. The second sweep keeps each invocation's top k of the tokens left, merged pairwise
 * in a tree. Equal logits rank the lower token id first, as argmax does; suppressed tokens rank
 * after every possible one, lower ids first, at -Infinity (the order a full sort gives).
 */
import type { TokenSelection } from '../core/model/ops.ts';
import { TOKEN_SELECTION_MAX_K } from '../core/model/ops.ts';
import { readFloat32 } from './device.ts';
import {
  cachedPipeline,
  checkBuffer,
  checkCount,
  createStorage,
  destroyAll,
  foldedGrid,
  recordDispatch,
  runRecorded,
  shapeError,
  temporaryBuffer,
  uniformWords,
  uploadStorage,
  type GpuRecording,
} from './wgsl-common.ts';

const KERNEL = 'logits';
const WORKGROUP = 128;
export const LOGITS_MAX_TOP_K = TOKEN_SELECTION_MAX_K;
/** Stands for "none" in u32 fields: no timestamp rule, no NaN. */
const NONE = 0xffffffff;
/** Words per row after the top k: log-sum-exp, raw log-sum-exp, timestamp log-sum-exp, best text logit, rule applied, first NaN. */
const SUMMARY_WORDS = 6;

/** Words per row of the result: k ids (u32), k log-probs (f32), the summary, then the gathered logits. */
export function logitsResultWords(topK: number, gathered = 0): number {
  return 2 * topK + SUMMARY_WORDS + gathered;
}

function logitsShader(topK: number): string {
  return /* wgsl */ `
struct Params {
  rows: u32, vocabulary: u32, groupsX: u32, maskStride: u32,
  hasMask: u32, rangesPerRow: u32, timestampBegin: u32, gatherCount: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> results: array<u32>;
@group(0) @binding(3) var<storage, read> mask: array<u32>;
@group(0) @binding(4) var<storage, read> ranges: array<u32>;
@group(0) @binding(5) var<storage, read> gatherIds: array<u32>;

const K = ${topK}u;
const WORKGROUP = ${WORKGROUP}u;
const NONE = ${NONE}u;
// Stands in for -inf: below every real logit, and exp(MASKED - MASKED) = 1 keeps sums NaN-free.
const MASKED = -3.0e38;
const NEGATIVE_INFINITY_BITS = 0xff800000u;
// Running (max, sum of exp(v - max)) pairs: text tokens left, timestamp tokens left, every token.
const TEXT = 0u;
const STAMPS = 1u;
const ALL = 2u;

var<workgroup> pairs: array<vec2f, ${3 * WORKGROUP}>;
var<workgroup> nans: array<u32, ${WORKGROUP}>;
var<workgroup> candidateValues: array<f32, ${WORKGROUP * topK}>;
var<workgroup> candidateIds: array<u32, ${WORKGROUP * topK}>;

/** Whether (v, id) ranks before (w, other): larger value, or the same value and a lower id. */
fn ranksBefore(v: f32, id: u32, w: f32, other: u32) -> bool {
  return v > w || (v == w && id < other);
}

// By bits: shader compilers may assume floats are never NaN.
fn isNan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn suppressed(row: u32, i: u32) -> bool {
  if (params.hasMask != 0u && ((mask[row * params.maskStride + i / 32u] >> (i % 32u)) & 1u) != 0u) { return true; }
  let base = row * params.rangesPerRow * 2u;
  for (var r = 0u; r < params.rangesPerRow; r++) {
    if (i >= ranges[base + 2u * r] && i < ranges[base + 2u * r + 1u]) { return true; }
  }
  return false;
}

fn include(pair: vec2f, v: f32) -> vec2f {
  if (v > pair.x) { return vec2f(v, pair.y * exp(pair.x - v) + 1.0); }
  return vec2f(pair.x, pair.y + exp(v - pair.x));
}

fn merge(a: vec2f, b: vec2f) -> vec2f {
  let m = max(a.x, b.x);
  return vec2f(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

fn logSumExpBits(pair: vec2f) -> u32 {
  return select(NEGATIVE_INFINITY_BITS, bitcast<u32>(pair.x + log(pair.y)), pair.y > 0.0);
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) local: u32) {
  let row = group.x + group.y * params.groupsX;
  if (row >= params.rows) { return; }
  let base = row * params.vocabulary;
  let stampsBegin = params.timestampBegin;

  // Sweep 1: the normalisers.
  var text = vec2f(MASKED, 0.0);
  var stamps = vec2f(MASKED, 0.0);
  var all = vec2f(MASKED, 0.0);
  var firstNan = NONE;
  for (var i = local; i < params.vocabulary; i += WORKGROUP) {
    let v = logits[base + i];
    if (isNan(v)) {
      firstNan = min(firstNan, i);
      continue;
    }
    if (!(v > MASKED)) { continue; } // -inf adds nothing
    all = include(all, v);
    if (!suppressed(row, i)) {
      if (i >= stampsBegin) { stamps = include(stamps, v); } else { text = include(text, v); }
    }
  }
  pairs[TEXT * WORKGROUP + local] = text;
  pairs[STAMPS * WORKGROUP + local] = stamps;
  pairs[ALL * WORKGROUP + local] = all;
  nans[local] = firstNan;
  workgroupBarrier();
  for (var half = WORKGROUP / 2u; half > 0u; half /= 2u) {
    if (local < half) {
      for (var p = 0u; p < 3u; p++) {
        pairs[p * WORKGROUP + local] = merge(pairs[p * WORKGROUP + local], pairs[p * WORKGROUP + local + half]);
      }
      nans[local] = min(nans[local], nans[local + half]);
    }
    workgroupBarrier();
  }
  text = pairs[TEXT * WORKGROUP];
  stamps = pairs[STAMPS * WORKGROUP];
  all = pairs[ALL * WORKGROUP];
  // The timestamps win when their log-sum-exp beats the best text logit (-inf for no text left).
  let rule = stampsBegin != NONE;
  let stampsLogSumExp = stamps.x + log(stamps.y);
  let textWins = text.y > 0.0 && !(stampsLogSumExp > text.x);
  let suppressText = rule && stamps.y > 0.0 && !textWins;
  var left = merge(text, stamps);
  if (suppressText) { left = stamps; }
  let logSumExp = left.x + log(left.y);

  // Sweep 2: the top k of what is left.
  var values: array<f32, K>;
  var ids: array<u32, K>;
  for (var j = 0u; j < K; j++) { values[j] = MASKED; ids[j] = NONE; }
  // Ascending ids per invocation: a token only displaces an equal value when that is a placeholder.
  for (var i = local; i < params.vocabulary; i += WORKGROUP) {
    let v = logits[base + i];
    var value = MASKED;
    if (!isNan(v) && v > MASKED && !(suppressText && i < stampsBegin) && !suppressed(row, i)) { value = v; }
    if (ranksBefore(value, i, values[K - 1u], ids[K - 1u])) {
      var j = K - 1u;
      while (j > 0u && ranksBefore(value, i, values[j - 1u], ids[j - 1u])) {
        values[j] = values[j - 1u];
        ids[j] = ids[j - 1u];
        j--;
      }
      values[j] = value;
      ids[j] = i;
    }
  }
  for (var j = 0u; j < K; j++) {
    candidateValues[local * K + j] = values[j];
    candidateIds[local * K + j] = ids[j];
  }
  workgroupBarrier();
  for (var half = WORKGROUP / 2u; half > 0u; half /= 2u) {
    if (local < half) {
      let other = local + half;
      // Merge two sorted lists, keeping the first K.
      var a = 0u;
      var b = 0u;
      for (var j = 0u; j < K; j++) {
        let va = candidateValues[local * K + a];
        let ia = candidateIds[local * K + a];
        let vb = candidateValues[other * K + b];
        let ib = candidateIds[other * K + b];
        if (b >= K || (a < K && ranksBefore(va, ia, vb, ib))) {
          values[j] = va;
          ids[j] = ia;
          a++;
        } else {
          values[j] = vb;
          ids[j] = ib;
          b++;
        }
      }
      for (var j = 0u; j < K; j++) {
        candidateValues[local * K + j] = values[j];
        candidateIds[local * K + j] = ids[j];
      }
    }
    workgroupBarrier();
  }

  let out = row * (${logitsResultWords(topK)}u + params.gatherCount);
  if (local == 0u) {
    for (var j = 0u; j < K; j++) {
      results[out + j] = candidateIds[j];
      let value = candidateValues[j];
      results[out + K + j] = select(bitcast<u32>(value - logSumExp), NEGATIVE_INFINITY_BITS, value == MASKED || left.y == 0.0);
    }
    results[out + 2u * K] = logSumExpBits(left);
    results[out + 2u * K + 1u] = logSumExpBits(all);
    results[out + 2u * K + 2u] = select(NEGATIVE_INFINITY_BITS, logSumExpBits(stamps), rule);
    results[out + 2u * K + 3u] = select(NEGATIVE_INFINITY_BITS, bitcast<u32>(text.x), rule && text.y > 0.0);
    results[out + 2u * K + 4u] = select(0u, 1u, suppressText);
    results[out + 2u * K + 5u] = nans[0];
  }
  for (var g = local; g < params.gatherCount; g += WORKGROUP) {
    results[out + ${logitsResultWords(topK)}u + g] = bitcast<u32>(logits[base + gatherIds[g]]);
  }
}
`;
}

export interface LogitsArgs {
  /** [rows, vocabulary] f32. */
  logits: GPUBuffer;
  rows: number;
  vocabulary: number;
  /** 1..LOGITS_MAX_TOP_K. */
  topK: number;
  /**
   * Suppressed tokens as a bitset (bit i % 32 of word i / 32 set: token i suppressed), one
   * ceil(vocabulary / 32)-word row shared by all rows, or one per row when `maskPerRow`.
   */
  mask?: GPUBuffer;
  maskPerRow?: boolean;
  /** Per row, more suppressed ranges [from, to) (at most a few: every token checks each). */
  ranges?: readonly (readonly (readonly [number, number])[])[];
  /** Whisper's timestamp rule over [timestampBegin, vocabulary). */
  timestampBegin?: number;
  /** Token ids whose raw logits are copied into each row's result. */
  gather?: readonly number[];
  /** [rows, logitsResultWords(topK, gather.length)] u32 words. */
  results: GPUBuffer;
}

export function recordLogits(recording: GpuRecording, args: LogitsArgs): void {
  const { rows, vocabulary, topK, ranges, timestampBegin, gather = [] } = args;
  checkCount(KERNEL, 'rows', rows);
  checkCount(KERNEL, 'vocabulary', vocabulary);
  checkCount(KERNEL, 'topK', topK);
  if (topK > LOGITS_MAX_TOP_K) throw shapeError(`${KERNEL}: top ${topK} is more than the supported ${LOGITS_MAX_TOP_K}`);
  if (topK > vocabulary) throw shapeError(`${KERNEL}: top ${topK} of a vocabulary of ${vocabulary}`);
  if (vocabulary >= NONE) throw shapeError(`${KERNEL}: a vocabulary of ${vocabulary} tokens`);
  if (ranges && ranges.length !== rows) throw shapeError(`${KERNEL}: ${ranges.length} rows of ranges for ${rows} rows`);
  if (timestampBegin !== undefined && !(Number.isInteger(timestampBegin) && timestampBegin >= 0 && timestampBegin <= vocabulary)) {
    throw shapeError(`${KERNEL}: timestampBegin ${timestampBegin} outside a vocabulary of ${vocabulary}`);
  }
  for (const id of gather) if (!Number.isInteger(id) || id < 0 || id >= vocabulary) throw shapeError(`${KERNEL}: gather of token ${id} outside a vocabulary of ${vocabulary}`);
  const maskWords = Math.ceil(vocabulary / 32);
  checkBuffer(KERNEL, 'logits', args.logits, rows * vocabulary);
  checkBuffer(KERNEL, 'results', args.results, rows * logitsResultWords(topK, gather.length));
  if (args.mask) checkBuffer(KERNEL, 'mask', args.mask, args.maskPerRow ? rows * maskWords : maskWords);

  const rangesPerRow = Math.max(0, ...(ranges ?? []).map((r) => r.length));
  const rangeWords = new Uint32Array(Math.max(1, rows * rangesPerRow * 2));
  ranges?.forEach((rowRanges, r) =>
    rowRanges.forEach(([from, to], i) => {
      // Clamped into the vocabulary; padding stays the empty range [0, 0).
      rangeWords[(r * rangesPerRow + i) * 2] = Math.min(Math.max(from, 0), vocabulary);
      rangeWords[(r * rangesPerRow + i) * 2 + 1] = Math.min(Math.max(to, 0), vocabulary);
    }),
  );
  const grid = foldedGrid(recording.device, KERNEL, rows);
  const params = uniformWords(recording, KERNEL, [
    rows,
    vocabulary,
    grid[0],
    args.maskPerRow ? maskWords : 0,
    args.mask ? 1 : 0,
    rangesPerRow,
    timestampBegin ?? NONE,
    gather.length,
  ]);
  const mask = args.mask ?? temporaryBuffer(recording, 'logits no mask', new Uint32Array(1).buffer, 'storage');
  const rangeBuffer = temporaryBuffer(recording, 'logits ranges', rangeWords.buffer, 'storage');
  const gatherBuffer = temporaryBuffer(recording, 'logits gather', new Uint32Array(gather.length > 0 ? gather : [0]).buffer, 'storage');
  const label = `logits top${topK}`;
  const pipeline = cachedPipeline(recording.device, label, logitsShader(topK));
  recordDispatch(recording, label, pipeline, [params, args.logits, args.results, mask, rangeBuffer, gatherBuffer], grid);
}

/** Splits the result words read back from a logits dispatch into rows. */
export function parseLogitsResults(words: Uint32Array, rows: number, topK: number, gathered = 0): TokenSelection[] {
  const stride = logitsResultWords(topK, gathered);
  const floats = new Float32Array(words.buffer, words.byteOffset, words.length);
  return Array.from({ length: rows }, (_, r) => {
    const at = r * stride;
    const summary = at + 2 * topK;
    const nan = words[summary + 5]!;
    return {
      ids: Array.from(words.subarray(at, at + topK)),
      logProbs: Array.from(floats.subarray(at + topK, at + 2 * topK)),
      logSumExp: floats[summary]!,
      rawLogSumExp: floats[summary + 1]!,
      timestampLogSumExp: floats[summary + 2]!,
      maxTextLogit: floats[summary + 3]!,
      timestampsWin: words[summary + 4] === 1,
      gathered: Array.from(floats.subarray(summary + SUMMARY_WORDS, summary + SUMMARY_WORDS + gathered)),
      nanToken: nan === NONE ? -1 : nan,
    };
  });
}

/** Packs a per-token suppression flag array (non-zero: suppressed) into the bitset the kernel reads. */
export function packSuppressionMask(suppressed: ArrayLike<number>): Uint32Array {
  const words = new Uint32Array(Math.ceil(suppressed.length / 32));
  for (let i = 0; i < suppressed.length; i++) if (suppressed[i]) words[i >>> 5]! |= 1 << (i & 31);
  return words;
}

export interface LogitsInput {
  logits: Float32Array;
  rows: number;
  topK: number;
  /** Packed bitset (packSuppressionMask), shared or one per row. */
  mask?: Uint32Array;
  maskPerRow?: boolean;
  ranges?: LogitsArgs['ranges'];
  timestampBegin?: number;
  gather?: readonly number[];
}

/** Uploads, runs and reads back one logits reduction (tests, experiments). */
export async function runLogits(device: GPUDevice, input: LogitsInput): Promise<TokenSelection[]> {
  const { rows, topK } = input;
  const vocabulary = input.logits.length / rows;
  if (!Number.isInteger(vocabulary)) throw shapeError(`${KERNEL}: ${input.logits.length} logits do not split into ${rows} rows`);
  const gathered = input.gather?.length ?? 0;
  const count = rows * logitsResultWords(topK, gathered);
  const logits = uploadStorage(device, 'logits', input.logits);
  const mask = input.mask ? uploadStorage(device, 'logits mask', input.mask) : undefined;
  const results = createStorage(device, 'logits results', count);
  try {
    await runRecorded(device, KERNEL, (recording) =>
      recordLogits(recording, { logits, rows, vocabulary, topK, mask, maskPerRow: input.maskPerRow, ranges: input.ranges, timestampBegin: input.timestampBegin, gather: input.gather, results }),
    );
    const floats = await readFloat32(device, results, count);
    return parseLogitsResults(new Uint32Array(floats.buffer, floats.byteOffset, floats.length), rows, topK, gathered);
  } finally {
    destroyAll([logits, mask, results]);
  }
}
