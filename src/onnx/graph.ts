/**
 * Builds one ONNX graph: nodes with generated value names, graph inputs (with the host data to
 * feed them), outputs, small constants and weight initializers. Names are assigned in build
 * order, so the same sequence of calls gives the same graph, and `structureKey()` (everything but
 * the fed data and the weights' values) identifies it: equal keys can share one compiled session.
 */
import { AttributeType, DataType, IR_VERSION, OPSET_VERSION } from './onnx-schema.ts';
import { MurmurError } from '../core/errors.ts';
import type { AttributeMessage, DataTypeCode, ModelMessage, NodeMessage, TensorMessage, ValueInfoMessage } from './onnx-schema.ts';

export type Attribute = { int: number } | { ints: readonly number[] } | { float: number };

/** A weight turned into an initializer: f32 values under a stable name. */
export interface InitializerSource {
  readonly name: string;
  readonly dims: readonly number[];
  readonly data: Float32Array;
  /** Which prepared weight set it belongs to: same name, other model, other graph. */
  readonly owner: number;
}

export type FeedData = Float32Array | BigInt64Array | Uint8Array;

/** A dimension: a size, or the name of a size that varies from run to run (ONNX's dim_param). */
export type Dim = number | string;

/** A graph input with the data to feed it, or (for inputs whose data is produced by an earlier run) a function giving it at run time. */
export interface GraphInput {
  readonly name: string;
  readonly dataType: DataTypeCode;
  readonly dims: readonly Dim[];
  /** The shape of the data fed in this run (dims with every named size resolved). */
  readonly shape: readonly number[];
  readonly data: () => FeedData;
}

function bytesOf(data: Float32Array | BigInt64Array | Uint8Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function valueInfo(name: string, elemType: DataTypeCode, dims?: readonly Dim[]): ValueInfoMessage {
  const dim = dims?.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType, ...(dim ? { shape: { dim } } : {}) } } };
}

function attributeMessage(name: string, value: Attribute): AttributeMessage {
  if ('int' in value) return { name, type: AttributeType.INT, i: value.int };
  if ('ints' in value) return { name, type: AttributeType.INTS, ints: [...value.ints] };
  return { name, type: AttributeType.FLOAT, f: value.float };
}

export class GraphBuilder {
  readonly nodes: NodeMessage[] = [];
  readonly inputs: GraphInput[] = [];
  private readonly outputs: ValueInfoMessage[] = [];
  private readonly constants = new Map<string, TensorMessage>();
  private readonly weights = new Map<string, { source: InitializerSource; dims: readonly number[] }>();
  private nextValue = 0;

  /** A graph input named in order of appearance; `data` is called when the graph runs. */
  input(dataType: DataTypeCode, dims: readonly Dim[], data: () => FeedData, shape?: readonly number[]): string {
    const name = `input${this.inputs.length}`;
    const resolved = shape ?? dims.map((d) => (typeof d === 'number' ? d : Number.NaN));
    if (resolved.length !== dims.length || resolved.some((d) => !Number.isInteger(d))) throw new MurmurError('BACKEND', `graph input ${name} [${dims}] needs the shape it is fed with`);
    this.inputs.push({ name, dataType, dims: [...dims], shape: [...resolved], data });
    return name;
  }

  /** An int64 graph input fed with these values (token ids, offsets, lengths: what changes every step). */
  int64Input(values: readonly number[], dims: readonly Dim[] = [values.length]): string {
    const data = BigInt64Array.from(values, (v) => BigInt(v));
    // One named size at most, resolved from the number of values.
    const known = dims.reduce<number>((n, d) => n * (typeof d === 'number' ? d : 1), 1);
    return this.input(DataType.INT64, dims, () => data, dims.map((d) => (typeof d === 'number' ? d : values.length / known)));
  }

  /**
   * A weight as an initializer (added once however often it is used). `dims` views the same
   * values in another shape (a linear's [out, in] as the 1×1 convolution's [out, in, 1, 1]); a
   * graph uses each weight in one shape only, so its bytes are in the graph once.
   */
  weight(source: InitializerSource, dims: readonly number[] = source.dims): string {
    const count = dims.reduce((n, d) => n * d, 1);
    if (count !== source.data.length) throw new MurmurError('BACKEND', `weight ${source.name}: ${source.data.length} values cannot be viewed as [${dims}]`);
    const known = this.weights.get(source.name);
    if (known && known.dims.join() !== dims.join()) throw new MurmurError('BACKEND', `weight ${source.name} is used as [${known.dims}] and as [${dims}] in one graph`);
    this.weights.set(source.name, { source, dims: [...dims] });
    return source.name;
  }

  /**
   * The size each named dimension (dim_param) has in this run's feeds, keys sorted: what
   * onnxruntime's `freeDimensionOverrides` takes to make the graph static for one step shape.
   */
  freeDimensions(): Record<string, number> {
    const sizes = new Map<string, number>();
    for (const input of this.inputs) {
      input.dims.forEach((dim, axis) => {
        if (typeof dim !== 'string') return;
        const size = input.shape[axis]!;
        const known = sizes.get(dim);
        if (known !== undefined && known !== size) throw new MurmurError('BACKEND', `dimension "${dim}" is ${known} in one graph input and ${size} in ${input.name}`);
        sizes.set(dim, size);
      });
    }
    return Object.fromEntries([...sizes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** Bytes of the weights the graph carries as initializers (constants excluded). */
  get weightBytes(): number {
    let bytes = 0;
    for (const { source } of this.weights.values()) bytes += source.data.byteLength;
    return bytes;
  }

  /** A small constant, shared by every use of the same values. */
  constant(dataType: typeof DataType.FLOAT | typeof DataType.INT64, values: readonly number[], dims: readonly number[] = [values.length]): string {
    const id = `${dataType}:${dims.join('x')}:${values.join(',')}`;
    let tensor = this.constants.get(id);
    if (!tensor) {
      const data = dataType === DataType.FLOAT ? Float32Array.from(values) : BigInt64Array.from(values, (v) => BigInt(v));
      tensor = { name: `const${this.constants.size}`, dims: [...dims], dataType, rawData: bytesOf(data) };
      this.constants.set(id, tensor);
    }
    return tensor.name;
  }

  int64(values: readonly number[], dims?: readonly number[]): string {
    return this.constant(DataType.INT64, values, dims);
  }

  float(values: readonly number[], dims?: readonly number[]): string {
    return this.constant(DataType.FLOAT, values, dims);
  }

  /** One node with `outputCount` fresh outputs. */
  nodeOutputs(opType: string, inputs: readonly string[], attributes: Record<string, Attribute> = {}, outputCount = 1): string[] {
    const output = Array.from({ length: outputCount }, () => `v${this.nextValue++}`);
    this.nodes.push({
      opType,
      input: [...inputs],
      output,
      attribute: Object.entries(attributes).map(([name, value]) => attributeMessage(name, value)),
    });
    return output;
  }

  node(opType: string, inputs: readonly string[], attributes?: Record<string, Attribute>): string {
    return this.nodeOutputs(opType, inputs, attributes, 1)[0]!;
  }

  /** Declares a node output as a graph output (f32; dims omitted where they vary from run to run). */
  output(value: string, dims?: readonly Dim[]): void {
    this.outputs.push(valueInfo(value, DataType.FLOAT, dims));
  }

  get outputNames(): string[] {
    return this.outputs.map((o) => o.name);
  }

  /**
   * Everything that decides what the graph computes except fed data and weight values: the
   * nodes, input types and shapes, outputs, constants and which weights are used.
   */
  structureKey(): string {
    return JSON.stringify({
      nodes: this.nodes.map((n) => [n.opType, n.input, n.output, n.attribute.map((a) => [a.name, a.i, a.ints, a.f])]),
      inputs: this.inputs.map((i) => [i.name, i.dataType, i.dims]),
      outputs: this.outputs.map((o) => [o.name, o.type.tensorType.shape?.dim]),
      constants: [...this.constants.entries()].map(([id, t]) => [t.name, id]),
      weights: [...this.weights.values()].map(({ source, dims }) => [source.name, source.owner, dims]),
    });
  }

  /** The ModelProto as plain objects (weights' bytes are views, not copies). */
  model(name: string): ModelMessage {
    const initializer: TensorMessage[] = [
      ...[...this.weights.values()].map(({ source, dims }) => ({ name: source.name, dims: [...dims], dataType: DataType.FLOAT, rawData: bytesOf(source.data) })),
      ...this.constants.values(),
    ];
    return {
      irVersion: IR_VERSION,
      producerName: 'murmur',
      opsetImport: [{ domain: '', version: OPSET_VERSION }],
      graph: {
        name,
        node: this.nodes,
        initializer,
        input: this.inputs.map((i) => valueInfo(i.name, i.dataType, i.dims)),
        output: this.outputs,
      },
    };
  }
}
