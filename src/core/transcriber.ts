/**
 * Audio in, text out: load a model (or take a loaded one), pick a backend, and transcribe 16 kHz
 * mono audio of any length with Whisper's long-form loop (src/core/transcribe/longform.ts): 30 s
 * windows placed by the timestamps the model writes, the full decoding stack in each window
 * (src/core/decoding), word timestamps on request (src/core/timing). The result has the shape of
 * OpenAI's transcribe JSON; src/core/export writes it as SRT, WebVTT, TSV, text or JSON.
 */
import type { WhisperModel } from './model/model.ts';
import type { WhisperBackend } from './model/ops.ts';
import type { ExecutionLayout } from './device/plan.ts';
import type { WhisperWeights } from './model/weights.ts';
import type { Task } from './tokenizer/tokenizer.ts';
import { isMultilingual } from './model/dims.ts';
import type { ModelParameters } from './model/whisper.ts';
import { createReferenceBackend } from './reference/backend.ts';
import { DEFAULT_TEMPERATURES } from './decoding/index.ts';
import { loadModel } from './formats/load-model.ts';
import type { ModelSource, LoadModelOptions } from './formats/load-model.ts';
import { AbortError, AudioError, MurmurError } from './errors.ts';
import { transcribeLongForm } from './transcribe/longform.ts';
import { createModelEngine } from './transcribe/model-engine.ts';
import { windowLogMel } from './transcribe/window-mel.ts';
import { HOP_LENGTH, N_FRAMES } from './audio/mel.ts';
import type { TranscriptionResult, TranscriptionSegment } from './transcribe/result.ts';

export type { TranscriptionResult, TranscriptionSegment, TranscriptionWord } from './transcribe/result.ts';

export type BackendName = 'reference' | 'wasm' | 'webgpu' | 'webnn';

export interface TranscriberOptions {
  /** A loaded model, or where to load one from (see loadModel). */
  model: WhisperModel | ModelSource;
  /**
   * Default 'reference' (plain TypeScript). 'wasm': the WebAssembly SIMD kernels
   * (src/kernels-wasm), multi-threaded where shared memory is available. 'webgpu': the WGSL
   * kernels (src/kernels-wgsl). 'webnn': the model lowered to ONNX graphs run by onnxruntime-web,
   * on WebNN where it can compile them, else its WebAssembly provider (src/onnx). Or a backend instance, which the transcriber uses but does not dispose.
   */
  backend?: BackendName | WhisperBackend<any, any>;
  /** 'webgpu' only: the WebGPU entry point, default navigator.gpu; in Node, `create([])` from the 'webgpu' package. */
  gpu?: GPU;
  /** 'wasm' only: kernel threads, the calling thread included (default: every core). */
  threads?: number;
  /** 'webnn' only: how activations are held inside its graphs, 'row-major' or 'channels-first' (default 'row-major'). */
  layout?: ExecutionLayout;
  /** Download/read progress while loading the model. */
  onProgress?: LoadModelOptions['onProgress'];
  /** Cancels loading the model. */
  signal?: AbortSignal;
}

export interface TranscribeOptions {
  /** Spoken language code or name; multilingual models detect it from the first 30 s when absent. */
  language?: string;
  task?: Task;
  /**
   * Sampling temperature, or the temperatures to fall back through when a window's result looks
   * wrong (too repetitive, too unlikely). Default [0, 0.2, 0.4, 0.6, 0.8, 1.0], as OpenAI.
   */
  temperature?: number | number[];
  /** Beam search with this many beams at temperature 0 (default: greedy). */
  beamSize?: number;
  /** Candidates sampled at temperatures above 0, the best kept (default 1). */
  bestOf?: number;
  /** Beam search patience (default 1). */
  patience?: number;
  /** Text to condition the first window on: names, spelling, punctuation style. */
  initialPrompt?: string;
  /** Feed each window's text to the next one as its prompt (default true). */
  conditionOnPreviousText?: boolean;
  /** Word-level timestamps in segment.words (needs the model's alignment heads). */
  wordTimestamps?: boolean;
  /**
   * With word timestamps: skip silences longer than this many seconds around segments whose words
   * look invented (OpenAI's hallucination_silence_threshold). Default: off.
   */
  hallucinationSilenceThreshold?: number;
  /** Fall back to a higher temperature above this gzip compression ratio (default 2.4; null: never). */
  compressionRatioThreshold?: number | null;
  /** Fall back below this average log-probability (default −1; null: never). */
  logProbThreshold?: number | null;
  /** A window with a no-speech probability above this (default 0.6) and a low log-probability is skipped as silent. */
  noSpeechThreshold?: number | null;
  /** Text only: one segment per 30 s window instead of segments placed by timestamps. */
  withoutTimestamps?: boolean;
  /** Only these stretches, in seconds: [start, end, start, end, ...] (OpenAI's clip_timestamps). */
  clipTimestamps?: number[] | string;
  /** Most tokens decoded per 30 s window; default nTextCtx / 2. */
  maxTokens?: number;
  /**
   * Seed of the sampler used at temperatures above 0. Default 0, so the same audio always gives the
   * same transcript (OpenAI's transcribe draws fresh randomness each run); change it for another draw.
   */
  seed?: number;
  /** Called with each segment as soon as it is final, in order. */
  onSegment?: (segment: TranscriptionSegment) => void;
  signal?: AbortSignal;
}

/** Kept for earlier callers: the transcription result and its segments. */
export type Transcript = TranscriptionResult;
export type TranscriptSegment = TranscriptionSegment;

export interface LanguageDetection {
  /** The most likely language code. */
  language: string;
  /** Probability of every language the model knows, by code. */
  probabilities: Record<string, number>;
}

export interface Transcriber {
  readonly model: WhisperModel;
  /** `audio`: 16 kHz mono samples, any length. */
  transcribe(audio: Float32Array, options?: TranscribeOptions): Promise<TranscriptionResult>;
  /** The spoken language, from the first 30 s (English-only models: always 'en'). */
  detectLanguage(audio: Float32Array, options?: { signal?: AbortSignal }): Promise<LanguageDetection>;
  dispose(): void;
}

function isWhisperModel(value: unknown): value is WhisperModel {
  const candidate = value as Partial<WhisperModel> | null;
  return typeof candidate === 'object' && candidate !== null && 'dims' in candidate && 'weights' in candidate && 'tokenizer' in candidate;
}

function checkAudio(audio: Float32Array): void {
  if (!(audio instanceof Float32Array)) throw new AudioError('audio must be a Float32Array of 16 kHz mono samples');
  if (audio.length === 0) throw new AudioError('the audio is empty');
  for (let i = 0; i < audio.length; i++) {
    if (!Number.isFinite(audio[i]!)) throw new AudioError(`sample ${i} of the audio is ${audio[i]}, not a finite number`);
  }
}

export async function createTranscriber(options: TranscriberOptions): Promise<Transcriber> {
  if (typeof options.backend === 'object') {
    const model = isWhisperModel(options.model) ? options.model : await loadModel(options.model, { onProgress: options.onProgress, signal: options.signal });
    return createTranscriberOn(options.backend, model, { ownsBackend: false });
  }
  const backendName = options.backend ?? 'reference';
  if (backendName !== 'reference' && backendName !== 'wasm' && backendName !== 'webgpu' && backendName !== 'webnn') {
    throw new MurmurError('BACKEND', `unknown backend ${JSON.stringify(backendName)} (available: "reference", "wasm", "webgpu", "webnn")`);
  }
  if (options.gpu !== undefined && backendName !== 'webgpu') throw new MurmurError('BACKEND', `gpu applies to the "webgpu" backend, not ${JSON.stringify(backendName)}`);
  if (options.threads !== undefined && backendName !== 'wasm') throw new MurmurError('BACKEND', `threads apply to the "wasm" backend, not ${JSON.stringify(backendName)}`);
  if (options.layout !== undefined && backendName !== 'webnn') throw new MurmurError('BACKEND', `layout applies to the "webnn" backend, not ${JSON.stringify(backendName)}`);
  const model = isWhisperModel(options.model)
    ? options.model
    : await loadModel(options.model, { onProgress: options.onProgress, signal: options.signal });
  if (backendName === 'wasm') {
    // Loaded on demand: the kernels module is only fetched by those who use it.
    const { createWasmBackend } = await import('../kernels-wasm/backend.ts');
    const backend = await createWasmBackend(options.threads === undefined ? {} : { threads: options.threads });
    try {
      return await createTranscriberOn(backend, model);
    } catch (error) {
      backend.dispose();
      throw error;
    }
  }
  if (backendName === 'webgpu') {
    const { createWebGpuBackend } = await import('../kernels-wgsl/backend.ts');
    const backend = await createWebGpuBackend(options.gpu ? { gpu: options.gpu } : {});
    try {
      return await createTranscriberOn(backend, model);
    } catch (error) {
      backend.dispose();
      throw error;
    }
  }
  if (backendName === 'webnn') {
    const { createOnnxBackend } = await import('../onnx/backend.ts');
    if (options.layout === 'blocked') throw new MurmurError('BACKEND', 'the "webnn" backend lowers "row-major" or "channels-first" graphs, not "blocked"');
    const backend = await createOnnxBackend(options.layout === undefined ? {} : { layout: options.layout });
    try {
      return await createTranscriberOn(backend, model);
    } catch (error) {
      backend.dispose();
      throw error;
    }
  }
  return createTranscriberOn(createReferenceBackend(), model);
}

async function createTranscriberOn<T, W>(backend: WhisperBackend<T, W>, model: WhisperModel, { ownsBackend = true } = {}): Promise<Transcriber> {
  const { ops } = backend;
  let weights: WhisperWeights<W> | undefined = await backend.prepareWeights(model.dims, model.weights);
  const { tokenizer, dims } = model;

  const parameters = (): ModelParameters<W> => {
    if (!weights) throw new MurmurError('DISPOSED', 'the transcriber was disposed');
    return { dims, weights };
  };

  function engineFor(options: TranscribeOptions) {
    const temperatures = options.temperature === undefined ? [...DEFAULT_TEMPERATURES] : typeof options.temperature === 'number' ? [options.temperature] : [...options.temperature];
    return createModelEngine(ops, parameters, model, {
      decoding: {
        ...(options.task !== undefined ? { task: options.task } : {}),
        temperatures,
        seed: options.seed ?? 0,
        ...(options.beamSize !== undefined ? { beamSize: options.beamSize } : {}),
        ...(options.bestOf !== undefined ? { bestOf: options.bestOf } : {}),
        ...(options.patience !== undefined ? { patience: options.patience } : {}),
        ...(options.maxTokens !== undefined ? { sampleLen: options.maxTokens } : {}),
        ...(options.withoutTimestamps !== undefined ? { withoutTimestamps: options.withoutTimestamps } : {}),
        ...(options.compressionRatioThreshold !== undefined ? { compressionRatioThreshold: options.compressionRatioThreshold } : {}),
        ...(options.logProbThreshold !== undefined ? { logProbThreshold: options.logProbThreshold } : {}),
        ...(options.noSpeechThreshold !== undefined ? { noSpeechThreshold: options.noSpeechThreshold } : {}),
      },
    });
  }

  async function transcribe(audio: Float32Array, options: TranscribeOptions = {}): Promise<TranscriptionResult> {
    parameters();
    checkAudio(audio);
    const { signal, task } = options;
    if (signal?.aborted) throw new AbortError('transcription');
    // Checked before any work: English-only models refuse other languages and translation.
    tokenizer.sotSequence({ language: options.language, task });
    if (options.wordTimestamps && !(model.generation.alignmentHeads?.length)) {
      throw new MurmurError('UNSUPPORTED', `word timestamps need the model's alignment heads, and ${model.source} has none`);
    }
    // Kept as a code ('de' for 'german'); detected from the first window when absent.
    const language = !isMultilingual(dims) ? 'en' : options.language === undefined ? undefined : tokenizer.languageOf(tokenizer.languageToken(options.language));
    return transcribeLongForm(audio, engineFor(options), {
      ...(language !== undefined ? { language } : {}),
      ...(options.initialPrompt !== undefined ? { initialPrompt: options.initialPrompt } : {}),
      ...(options.conditionOnPreviousText !== undefined ? { conditionOnPreviousText: options.conditionOnPreviousText } : {}),
      ...(options.wordTimestamps !== undefined ? { wordTimestamps: options.wordTimestamps } : {}),
      ...(options.hallucinationSilenceThreshold !== undefined ? { hallucinationSilenceThreshold: options.hallucinationSilenceThreshold } : {}),
      ...(options.noSpeechThreshold !== undefined ? { noSpeechThreshold: options.noSpeechThreshold } : {}),
      ...(options.logProbThreshold !== undefined ? { logProbThreshold: options.logProbThreshold } : {}),
      ...(options.clipTimestamps !== undefined ? { clipTimestamps: options.clipTimestamps } : {}),
      ...(options.onSegment ? { onSegment: options.onSegment } : {}),
      ...(signal ? { signal } : {}),
    });
  }

  async function detectLanguage(audio: Float32Array, options: { signal?: AbortSignal } = {}): Promise<LanguageDetection> {
    parameters();
    checkAudio(audio);
    if (options.signal?.aborted) throw new AbortError('language detection');
    if (!isMultilingual(dims)) return { language: 'en', probabilities: { en: 1 } };
    const window = await engineFor({}).encodeWindow(
      windowLogMel(audio, 0, { nMels: dims.nMels, ...(model.melFilters ? { filters: model.melFilters } : {}) }),
      { seek: 0, frames: Math.min(N_FRAMES, Math.floor(audio.length / HOP_LENGTH)) },
    );
    try {
      return await window.detectLanguage(options.signal);
    } finally {
      window.dispose();
    }
  }

  return {
    model,
    transcribe,
    detectLanguage,
    dispose() {
      if (weights) backend.releaseWeights(weights);
      weights = undefined;
      if (ownsBackend) backend.dispose();
    },
  };
}
