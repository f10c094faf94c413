// The WASM backend (src/kernels-wasm/backend.ts) against the reference backend: the synthetic
// 'mini' model through a 64-token greedy decode, quantized weights, 1 thread vs 2 threads,
// every op of the decoder's less common paths, typed errors, and that no op runs in JavaScript.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createWasmBackend, type WasmBackend } from '../../src/kernels-wasm/backend.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import { createDecoderState, createLogitsSource, decodeStep, encode, releaseDecoderState, reorderDecoderState, type ModelParameters } from '../../src/core/model/whisper.ts';
import type { WhisperDims } from '../../src/core/model/dims.ts';
import type { WeightDType, WeightTensor } from '../../src/core/model/weights.ts';
import { MurmurError } from '../../src/core/errors.ts';
import { syntheticWeights } from '../../scripts/synthetic/weights.ts';
import { presetDims } from '../../scripts/synthetic/presets.ts';
import { argmax, assertParity, greedy, maxDifference, randomMel, type Decoded } from '../backend-parity.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const reference = createReferenceBackend();

const miniDims = presetDims('mini');
const miniMel = randomMel(miniDims, 5);
const prompt = [50257, 50362];
const miniWeights = new Map<WeightDType, ReturnType<typeof syntheticWeights>>();
const weightsOf = (dtype: WeightDType) => {
  if (!miniWeights.has(dtype)) miniWeights.set(dtype, syntheticWeights(miniDims, 3, dtype));
  return miniWeights.get(dtype)!;
};
let referenceMini: Promise<Decoded> | undefined;
const referenceF32 = () => (referenceMini ??= greedy(reference.ops, { dims: miniDims, weights: weightsOf('f32') }, miniMel, prompt, 64));

async function withBackend<R>(options: Parameters<typeof createWasmBackend>[0], run: (backend: WasmBackend) => Promise<R>): Promise<R> {
  const backend = await createWasmBackend(options);
  try {
    return await run(backend);
  } finally {
    backend.dispose();
  }
}

async function wasmGreedy(backend: WasmBackend, dtype: WeightDType, steps = 64): Promise<Decoded> {
  const weights = await backend.prepareWeights(miniDims, weightsOf(dtype));
  try {
    return await greedy(backend.ops, { dims: miniDims, weights }, miniMel, prompt, steps);
  } finally {
    backend.releaseWeights(weights);
  }
}

test('mini model: logits within 1e-3 of the reference at every step of a 64-token greedy decode, same tokens', async (t) => {
  const expected = await referenceF32();
  await withBackend({ threads: 2 }, async (backend) => {
    assert.equal(backend.threads, 2);
    assert.match(backend.variant, /-threads$/);
    const actual = await wasmGreedy(backend, 'f32');
    const worst = assertParity(actual, expected);
    t.diagnostic(`${backend.variant}: worst logit difference ${worst.toExponential(2)} over 64 steps`);
    // Everything the decode allocated was given back; only the per-thread attention scratch stays.
    assert.ok(backend.allocatedBytes < 64 * 1024, `${backend.allocatedBytes} bytes still allocated`);
  });
});

test('1 thread and 2 threads give bit-identical features and logits', async () => {
  const one = await withBackend({ threads: 1 }, async (backend) => {
    assert.equal(backend.threads, 1);
    assert.doesNotMatch(backend.variant, /threads/);
    return wasmGreedy(backend, 'f32', 8);
  });
  const two = await withBackend({ threads: 2 }, (backend) => wasmGreedy(backend, 'f32', 8));
  assert.deepEqual(two.features, one.features);
  assert.deepEqual(two.logits, one.logits);
  // The quantized path splits its work too.
  const oneQ = await withBackend({ threads: 1 }, (backend) => wasmGreedy(backend, 'q8_0', 4));
  const twoQ = await withBackend({ threads: 2 }, (backend) => wasmGreedy(backend, 'q8_0', 4));
  assert.deepEqual(twoQ.logits, oneQ.logits);
  // f16 decoder weights: widened at load on one thread, kept as halves (widened in the kernel) on
  // two by default; either way, on either thread count, the same bits.
  const oneHalf = await withBackend({ threads: 1, halfWeights: true }, (backend) => wasmGreedy(backend, 'f16', 4));
  const oneWide = await withBackend({ threads: 1 }, (backend) => wasmGreedy(backend, 'f16', 4));
  const twoHalf = await withBackend({ threads: 2 }, (backend) => wasmGreedy(backend, 'f16', 4));
  assert.deepEqual(oneHalf.logits, oneWide.logits);
  assert.deepEqual(twoHalf.logits, oneWide.logits);
});

test("layout 'blocked': the mini model through Rockchip tiles, logits within 1e-3 of the reference at every step of a 64-token greedy decode, same tokens", async (t) => {
  const expected = await referenceF32();
  await withBackend({ threads: 2, layout: 'blocked' }, async (backend) => {
    assert.equal(backend.layout, 'blocked');
    const actual = await wasmGreedy(backend, 'f32');
    const worst = assertParity(actual, expected);
    const counts = backend.matmulCounts();
    // Every product ran the tiled kernel: 2 convs, 6 per encoder block, cross-attention key and value once per
    // decoder block, then per step 8 per decoder block and the logits.
    assert.equal(counts.tiles, 2 + 6 * miniDims.nAudioLayer + 2 * miniDims.nTextLayer + 64 * (8 * miniDims.nTextLayer + 1), JSON.stringify(counts));
    assert.deepEqual({ ...counts, tiles: 0 }, { f32: 0, f16: 0, int8: 0, tiles: 0 }, 'no panel kernel ran');
    t.diagnostic(`blocked, ${backend.variant}: worst logit difference ${worst.toExponential(2)} over 64 steps; ${counts.tiles} tiled products`);
    assert.ok(backend.allocatedBytes < 64 * 1024, `${backend.allocatedBytes} bytes still allocated`);
  });
});

test("layout 'blocked': 1 and 2 threads give the same bits; f16 widens into the tiles; quantized matrices keep the int8 panels", async () => {
  const one = await withBackend({ threads: 1, layout: 'blocked' }, (backend) => wasmGreedy(backend, 'f32', 4));
  const two = await withBackend({ threads: 2, layout: 'blocked' }, (backend) => wasmGreedy(backend, 'f32', 4));
  assert.deepEqual(two.logits, one.logits);
  const rowMajorHalf = await withBackend({ threads: 2 }, (backend) => wasmGreedy(backend, 'f16', 4));
  await withBackend({ threads: 2, layout: 'blocked' }, async (backend) => {
    const half = await wasmGreedy(backend, 'f16', 4);
    assert.equal(backend.matmulCounts().f16, 0, 'no half panels in the blocked layout');
    half.logits.forEach((row, step) => assert.ok(maxDifference(row, rowMajorHalf.logits[step]!) < 1e-3, `f16 step ${step}`));
  });
  const rowMajorQ8 = await withBackend({ threads: 2 }, (backend) => wasmGreedy(backend, 'q8_0', 4));
  await withBackend({ threads: 2, layout: 'blocked' }, async (backend) => {
    const q8 = await wasmGreedy(backend, 'q8_0', 4);
    const counts = backend.matmulCounts();
    assert.ok(counts.int8 > 0, JSON.stringify(counts));
    // The ggml writer keeps the convolutions f16, which the blocked layout tiles.
    assert.equal(counts.tiles, 2, JSON.stringify(counts));
    // The int8 path quantizes each activation row; the tiled f32 convolutions round differently from
    // the half panels (relaxed builds fuse multiply-adds), which can move an activation by one int8
    // step. So the bound is q8_0's own error on this model (f32 vs q8_0 logits differ by 1.4e-2), not 1e-3.
    q8.logits.forEach((row, step) => assert.ok(maxDifference(row, rowMajorQ8.logits[step]!) < 1.4e-2, `q8_0 step ${step}: ${maxDifference(row, rowMajorQ8.logits[step]!)}`));
    assert.deepEqual(q8.tokens, rowMajorQ8.tokens, 'the same tokens');
  });
});

test("layout 'blocked' on awkward shapes (k not a multiple of 32, n not of 16) matches the reference; a bad layout is a typed error", async () => {
  const dims: WhisperDims = { nMels: 4, nAudioCtx: 7, nAudioState: 15, nAudioHead: 3, nAudioLayer: 1, nTextCtx: 10, nTextState: 15, nTextHead: 3, nTextLayer: 1, nVocab: 40 };
  const weights = syntheticWeights(dims, 9);
  const mel = randomMel(dims, 4);
  const expected = await greedy(reference.ops, { dims, weights }, mel, [3, 5], 4);
  await withBackend({ threads: 2, layout: 'blocked' }, async (backend) => {
    const prepared = await backend.prepareWeights(dims, weights);
    try {
      const actual = await greedy(backend.ops, { dims, weights: prepared }, mel, [3, 5], 4);
      assertParity(actual, expected, { logits: 1e-4, features: 1e-5 });
    } finally {
      backend.releaseWeights(prepared);
    }
  });
  await assert.rejects(createWasmBackend({ layout: 'channels-first' as 'blocked' }), (error: unknown) => error instanceof MurmurError && error.code === 'BACKEND' && /channels-first/.test(error.message));
});

test('q8_0 weights: within quantization error of the reference on the same weights', async (t) => {
  const weights = weightsOf('q8_0');
  const steps = 16;
  const expected = await greedy(reference.ops, { dims: miniDims, weights }, miniMel, prompt, steps);
  // How far q8_0 weights move the logits from f32 ones: the scale of quantization error here.
  const f32 = await referenceF32();
  let weightError = 0;
  for (let step = 0; step < steps && expected.tokens[step] === f32.tokens[step]; step++) {
    weightError = Math.max(weightError, maxDifference(expected.logits[step]!, f32.logits[step]!));
  }
  await withBackend({ threads: 2 }, async (backend) => {
    const prepared = await backend.prepareWeights(miniDims, weights);
    try {
      // Teacher-forced on the reference's tokens, so a near-tie cannot make the two decodes diverge.
      const features = encode(backend.ops, { dims: miniDims, weights: prepared }, miniMel);
      const source = createLogitsSource(backend.ops, { dims: miniDims, weights: prepared }, features);
      let worst = 0;
      let agree = 0;
      for (let step = 0; step < steps; step++) {
        const row = await source.next([...prompt, ...expected.tokens.slice(0, step)]);
        worst = Math.max(worst, maxDifference(row, expected.logits[step]!));
        if (argmax(row) === expected.tokens[step]) agree++;
      }
      source.dispose();
      backend.ops.release(features);
      t.diagnostic(`q8_0: worst logit difference ${worst.toFixed(4)} (q8_0 vs f32 weights: ${weightError.toFixed(4)}); ${agree}/${steps} tokens agree`);
      assert.ok(worst < 0.05 && worst < 3 * weightError, `q8_0 logits differ from the reference by ${worst}`);
      assert.ok(agree >= steps - 2, `${agree} of ${steps} tokens agree`);
    } finally {
      backend.releaseWeights(prepared);
    }
  });
});

/** Small and awkward: 3 heads of 5, odd audio length, a context of 10, rows not multiples of 8. */
const smallDims: WhisperDims = { nMels: 4, nAudioCtx: 7, nAudioState: 15, nAudioHead: 3, nAudioLayer: 2, nTextCtx: 10, nTextState: 15, nTextHead: 3, nTextLayer: 2, nVocab: 40 };

test('awkward shapes: chunked prompts, all logits, cross-attention weights, beams and reorders match the reference', async () => {
  const weights = syntheticWeights(smallDims, 7);
  const refModel: ModelParameters<WeightTensor> = { dims: smallDims, weights };
  const mel = randomMel(smallDims, 2);
  await withBackend({ threads: 2 }, async (backend) => {
    const { ops } = backend;
    const model = { dims: smallDims, weights: await backend.prepareWeights(smallDims, weights) };
    const features = encode(ops, model, mel);
    const refFeatures = encode(reference.ops, refModel, mel);
    assert.ok(maxDifference(await ops.read(features), await reference.ops.read(refFeatures)) < 1e-5);

    const state = createDecoderState(ops, model, features, { sequences: 2 });
    const refState = createDecoderState(reference.ops, refModel, refFeatures, { sequences: 2 });
    const steps: [number[][], boolean][] = [[[[3, 17, 0], [39, 22, 8]], true], [[[5], [6]], false], [[[1, 2], [30, 9]], false]];
    for (const [index, [tokens, allLogits]] of steps.entries()) {
      const options = { allLogits, crossAttentionWeights: true };
      const got = decodeStep(ops, model, state, tokens, options);
      const want = decodeStep(reference.ops, refModel, refState, tokens, options);
      assert.deepEqual(ops.shape(got.logits), reference.ops.shape(want.logits));
      assert.ok(maxDifference(await ops.read(got.logits), await reference.ops.read(want.logits)) < 1e-4, `step ${index} logits`);
      assert.equal(got.crossAttention?.length, smallDims.nTextLayer);
      for (const [layer, weightsOut] of got.crossAttention!.entries()) {
        assert.ok(maxDifference(await ops.read(weightsOut), await reference.ops.read(want.crossAttention![layer]!)) < 1e-5, `step ${index} layer ${layer} attention weights`);
        ops.release(weightsOut);
      }
      ops.release(got.logits);
      if (index === 0) {
        reorderDecoderState(ops, model, state, [1, 1]);
        reorderDecoderState(reference.ops, refModel, refState, [1, 1]);
      }
    }
    releaseDecoderState(ops, state);
    ops.release(features);
    backend.releaseWeights(model.weights);
    assert.ok(backend.allocatedBytes < 64 * 1024, `${backend.allocatedBytes} bytes still allocated`);
  });
});

test('bad inputs are typed errors naming what was wrong', async () => {
  await assert.rejects(() => createWasmBackend({ threads: 0 }), (e: unknown) => e instanceof MurmurError && e.code === 'WASM_THREADS' && /got 0/.test(e.message));
  await withBackend({ threads: 2 }, async (backend) => {
    const { ops } = backend;
    const model = { dims: smallDims, weights: await backend.prepareWeights(smallDims, syntheticWeights(smallDims, 7)) };
    const x = ops.upload(new Float32Array(2 * 15), 2, 15);
    const isShape = (pattern: RegExp) => (e: unknown) => e instanceof MurmurError && e.code === 'SHAPE' && pattern.test(e.message);
    assert.throws(() => ops.upload(new Float32Array(5), 2, 3), isShape(/5 values cannot be a \[2, 3\]/));
    assert.throws(() => ops.linear(ops.upload(new Float32Array(8), 2, 4), model.weights.encoder.blocks[0]!.attn.query), isShape(/input \[2, 4\] against weight encoder\.blocks\.0\.attn\.query\.weight \[15, 15\]/));
    assert.throws(() => ops.linear(x, model.weights.encoder.blocks[0]!.attn.query, { residual: ops.zeros(3, 15) }), isShape(/residual \[3, 15\]/));
    assert.throws(() => ops.linear(x, { weight: model.weights.encoder.lnPost.weight }), (e: unknown) => e instanceof MurmurError && e.code === 'WASM_WEIGHTS' && /encoder\.ln_post\.weight/.test(e.message));
    assert.throws(() => ops.attention(x, { key: x, value: x, capacity: 2, length: 2, shared: true }, { heads: 4, sequences: 1 }), isShape(/15 channels do not split into 4 heads/));
    assert.throws(() => ops.attention(x, { key: x, value: x, capacity: 2, length: 3, shared: true }, { heads: 3, sequences: 1 }), isShape(/3 valid keys in a capacity of 2/));
    assert.throws(() => ops.embed([40], [0], model.weights.decoder.tokenEmbedding, model.weights.decoder.positionalEmbedding), isShape(/token id 40 outside the vocabulary of 40/));
    assert.throws(() => ops.embed([1], [10], model.weights.decoder.tokenEmbedding, model.weights.decoder.positionalEmbedding), isShape(/position 10 outside the context of 10/));
    assert.throws(() => ops.writeCache(ops.zeros(10, 15), x, { sequences: 1, capacity: 10, offset: 9 }), isShape(/rows 9\.\.10 exceed the capacity of 10/));
    assert.throws(() => ops.gatherRows(x, [2]), isShape(/row 2 of a \[2, 15\]/));
    assert.throws(() => ops.reorderCache(ops.zeros(20, 15), [0, 2], { capacity: 10, length: 1 }), isShape(/sequence 2 does not exist/));
    // A foreign tensor, and use after release.
    const refTensor = reference.ops.upload(new Float32Array(30), 2, 15);
    assert.throws(() => ops.layerNorm(refTensor as never, model.weights.encoder.lnPost), (e: unknown) => e instanceof MurmurError && e.code === 'WASM_TENSOR');
    ops.release(x);
    ops.release(x);
    await assert.rejects(() => ops.read(x), (e: unknown) => e instanceof MurmurError && e.code === 'RELEASED');
    assert.throws(() => ops.layerNorm(x, model.weights.encoder.lnPost), (e: unknown) => e instanceof MurmurError && e.code === 'RELEASED');
    // Bad weights: quantized rows must be whole blocks.
    const bad = syntheticWeights(smallDims, 7);
    bad.encoder.blocks[0]!.attn.query.weight = { dtype: 'q8_0', shape: [15, 15], bytes: new Uint8Array(0) };
    await assert.rejects(() => backend.prepareWeights(smallDims, bad), (e: unknown) => e instanceof MurmurError && /encoder\.blocks\.0\.attn\.query\.weight/.test(e.message));
    backend.releaseWeights(model.weights);
  });
  for (const threads of [1, 2]) {
    const backend = await createWasmBackend({ threads });
    const model = { dims: smallDims, weights: await backend.prepareWeights(smallDims, syntheticWeights(smallDims, 7)) };
    const x = backend.ops.upload(new Float32Array(2 * 15), 2, 15);
    backend.dispose();
    assert.throws(() => backend.ops.layerNorm(x, model.weights.encoder.lnPost), (e: unknown) => e instanceof MurmurError && e.code === 'DISPOSED', `${threads} thread(s)`);
    await assert.rejects(() => backend.prepareWeights(smallDims, syntheticWeights(smallDims, 7)), (e: unknown) => e instanceof MurmurError && e.code === 'DISPOSED');
  }
});

/** Every module a source file reaches through static and dynamic imports with literal paths. */
function importGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) visit(join(dirname(file), match[1]!));
  };
  visit(entry);
  return seen;
}

test('no op runs in JavaScript: the WASM backend never reaches src/core/reference', () => {
  const graph = [...importGraph(join(root, 'src/kernels-wasm/backend.ts'))].map((file) => file.slice(root.length + 1));
  assert.ok(graph.includes('src/kernels-wasm/threads.ts') && graph.includes('src/kernels-wasm/quant.ts'), `the walk found the backend's modules: ${graph.join(', ')}`);
  assert.deepEqual(graph.filter((file) => file.startsWith('src/core/reference/')), []);
  // And the worker entry, which runs the other threads' kernels.
  assert.deepEqual([...importGraph(join(root, 'src/kernels-wasm/pool-worker.ts'))].filter((file) => file.includes('/core/reference/')), []);
});
