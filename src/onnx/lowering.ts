/**
 * Lowering one recorded graph: which ONNX value holds each traced activation, in which layout.
 *
 * At the WhisperOps level every activation is 2-D row-major [rows, cols] (rows = batch × sequence,
 * sequence-major). A graph may hold it as that, or channels-first — the Neural Engine recipe of
 * src/core/layout/channels-first.ts: (B, C, 1, S) with S padded to a 64-byte multiple. Graph inputs
 * and outputs are always row-major (what the other backends and the next graph expect); an op asks
 * for its inputs in the layout it computes in, and a value is converted once per graph, on first use.
 *
 * Padding positions of a channels-first value hold whatever the ops computed there (layer norm turns
 * zeros into its bias): nothing at a valid position reads them. Attention masks padded keys; the
 * stem convolutions, the only ops that read neighbouring positions, zero them first when they would.
 *
 * Decoder steps have dynamic rows: the tokens fed per sequence vary from step to step (the prompt,
 * then one), so their activations are [batch × count, cols] with `count` known only at run time;
 * reshapes use -1; paddings are computed in the graph from the fed token count with ops WebNN takes
 * (no Mod), which onnxruntime folds to constants once a WebNN attempt's freeDimensionOverrides fix
 * the count; causal limits are fed (lower-common.ts).
 */
import { channelsFirstSequenceMultiple } from '../core/layout/channels-first.ts';
import { roundUp } from '../core/layout/shape.ts';
import { MurmurError } from '../core/errors.ts';
import type { GraphBuilder } from './graph.ts';

export type OnnxLayout = 'row-major' | 'channels-first';

/** The sequence axis of a channels-first value is padded to this many f32 values (64 bytes). */
export const SEQUENCE_MULTIPLE = channelsFirstSequenceMultiple('f32');

/** The dim_param of a decoder step's token rows (tokens, positions, cache-write rows). */
export const DYNAMIC_ROWS = 'rows';

export interface TraceValue {
  readonly rows: number;
  readonly cols: number;
  /** How rows split into (batch, sequence), sequence-major: the channels-first B. A layout hint only. */
  batch: number;
  /** Rows vary with the tokens fed to a decoder step: symbolic in the graph computing it. */
  dynamic: boolean;
  /** The recorded op computing it, until a graph run has. */
  producer?: TraceRecord;
  data?: Float32Array;
  /** Settles when the run computing it has finished (or failed: then `error`). */
  ready?: Promise<void>;
  error?: unknown;
  /** Its shape depends on a runtime input: not declared in the graph. */
  variableShape?: boolean;
  /**
   * Not made a graph output just because a handle is live (the logits of a step that selectTokens
   * summarised): computed by a later graph if it is still wanted then.
   */
  deferred?: boolean;
}

export interface TraceRecord {
  readonly name: string;
  inputs: TraceValue[];
  readonly outputs: TraceValue[];
  /** Computes each output row from the same row of its one input only (its rows can be picked before it runs). */
  readonly rowWise?: boolean;
  /** Emits the op's nodes and defines its outputs' values in `lowering`. */
  lower(lowering: Lowering, inputs: readonly TraceValue[], outputs: readonly TraceValue[]): void;
}

/** A traced value held channels-first: (batch, cols, 1, padded sequence). */
export interface ChannelsFirstValue {
  readonly name: string;
  readonly batch: number;
  /** Padding positions hold zeros (fresh from a Pad). */
  readonly clean: boolean;
}

export function reshape(g: GraphBuilder, x: string, dims: readonly number[]): string {
  return g.node('Reshape', [x, g.int64(dims)]);
}

/** A sequence length: a size, or an int64 [1] tensor computed in the graph. */
export type Length = number | string;

export class Lowering {
  private readonly rowMajorNames = new Map<TraceValue, string>();
  private readonly channelsFirstNames = new Map<TraceValue, Map<number, ChannelsFirstValue>>();
  private dynamicRowCount: string | undefined;
  private readonly sequenceLengths = new Map<number, string>();

  constructor(
    readonly g: GraphBuilder,
    readonly layout: OnnxLayout,
    /** The graph input feeding a value computed before this graph. */
    private readonly feed: (value: TraceValue) => string,
  ) {}

  /** Declares the int64 [1] tensor holding this graph's dynamic row count (a decoder step's token count × batch). */
  setDynamicRows(rowCount: string): void {
    this.dynamicRowCount = rowCount;
  }

  /** Rows per batch entry, S = rows / batch: a number, or for dynamic rows a tensor computed once per batch. */
  sequence(value: TraceValue, batch: number): Length {
    if (!value.dynamic) return value.rows / batch;
    if (this.dynamicRowCount === undefined) throw new MurmurError('BACKEND', 'a value with dynamic rows in a graph that feeds no tokens');
    let length = this.sequenceLengths.get(batch);
    if (length === undefined) {
      length = batch === 1 ? this.dynamicRowCount : this.g.node('Div', [this.dynamicRowCount, this.g.int64([batch])]);
      this.sequenceLengths.set(batch, length);
    }
    return length;
  }

  defineRowMajor(value: TraceValue, name: string): void {
    this.rowMajorNames.set(value, name);
  }

  defineChannelsFirst(value: TraceValue, held: ChannelsFirstValue): void {
    let byBatch = this.channelsFirstNames.get(value);
    if (!byBatch) this.channelsFirstNames.set(value, (byBatch = new Map()));
    byBatch.set(held.batch, held);
  }

  /** Defines a value in the layout this graph computes in (channels-first values need their batch). */
  define(value: TraceValue, name: string, layout: 'row-major' | ChannelsFirstValue): void {
    if (layout === 'row-major') this.defineRowMajor(value, name);
    else this.defineChannelsFirst(value, { ...layout, name });
  }

  /** The value as [rows, cols]. */
  rowMajor(value: TraceValue): string {
    let name = this.rowMajorNames.get(value);
    if (name !== undefined) return name;
    const held = this.channelsFirstNames.get(value)?.values().next().value as ChannelsFirstValue | undefined;
    if (held) name = this.fromChannelsFirst(held.name, value.cols, this.sequence(value, held.batch));
    else if (value.producer) throw new MurmurError('BACKEND', 'a recorded value was used before the op computing it');
    else name = this.feed(value);
    this.rowMajorNames.set(value, name);
    return name;
  }

  /** The value as (batch, cols, 1, S padded). */
  channelsFirst(value: TraceValue, batch = value.batch): ChannelsFirstValue {
    const known = this.channelsFirstNames.get(value)?.get(batch);
    if (known) return known;
    if (value.rows % batch !== 0) throw new MurmurError('SHAPE', `${value.rows} rows do not split into a batch of ${batch}`);
    const held: ChannelsFirstValue = { name: this.toChannelsFirst(this.rowMajor(value), batch, value.cols, this.sequence(value, batch)), batch, clean: true };
    this.defineChannelsFirst(value, held);
    return held;
  }

  /** [batch × S, cols] → (batch, cols, 1, S padded to SEQUENCE_MULTIPLE), zeros in the padding. */
  toChannelsFirst(rowMajor: string, batch: number, cols: number, sequence: Length): string {
    const { g } = this;
    const channelsFirst = g.node('Transpose', [reshape(g, rowMajor, [batch, -1, 1, cols])], { perm: { ints: [0, 3, 2, 1] } });
    return this.padSequence(channelsFirst, sequence);
  }

  /** Pads the last axis from `sequence` up to its SEQUENCE_MULTIPLE. */
  padSequence(x: string, sequence: Length): string {
    const { g } = this;
    if (typeof sequence === 'number') {
      const pad = roundUp(sequence, SEQUENCE_MULTIPLE) - sequence;
      return pad === 0 ? x : g.node('Pad', [x, g.int64([0, 0, 0, 0, 0, 0, 0, pad])]);
    }
    // roundUp(S, M) - S as ⌊(S + M - 1) / M⌋·M - S: integer Div, no Mod (WebNN has none).
    const multiple = g.int64([SEQUENCE_MULTIPLE]);
    const padded = g.node('Mul', [g.node('Div', [g.node('Add', [sequence, g.int64([SEQUENCE_MULTIPLE - 1])]), multiple]), multiple]);
    return g.node('Pad', [x, g.node('Concat', [g.int64([0, 0, 0, 0, 0, 0, 0]), g.node('Sub', [padded, sequence])], { axis: { int: 0 } })]);
  }

  /** (batch, cols, 1, S padded) → [batch × S, cols]. */
  fromChannelsFirst(channelsFirst: string, cols: number, sequence: Length): string {
    const { g } = this;
    const valid = typeof sequence === 'number' && sequence % SEQUENCE_MULTIPLE === 0 ? channelsFirst : this.sliceSequence(channelsFirst, sequence);
    return reshape(g, g.node('Transpose', [valid], { perm: { ints: [0, 3, 2, 1] } }), [-1, cols]);
  }

  /** The first `length` positions of the last axis. */
  sliceSequence(x: string, length: Length, axis = 3): string {
    const { g } = this;
    return g.node('Slice', [x, g.int64([0]), typeof length === 'number' ? g.int64([length]) : length, g.int64([axis])]);
  }
}
