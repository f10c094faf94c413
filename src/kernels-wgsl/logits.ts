/**
 * The end of a decoder step on WebGPU: for each row of logits, drop the suppressed tokens (a
 * bitset), take the log-softmax over the rest and pick the top k (k ≤ 8) with their log-probs,
 * the first being the argmax. A step then reads back a few words per row instead of the
 * vocabulary-wide logits.
 *
 * One workgroup per row: each invocation scans a strided slice of the vocabulary keeping a
 * running max and sum of exponentials (online log-sum-exp) and its own top k, then the workgroup
 * merges those pairwise in a tree. Equal logits rank the lower token id first, as argmax does.
 */
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
  uniformWords,
  uploadStorage,
  type GpuRecording,
} from './wgsl-common.ts';

const KERNEL = 'logits';
const WORKGROUP = 128;
export const LOGITS_MAX_TOP_K = 8;
/** The id reported when a row has fewer than k unsuppressed tokens (its log-prob is -Infinity). */
export const LOGITS_NO_TOKEN = 0xffffffff;

/** Words per row of the result: k ids (u32), k log-probs (f32), then the row's log-sum-exp (f32). */
export function logitsResultWords(topK: number): number {
  return 2 * topK + 1;
}

function logitsShader(topK: number, masked: boolean): string {
  return /* wgsl */ `
struct Params { rows: u32, vocabulary: u32, groupsX: u32, maskStride: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> results: array<u32>;
${masked ? '@group(0) @binding(3) var<storage, read> mask: array<u32>;' : ''}

const K = ${topK}u;
const WORKGROUP = ${WORKGROUP}u;
const NO_TOKEN = 0xffffffffu;
// Stands in for -inf: below every real logit, and exp(MASKED - MASKED) = 1 keeps sums NaN-free.
const MASKED = -3.0e38;
const NEGATIVE_INFINITY_BITS = 0xff800000u;

var<workgroup> maxes: array<f32, ${WORKGROUP}>;
var<workgroup> sums: array<f32, ${WORKGROUP}>;
var<workgroup> candidateValues: array<f32, ${WORKGROUP * topK}>;
var<workgroup> candidateIds: array<u32, ${WORKGROUP * topK}>;

/** Whether (v, id) ranks before (w, other): larger value, or the same value and a lower id. */
fn ranksBefore(v: f32, id: u32, w: f32, other: u32) -> bool {
  return v > w || (v == w && id < other);
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) local: u32) {
  let row = group.x + group.y * params.groupsX;
  if (row >= params.rows) { return; }
  let base = row * params.vocabulary;
  ${masked ? 'let maskBase = row * params.maskStride;' : ''}

  var runningMax = MASKED;
  var runningSum = 0.0;
  var values: array<f32, K>;
  var ids: array<u32, K>;
  for (var j = 0u; j < K; j++) { values[j] = MASKED; ids[j] = NO_TOKEN; }

  // Ascending ids per invocation: a strict comparison keeps the lower id ahead on ties.
  for (var i = local; i < params.vocabulary; i += WORKGROUP) {
    ${masked ? 'if (((mask[maskBase + i / 32u] >> (i % 32u)) & 1u) != 0u) { continue; }' : ''}
    let v = logits[base + i];
    if (v > runningMax) {
      runningSum = runningSum * exp(runningMax - v) + 1.0;
      runningMax = v;
    } else {
      runningSum += exp(v - runningMax);
    }
    if (v > values[K - 1u]) {
      var j = K - 1u;
      while (j > 0u && values[j - 1u] < v) {
        values[j] = values[j - 1u];
        ids[j] = ids[j - 1u];
        j--;
      }
      values[j] = v;
      ids[j] = i;
    }
  }

  maxes[local] = runningMax;
  sums[local] = runningSum;
  for (var j = 0u; j < K; j++) {
    candidateValues[local * K + j] = values[j];
    candidateIds[local * K + j] = ids[j];
  }
  workgroupBarrier();

  for (var half = WORKGROUP / 2u; half > 0u; half /= 2u) {
    if (local < half) {
      let other = local + half;
      let m = max(maxes[local], maxes[other]);
      sums[local] = sums[local] * exp(maxes[local] - m) + sums[other] * exp(maxes[other] - m);
      maxes[local] = m;
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

  if (local == 0u) {
    let out = row * ${logitsResultWords(topK)}u;
    let logSumExp = maxes[0] + log(sums[0]);
    for (var j = 0u; j < K; j++) {
      let id = candidateIds[j];
      results[out + j] = id;
      if (id == NO_TOKEN) {
        results[out + K + j] = NEGATIVE_INFINITY_BITS;
      } else {
        results[out + K + j] = bitcast<u32>(candidateValues[j] - logSumExp);
      }
    }
    results[out + 2u * K] = select(NEGATIVE_INFINITY_BITS, bitcast<u32>(logSumExp), sums[0] > 0.0);
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
   * Suppressed tokens as a bitset (bit i % 32 of word i / 32 set: token i never chosen), one
   * ceil(vocabulary / 32)-word row shared by all rows, or one per row when `maskPerRow`.
   */
  mask?: GPUBuffer;
  maskPerRow?: boolean;
  /** [rows, logitsResultWords(topK)] u32 words, see logitsResultWords. */
  results: GPUBuffer;
}

export function recordLogits(recording: GpuRecording, args: LogitsArgs): void {
  const { rows, vocabulary, topK } = args;
  checkCount(KERNEL, 'rows', rows);
  checkCount(KERNEL, 'vocabulary', vocabulary);
  checkCount(KERNEL, 'topK', topK);
  if (topK > LOGITS_MAX_TOP_K) throw shapeError(`${KERNEL}: top ${topK} is more than the supported ${LOGITS_MAX_TOP_K}`);
  if (topK > vocabulary) throw shapeError(`${KERNEL}: top ${topK} of a vocabulary of ${vocabulary}`);
  const maskWords = Math.ceil(vocabulary / 32);
  checkBuffer(KERNEL, 'logits', args.logits, rows * vocabulary);
  checkBuffer(KERNEL, 'results', args.results, rows * logitsResultWords(topK));
  if (args.mask) checkBuffer(KERNEL, 'mask', args.mask, args.maskPerRow ? rows * maskWords : maskWords);
  const grid = foldedGrid(recording.device, KERNEL, rows);
  const params = uniformWords(recording, KERNEL, [rows, vocabulary, grid[0], args.maskPerRow ? maskWords : 0]);
  const label = `logits top${topK}${args.mask ? ' masked' : ''}`;
  const pipeline = cachedPipeline(recording.device, label, logitsShader(topK, args.mask !== undefined));
  recordDispatch(recording, label, pipeline, [params, args.logits, args.results, ...(args.mask ? [args.mask] : [])], grid);
}

export interface LogitsRow {
  /** The top k token ids, best first (ids[0] is the argmax); LOGITS_NO_TOKEN past the unsuppressed tokens. */
  ids: number[];
  /** Their log-probabilities under the log-softmax over the unsuppressed tokens. */
  logProbs: number[];
  /** log Σ exp(logit) over the unsuppressed tokens (-Infinity when all are suppressed). */
  logSumExp: number;
}

/** Splits the result words read back from a logits dispatch into rows. */
export function parseLogitsResults(words: Uint32Array, rows: number, topK: number): LogitsRow[] {
  const stride = logitsResultWords(topK);
  const floats = new Float32Array(words.buffer, words.byteOffset, words.length);
  return Array.from({ length: rows }, (_, r) => ({
    ids: Array.from(words.subarray(r * stride, r * stride + topK)),
    logProbs: Array.from(floats.subarray(r * stride + topK, r * stride + 2 * topK)),
    logSumExp: floats[r * stride + 2 * topK]!,
  }));
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
}

/** Uploads, runs and reads back one logits reduction (tests, experiments). */
export async function runLogits(device: GPUDevice, input: LogitsInput): Promise<LogitsRow[]> {
  const { rows, topK } = input;
  const vocabulary = input.logits.length / rows;
  if (!Number.isInteger(vocabulary)) throw shapeError(`${KERNEL}: ${input.logits.length} logits do not split into ${rows} rows`);
  const count = rows * logitsResultWords(topK);
  const logits = uploadStorage(device, 'logits', input.logits);
  const mask = input.mask ? uploadStorage(device, 'logits mask', input.mask) : undefined;
  const results = createStorage(device, 'logits results', count);
  try {
    await runRecorded(device, KERNEL, (recording) =>
      recordLogits(recording, { logits, rows, vocabulary, topK, mask, maskPerRow: input.maskPerRow, results }),
    );
    const floats = await readFloat32(device, results, count);
    return parseLogitsResults(new Uint32Array(floats.buffer, floats.byteOffset, floats.length), rows, topK);
  } finally {
    destroyAll([logits, mask, results]);
  }
}
