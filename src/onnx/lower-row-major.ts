/**
 * The ops lowered row-major: activations stay [rows, cols] as WhisperOps has them; a linear is a
 * Gemm, layer norm is ONNX's LayerNormalization over the last axis, attention reshapes to
 * (sequences, heads, rows, headDim) and multiplies all heads at once.
 */
import type { Conv1dOptions } from '../core/model/ops.ts';
import type { LayerNormWeights, LinearWeights } from '../core/model/weights.ts';
import type { InitializerSource } from './graph.ts';
import { reshape, type Lowering, type TraceValue } from './lowering.ts';
import { attentionMask, epilogue, LAYER_NORM_EPS, type AttentionPlan } from './lower-common.ts';

export function conv1dRowMajor(L: Lowering, x: TraceValue, out: TraceValue, w: LinearWeights<InitializerSource>, options: Conv1dOptions): void {
  const { g } = L;
  const [outChannels, inChannels] = w.weight.dims as [number, number, number];
  const channelsFirst = options.inputLayout === 'channels-first';
  const frames = channelsFirst ? x.cols : x.rows;
  const xName = L.rowMajor(x);
  const channelsMajor = channelsFirst ? xName : g.node('Transpose', [xName], { perm: { ints: [1, 0] } });
  const conv = g.node('Conv', [reshape(g, channelsMajor, [1, inChannels, frames]), g.weight(w.weight), ...(w.bias ? [g.weight(w.bias)] : [])], {
    kernel_shape: { ints: [3] },
    pads: { ints: [1, 1] },
    strides: { ints: [options.stride] },
  });
  const timeMajor = g.node('Transpose', [reshape(g, conv, [outChannels, out.rows])], { perm: { ints: [1, 0] } });
  L.defineRowMajor(out, epilogue(g, timeMajor, options.gelu, undefined));
}

export function addPositionalEmbeddingRowMajor(L: Lowering, x: TraceValue, out: TraceValue, table: InitializerSource): void {
  const { g } = L;
  let positions = g.weight(table);
  if (table.dims[0] !== x.rows) positions = g.node('Slice', [positions, g.int64([0]), g.int64([x.rows]), g.int64([0])]);
  L.defineRowMajor(out, g.node('Add', [L.rowMajor(x), positions]));
}

export function layerNormRowMajor(L: Lowering, x: TraceValue, out: TraceValue, w: LayerNormWeights<InitializerSource>): void {
  const { g } = L;
  L.defineRowMajor(out, g.node('LayerNormalization', [L.rowMajor(x), g.weight(w.weight), g.weight(w.bias)], { axis: { int: -1 }, epsilon: { float: LAYER_NORM_EPS } }));
}

export function linearRowMajor(L: Lowering, x: TraceValue, out: TraceValue, w: LinearWeights<InitializerSource>, gelu: boolean | undefined, residual: TraceValue | undefined): void {
  const { g } = L;
  const y = g.node('Gemm', [L.rowMajor(x), g.weight(w.weight), ...(w.bias ? [g.weight(w.bias)] : [])], { transB: { int: 1 } });
  L.defineRowMajor(out, epilogue(g, y, gelu, residual ? L.rowMajor(residual) : undefined));
}

export function attentionRowMajor(L: Lowering, plan: AttentionPlan, [query, key, value]: readonly TraceValue[], [out, weightsOut]: readonly TraceValue[]): void {
  const { g } = L;
  const { heads, sequences, keySequences, capacity, storedRows, cols } = plan;
  const headDim = cols / heads;
  const stored = (t: TraceValue) => {
    const name = L.rowMajor(t);
    return t.rows === storedRows ? name : g.node('Slice', [name, g.int64([0]), g.int64([storedRows]), g.int64([0])]);
  };
  const q4 = g.node('Transpose', [reshape(g, L.rowMajor(query), [sequences, -1, heads, headDim])], { perm: { ints: [0, 2, 1, 3] } });
  const kT = g.node('Transpose', [reshape(g, stored(key!), [keySequences, capacity, heads, headDim])], { perm: { ints: [0, 2, 3, 1] } });
  const v4 = g.node('Transpose', [reshape(g, stored(value!), [keySequences, capacity, heads, headDim])], { perm: { ints: [0, 2, 1, 3] } });
  let scores = g.node('Mul', [g.node('MatMul', [q4, kT]), g.float([1 / Math.sqrt(headDim)], [])]);
  // Scores are [.., query, key]: keys on the last axis, query rows on the one before.
  const rowLimits = query.dynamic ? (perRow: string) => reshape(g, perRow, [sequences, 1, -1, 1]) : undefined;
  const mask = attentionMask(L, plan, { keyAxisShape: [1, capacity], queryRows: plan.queryRows, queryAxisShape: [-1, 1], rowLimits });
  if (mask) scores = mask.apply(scores);
  const probabilities = g.node('Softmax', [scores], { axis: { int: -1 } });
  const mixed = g.node('Transpose', [g.node('MatMul', [probabilities, v4])], { perm: { ints: [0, 2, 1, 3] } });
  L.defineRowMajor(out!, reshape(g, mixed, [-1, cols]));
  if (weightsOut) {
    let weights = reshape(g, probabilities, [-1, capacity]);
    if (mask?.length !== undefined) weights = g.node('Slice', [weights, g.int64([0]), mask.length, g.int64([1])]);
    L.defineRowMajor(weightsOut, weights);
  }
}
