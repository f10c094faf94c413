// The WebGPU backend against the reference backend on one model: the encoder output and, for a
// greedy decode of a fixed number of steps, the logits of every step (both fed the same tokens)
// and each step's argmax. Runs in Node (test/gpu) and in Chromium (test/browser/pages), so it
// imports nothing from Node.
import type { WhisperModel } from '../../src/core/model/model.ts';
import type { WhisperBackend } from '../../src/core/model/ops.ts';
import { createLogitsSource, encode, type MelInput } from '../../src/core/model/whisper.ts';
import { createReferenceBackend } from '../../src/core/reference/backend.ts';
import { defaultPrompt } from '../../src/core/decoding/greedy.ts';
import { logMelWindow, SAMPLE_RATE } from '../../src/core/audio/mel.ts';
import { argmax, maxDifference } from '../backend-parity.ts';

/** A few seconds of a deterministic chirp with a little noise: speech-like enough for a mel. */
export function testAudio(seconds = 4): Float32Array {
  const samples = new Float32Array(seconds * SAMPLE_RATE);
  let seed = 12345;
  for (let i = 0; i < samples.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const t = i / SAMPLE_RATE;
    samples[i] = 0.3 * Math.sin(2 * Math.PI * (200 + 150 * t) * t) + 0.02 * (seed / 2 ** 32 - 0.5);
  }
  return samples;
}

export function testMel(model: WhisperModel, seconds = 4): MelInput {
  const mel = logMelWindow(testAudio(seconds), model.dims.nMels);
  return { data: mel.data, nMels: mel.nMels, nFrames: mel.nFrames };
}

export interface ParityReport {
  /** Largest |gpu - reference| over the encoder output. */
  encoderError: number;
  /** Largest |gpu - reference| over each step's logits. */
  stepErrors: number[];
  /** Argmax of each step's logits. */
  gpuTokens: number[];
  referenceTokens: number[];
  gpuEncoderMs: number;
  /** Per decoder step, including the prompt step. */
  gpuStepMs: number[];
  referenceEncoderMs: number;
  referenceStepMs: number[];
  /** Anything not finite in the GPU results. */
  nonFinite: string[];
}

function countNonFinite(values: Float32Array): number {
  let count = 0;
  for (const v of values) if (!Number.isFinite(v)) count++;
  return count;
}

/**
 * Encodes `mel` on both backends and decodes `steps` greedy steps from the default prompt, feeding
 * both the reference's argmax so every step compares logits over the same history.
 */
export async function compareWithReference<T, W>(gpu: WhisperBackend<T, W>, model: WhisperModel, mel: MelInput, steps: number): Promise<ParityReport> {
  const reference = createReferenceBackend();
  const refWeights = await reference.prepareWeights(model.dims, model.weights);
  const gpuWeights = await gpu.prepareWeights(model.dims, model.weights);
  const refModel = { dims: model.dims, weights: refWeights };
  const gpuModel = { dims: model.dims, weights: gpuWeights };
  const report: ParityReport = {
    encoderError: 0,
    stepErrors: [],
    gpuTokens: [],
    referenceTokens: [],
    gpuEncoderMs: 0,
    gpuStepMs: [],
    referenceEncoderMs: 0,
    referenceStepMs: [],
    nonFinite: [],
  };
  try {
    let start = performance.now();
    const refFeatures = encode(reference.ops, refModel, mel);
    const refEncoded = await reference.ops.read(refFeatures);
    report.referenceEncoderMs = performance.now() - start;
    start = performance.now();
    const gpuFeatures = encode(gpu.ops, gpuModel, mel);
    const gpuEncoded = await gpu.ops.read(gpuFeatures);
    report.gpuEncoderMs = performance.now() - start;
    report.encoderError = maxDifference(gpuEncoded, refEncoded);
    if (countNonFinite(gpuEncoded) > 0) report.nonFinite.push(`encoder output: ${countNonFinite(gpuEncoded)} values`);

    const refSource = createLogitsSource(reference.ops, refModel, refFeatures);
    const gpuSource = createLogitsSource(gpu.ops, gpuModel, gpuFeatures);
    try {
      const tokens = defaultPrompt(model.tokenizer, { language: model.tokenizer.isMultilingual ? 'en' : undefined });
      for (let step = 0; step < steps; step++) {
        start = performance.now();
        const expected = await refSource.next(tokens);
        report.referenceStepMs.push(performance.now() - start);
        start = performance.now();
        const actual = await gpuSource.next(tokens);
        report.gpuStepMs.push(performance.now() - start);
        report.stepErrors.push(maxDifference(actual, expected));
        if (countNonFinite(actual) > 0) report.nonFinite.push(`step ${step} logits: ${countNonFinite(actual)} values`);
        report.referenceTokens.push(argmax(expected));
        report.gpuTokens.push(argmax(actual));
        tokens.push(argmax(expected));
      }
    } finally {
      refSource.dispose();
      gpuSource.dispose();
    }
    reference.ops.release(refFeatures);
    gpu.ops.release(gpuFeatures);
  } finally {
    gpu.releaseWeights(gpuWeights);
  }
  return report;
}

export function summarize(report: ParityReport): string {
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  return (
    `encoder ${report.gpuEncoderMs.toFixed(0)} ms (reference ${report.referenceEncoderMs.toFixed(0)} ms), ` +
    `${report.gpuStepMs.length} steps: first ${report.gpuStepMs[0]?.toFixed(0)} ms, mean of the rest ${mean(report.gpuStepMs.slice(1)).toFixed(1)} ms ` +
    `(reference ${mean(report.referenceStepMs.slice(1)).toFixed(1)} ms); worst errors: encoder ${report.encoderError.toExponential(2)}, ` +
    `logits ${Math.max(...report.stepErrors).toExponential(2)}`
  );
}
