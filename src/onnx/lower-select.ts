/**
 * WhisperOps.selectTokens inside the graph: the end of a decoder step that returns, per row of
 * logits, the few numbers decoding chooses from (the k best tokens, log-sum-exps, the timestamp
 * rule, gathered logits) instead of the vocabulary. Suppression comes in as a fixed bool mask and
 * per-row token ranges [rows, ranges, 2]; the gathered ids and timestampBegin are inputs too, so
 * every request of a batch size and a topK lowers to the same graph (decoding asks one topK per
 * search: 1 greedy, beam size + 1 for beams). Only ops WebNN's execution provider takes
 * (webnn-ops.ts): the best tokens are k rounds of ArgMax, not TopK. It follows selectTokensOnHost
 * (src/core/decoding/select-tokens.ts) in f32.
 */
import type { TokenSelection, TokenSelectionRequest } from '../core/model/ops.ts';
import { DataType } from './onnx-schema.ts';
import type { GraphBuilder } from './graph.ts';
import type { Lowering, TraceValue } from './lowering.ts';
import { roundUp } from '../core/layout/shape.ts';

export interface SelectionFeed {
  readonly request: TokenSelectionRequest;
  readonly rows: number;
  readonly cols: number;
}

/** Suppressed ranges per row are fed in groups of this many. */
export const RANGE_BUCKET = 4;

/** Per row: logSumExp, rawLogSumExp, timestampLogSumExp, maxTextLogit, timestampsWin (0/1), nanToken. */
const STATS = 6;

/** ids [rows, k], logProbs [rows, k], stats [rows, STATS], gathered [rows, max(1, gather)]. */
export function selectionShapes({ request, rows }: SelectionFeed): { rows: number; cols: number }[] {
  const k = request.topK;
  return [
    { rows, cols: k },
    { rows, cols: k },
    { rows, cols: STATS },
    { rows, cols: Math.max(1, request.gather?.length ?? 0) },
  ];
}

const expandedMasks = new WeakMap<Uint32Array, Uint8Array>();
function suppressionMask(words: Uint32Array | undefined, cols: number): Uint8Array {
  if (!words) return new Uint8Array(cols);
  let mask = expandedMasks.get(words);
  if (!mask) {
    mask = Uint8Array.from({ length: cols }, (_, id) => (words[id >>> 5]! >>> (id & 31)) & 1);
    expandedMasks.set(words, mask);
  }
  return mask;
}

const overTokens = { axes: { ints: [1] }, keepdims: { int: 1 } };

/** log Σ exp over each row, [rows, 1]; -Infinity for a row with nothing left. */
function logSumExp(g: GraphBuilder, x: string): string {
  const max = g.node('ReduceMax', [x], overTokens);
  const shift = g.node('Where', [g.node('IsInf', [max]), g.float([0], []), max]);
  const total = g.node('ReduceSum', [g.node('Exp', [g.node('Sub', [x, shift])]), g.int64([1])], { keepdims: { int: 1 } });
  return g.node('Add', [g.node('Log', [total]), shift]);
}

/**
 * The k best tokens of each row, [rows, k] values and int64 ids, ranked as selectTokensOnHost's
 * topK ranks them: by value, ties to the lower id, and once only -Infinity is left, the lowest ids
 * not yet taken. k rounds of ReduceMax + ArgMax (first index of the maximum), each taking its pick
 * out of the running, instead of TopK, which WebNN's execution provider does not take.
 */
function bestTokens(g: GraphBuilder, scores: string, tokenIds: string, k: number): { values: string; indices: string } {
  const minusInfinity = g.float([-Infinity], []);
  const values: string[] = [];
  const indices: string[] = [];
  let remaining = scores;
  let untaken: string | undefined;
  for (let round = 0; round < k; round++) {
    const best = g.node('ReduceMax', [remaining], overTokens);
    let id = g.node('ArgMax', [remaining], { axis: { int: 1 }, keepdims: { int: 1 } });
    if (untaken !== undefined) {
      // Every token left is -Infinity, taken ones too: ArgMax would pick a taken id again.
      const firstUntaken = g.node('ArgMax', [g.node('Cast', [untaken], { to: { int: DataType.FLOAT } })], { axis: { int: 1 }, keepdims: { int: 1 } });
      id = g.node('Where', [g.node('Equal', [best, minusInfinity]), firstUntaken, id]);
    }
    values.push(best);
    indices.push(id);
    if (round === k - 1) break;
    const taken = g.node('Equal', [tokenIds, id]);
    const notTaken = g.node('Not', [taken]);
    untaken = untaken === undefined ? notTaken : g.node('And', [untaken, notTaken]);
    remaining = g.node('Where', [taken, minusInfinity, remaining]);
  }
  const concat = (parts: string[]) => (parts.length === 1 ? parts[0]! : g.node('Concat', parts, { axis: { int: 1 } }));
  return { values: concat(values), indices: concat(indices) };
}

export function lowerTokenSelection(L: Lowering, logits: TraceValue, outputs: readonly TraceValue[], { request, rows, cols }: SelectionFeed): void {
  const { g } = L;
  const raw = L.rowMajor(logits);
  const minusInfinity = g.float([-Infinity], []);
  const tokenIds = g.int64(Array.from({ length: cols }, (_, id) => id));

  const fixed = suppressionMask(request.suppress, cols);
  const suppressFixed = g.input(DataType.BOOL, [cols], () => fixed);
  const perRow = Array.from({ length: rows }, (_, r) => request.suppressRanges?.[r] ?? []);
  // Padded with empty [0, 0) ranges to a multiple of RANGE_BUCKET, so the few ranges a step suppresses rarely change the
  // input's shape: a provider that compiles one session per step shape (WebNN) needs few of them.
  const rangeCount = roundUp(Math.max(1, ...perRow.map((ranges) => ranges.length)), RANGE_BUCKET);
  const ranges = BigInt64Array.from(perRow.flatMap((list) => Array.from({ length: rangeCount }, (_, i) => list[i] ?? [0, 0]).flat()), (v) => BigInt(v));
  const rangeInput = g.input(DataType.INT64, [rows, 'ranges', 2], () => ranges, [rows, rangeCount, 2]);
  const bound = (at: number) => g.node('Slice', [rangeInput, g.int64([at]), g.int64([at + 1]), g.int64([2])]);
  const inRange = g.node('And', [g.node('GreaterOrEqual', [tokenIds, bound(0)]), g.node('Less', [tokenIds, bound(1)])]);
  const rangeSuppressed = g.node('Greater', [g.node('ReduceMax', [g.node('Cast', [inRange], { to: { int: DataType.FLOAT } })], { axes: { ints: [1] }, keepdims: { int: 0 } }), g.float([0], [])]);
  let masked = g.node('Where', [g.node('Or', [rangeSuppressed, suppressFixed]), minusInfinity, raw]);

  // The timestamp rule, applied after every suppression; without one, no token is a timestamp.
  const isText = g.node('Less', [tokenIds, g.int64Input([request.timestampBegin ?? cols], [1])]);
  const maxText = g.node('ReduceMax', [g.node('Where', [isText, masked, minusInfinity])], overTokens);
  const timestampLogSumExp = logSumExp(g, g.node('Where', [isText, minusInfinity, masked]));
  const timestampsWin = g.node('Greater', [timestampLogSumExp, maxText]);
  masked = g.node('Where', [g.node('And', [timestampsWin, isText]), minusInfinity, masked]);

  const normalizer = logSumExp(g, masked);
  const { values, indices } = bestTokens(g, masked, tokenIds, request.topK);
  const logProbs = g.node('Where', [g.node('IsInf', [normalizer]), minusInfinity, g.node('Sub', [values, normalizer])]);
  const gatherIds = request.gather && request.gather.length > 0 ? request.gather : [0];
  const gathered = g.node('Gather', [raw, g.int64Input(gatherIds, ['gathered'])], { axis: { int: 1 } });
  const nan = g.node('Cast', [g.node('IsNaN', [raw])], { to: { int: DataType.FLOAT } });
  const firstNaN = g.node('Cast', [g.node('ArgMax', [nan], { axis: { int: 1 }, keepdims: { int: 1 } })], { to: { int: DataType.FLOAT } });
  const nanToken = g.node('Where', [g.node('Greater', [g.node('ReduceMax', [nan], overTokens), g.float([0], [])]), firstNaN, g.float([-1], [])]);
  const stats = g.node('Concat', [normalizer, logSumExp(g, raw), timestampLogSumExp, maxText, g.node('Cast', [timestampsWin], { to: { int: DataType.FLOAT } }), nanToken], { axis: { int: 1 } });
  const results = [g.node('Cast', [indices], { to: { int: DataType.FLOAT } }), logProbs, stats, gathered];
  outputs.forEach((output, i) => L.defineRowMajor(output, results[i]!));
}

export function readTokenSelections([ids, logProbs, stats, gathered]: readonly Float32Array[], { request, rows }: SelectionFeed): TokenSelection[] {
  const k = request.topK;
  const gatherCount = request.gather?.length ?? 0;
  const gatherWidth = Math.max(1, gatherCount);
  const rule = request.timestampBegin !== undefined;
  return Array.from({ length: rows }, (_, r) => {
    const stat = (i: number) => stats![r * STATS + i]!;
    return {
      ids: Array.from(ids!.subarray(r * k, (r + 1) * k)),
      logProbs: Array.from(logProbs!.subarray(r * k, (r + 1) * k)),
      logSumExp: stat(0),
      rawLogSumExp: stat(1),
      timestampLogSumExp: rule ? stat(2) : -Infinity,
      maxTextLogit: rule ? stat(3) : -Infinity,
      timestampsWin: rule && stat(4) > 0.5,
      gathered: Array.from(gathered!.subarray(r * gatherWidth, r * gatherWidth + gatherCount)),
      nanToken: stat(5),
    };
  });
}
