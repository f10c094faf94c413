// The channels-first ONNX graphs (src/onnx/lower-channels-first.ts), checked on the shapes
// onnxruntime actually computes: the mini encoder graph is re-run with every node output made a
// graph output, so each interior activation's shape is read, not inferred by us.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-web';
import { createOnnxBackend, type OrtModule } from '../../src/onnx/backend.ts';
import { DataType, decodeModel, encodeModel, type DataTypeCode } from '../../src/onnx/onnx-schema.ts';
import { encode, type MelInput } from '../../src/core/model/whisper.ts';
import { channelsFirstSequenceMultiple } from '../../src/core/layout/channels-first.ts';
import { createRandom, syntheticWeights } from '../../scripts/synthetic/weights.ts';
import { presetDims } from '../../scripts/synthetic/presets.ts';

const dims = presetDims('mini');
const random = createRandom(5);
const mel: MelInput = { data: Float32Array.from({ length: dims.nMels * 2 * dims.nAudioCtx }, () => random.uniform() * 2 - 1), nMels: dims.nMels, nFrames: 2 * dims.nAudioCtx };
const MULTIPLE = channelsFirstSequenceMultiple('f32');
const PADDED = Math.ceil(dims.nAudioCtx / MULTIPLE) * MULTIPLE;

/** Element types of node outputs that are not f32 (comparisons and shapes). */
const OUTPUT_TYPES: Record<string, DataTypeCode> = { Less: DataType.BOOL, Greater: DataType.BOOL, And: DataType.BOOL, Or: DataType.BOOL, Shape: DataType.INT64 };

test('channels-first encoder graph: every interior activation is (1, C, 1, S) with S padded to 64 bytes, every linear a 1×1 Conv', { timeout: 120_000 }, async (t) => {
  const created: Uint8Array[] = [];
  const spy = { ...ort, InferenceSession: { create: (bytes: Uint8Array, options: ort.InferenceSession.SessionOptions) => (created.push(bytes), ort.InferenceSession.create(bytes, options)) } } as unknown as OrtModule;
  const backend = await createOnnxBackend({ layout: 'channels-first', providers: ['wasm'], ort: spy });
  const weights = await backend.prepareWeights(dims, syntheticWeights(dims, 3, 'f32'));
  const features = encode(backend.ops, { dims, weights }, mel);
  await backend.ops.read(features);
  backend.ops.release(features);
  backend.dispose();
  assert.equal(created.length, 1);

  const model = decodeModel(created[0]!);
  const { graph } = model;
  const initializers = new Map(graph.initializer.map((i) => [i.name, i]));
  // Linears: Conv with a [out, in, 1, 1] weight and a 1×1 kernel; the stem: two (1, 3) Convs.
  const convs = graph.node.filter((n) => n.opType === 'Conv');
  const kernelOf = (n: (typeof convs)[number]) => n.attribute.find((a) => a.name === 'kernel_shape')!.ints;
  const linears = convs.filter((n) => initializers.get(n.input[1]!)!.dims.slice(2).join() === '1,1');
  assert.equal(linears.length, 6 * dims.nAudioLayer, 'q, k, v, out, fc1, fc2 per block');
  for (const conv of linears) assert.deepEqual(kernelOf(conv), [1, 1]);
  assert.deepEqual(convs.filter((n) => !linears.includes(n)).map(kernelOf), [[1, 3], [1, 3]]);
  assert.ok(!graph.node.some((n) => n.opType === 'Gemm' || n.opType === 'LayerNormalization' || n.opType === 'Einsum'));
  assert.ok(graph.node.some((n) => n.opType === 'ReduceMean' && n.attribute.some((a) => a.name === 'axes' && a.ints?.join() === '1')), 'layer norm over the channel axis');

  // Every node output becomes a graph output; run the graph and read each one's shape.
  const probe = { ...model, graph: { ...graph, output: graph.node.flatMap((n) => n.output.map((name) => ({ name, type: { tensorType: { elemType: OUTPUT_TYPES[n.opType] ?? DataType.FLOAT } } }))) } };
  const session = await ort.InferenceSession.create(encodeModel(probe), { executionProviders: ['wasm'], graphOptimizationLevel: 'disabled' });
  const input = graph.input[0]!;
  const results = await session.run({ [input.name]: new ort.Tensor('float32', mel.data, [dims.nMels, mel.nFrames]) });
  const shapes = new Map(Object.entries(results).map(([name, tensor]) => [name, tensor.dims as readonly number[]]));
  await session.release();

  // The boundary: from the last channels-first value to the row-major graph output.
  const producer = new Map(graph.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
  const boundary = new Set<string>();
  for (let name = graph.output[0]!.name; shapes.get(name)!.length !== 4 || !/^(Pad|Add|Conv|Mul)$/.test(producer.get(name)!.opType); name = producer.get(name)!.input[0]!) boundary.add(name);
  assert.deepEqual([...boundary].map((n) => producer.get(n)!.opType), ['Reshape', 'Transpose', 'Slice'], 'channels-first → row-major at the output only');

  let checked = 0;
  for (const node of graph.node) {
    for (const output of node.output) {
      if (boundary.has(output) || OUTPUT_TYPES[node.opType] !== undefined) continue;
      const shape = shapes.get(output)!;
      assert.equal(shape.length, 4, `${node.opType} → ${output} has shape [${shape}]`);
      // Reshape/Transpose/MatMul inside attention hold per-head views (B, 1, d, S), (B, 1, S, d): rank 4, not activations.
      if (/^(Reshape|Transpose|MatMul)$/.test(node.opType)) continue;
      const [batch, , one, sequence] = shape as [number, number, number, number];
      assert.ok(batch === 1 && one === 1 && sequence % MULTIPLE === 0 && sequence >= dims.nAudioCtx, `${node.opType} → ${output} is [${shape}], not (1, C, 1, S padded)`);
      checked++;
    }
  }
  assert.ok(checked > 100);
  const sequences = new Set([...shapes.values()].filter((s) => s.length === 4).map((s) => s[3]));
  assert.ok(sequences.has(PADDED), `the audio positions padded to ${PADDED}`);
  t.diagnostic(`${graph.node.length} nodes, ${checked} activations (1, C, 1, S ∈ {${[...sequences].filter((s) => s! % MULTIPLE === 0 && s! >= dims.nAudioCtx).join(', ')}}), ${linears.length} 1×1 Convs`);
});
