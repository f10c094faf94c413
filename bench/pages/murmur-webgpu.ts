// Murmur's WebGPU backend in the benchmark's Chromium: kernel variants (defaults vs autotuned),
// the encoder's matmuls, the GPU log-mel, and a whole model's encoder pass and decoder steps.
// Every measurement keeps to a time budget: on SwiftShader (a CPU emulation) one encoder pass
// takes many seconds.
import { exposePageApi } from '../../test/browser/pages/page-api.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { createDecoderState, encode, releaseDecoderState, type MelInput } from '../../src/core/model/whisper.ts';
import { autotuneKernels, type AutotuneShapes, type AutotuneTiming } from '../../src/kernels-wgsl/autotune.ts';
import { createWebGpuBackend } from '../../src/kernels-wgsl/backend.ts';
import { readFloat32, requestGpuDevice, type GpuContext } from '../../src/kernels-wgsl/device.ts';
import { matmul, uploadLinearWeights } from '../../src/kernels-wgsl/matmul.ts';
import { recordTiledWeightsMatmul, uploadTiledLinear } from '../../src/kernels-wgsl/matmul-tiled-weights.ts';
import { packGpuTiles } from '../../src/core/layout/gpu-tiles.ts';
import { runRecorded } from '../../src/kernels-wgsl/wgsl-common.ts';
import type { WeightLayout } from '../../src/kernels-wgsl/backend.ts';
import { runLogMelWindow } from '../../src/kernels-wgsl/mel.ts';
import { DEFAULT_KERNEL_VARIANTS, kernelVariants, setKernelVariants, type KernelVariants } from '../../src/kernels-wgsl/variants.ts';
import { seededValues } from '../peers/onnx-matmul.ts';
import { greedyStep } from '../greedy-step.ts';

let context: Promise<GpuContext> | undefined;
const gpu = () => (context ??= requestGpuDevice());

export type VariantSet = 'default' | 'tuned';
let tuned: KernelVariants | undefined;

function describeVariants(v: KernelVariants): string {
  const m = v.matmul.kind === 'tiled' ? 'tiled' : `register ${v.matmul.rowsPerThread}×${v.matmul.colsPerThread} wg${v.matmul.workgroup}`;
  return `matmul ${m}, decoder matmul ${v.fewRows}, layerNorm ${v.layerNorm}, attention ${v.attention}`;
}

async function use(which: VariantSet): Promise<string> {
  const { device } = await gpu();
  const variants = which === 'tuned' ? tuned : { ...DEFAULT_KERNEL_VARIANTS };
  if (!variants) throw new Error('call autotune first');
  setKernelVariants(device, variants);
  return describeVariants(variants);
}

async function adapter(): Promise<string> {
  const { adapter } = await gpu();
  const { vendor, architecture, description } = adapter.info;
  return [vendor, architecture, description].filter(Boolean).join(' ');
}

async function autotune(shapes: AutotuneShapes, budgetMs: number): Promise<{ variants: string; ms: number; timings: AutotuneTiming[] }> {
  const { device } = await gpu();
  const started = performance.now();
  const result = await autotuneKernels(device, shapes, { budgetMs, apply: false });
  tuned = result.variants;
  return { variants: describeVariants(result.variants), ms: performance.now() - started, timings: result.timings };
}

/**
 * One [m,k]·[k,n] product with the current variants: best of `repeats` after a warm-up,
 * including the upload of x and the read-back of y, as onnxruntime-web's timings do. With
 * layout 'blocked' the weight is tile-major and the product runs on the tile-major kernel, as
 * in a backend created with that layout.
 */
async function timeMatmul(shape: [number, number, number], repeats: number, layout: WeightLayout = 'row-major'): Promise<{ ms: number; kernelMs: number }> {
  const { device } = await gpu();
  const [m, k, n] = shape;
  const values = seededValues(n * k, 1);
  const weights = layout === 'blocked' ? uploadTiledLinear(device, packGpuTiles(values, n, k)) : uploadLinearWeights(device, values, n, k);
  const xValues = seededValues(m * k, 2);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const x = device.createBuffer({ size: xValues.byteLength, usage });
  const output = device.createBuffer({ size: m * n * 4, usage });
  try {
    const run = async () => {
      const started = performance.now();
      device.queue.writeBuffer(x, 0, xValues.buffer as ArrayBuffer, xValues.byteOffset, xValues.byteLength);
      const kernelStart = performance.now();
      if ('format' in weights) await runRecorded(device, 'tiledWeightsMatmul', (recording) => recordTiledWeightsMatmul(recording, { x, m, weights, output }));
      else await matmul(device, { x, m, weights, output });
      await device.queue.onSubmittedWorkDone();
      const kernelMs = performance.now() - kernelStart;
      await readFloat32(device, output, m * n);
      return { ms: performance.now() - started, kernelMs };
    };
    await run();
    let best = { ms: Infinity, kernelMs: Infinity };
    for (let i = 0; i < repeats; i++) {
      const t = await run();
      if (t.ms < best.ms) best = t;
    }
    return best;
  } finally {
    for (const b of [x, output]) b.destroy();
    weights.destroy();
  }
}

/** The GPU log-mel of a 30 s window of `samples` (best of `repeats` after a warm-up, read-back included). */
async function timeLogMel(samples: Float32Array, nMels: number, repeats: number): Promise<number> {
  const { device } = await gpu();
  await runLogMelWindow(device, samples, nMels);
  let best = Infinity;
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    await runLogMelWindow(device, samples, nMels);
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

export interface ModelTimings {
  encoderMs: number;
  encoderRuns: number;
  decodeMsPerToken?: number;
  decodeTokens: number;
  variants: string;
  notes: string[];
}

/** A deterministic stand-in spectrogram: the encoder's time does not depend on the values. */
function syntheticMel(nMels: number, nAudioCtx: number): MelInput {
  const nFrames = 2 * nAudioCtx;
  return { data: Float32Array.from({ length: nMels * nFrames }, (_, i) => Math.sin(i * 0.618) * 0.5), nMels, nFrames };
}

/** Encoder passes and single-token greedy decoder steps until `budgetMs` runs out (at least one encoder pass). */
async function timeModel(modelUrl: string, budgetMs: number, decodeTokens: number): Promise<ModelTimings> {
  const { device } = await gpu();
  const variants = describeVariants(kernelVariants(device));
  const model = await loadModel(modelUrl);
  const backend = await createWebGpuBackend({ device });
  const { ops } = backend;
  const notes: string[] = [];
  const deadline = performance.now() + budgetMs;
  try {
    const weights = await backend.prepareWeights(model.dims, model.weights);
    const parameters = { dims: model.dims, weights };
    const mel = syntheticMel(model.dims.nMels, model.dims.nAudioCtx);
    let encoderMs = Infinity;
    let encoderRuns = 0;
    let features = encode(ops, parameters, mel);
    // The first pass compiles every pipeline; it is timed only when it is the only one that fits.
    let started = performance.now();
    await ops.read(features);
    const firstMs = performance.now() - started;
    while (encoderRuns < 2 && performance.now() + firstMs < deadline) {
      ops.release(features);
      started = performance.now();
      features = encode(ops, parameters, mel);
      await ops.read(features);
      encoderMs = Math.min(encoderMs, performance.now() - started);
      encoderRuns++;
    }
    if (encoderRuns === 0) {
      encoderMs = firstMs;
      encoderRuns = 1;
      notes.push('one encoder pass only (the budget ran out), pipeline compilation included');
    }

    const { tokenizer } = model;
    const state = createDecoderState(ops, parameters, features);
    const step = greedyStep(ops, parameters, state);
    let decodeMsPerToken: number | undefined;
    let decoded = 0;
    if (performance.now() < deadline) {
      let token = await step([tokenizer.sot, tokenizer.noTimestamps]);
      token = await step([token]);
      started = performance.now();
      while (decoded < decodeTokens && performance.now() < deadline) {
        token = await step([token]);
        decoded++;
      }
      if (decoded > 0) decodeMsPerToken = (performance.now() - started) / decoded;
    }
    if (decoded < decodeTokens) notes.push(`decoder: ${decoded} of ${decodeTokens} tokens timed within the budget`);
    releaseDecoderState(ops, state);
    ops.release(features);
    backend.releaseWeights(weights);
    return { encoderMs, encoderRuns, decodeMsPerToken, decodeTokens: decoded, variants, notes };
  } finally {
    backend.dispose();
  }
}

export const murmurWebGpuPageApi = { adapter, autotune, use, timeMatmul, timeLogMel, timeModel };

exposePageApi(murmurWebGpuPageApi);
