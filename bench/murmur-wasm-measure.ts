// Murmur's WASM backend timed on one model: the encoder over one 30 s window and the decoder per
// single-token step (greedy, logits read back every step, as the transcriber does). Runs in Node
// and inside a browser worker (bench/pages/murmur-wasm-worker.ts); imports only src/.
import { createWasmBackend } from '../src/kernels-wasm/backend.ts';
import { createDecoderState, encode, releaseDecoderState, type MelInput } from '../src/core/model/whisper.ts';
import type { WhisperModel } from '../src/core/model/model.ts';
import { greedyStep } from './greedy-step.ts';

export interface WasmTimings {
  variant: string;
  threads: number;
  /** Best of the timed encoder runs. */
  encoderMs: number;
  encoderRuns: number;
  /** Mean over the timed single-token steps. */
  decodeMsPerToken: number;
  decodeTokens: number;
  /** Packing the weights into the kernels' memory. */
  prepareMs: number;
}

export interface MeasureOptions {
  threads: number;
  /** Timed encoder runs after one warm-up. */
  encoderRuns: number;
  /** Timed single-token decoder steps after the prompt and a few warm-up steps. */
  decodeTokens: number;
}

/** A deterministic stand-in spectrogram: the encoder's time does not depend on the values. */
function syntheticMel(model: WhisperModel): MelInput {
  const { nMels, nAudioCtx } = model.dims;
  const nFrames = 2 * nAudioCtx;
  return { data: Float32Array.from({ length: nMels * nFrames }, (_, i) => Math.sin(i * 0.618) * 0.5), nMels, nFrames };
}

export async function measureWasmBackend(model: WhisperModel, options: MeasureOptions): Promise<WasmTimings> {
  const backend = await createWasmBackend({ threads: options.threads });
  const { ops } = backend;
  try {
    let start = performance.now();
    const weights = await backend.prepareWeights(model.dims, model.weights);
    const prepareMs = performance.now() - start;
    const parameters = { dims: model.dims, weights };
    const mel = syntheticMel(model);

    let features = encode(ops, parameters, mel);
    let encoderMs = Infinity;
    for (let run = 0; run < options.encoderRuns; run++) {
      ops.release(features);
      start = performance.now();
      features = encode(ops, parameters, mel);
      await ops.read(features);
      encoderMs = Math.min(encoderMs, performance.now() - start);
    }

    const { tokenizer } = model;
    const state = createDecoderState(ops, parameters, features);
    const step = greedyStep(ops, parameters, state);
    let token = await step([tokenizer.sot, tokenizer.noTimestamps]);
    const warmUp = 3;
    for (let i = 0; i < warmUp; i++) token = await step([token]);
    start = performance.now();
    for (let i = 0; i < options.decodeTokens; i++) token = await step([token]);
    const decodeMsPerToken = (performance.now() - start) / options.decodeTokens;
    releaseDecoderState(ops, state);
    ops.release(features);
    backend.releaseWeights(weights);
    return { variant: backend.variant, threads: backend.threads, encoderMs, encoderRuns: options.encoderRuns, decodeMsPerToken, decodeTokens: options.decodeTokens, prepareMs };
  } finally {
    backend.dispose();
  }
}
