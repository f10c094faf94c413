/** What both layouts' lowerings share: epilogues, and attention's mask from fed lengths and offsets. */
import type { GraphBuilder } from './graph.ts';
import { DYNAMIC_ROWS, type Lowering } from './lowering.ts';

export const LAYER_NORM_EPS = 1e-5;
/** Masked attention scores: the lowest finite f32, so softmax gives them exactly 0 without infinities. */
export const MASKED_SCORE = -3.4028234663852886e38;

export function gelu(g: GraphBuilder, x: string): string {
  // Exact (erf) GELU, as PyTorch's nn.GELU(): 0.5·x·(1 + erf(x/√2)). Opset 17 has no Gelu node.
  const erf = g.node('Erf', [g.node('Div', [x, g.float([Math.SQRT2], [])])]);
  return g.node('Mul', [g.node('Mul', [x, g.node('Add', [erf, g.float([1], [])])]), g.float([0.5], [])]);
}

export function epilogue(g: GraphBuilder, y: string, withGelu: boolean | undefined, residual: string | undefined): string {
  let out = withGelu ? gelu(g, y) : y;
  if (residual !== undefined) out = g.node('Add', [out, residual]);
  return out;
}

/** An attention op's shapes and which of its numbers are fed at run time. */
export interface AttentionPlan {
  readonly heads: number;
  readonly sequences: number;
  /** 1 when every sequence reads the same keys (cross-attention). */
  readonly keySequences: number;
  /** Key rows reserved per key sequence, of which `length` are valid. */
  readonly capacity: number;
  readonly length: number;
  readonly storedRows: number;
  readonly cols: number;
  /** Query rows per sequence in this run. */
  readonly queryRows: number;
  /** The valid length is a fed input (caches, partial reads), not the capacity. */
  readonly masked: boolean;
  readonly causal?: { readonly queryOffset: number } | undefined;
}

export interface AttentionMask {
  apply(scores: string): string;
  /** The fed valid key count (int64 [1]) when it is fed. */
  length?: string;
}

/**
 * The mask over scores whose key axis has `keys` positions (the capacity, or its padding): key j is
 * seen by query i when j < length and, causally, j ≤ queryOffset + i. Undefined when every key is.
 * `keyAxisShape`/`queryAxisShape` place the key and query indices on the scores' axes; a query whose
 * rows vary with the fed tokens (`rowLimits`) gets its causal limits fed per query row ([rows], the
 * graph's dynamic row count, worked out on the host: no Range in the graph), placed by `rowLimits`.
 */
export function attentionMask(
  L: Lowering,
  plan: AttentionPlan,
  layout: { keys?: number; keyAxisShape: readonly number[]; queryRows: number; queryAxisShape: readonly number[]; rowLimits?: ((perRow: string) => string) | undefined },
): AttentionMask | undefined {
  const { g } = L;
  const keys = layout.keys ?? plan.capacity;
  if (!plan.masked && !plan.causal && keys === plan.capacity) return undefined;
  const length = plan.masked ? g.int64Input([plan.length], [1]) : undefined;
  let limit = length ?? g.int64([plan.capacity]);
  if (plan.causal) {
    // Query row i sees keys 0..queryOffset+i.
    const { queryOffset } = plan.causal;
    const rowLimits = layout.rowLimits
      ? layout.rowLimits(g.int64Input(Array.from({ length: plan.sequences * plan.queryRows }, (_, r) => queryOffset + (r % plan.queryRows) + 1), [DYNAMIC_ROWS]))
      : g.node('Add', [g.int64(Array.from({ length: layout.queryRows }, (_, i) => i + 1), layout.queryAxisShape.map((d) => (d === -1 ? layout.queryRows : d))), g.int64Input([queryOffset], [1])]);
    limit = g.node('Min', [rowLimits, limit]);
  }
  const keyIndex = g.int64(Array.from({ length: keys }, (_, j) => j), layout.keyAxisShape);
  const visible = g.node('Less', [keyIndex, limit]);
  return {
    apply: (scores) => g.node('Where', [visible, scores, g.float([MASKED_SCORE], [])]),
    ...(length !== undefined ? { length } : {}),
  };
}
