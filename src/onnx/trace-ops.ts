/**
 * WhisperOps whose handles are values of an ONNX graph being recorded. Running whisper.ts's
 * `encode` on these ops records the encoder graph; one `decodeStep` records a decoder-step graph.
 * Nothing runs until a value is needed on the host (`read`), a decoder state starts (`zeros`,
 * which is where an encoder pass ends) or a decoder step starts (`embed`: what came before it, the
 * cross-attention K/V or a beam reorder, is its own graph). Then the recorded work that the
 * still-unreleased handles depend on is lowered into one graph (lowering.ts, in the backend's
 * layout), handed to the executor, and its results become those handles' values. Released
 * handles' work that nothing live needs is dropped.
 *
 * What changes from step to step (token ids, positions, the cache write offset, valid lengths,
 * causal query offsets, beam orders, gathered rows) enters the graph as int64 inputs, never as
 * constants; a decoder step's row count (the tokens fed per sequence) is a dynamic dimension. So
 * every decoder step of a batch — the prompt and each one-token step after it — lowers to the same
 * graph (`structureKey`), and one compiled session, with one copy of the decoder's weights, serves
 * them all. A step that feeds one token per sequence reads no gatherRows for the logits; its logits
 * rows are picked by the same Gather, with every row, so both kinds of step are one graph.
 * (`staticShapes` keeps every size static instead: one graph per step shape, for providers that
 * need static shapes.)
 *
 * The KV-cache writes are in place in WhisperOps: here the cache handle moves on to the value
 * ScatterND produces, so caches are graph inputs (past) and outputs (present) of each step.
 */
import type { AttentionKeyValues, AttentionOptions, AttentionResult, Conv1dOptions, Epilogue, TokenSelection, TokenSelectionRequest, WhisperOps } from '../core/model/ops.ts';
import type { LayerNormWeights, LinearWeights } from '../core/model/weights.ts';
import { MurmurError } from '../core/errors.ts';
import { DataType } from './onnx-schema.ts';
import { GraphBuilder, type InitializerSource } from './graph.ts';
import { DYNAMIC_ROWS, Lowering, type OnnxLayout, type TraceRecord, type TraceValue } from './lowering.ts';
import { addPositionalEmbeddingRowMajor, attentionRowMajor, conv1dRowMajor, layerNormRowMajor, linearRowMajor } from './lower-row-major.ts';
import { addPositionalEmbeddingChannelsFirst, attentionChannelsFirst, conv1dChannelsFirst, layerNormChannelsFirst, linearChannelsFirst } from './lower-channels-first.ts';
import type { AttentionPlan } from './lower-common.ts';
import { checkSelectionRequest } from '../core/decoding/select-tokens.ts';
import { lowerTokenSelection, readTokenSelections, selectionShapes, type SelectionFeed } from './lower-select.ts';

export type { OnnxLayout } from './lowering.ts';

/** A weight as an ONNX initializer (f32). */
export type OnnxWeight = InitializerSource;

export class OnnxTensor {
  released = false;
  constructor(public value: TraceValue) {}
  get rows(): number {
    return this.value.rows;
  }
  get cols(): number {
    return this.value.cols;
  }
}

/** A graph ready to run: its structure key, the builder (model, inputs to feed, outputs). */
export interface PlannedGraph {
  readonly key: string;
  readonly graph: GraphBuilder;
  /** The ops lowered into it, in order (for diagnostics). */
  readonly ops: readonly string[];
}

/** Runs a graph; resolves with its outputs' values in `graph.outputNames` order. */
export type GraphExecutor = (planned: PlannedGraph) => Promise<Float32Array[]>;

export interface OnnxOpsOptions {
  /** How activations are held inside each graph (default 'row-major'). */
  layout?: OnnxLayout;
  /** Every size static: one decoder-step graph per step shape (default false). */
  staticShapes?: boolean;
}

function shapeError(problem: string): MurmurError {
  return new MurmurError('SHAPE', problem);
}

export interface OnnxOps extends WhisperOps<OnnxTensor, OnnxWeight> {
  /** Lower and start running everything live handles still wait for (read does this itself). */
  flush(): void;
  /** Handles created and not yet released. */
  readonly liveHandles: number;
  readonly layout: OnnxLayout;
  selectTokens(logits: OnnxTensor, request: TokenSelectionRequest): Promise<TokenSelection[]>;
}

/** Sequences in embed's rows: runs of consecutive positions (whisper.ts feeds each sequence's new tokens in order). */
function sequencesOf(positions: readonly number[]): number {
  let starts = 0;
  positions.forEach((position, i) => {
    if (i === 0 || position !== positions[i - 1]! + 1) starts++;
  });
  return positions.length % starts === 0 ? starts : 1;
}

export function createOnnxOps(execute: GraphExecutor, options: OnnxOpsOptions = {}): OnnxOps {
  const layout = options.layout ?? 'row-major';
  const dynamicRows = !options.staticShapes;
  const channelsFirst = layout === 'channels-first';
  let pending: TraceRecord[] = [];
  const live = new Set<OnnxTensor>();
  let chain: Promise<void> = Promise.resolve();

  const handle = (value: TraceValue): OnnxTensor => {
    const tensor = new OnnxTensor(value);
    live.add(tensor);
    return tensor;
  };
  const valueOf = (x: OnnxTensor, what: string): TraceValue => {
    if (!(x instanceof OnnxTensor)) throw new MurmurError('BACKEND', `${what}: not a tensor of the webnn backend`);
    if (x.released) throw new MurmurError('RELEASED', `${what}: a [${x.rows}, ${x.cols}] tensor was used after release()`);
    return x.value;
  };
  /** A value still being recorded in this graph, whose rows vary with the fed tokens. */
  const isDynamic = (value: TraceValue) => value.dynamic && value.producer !== undefined;
  const record = (
    name: string,
    inputs: TraceValue[],
    shapes: readonly { rows: number; cols: number; batch?: number; dynamic?: boolean }[],
    lower: TraceRecord['lower'],
    rowWise = false,
  ): TraceValue[] => {
    const outputs: TraceValue[] = shapes.map(({ rows, cols, batch = 1, dynamic = false }) => ({ rows, cols, batch, dynamic }));
    const op: TraceRecord = { name, inputs, outputs, lower, ...(rowWise ? { rowWise } : {}) };
    for (const output of outputs) output.producer = op;
    pending.push(op);
    return outputs;
  };
  const hostValue = (data: Float32Array, rows: number, cols: number): TraceValue => ({ rows, cols, data, batch: 1, dynamic: false });

  const gatherRecord = (input: TraceValue, rows: readonly number[]): TraceRecord => {
    const out: TraceValue = { rows: rows.length, cols: input.cols, batch: 1, dynamic: false };
    const op: TraceRecord = {
      name: 'gatherRows',
      inputs: [input],
      outputs: [out],
      lower: (L, [x], [y]) => L.defineRowMajor(y!, L.g.node('Gather', [L.rowMajor(x!), L.g.int64Input(rows)], { axis: { int: 0 } })),
    };
    out.producer = op;
    return op;
  };

  /**
   * A graph output computed row by row from dynamic rows (a one-token step's logits, or their
   * token selection) gets its rows through a Gather of every row, where the gatherRows of a longer
   * step's last rows sits (before the logits projection): both kinds of step are one graph.
   */
  function pickOutputRows(recorded: TraceRecord[], targets: readonly TraceValue[]): void {
    const picksFrom = (op: TraceRecord | undefined) => op?.rowWise && op.inputs.length === 1 && isDynamic(op.inputs[0]!);
    for (const target of targets) {
      let op = target.producer!;
      if (!picksFrom(op)) continue;
      const chain = [op];
      while (picksFrom(op.inputs[0]!.producer)) chain.push((op = op.inputs[0]!.producer!));
      const input = op.inputs[0]!;
      const gather = gatherRecord(input, Array.from({ length: input.rows }, (_, r) => r));
      recorded.splice(recorded.indexOf(op), 0, gather);
      op.inputs[0] = gather.outputs[0]!;
      for (const value of chain.flatMap((o) => o.outputs)) {
        value.dynamic = false;
        value.batch = 1;
      }
    }
  }

  /** The recorded ops these values depend on, through values not computed yet. */
  function neededBy(roots: readonly TraceValue[]): Set<TraceRecord> {
    const needed = new Set<TraceRecord>();
    const stack = roots.map((v) => v.producer!);
    while (stack.length > 0) {
      const op = stack.pop()!;
      if (needed.has(op)) continue;
      needed.add(op);
      for (const input of op.inputs) if (input.producer) stack.push(input.producer);
    }
    return needed;
  }

  function flush(): void {
    const values = [...new Set([...live].map((h) => h.value))].filter((v) => v.producer);
    const targets = values.filter((v) => !v.deferred);
    const recorded = pending;
    pending = [];
    if (targets.length === 0) {
      pending = recorded.filter((op) => neededBy(values).has(op));
      return;
    }
    if (dynamicRows) pickOutputRows(recorded, targets);
    const needed = neededBy(targets);

    const graph = new GraphBuilder();
    const feed = (value: TraceValue): string =>
      graph.input(DataType.FLOAT, [value.rows, value.cols], () => {
        if (value.error !== undefined) throw value.error;
        if (!value.data) throw new MurmurError('BACKEND', `the [${value.rows}, ${value.cols}] input of a graph was never computed`);
        return value.data;
      });
    const lowering = new Lowering(graph, layout, feed);
    const ops: string[] = [];
    for (const op of recorded) {
      if (!needed.has(op)) continue;
      ops.push(op.name);
      op.lower(lowering, op.inputs, op.outputs);
    }
    for (const value of targets) graph.output(lowering.rowMajor(value), value.variableShape || isDynamic(value) ? undefined : [value.rows, value.cols]);

    // Deferred values still live keep the recorded work they need, for a later graph; the rest is done.
    const kept = neededBy(values.filter((v) => v.deferred));
    for (const value of targets) delete value.producer;
    for (const op of recorded) {
      if (!kept.has(op)) for (const value of op.outputs) delete value.producer;
    }
    pending = recorded.filter((op) => kept.has(op));

    const planned: PlannedGraph = { key: graph.structureKey(), graph, ops };
    const run = chain.then(async () => {
      const outputs = await execute(planned);
      targets.forEach((value, i) => {
        value.data = outputs[i];
      });
    });
    const settled = run.then(
      () => {},
      (error: unknown) => {
        for (const value of targets) value.error = error;
      },
    );
    for (const value of targets) value.ready = settled;
    chain = settled;
  }

  async function readValue(value: TraceValue): Promise<Float32Array> {
    await value.ready;
    if (value.error !== undefined) throw value.error;
    return value.data!;
  }

  const ops: OnnxOps = {
    flush,
    layout,
    get liveHandles() {
      return live.size;
    },

    upload(values, rows, cols) {
      if (values.length !== rows * cols) throw shapeError(`${values.length} values cannot be a [${rows}, ${cols}] tensor`);
      return handle(hostValue(Float32Array.from(values), rows, cols));
    },
    zeros(rows, cols) {
      // A decoder state is starting: the encoder pass recorded so far runs as its own graph.
      flush();
      return handle(hostValue(new Float32Array(rows * cols), rows, cols));
    },
    async read(x) {
      const value = valueOf(x, 'read');
      if (value.producer) {
        value.deferred = false;
        flush();
      }
      return (await readValue(x.value)).slice();
    },
    shape: (x) => [x.rows, x.cols],
    release(x) {
      valueOf(x, 'release');
      x.released = true;
      live.delete(x);
    },

    conv1d(x, w, options: Conv1dOptions) {
      const input = valueOf(x, 'conv1d');
      const [outChannels, inChannels, kernel] = w.weight.dims as [number, number, number];
      if (w.weight.dims.length !== 3 || kernel !== 3) throw shapeError(`conv1d weight must be [out, in, 3], got [${w.weight.dims}]`);
      const frames = options.inputLayout === 'channels-first' ? input.cols : input.rows;
      const channels = options.inputLayout === 'channels-first' ? input.rows : input.cols;
      if (channels !== inChannels) throw shapeError(`conv1d: input has ${channels} channels, weight [${w.weight.dims}] expects ${inChannels}`);
      const outFrames = Math.floor((frames - 1) / options.stride) + 1;
      const lower = channelsFirst ? conv1dChannelsFirst : conv1dRowMajor;
      const [out] = record('conv1d', [input], [{ rows: outFrames, cols: outChannels }], (L, [i], [o]) => lower(L, i!, o!, w, options));
      return handle(out!);
    },

    addPositionalEmbedding(x, table) {
      const input = valueOf(x, 'addPositionalEmbedding');
      const [tableRows, width] = table.dims as [number, number];
      if (width !== input.cols || tableRows < input.rows) throw shapeError(`positional embedding [${table.dims}] cannot cover an input of [${input.rows}, ${input.cols}]`);
      const lower = channelsFirst ? addPositionalEmbeddingChannelsFirst : addPositionalEmbeddingRowMajor;
      const [out] = record('addPositionalEmbedding', [input], [{ rows: input.rows, cols: input.cols }], (L, [i], [o]) => lower(L, i!, o!, table));
      return handle(out!);
    },

    layerNorm(x, w: LayerNormWeights<OnnxWeight>) {
      const input = valueOf(x, 'layerNorm');
      if (w.weight.dims[0] !== input.cols || w.bias.dims[0] !== input.cols) throw shapeError(`layer norm of ${w.weight.dims[0]} channels on rows of ${input.cols}`);
      const lower = channelsFirst ? layerNormChannelsFirst : layerNormRowMajor;
      const shape = { rows: input.rows, cols: input.cols, batch: input.batch, dynamic: isDynamic(input) };
      const [out] = record('layerNorm', [input], [shape], (L, [i], [o]) => lower(L, i!, o!, w));
      return handle(out!);
    },

    linear(x, w, options?: Epilogue<OnnxTensor>) {
      const input = valueOf(x, 'linear');
      if (w.weight.dims.length !== 2) throw shapeError(`linear weight must be 2-D, got [${w.weight.dims}]`);
      const [outDim, inDim] = w.weight.dims as [number, number];
      if (input.cols !== inDim) throw shapeError(`linear: input [${input.rows}, ${input.cols}] against weight [${outDim}, ${inDim}]`);
      const residual = options?.residual ? valueOf(options.residual, 'linear residual') : undefined;
      if (residual && (residual.rows !== input.rows || residual.cols !== outDim)) {
        throw shapeError(`residual [${residual.rows}, ${residual.cols}] does not match the output [${input.rows}, ${outDim}]`);
      }
      const lower = channelsFirst ? linearChannelsFirst : linearRowMajor;
      const gelu = options?.gelu;
      const shape = { rows: input.rows, cols: outDim, batch: input.batch, dynamic: isDynamic(input) };
      const [out] = record('linear', residual ? [input, residual] : [input], [shape], (L, [i, r], [o]) => lower(L, i!, o!, w, gelu, r), residual === undefined);
      return handle(out!);
    },

    attention(q, kv: AttentionKeyValues<OnnxTensor>, options: AttentionOptions): AttentionResult<OnnxTensor> {
      const query = valueOf(q, 'attention query');
      const key = valueOf(kv.key, 'attention key');
      const value = valueOf(kv.value, 'attention value');
      const { heads, sequences, causal, returnWeights } = options;
      const { capacity, length, shared } = kv;
      const cols = query.cols;
      const headDim = cols / heads;
      if (!Number.isInteger(headDim)) throw shapeError(`attention: ${cols} channels do not split into ${heads} heads`);
      const queryRows = query.rows / sequences;
      if (!Number.isInteger(queryRows)) throw shapeError(`attention: ${query.rows} query rows do not split into ${sequences} sequences`);
      const keySequences = shared ? 1 : sequences;
      const storedRows = keySequences * capacity;
      for (const [name, t] of [['key', key], ['value', value]] as const) {
        if (t.cols !== cols || t.rows < storedRows) throw shapeError(`attention: ${name} [${t.rows}, ${t.cols}] cannot hold ${storedRows} rows of ${cols}`);
      }
      if (length < 1 || length > capacity) throw shapeError(`attention: ${length} valid keys in a capacity of ${capacity}`);
      if (causal && causal.queryOffset + queryRows > length) {
        throw shapeError(`attention: queries at positions ${causal.queryOffset}..${causal.queryOffset + queryRows - 1} need ${causal.queryOffset + queryRows} keys, only ${length} are valid`);
      }
      // Shared keys read in full (cross-attention over one audio) need no mask; caches always get one, from runtime inputs.
      const plan: AttentionPlan = { heads, sequences, keySequences, capacity, length, storedRows, cols, queryRows, masked: causal !== undefined || !shared || length < capacity, causal };
      const dynamic = isDynamic(query);
      const shapes = [{ rows: query.rows, cols, batch: sequences, dynamic }];
      if (returnWeights) shapes.push({ rows: sequences * heads * queryRows, cols: length, batch: 1, dynamic });
      const lower = channelsFirst ? attentionChannelsFirst : attentionRowMajor;
      const outputs = record('attention', [query, key, value], shapes, (L, inputs, outs) => lower(L, plan, inputs, outs));
      if (outputs[1] && (plan.masked || dynamic)) outputs[1].variableShape = true;
      return { output: handle(outputs[0]!), ...(outputs[1] ? { weights: handle(outputs[1]) } : {}) };
    },

    embed(tokens, positions, tokenEmbedding, positionalEmbedding) {
      if (tokens.length !== positions.length) throw shapeError(`embed: ${tokens.length} tokens but ${positions.length} positions`);
      const [vocabulary, width] = tokenEmbedding.dims as [number, number];
      const [contexts, positionWidth] = positionalEmbedding.dims as [number, number];
      if (positionWidth !== width) throw shapeError(`embed: token rows of ${width} but positional rows of ${positionWidth}`);
      tokens.forEach((token, i) => {
        const position = positions[i]!;
        if (!Number.isInteger(token) || token < 0 || token >= vocabulary) throw shapeError(`embed: token id ${token} outside the vocabulary of ${vocabulary}`);
        if (!Number.isInteger(position) || position < 0 || position >= contexts) throw shapeError(`embed: position ${position} outside the context of ${contexts}`);
      });
      // A decoder step starts: what is recorded before it (cross-attention K/V, a beam reorder) is a graph of its own.
      if (dynamicRows) flush();
      const tokenIds = [...tokens];
      const positionIds = [...positions];
      const rows = dynamicRows ? DYNAMIC_ROWS : tokens.length;
      const shape = { rows: tokens.length, cols: width, batch: sequencesOf(positions), dynamic: dynamicRows };
      const [out] = record('embed', [], [shape], (L, _inputs, [o]) => {
        const { g } = L;
        const ids = g.int64Input(tokenIds, [rows]);
        if (dynamicRows) L.setDynamicRows(g.node('Shape', [ids]));
        // Channels-first graphs hold the token embedding as the tied logits' 1×1 convolution weight [V, C, 1, 1].
        const table = channelsFirst ? g.weight(tokenEmbedding, [vocabulary, width, 1, 1]) : g.weight(tokenEmbedding);
        let tokenRows = g.node('Gather', [table, ids], { axis: { int: 0 } });
        if (channelsFirst) tokenRows = g.node('Reshape', [tokenRows, g.int64([-1, width])]);
        L.defineRowMajor(o!, g.node('Add', [tokenRows, g.node('Gather', [g.weight(positionalEmbedding), g.int64Input(positionIds, [rows])], { axis: { int: 0 } })]));
      });
      return handle(out!);
    },

    writeCache(cache, x, { sequences, capacity, offset }) {
      const target = valueOf(cache, 'writeCache cache');
      const rows = valueOf(x, 'writeCache rows');
      const n = rows.rows / sequences;
      if (!Number.isInteger(n) || rows.cols !== target.cols || target.rows < sequences * capacity) {
        throw shapeError(`writeCache: [${rows.rows}, ${rows.cols}] into a cache [${target.rows}, ${target.cols}] of ${sequences} × ${capacity} rows`);
      }
      if (offset < 0 || offset + n > capacity) throw shapeError(`writeCache: rows ${offset}..${offset + n - 1} exceed the capacity of ${capacity}`);
      const dynamic = isDynamic(rows);
      const [updated] = record('writeCache', [target, rows], [{ rows: target.rows, cols: target.cols, batch: sequences }], (L, [c, r], [o]) => {
        const { g } = L;
        // Row s·capacity + offset + i for new row i of sequence s.
        const indices = dynamic
          ? g.int64Input(Array.from({ length: sequences * n }, (_, r) => Math.floor(r / n) * capacity + (r % n) + offset), [DYNAMIC_ROWS, 1])
          : g.node('Add', [g.int64(Array.from({ length: sequences * n }, (_, r) => Math.floor(r / n) * capacity + (r % n)), [sequences * n, 1]), g.int64Input([offset], [1])]);
        L.defineRowMajor(o!, g.node('ScatterND', [L.rowMajor(c!), indices, L.rowMajor(r!)]));
      });
      cache.value = updated!;
    },

    reorderCache(cache, order, { capacity, length }) {
      const target = valueOf(cache, 'reorderCache');
      const sequences = order.length;
      if (target.rows < sequences * capacity || length > capacity) throw shapeError(`reorderCache: cache [${target.rows}, ${target.cols}] for ${sequences} × ${capacity} rows`);
      const rows = Array.from({ length: target.rows }, (_, r) => r);
      order.forEach((from, s) => {
        if (!Number.isInteger(from) || from < 0 || from >= sequences) throw shapeError(`reorderCache: sequence ${from} does not exist`);
        for (let j = 0; j < length; j++) rows[s * capacity + j] = from * capacity + j;
      });
      const [reordered] = record('reorderCache', [target], [{ rows: target.rows, cols: target.cols, batch: target.batch }], (L, [c], [o]) =>
        L.defineRowMajor(o!, L.g.node('Gather', [L.rowMajor(c!), L.g.int64Input(rows)], { axis: { int: 0 } })),
      );
      cache.value = reordered!;
    },

    gatherRows(x, rows) {
      const input = valueOf(x, 'gatherRows');
      rows.forEach((row) => {
        if (!Number.isInteger(row) || row < 0 || row >= input.rows) throw shapeError(`gatherRows: row ${row} of a [${input.rows}, ${input.cols}] tensor`);
      });
      const op = gatherRecord(input, [...rows]);
      pending.push(op);
      return handle(op.outputs[0]!);
    },

    async selectTokens(logits, request) {
      const input = valueOf(logits, 'selectTokens');
      checkSelectionRequest(request, input.rows, input.cols);
      const feed: SelectionFeed = { request, rows: input.rows, cols: input.cols };
      const shapes = selectionShapes(feed).map((shape) => ({ ...shape, dynamic: isDynamic(input) }));
      const outputs = record('selectTokens', [input], shapes, (L, [i], outs) => lowerTokenSelection(L, i!, outs, feed), true);
      for (const output of outputs) output.variableShape = true;
      // The logits stay a handle, but the step's graph returns only the summary.
      if (input.producer) input.deferred = true;
      const handles = outputs.map(handle);
      try {
        flush();
        return readTokenSelections(await Promise.all(outputs.map(readValue)), feed);
      } finally {
        for (const h of handles) ops.release(h);
      }
    },
  };
  return ops;
}
