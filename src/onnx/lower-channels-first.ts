/**
 * The ops lowered channels-first, the Apple Neural Engine recipe (src/core/layout/channels-first.ts):
 * activations (B, C, 1, S) with S padded to 64 bytes, every linear a 1×1 Conv whose weight is the
 * linear's [out, in] viewed as [out, in, 1, 1] (same bytes), layer norm over the channel axis, the
 * stem convolutions as (1, 3) Convs over the same layout, and attention split per head: head h's
 * channels [h·d, (h+1)·d) are its own (B, d, 1, S) slices of Q, K and V; scores are (B, keys, 1,
 * queries), softmax runs over the key axis with padded and future keys masked, and each head's
 * output is a (B, d, 1, S) band of the result. No Einsum, no reshapes that move data but one
 * transpose of each head's keys.
 */
import type { Conv1dOptions } from '../core/model/ops.ts';
import type { LayerNormWeights, LinearWeights } from '../core/model/weights.ts';
import { roundUp } from '../core/layout/shape.ts';
import type { InitializerSource } from './graph.ts';
import { reshape, SEQUENCE_MULTIPLE, type ChannelsFirstValue, type Lowering, type TraceValue } from './lowering.ts';
import { attentionMask, epilogue, LAYER_NORM_EPS, type AttentionPlan } from './lower-common.ts';

function padded(length: number): number {
  return roundUp(length, SEQUENCE_MULTIPLE);
}

/** A linear weight [out, in] as the 1×1 convolution's [out, in, 1, 1]. */
export function conv1x1Weight(L: Lowering, weight: InitializerSource): string {
  const [out, inChannels] = weight.dims as [number, number];
  return L.g.weight(weight, [out, inChannels, 1, 1]);
}

/** Zeros the padding positions (from `valid` on) of the last axis, for ops that read neighbours. */
function zeroPadding(L: Lowering, x: ChannelsFirstValue, valid: number): string {
  const { g } = L;
  if (x.clean || valid % SEQUENCE_MULTIPLE === 0) return x.name;
  const mask = g.node('Less', [g.int64(Array.from({ length: padded(valid) }, (_, j) => j)), g.int64([valid])]);
  return g.node('Where', [mask, x.name, g.float([0], [])]);
}

export function conv1dChannelsFirst(L: Lowering, x: TraceValue, out: TraceValue, w: LinearWeights<InitializerSource>, options: Conv1dOptions): void {
  const { g } = L;
  const [outChannels, inChannels, kernel] = w.weight.dims as [number, number, number];
  const frames = options.inputLayout === 'channels-first' ? x.cols : x.rows;
  const input: ChannelsFirstValue = options.inputLayout === 'channels-first'
    ? // The spectrogram [nMels, frames] already is (1, C, 1, S) but for the padding.
      { name: L.padSequence(reshape(g, L.rowMajor(x), [1, inChannels, 1, frames]), frames), batch: 1, clean: true }
    : L.channelsFirst(x, 1);
  // The last valid output reads position (outFrames-1)·stride + 1: past the valid frames only if the padding must be zeros.
  const readsPadding = (out.rows - 1) * options.stride + 1 >= frames;
  const source = readsPadding ? zeroPadding(L, input, frames) : input.name;
  let conv = g.node('Conv', [source, g.weight(w.weight, [outChannels, inChannels, 1, kernel]), ...(w.bias ? [g.weight(w.bias)] : [])], {
    kernel_shape: { ints: [1, kernel] },
    pads: { ints: [0, 1, 0, 1] },
    strides: { ints: [1, options.stride] },
  });
  const produced = Math.floor((padded(frames) + 2 - kernel) / options.stride) + 1;
  const wanted = padded(out.rows);
  if (produced > wanted) conv = L.sliceSequence(conv, wanted);
  else if (produced < wanted) conv = g.node('Pad', [conv, g.int64([0, 0, 0, 0, 0, 0, 0, wanted - produced])]);
  L.defineChannelsFirst(out, { name: epilogue(g, conv, options.gelu, undefined), batch: 1, clean: false });
}

export function addPositionalEmbeddingChannelsFirst(L: Lowering, x: TraceValue, out: TraceValue, table: InitializerSource): void {
  const { g } = L;
  const [tableRows, width] = table.dims as [number, number];
  // Position = row: one batch entry. The table's rows become (1, C, 1, S padded) once (constant-folded by onnxruntime).
  const input = L.channelsFirst(x, 1);
  let positions = g.weight(table);
  if (tableRows !== x.rows) positions = g.node('Slice', [positions, g.int64([0]), g.int64([x.rows]), g.int64([0])]);
  const channelsFirst = L.toChannelsFirst(positions, 1, width, x.rows);
  L.defineChannelsFirst(out, { name: g.node('Add', [input.name, channelsFirst]), batch: 1, clean: false });
}

export function layerNormChannelsFirst(L: Lowering, x: TraceValue, out: TraceValue, w: LayerNormWeights<InitializerSource>): void {
  const { g } = L;
  const channels = w.weight.dims[0]!;
  const input = L.channelsFirst(x);
  const overChannels = { axes: { ints: [1] }, keepdims: { int: 1 } };
  const centered = g.node('Sub', [input.name, g.node('ReduceMean', [input.name], overChannels)]);
  const variance = g.node('ReduceMean', [g.node('Mul', [centered, centered])], overChannels);
  const normalized = g.node('Div', [centered, g.node('Sqrt', [g.node('Add', [variance, g.float([LAYER_NORM_EPS], [])])])]);
  const scaled = g.node('Add', [g.node('Mul', [normalized, g.weight(w.weight, [1, channels, 1, 1])]), g.weight(w.bias, [1, channels, 1, 1])]);
  L.defineChannelsFirst(out, { name: scaled, batch: input.batch, clean: false });
}

export function linearChannelsFirst(L: Lowering, x: TraceValue, out: TraceValue, w: LinearWeights<InitializerSource>, gelu: boolean | undefined, residual: TraceValue | undefined): void {
  const { g } = L;
  const input = L.channelsFirst(x);
  const y = g.node('Conv', [input.name, conv1x1Weight(L, w.weight), ...(w.bias ? [g.weight(w.bias)] : [])], { kernel_shape: { ints: [1, 1] } });
  const sum = residual ? L.channelsFirst(residual, input.batch).name : undefined;
  L.defineChannelsFirst(out, { name: epilogue(g, y, gelu, sum), batch: input.batch, clean: false });
}

/** Keys or values as (keySequences, C, 1, capacity padded), from the stored rows. */
function keysChannelsFirst(L: Lowering, t: TraceValue, plan: AttentionPlan): string {
  if (t.rows === plan.storedRows) return L.channelsFirst(t, plan.keySequences).name;
  const { g } = L;
  const stored = g.node('Slice', [L.rowMajor(t), g.int64([0]), g.int64([plan.storedRows]), g.int64([0])]);
  return L.toChannelsFirst(stored, plan.keySequences, plan.cols, plan.capacity);
}

export function attentionChannelsFirst(L: Lowering, plan: AttentionPlan, [query, key, value]: readonly TraceValue[], [out, weightsOut]: readonly TraceValue[]): void {
  const { g } = L;
  const { heads, sequences, keySequences, cols } = plan;
  const d = cols / heads;
  const keys = padded(plan.capacity);
  const q = L.channelsFirst(query!, sequences).name;
  const k = keysChannelsFirst(L, key!, plan);
  const v = keysChannelsFirst(L, value!, plan);
  // Scores are (B, keys, 1, queries): key index on axis 1, query position on axis 3 (padded positions, fed rows' limits padded with 0, see no key).
  const rowLimits = query!.dynamic ? (perRow: string) => L.padSequence(reshape(g, perRow, [sequences, 1, 1, -1]), L.sequence(query!, sequences)) : undefined;
  const mask = attentionMask(L, plan, { keys, keyAxisShape: [keys, 1, 1], queryRows: padded(plan.queryRows), queryAxisShape: [-1], rowLimits });
  const scale = g.float([1 / Math.sqrt(d)], []);
  const head = (x: string, h: number) => g.node('Slice', [x, g.int64([h * d]), g.int64([(h + 1) * d]), g.int64([1])]);
  const outputs: string[] = [];
  const probabilities: string[] = [];
  for (let h = 0; h < heads; h++) {
    const qh = head(q, h); // (B, d, 1, Sq)
    const kh = g.node('Transpose', [head(k, h)], { perm: { ints: [0, 2, 3, 1] } }); // (Bk, 1, Sk, d)
    const vh = head(v, h); // (Bk, d, 1, Sk)
    // (Bk, 1, Sk, d) · (B, 1, d, Sq) → (B, 1, Sk, Sq), viewed as (B, Sk, 1, Sq).
    let scores = reshape(g, g.node('MatMul', [kh, reshape(g, qh, [sequences, 1, d, -1])]), [sequences, keys, 1, -1]);
    scores = g.node('Mul', [scores, scale]);
    if (mask) scores = mask.apply(scores);
    const p = g.node('Softmax', [scores], { axis: { int: 1 } });
    probabilities.push(p);
    // (Bk, 1, d, Sk) · (B, 1, Sk, Sq) → (B, 1, d, Sq), viewed as (B, d, 1, Sq).
    const mixed = g.node('MatMul', [reshape(g, vh, [keySequences, 1, d, keys]), reshape(g, p, [sequences, 1, keys, -1])]);
    outputs.push(reshape(g, mixed, [sequences, d, 1, -1]));
  }
  L.defineChannelsFirst(out!, { name: heads === 1 ? outputs[0]! : g.node('Concat', outputs, { axis: { int: 1 } }), batch: sequences, clean: false });
  if (weightsOut) {
    // (B, Sk, heads, Sq) → (B, heads, Sq, Sk), the valid queries and keys, [B·heads·queries, keys].
    const stacked = heads === 1 ? probabilities[0]! : g.node('Concat', probabilities, { axis: { int: 2 } });
    let weights = g.node('Transpose', [stacked], { perm: { ints: [0, 2, 3, 1] } });
    weights = L.sliceSequence(weights, L.sequence(query!, sequences), 2);
    weights = L.sliceSequence(weights, mask?.length ?? plan.capacity, 3);
    L.defineRowMajor(weightsOut, g.node('Flatten', [weights], { axis: { int: 3 } }));
  }
}
