/**
 * The ONNX operators (domain ai.onnx) that onnxruntime-web's WebNN execution provider can take.
 * A node of any other type is handed back to onnxruntime's CPU provider, splitting the graph: the
 * NPU/GPU partition waits on the host for it every run. The graphs this backend offers WebNN keep
 * to this set (test/unit/onnx-webnn-ops.test.ts checks every graph of a greedy and a beam decode).
 *
 * Source: the operator table onnxruntime-web 1.30.0 ships, docs/webnn-operators.md in the npm
 * package (js/web/docs/webnn-operators.md in microsoft/onnxruntime), ai.onnx rows only. Per-op
 * conditions listed there (e.g. Slice starts/ends, Pad pads, Reshape shape and Expand shape must
 * be initializers; Resize and pools only 4-D) are not part of this set.
 */
export const WEBNN_OPS_SOURCE = 'onnxruntime-web 1.30.0, docs/webnn-operators.md';

export const WEBNN_SUPPORTED_OPS: ReadonlySet<string> = new Set([
  'Abs', 'Add', 'And', 'ArgMax', 'ArgMin', 'AveragePool', 'BatchNormalization', 'Cast', 'Ceil', 'Clip',
  'Concat', 'Conv', 'ConvInteger', 'ConvTranspose', 'Cos', 'CumSum', 'DepthToSpace', 'DequantizeLinear',
  'Div', 'Dropout', 'DynamicQuantizeLinear', 'Einsum', 'Elu', 'Equal', 'Erf', 'Exp', 'Expand', 'Flatten',
  'Floor', 'Gather', 'GatherElements', 'GatherND', 'Gelu', 'Gemm', 'GlobalAveragePool', 'GlobalLpPool',
  'GlobalMaxPool', 'Greater', 'GreaterOrEqual', 'GRU', 'HardSigmoid', 'HardSwish', 'Identity',
  'InstanceNormalization', 'IsInf', 'IsNaN', 'LayerNormalization', 'LeakyRelu', 'Less', 'LessOrEqual',
  'Log', 'LpNormalization', 'LpPool', 'LRN', 'LSTM', 'MatMul', 'MatMulInteger', 'Max', 'MaxPool', 'Min',
  'Mul', 'Neg', 'Not', 'Or', 'Pad', 'Pow', 'PRelu', 'QuantizeLinear', 'Reciprocal', 'ReduceL1', 'ReduceL2',
  'ReduceLogSum', 'ReduceLogSumExp', 'ReduceMax', 'ReduceMean', 'ReduceMin', 'ReduceProd', 'ReduceSum',
  'ReduceSumSquare', 'Relu', 'Reshape', 'Resize', 'RotaryEmbedding', 'Round', 'ScatterElements',
  'ScatterND', 'Shape', 'Sigmoid', 'Sign', 'SimplifiedLayerNormalization', 'Sin', 'Slice', 'Softmax',
  'Softplus', 'Softsign', 'Split', 'Sqrt', 'Squeeze', 'Sub', 'Tan', 'Tanh', 'Tile', 'Transpose', 'Trilu',
  'Unsqueeze', 'Where', 'Xor',
]);

/** The op types among `opTypes` that WebNN's execution provider would hand back to the CPU. */
export function unsupportedByWebNn(opTypes: Iterable<string>): string[] {
  return [...new Set(opTypes)].filter((op) => !WEBNN_SUPPORTED_OPS.has(op)).sort();
}
