// The ONNX graphs the 'webnn' backend builds (src/onnx), checked structurally without running
// them: the ModelProto schema round-trips through protobufjs with onnx.proto's field numbers, every
// node is a real ONNX operator, graphs are closed (every name a node reads is defined before), and
// decoder steps of one shape lower to one graph whose per-step values are inputs, not constants.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataType, decodeModel, encodeModel, OPSET_VERSION, type ModelMessage } from '../../src/onnx/onnx-schema.ts';
import { GraphBuilder } from '../../src/onnx/graph.ts';
import { createOnnxOps, type PlannedGraph } from '../../src/onnx/trace-ops.ts';
import { mapWeights } from '../../src/core/model/weights.ts';
import { decodeTensor } from '../../src/core/model/dtype.ts';
import { createDecoderState, decodeStep, encode, reorderDecoderState, type MelInput } from '../../src/core/model/whisper.ts';
import { createRandom, syntheticWeights } from '../../scripts/synthetic/weights.ts';
import { presetDims } from '../../scripts/synthetic/presets.ts';

/** The operators of the default ONNX domain (ai.onnx) up to opset 17, from the ONNX operator list. */
const ONNX_OPERATORS = new Set(
  `Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Bernoulli BitShift BlackmanWindow
  Cast CastLike Ceil Celu Clip Compress Concat ConcatFromSequence Constant ConstantOfShape Conv ConvInteger ConvTranspose Cos Cosh
  CumSum DFT DepthToSpace DequantizeLinear Det Div Dropout DynamicQuantizeLinear Einsum Elu Equal Erf Exp Expand EyeLike Flatten
  Floor GRU Gather GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual HammingWindow
  HannWindow HardSigmoid HardSwish Hardmax Identity If InstanceNormalization IsInf IsNaN LRN LSTM LayerNormalization LeakyRelu Less
  LessOrEqual Log LogSoftmax Loop LpNormalization LpPool MatMul MatMulInteger Max MaxPool MaxRoiPool MaxUnpool Mean
  MelWeightMatrix Min Mish Mod Mul Multinomial Neg NegativeLogLikelihoodLoss NonMaxSuppression NonZero Not OneHot Optional
  OptionalGetElement OptionalHasElement Or PRelu Pad Pow QLinearConv QLinearMatMul QuantizeLinear RNN RandomNormal
  RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
  ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RoiAlign Round STFT Scan Scatter
  ScatterElements ScatterND Selu SequenceAt SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength
  SequenceMap Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax SoftmaxCrossEntropyLoss Softplus Softsign SpaceToDepth Split
  SplitToSequence Sqrt Squeeze StringNormalizer Sum Tan Tanh TfIdfVectorizer ThresholdedRelu Tile TopK Transpose Trilu Unique
  Unsqueeze Where Xor`.split(/\s+/),
);

/** Every name a node reads is a graph input, an initializer or an earlier node's output; outputs are defined; nothing unused. */
function assertClosed(model: ModelMessage, what: string): void {
  const { graph } = model;
  const defined = new Set([...graph.input.map((i) => i.name), ...graph.initializer.map((t) => t.name)]);
  const used = new Set<string>();
  graph.node.forEach((node, index) => {
    for (const input of node.input) {
      assert.ok(defined.has(input), `${what}: node ${index} (${node.opType}) reads ${input}, which nothing before it defines`);
      used.add(input);
    }
    for (const output of node.output) {
      assert.ok(!defined.has(output), `${what}: ${output} is defined twice`);
      defined.add(output);
    }
  });
  for (const output of graph.output) {
    assert.ok(defined.has(output.name), `${what}: graph output ${output.name} is never computed`);
    used.add(output.name);
  }
  for (const name of [...graph.input.map((i) => i.name), ...graph.initializer.map((t) => t.name)]) assert.ok(used.has(name), `${what}: ${name} is never used`);
  for (const node of graph.node) assert.ok(ONNX_OPERATORS.has(node.opType), `${what}: ${node.opType} is not an ONNX operator`);
}

test('the ModelProto schema round-trips through protobufjs with onnx.proto field numbers', () => {
  const g = new GraphBuilder();
  const x = g.input(DataType.FLOAT, [2, 3], () => new Float32Array(6));
  const offset = g.int64Input([7], [1]);
  const w = g.weight({ name: 'w', dims: [3, 3], data: Float32Array.from({ length: 9 }, (_, i) => i - 4.5), owner: 1 });
  const y = g.node('Gemm', [x, w], { transB: { int: 1 }, alpha: { float: 0.25 } });
  const z = g.node('Softmax', [g.node('Transpose', [y], { perm: { ints: [1, 0] } })], { axis: { int: -1 } });
  g.output(g.node('Add', [z, g.float([1.5], [])]), [3, 2]);
  g.output(g.node('Add', [offset, g.int64([-3, 5], [2])]));
  const model = g.model('round-trip');
  const bytes = encodeModel(model);
  // ir_version is field 1 (varint), then opset_import field 8 and graph field 7 (length-delimited).
  assert.deepEqual([...bytes.subarray(0, 2)], [0x08, 8]);
  const tags = new Set<number>();
  for (let i = 0; i < bytes.length; ) {
    const tag = bytes[i]!;
    tags.add(tag);
    i++;
    if ((tag & 7) === 0) {
      while (bytes[i]! & 0x80) i++;
      i++;
    } else {
      let length = 0;
      for (let shift = 0; ; shift += 7) {
        const b = bytes[i++]!;
        length += (b & 0x7f) * 2 ** shift;
        if (!(b & 0x80)) break;
      }
      i += length;
    }
  }
  assert.deepEqual([...tags].sort((a, b) => a - b), [0x08, 0x12, 0x3a, 0x42]);

  const back = decodeModel(bytes);
  assert.equal(back.irVersion, model.irVersion);
  assert.deepEqual(back.opsetImport, [{ domain: '', version: OPSET_VERSION }]);
  assert.deepEqual(back.graph.node.map((n) => [n.opType, n.input, n.output]), model.graph.node.map((n) => [n.opType, n.input, n.output]));
  // Unset repeated fields read back as empty lists.
  const attributes = (index: number) => back.graph.node[index]!.attribute.map((a) => Object.fromEntries(Object.entries(a).filter(([, v]) => !(Array.isArray(v) && v.length === 0))));
  assert.deepEqual(attributes(0), [{ name: 'transB', type: 2, i: 1 }, { name: 'alpha', type: 1, f: 0.25 }]);
  assert.deepEqual(attributes(1), [{ name: 'perm', type: 7, ints: [1, 0] }]);
  assert.deepEqual(attributes(2), [{ name: 'axis', type: 2, i: -1 }]);
  assert.deepEqual(back.graph.input, [
    { name: x, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: 2 }, { dimValue: 3 }] } } } },
    { name: offset, type: { tensorType: { elemType: DataType.INT64, shape: { dim: [{ dimValue: 1 }] } } } },
  ]);
  assert.deepEqual(back.graph.output.map((o) => o.type.tensorType.shape?.dim.length ?? 'no shape'), [2, 'no shape']);
  const weight = back.graph.initializer.find((t) => t.name === 'w')!;
  assert.deepEqual(weight.dims, [3, 3]);
  assert.equal(weight.dataType, DataType.FLOAT);
  assert.deepEqual(new Float32Array(Uint8Array.from(weight.rawData).buffer), Float32Array.from({ length: 9 }, (_, i) => i - 4.5));
  const constant = back.graph.initializer.find((t) => t.dataType === DataType.INT64)!;
  assert.deepEqual([...new BigInt64Array(Uint8Array.from(constant.rawData).buffer)], [-3n, 5n]);
  assertClosed(back, 'round-trip');
});

const dims = presetDims('mini');
const loaded = syntheticWeights(dims, 3, 'f32');
const weights = mapWeights(dims, loaded, (tensor, slot) => ({ name: slot.name, dims: [...tensor.shape], data: decodeTensor(tensor), owner: 1 }));
const model = { dims, weights };
const random = createRandom(5);
const mel: MelInput = { data: Float32Array.from({ length: dims.nMels * 2 * dims.nAudioCtx }, () => random.uniform()), nMels: dims.nMels, nFrames: 2 * dims.nAudioCtx };

/** Tracing ops whose executor only records the graphs and returns zeros of each output's shape. */
function recordingOps() {
  const graphs: PlannedGraph[] = [];
  const ops = createOnnxOps(async (planned) => {
    graphs.push(planned);
    const outputs = planned.graph.model('recorded').graph.output;
    return outputs.map((o) => new Float32Array((o.type.tensorType.shape?.dim ?? []).reduce((n, d) => n * ('dimValue' in d ? d.dimValue : 0), 1)));
  });
  return { ops, graphs };
}

test('the encoder graph: one input, the encoder weights only, real ONNX operators, no dangling names', async () => {
  const { ops, graphs } = recordingOps();
  const features = encode(ops, model, mel);
  assert.equal(graphs.length, 0, 'nothing runs while recording');
  assert.deepEqual(ops.shape(features), [dims.nAudioCtx, dims.nAudioState]);
  await ops.read(features);
  assert.equal(graphs.length, 1);
  const encoder = graphs[0]!.graph.model('encoder');
  assertClosed(decodeModel(encodeModel(encoder)), 'encoder');
  assert.deepEqual(encoder.graph.input.map((i) => i.type.tensorType.shape?.dim), [[{ dimValue: dims.nMels }, { dimValue: 2 * dims.nAudioCtx }]]);
  assert.deepEqual(encoder.graph.output.map((o) => o.type.tensorType.shape?.dim), [[{ dimValue: dims.nAudioCtx }, { dimValue: dims.nAudioState }]]);
  const weightNames = encoder.graph.initializer.map((t) => t.name).filter((name) => !name.startsWith('const'));
  assert.ok(weightNames.length > 0 && weightNames.every((name) => name.startsWith('encoder.')), weightNames.join(', '));
  assert.ok(encoder.graph.node.some((n) => n.opType === 'Conv') && encoder.graph.node.some((n) => n.opType === 'LayerNormalization'));
  assert.equal(graphs[0]!.ops.filter((op) => op === 'attention').length, dims.nAudioLayer);
  ops.release(features);
});

test('every decoder step of a batch lowers to one graph: row counts are dynamic, offsets, lengths and tokens are int64 inputs, caches go in and come out', async () => {
  const { ops, graphs } = recordingOps();
  const features = encode(ops, model, mel);
  const state = createDecoderState(ops, model, features, { sequences: 2 });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(graphs.length, 1, 'starting a decoder state ran the encoder');
  const stepGraph = async (tokens: number[][]) => {
    const { logits } = decodeStep(ops, model, state, tokens);
    await ops.read(logits);
    ops.release(logits);
    const planned = graphs[graphs.length - 1]!;
    const built = planned.graph.model('step');
    assertClosed(decodeModel(encodeModel(built)), `step at ${state.offset}`);
    return { planned, built, int64: planned.graph.inputs.filter((i) => i.dataType === DataType.INT64).map((i) => [...i.data()].map(Number)) };
  };
  const prompt = await stepGraph([[50257, 50362], [50257, 50362]]);
  const first = await stepGraph([[11], [12]]);
  const second = await stepGraph([[13], [14]]);
  reorderDecoderState(ops, model, state, [1, 1]);
  const reordered = await stepGraph([[15], [16]]);
  const third = await stepGraph([[17], [18]]);

  assert.equal(prompt.planned.key, first.planned.key, 'a two-token prompt and a one-token step are one graph');
  assert.equal(second.planned.key, first.planned.key, 'one graph serves every step');
  assert.equal(third.planned.key, first.planned.key);
  assert.equal(reordered.planned.key, first.planned.key, 'the reorder ran before the step, as its own graph');
  assert.ok(graphs.some((p) => p.ops.length === 2 * dims.nTextLayer && p.ops.every((op) => op === 'reorderCache')), 'a graph of the reorders alone');
  assert.ok(graphs.some((p) => p.ops.length === 2 * dims.nTextLayer && p.ops.every((op) => op === 'linear')), 'a graph of the cross-attention K/V alone');
  const tokenInput = first.built.graph.input[0]!.type.tensorType.shape?.dim;
  assert.deepEqual(tokenInput, [{ dimParam: 'rows' }], 'token ids have a dynamic row count');
  // The per-step values differ only in the fed inputs: tokens, positions, offsets and lengths.
  assert.notDeepEqual(second.int64, first.int64);
  assert.ok(first.int64.some((values) => values.length === 2 && values[0] === 11 && values[1] === 12), 'token ids are fed');
  assert.ok(second.int64.some((values) => values.length === 2 && values[0] === 3 && values[1] === dims.nTextCtx + 3), 'the cache rows written at offset 3 are fed');
  assert.ok(second.int64.some((values) => values.length === 2 && values[0] === 4 && values[1] === 4), 'each query row\'s causal key limit (offset 3 + 1) is fed');
  assert.ok(!first.built.graph.initializer.some((t) => t.name.includes('cross_attn.key')), 'cross-attention K/V come in computed, once');
  // Past caches come in and present caches go out, [sequences × nTextCtx, nTextState] each.
  const cacheShape = [{ dimValue: 2 * dims.nTextCtx }, { dimValue: dims.nTextState }];
  const isCache = (v: { type: { tensorType: { shape?: { dim: unknown[] } } } }) => JSON.stringify(v.type.tensorType.shape?.dim) === JSON.stringify(cacheShape);
  assert.equal(first.built.graph.input.filter(isCache).length, 2 * dims.nTextLayer);
  assert.equal(first.built.graph.output.filter(isCache).length, 2 * dims.nTextLayer);
  assert.ok(first.built.graph.node.some((n) => n.opType === 'ScatterND'));
  const opTypes = new Set(graphs.flatMap((p) => p.graph.nodes.map((n) => n.opType)));
  assert.ok(opTypes.size > 10, [...opTypes].join(','));
});
