/**
 * WhisperOps whose handles are values of an ONNX graph being recorded. Running whisper.ts's
 * `encode` on these ops records the encoder graph; one `decodeStep` records a decoder-step graph.
 * Nothing runs until a value is needed on the host (`read`) or a decoder state starts (`zeros`,
 * which is where an encoder pass ends): then the recorded work that the still-unreleased handles
 * depend on is lowered into one graph, handed to the executor, and its results become those
 * handles' values. Released handles' work that nothing live needs is dropped.
 *
 * What changes from step to step (token ids, positions, the cache write offset, valid lengths,
 * causal query offsets, beam orders, gathered rows) enters the graph as int64 inputs, never as
 * constants; shapes (capacity, sequences, query rows) are static. So every decoder step of the
 * same shape lowers to the same graph (`structureKey`) and one compiled session serves them all.
 *
 * The KV-cache writes are in place in WhisperOps: here the cache handle moves on to the value
 * ScatterND produces, so caches are graph inputs (past) and outputs (present) of each step.
 */
import type { AttentionKeyValues, AttentionOptions, AttentionResult, Conv1dOptions, Epilogue, WhisperOps } from '../core/model/ops.ts';
import type { LayerNormWeights, LinearWeights } from '../core/model/weights.ts';
import { MurmurError } from '../core/errors.ts';
import { DataType } from './onnx-schema.ts';
import { GraphBuilder, type InitializerSource } from './graph.ts';

const LAYER_NORM_EPS = 1e-5;
/** Masked attention scores: the lowest finite f32, so softmax gives them exactly 0 without infinities. */
const MASKED_SCORE = -3.4028234663852886e38;

/** A weight as an ONNX initializer (f32). */
export type OnnxWeight = InitializerSource;

interface TraceValue {
  readonly rows: number;
  readonly cols: number;
  /** The recorded op computing it, until a graph run has. */
  producer?: TraceRecord;
  data?: Float32Array;
  /** Settles when the run computing it has finished (or failed: then `error`). */
  ready?: Promise<void>;
  error?: unknown;
  /** Its shape depends on a runtime input (sliced attention weights): not declared in the graph. */
  variableShape?: boolean;
}

interface TraceRecord {
  readonly inputs: readonly TraceValue[];
  readonly outputs: readonly TraceValue[];
  /** Emits the op's nodes given its inputs' value names; returns its outputs' names. */
  lower(graph: GraphBuilder, inputs: readonly string[]): string[];
}

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

function shapeError(problem: string): MurmurError {
  return new MurmurError('SHAPE', problem);
}

function gelu(g: GraphBuilder, x: string): string {
  // Exact (erf) GELU, as PyTorch's nn.GELU(): 0.5·x·(1 + erf(x/√2)). Opset 17 has no Gelu node.
  const erf = g.node('Erf', [g.node('Div', [x, g.float([Math.SQRT2], [])])]);
  return g.node('Mul', [g.node('Mul', [x, g.node('Add', [erf, g.float([1], [])])]), g.float([0.5], [])]);
}

function epilogue(g: GraphBuilder, y: string, options: { gelu?: boolean | undefined }, residual: string | undefined): string {
  let out = options.gelu ? gelu(g, y) : y;
  if (residual !== undefined) out = g.node('Add', [out, residual]);
  return out;
}

function reshape(g: GraphBuilder, x: string, dims: readonly number[]): string {
  return g.node('Reshape', [x, g.int64(dims)]);
}

export interface OnnxOps extends WhisperOps<OnnxTensor, OnnxWeight> {
  /** Lower and start running everything live handles still wait for (read does this itself). */
  flush(): void;
  /** Handles created and not yet released. */
  readonly liveHandles: number;
}

export function createOnnxOps(execute: GraphExecutor): OnnxOps {
  let pending: TraceRecord[] = [];
  let opNames: string[] = [];
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
  const record = (name: string, inputs: TraceValue[], shapes: readonly (readonly [number, number])[], lower: TraceRecord['lower']): TraceValue[] => {
    const outputs: TraceValue[] = shapes.map(([rows, cols]) => ({ rows, cols }));
    const op: TraceRecord = { inputs, outputs, lower };
    for (const output of outputs) output.producer = op;
    pending.push(op);
    opNames.push(name);
    return outputs;
  };
  const hostValue = (data: Float32Array, rows: number, cols: number): TraceValue => ({ rows, cols, data });

  function flush(): void {
    const targets = [...new Set([...live].map((h) => h.value))].filter((v) => v.producer);
    const recorded = pending;
    const recordedNames = opNames;
    pending = [];
    opNames = [];
    if (targets.length === 0) return;

    const needed = new Set<TraceRecord>();
    const stack = targets.map((v) => v.producer!);
    while (stack.length > 0) {
      const op = stack.pop()!;
      if (needed.has(op)) continue;
      needed.add(op);
      for (const input of op.inputs) if (input.producer) stack.push(input.producer);
    }

    const graph = new GraphBuilder();
    const names = new Map<TraceValue, string>();
    const nameOf = (value: TraceValue): string => {
      let name = names.get(value);
      if (name === undefined) {
        if (value.producer) throw new MurmurError('BACKEND', 'a recorded value was used before the op computing it');
        name = graph.input(DataType.FLOAT, [value.rows, value.cols], () => {
          if (value.error !== undefined) throw value.error;
          if (!value.data) throw new MurmurError('BACKEND', `the [${value.rows}, ${value.cols}] input of a graph was never computed`);
          return value.data;
        });
        names.set(value, name);
      }
      return name;
    };
    const ops: string[] = [];
    recorded.forEach((op, i) => {
      if (!needed.has(op)) return;
      ops.push(recordedNames[i]!);
      const outputs = op.lower(graph, op.inputs.map(nameOf));
      op.outputs.forEach((value, j) => names.set(value, outputs[j]!));
    });
    for (const value of targets) graph.output(names.get(value)!, value.variableShape ? undefined : [value.rows, value.cols]);
    for (const op of recorded) for (const value of op.outputs) delete value.producer;

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

  function linearLower(w: LinearWeights<OnnxWeight>, options: { gelu?: boolean | undefined }, hasResidual: boolean) {
    return (g: GraphBuilder, [x, residual]: readonly string[]) => {
      const inputs = [x!, g.weight(w.weight), ...(w.bias ? [g.weight(w.bias)] : [])];
      const y = g.node('Gemm', inputs, { transB: { int: 1 } });
      return [epilogue(g, y, options, hasResidual ? residual : undefined)];
    };
  }

  const ops: OnnxOps = {
    flush,
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
      let value = valueOf(x, 'read');
      if (value.producer) flush();
      value = x.value;
      await value.ready;
      if (value.error !== undefined) throw value.error;
      return value.data!.slice();
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
      const channelsFirst = options.inputLayout === 'channels-first';
      const frames = channelsFirst ? input.cols : input.rows;
      const channels = channelsFirst ? input.rows : input.cols;
      if (channels !== inChannels) throw shapeError(`conv1d: input has ${channels} channels, weight [${w.weight.dims}] expects ${inChannels}`);
      const outFrames = Math.floor((frames - 1) / options.stride) + 1;
      const [out] = record('conv1d', [input], [[outFrames, outChannels]], (g, [xName]) => {
        const channelsMajor = channelsFirst ? xName! : g.node('Transpose', [xName!], { perm: { ints: [1, 0] } });
        const batched = reshape(g, channelsMajor, [1, inChannels, frames]);
        const conv = g.node('Conv', [batched, g.weight(w.weight), ...(w.bias ? [g.weight(w.bias)] : [])], {
          kernel_shape: { ints: [3] },
          pads: { ints: [1, 1] },
          strides: { ints: [options.stride] },
        });
        const timeMajor = g.node('Transpose', [reshape(g, conv, [outChannels, outFrames])], { perm: { ints: [1, 0] } });
        return [epilogue(g, timeMajor, options, undefined)];
      });
      return handle(out!);
    },

    addPositionalEmbedding(x, table) {
      const input = valueOf(x, 'addPositionalEmbedding');
      const [tableRows, width] = table.dims as [number, number];
      if (width !== input.cols || tableRows < input.rows) throw shapeError(`positional embedding [${table.dims}] cannot cover an input of [${input.rows}, ${input.cols}]`);
      const [out] = record('addPositionalEmbedding', [input], [[input.rows, input.cols]], (g, [xName]) => {
        let positions = g.weight(table);
        if (tableRows !== input.rows) positions = g.node('Slice', [positions, g.int64([0]), g.int64([input.rows]), g.int64([0])]);
        return [g.node('Add', [xName!, positions])];
      });
      return handle(out!);
    },

    layerNorm(x, w: LayerNormWeights<OnnxWeight>) {
      const input = valueOf(x, 'layerNorm');
      if (w.weight.dims[0] !== input.cols || w.bias.dims[0] !== input.cols) throw shapeError(`layer norm of ${w.weight.dims[0]} channels on rows of ${input.cols}`);
      const [out] = record('layerNorm', [input], [[input.rows, input.cols]], (g, [xName]) => [
        g.node('LayerNormalization', [xName!, g.weight(w.weight), g.weight(w.bias)], { axis: { int: -1 }, epsilon: { float: LAYER_NORM_EPS } }),
      ]);
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
      const [out] = record('linear', residual ? [input, residual] : [input], [[input.rows, outDim]], linearLower(w, { gelu: options?.gelu }, residual !== undefined));
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
      const masked = causal !== undefined || !shared || length < capacity;
      const shapes: [number, number][] = [[query.rows, cols]];
      if (returnWeights) shapes.push([sequences * heads * queryRows, length]);
      const outputs = record('attention', [query, key, value], shapes, (g, [qName, kName, vName]) => {
        const stored = (name: string, rows: number) => (rows === storedRows ? name : g.node('Slice', [name, g.int64([0]), g.int64([storedRows]), g.int64([0])]));
        const q4 = g.node('Transpose', [reshape(g, qName!, [sequences, queryRows, heads, headDim])], { perm: { ints: [0, 2, 1, 3] } });
        const kT = g.node('Transpose', [reshape(g, stored(kName!, key.rows), [keySequences, capacity, heads, headDim])], { perm: { ints: [0, 2, 3, 1] } });
        const v4 = g.node('Transpose', [reshape(g, stored(vName!, value.rows), [keySequences, capacity, heads, headDim])], { perm: { ints: [0, 2, 1, 3] } });
        let scores = g.node('Mul', [g.node('MatMul', [q4, kT]), g.float([1 / Math.sqrt(headDim)], [])]);
        let lengthInput: string | undefined;
        if (masked) {
          lengthInput = g.int64Input([length], [1]);
          let limit = lengthInput;
          if (causal) {
            // Query row i sees keys 0..queryOffset+i.
            const rowLimits = g.node('Add', [g.int64Input([causal.queryOffset], [1]), g.int64(Array.from({ length: queryRows }, (_, i) => i + 1), [queryRows, 1])]);
            limit = g.node('Min', [rowLimits, lengthInput]);
          }
          const keyIndex = g.int64(Array.from({ length: capacity }, (_, j) => j), [1, capacity]);
          scores = g.node('Where', [g.node('Less', [keyIndex, limit]), scores, g.float([MASKED_SCORE], [])]);
        }
        const probabilities = g.node('Softmax', [scores], { axis: { int: -1 } });
        const mixed = g.node('Transpose', [g.node('MatMul', [probabilities, v4])], { perm: { ints: [0, 2, 1, 3] } });
        const results = [reshape(g, mixed, [sequences * queryRows, cols])];
        if (returnWeights) {
          let weights = reshape(g, probabilities, [sequences * heads * queryRows, capacity]);
          if (lengthInput !== undefined) weights = g.node('Slice', [weights, g.int64([0]), lengthInput, g.int64([1])]);
          results.push(weights);
        }
        return results;
      });
      if (outputs[1] && masked) outputs[1].variableShape = true;
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
      const tokenIds = [...tokens];
      const positionIds = [...positions];
      const [out] = record('embed', [], [[tokens.length, width]], (g) => [
        g.node('Add', [
          g.node('Gather', [g.weight(tokenEmbedding), g.int64Input(tokenIds)], { axis: { int: 0 } }),
          g.node('Gather', [g.weight(positionalEmbedding), g.int64Input(positionIds)], { axis: { int: 0 } }),
        ]),
      ]);
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
      const [updated] = record('writeCache', [target, rows], [[target.rows, target.cols]], (g, [cacheName, xName]) => {
        // Row s·capacity + offset + i for new row i of sequence s; only the offset varies between steps.
        const base = Array.from({ length: sequences * n }, (_, r) => Math.floor(r / n) * capacity + (r % n));
        const indices = g.node('Add', [g.int64(base, [sequences * n, 1]), g.int64Input([offset], [1])]);
        return [g.node('ScatterND', [cacheName!, indices, xName!])];
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
      const [reordered] = record('reorderCache', [target], [[target.rows, target.cols]], (g, [cacheName]) => [
        g.node('Gather', [cacheName!, g.int64Input(rows)], { axis: { int: 0 } }),
      ]);
      cache.value = reordered!;
    },

    gatherRows(x, rows) {
      const input = valueOf(x, 'gatherRows');
      rows.forEach((row) => {
        if (!Number.isInteger(row) || row < 0 || row >= input.rows) throw shapeError(`gatherRows: row ${row} of a [${input.rows}, ${input.cols}] tensor`);
      });
      const picked = [...rows];
      const [out] = record('gatherRows', [input], [[rows.length, input.cols]], (g, [xName]) => [g.node('Gather', [xName!, g.int64Input(picked)], { axis: { int: 0 } })]);
      return handle(out!);
    },
  };
  return ops;
}
