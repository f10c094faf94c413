/**
 * "Benchmark this device": times the loaded model on each backend the browser has. The public API
 * does not expose the encoder on its own, so it is measured from the outside: a transcription
 * capped at one token costs one encoder pass (plus one decoder step), and the extra time of a
 * longer capped transcription divided by its extra tokens is the decode cost per token.
 */
import { createTranscriber, type MurmurTranscriber, type TranscriberBackend } from '../../src/client/transcriber.ts';
import type { ModelSource } from '../../src/core/formats/load-model.ts';
import type { TranscribeOptions } from '../../src/core/transcriber.ts';

export interface BackendTiming {
  backend: Exclude<TranscriberBackend, 'auto'>;
  encoderMs: number;
  decodeMsPerToken: number;
}

const DECODE_TOKENS = 24;
const FIXED: TranscribeOptions = { temperature: 0, compressionRatioThreshold: null, logProbThreshold: null, noSpeechThreshold: null, conditionOnPreviousText: false, language: 'en' };

/** Eight seconds of a voiced-sounding sweep with noise: no download needed, same on every run. */
function benchAudio(): Float32Array {
  const samples = new Float32Array(16000 * 8);
  let seed = 12345;
  for (let i = 0; i < samples.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const t = i / 16000;
    samples[i] = 0.2 * Math.sin(2 * Math.PI * (140 + 40 * Math.sin(t * 3)) * t) + 0.02 * (seed / 2 ** 32 - 0.5);
  }
  return samples;
}

async function timed(transcriber: MurmurTranscriber, audio: Float32Array, maxTokens: number): Promise<{ ms: number; tokens: number }> {
  const started = performance.now();
  const result = await transcriber.transcribe(audio.slice(), { ...FIXED, maxTokens });
  const tokens = result.segments.reduce((sum, segment) => sum + segment.tokens.length, 0);
  return { ms: performance.now() - started, tokens };
}

export async function availableBackends(): Promise<Exclude<TranscriberBackend, 'auto'>[]> {
  const backends: Exclude<TranscriberBackend, 'auto'>[] = ['wasm'];
  if (typeof navigator !== 'undefined' && navigator.gpu && (await navigator.gpu.requestAdapter().catch(() => null))) backends.push('webgpu');
  return backends;
}

/** `loaded` is reused for its own backend; other backends get a transcriber of their own for the run. */
export async function benchmarkDevice(model: ModelSource, loaded: MurmurTranscriber, onStatus: (message: string) => void): Promise<BackendTiming[]> {
  const audio = benchAudio();
  const timings: BackendTiming[] = [];
  for (const backend of await availableBackends()) {
    onStatus(`Benchmarking ${backend}…`);
    const own = loaded.model.backend === backend;
    const transcriber = own ? loaded : await createTranscriber({ model, backend });
    try {
      await timed(transcriber, audio, 1); // warm-up: compiles pipelines, fills caches
      const one = await timed(transcriber, audio, 1);
      const many = await timed(transcriber, audio, DECODE_TOKENS);
      const extraTokens = Math.max(1, many.tokens - one.tokens);
      timings.push({ backend, encoderMs: one.ms, decodeMsPerToken: Math.max(0, many.ms - one.ms) / extraTokens });
    } finally {
      if (!own) await transcriber.dispose();
    }
  }
  return timings;
}
