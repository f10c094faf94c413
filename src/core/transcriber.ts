/**
 * Audio in, text out: load a model (or take a loaded one), pick a backend, and transcribe 16 kHz
 * mono audio of any length with Whisper's long-form loop (src/core/transcribe/longform.ts): 30 s
 * windows placed by the timestamps the model writes, the full decoding stack in each window
 * (src/core/decoding), word timestamps on request (src/core/timing). The result has the shape of
 * OpenAI's transcribe JSON; src/core/export writes it as SRT, WebVTT, TSV, text or JSON.
 */
import type { WhisperModel } from './model/model.ts';
import type { WhisperBackend } from './model/ops.ts';
import type { ExecutionLayout, ExecutionPrecision } from './device/plan.ts';
import type { WebNnContextAttempt } from './device/probe.ts';
import { applyPrecision, matrixPrecision } from './device/weight-precision.ts';
import { LAYOUTS_BY_BACKEND } from './device/layouts.ts';
import type { KernelVariants } from '../kernels-wgsl/variants.ts';
import type { VariantStore } from '../kernels-wgsl/autotune-cache.ts';
import type { WhisperWeights } from './model/weights.ts';
import { mapWeights } from './model/weights.ts';
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
  /**
   * How the backend lays out weights (default 'row-major', which every backend takes):
   * 'blocked' (tile-major weights) for 'webgpu' and 'wasm', 'channels-first' (the graphs'
   * activations) for 'webnn'. Any other combination is a BACKEND error naming both.
   */
  layout?: ExecutionLayout;
  /**
   * Narrow the model's matrices to this precision once at load, before the backend prepares them
   * (f32 → f16/q8/q4, f16 → q8/q4, with ggml's q8_0/q4_0 blocks), so the backend holds fewer
   * bytes. Never widens: matrices stored below it stay as they are. Not for 'webnn', whose graphs
   * hold f32 weights whatever the file had (narrowing would lose accuracy and save nothing).
   */
  precision?: ExecutionPrecision;
  /** 'webgpu' only: run these kernel variants, pinned (no guess, no tuning). */
  kernelVariants?: KernelVariants;
  /**
   * 'webgpu' only: tune the kernel variants for this model at load, restoring an earlier result
   * from `store` when there is one (see createWebGpuBackend).
   */
  autotune?: { store?: VariantStore | null; budgetMs?: number };
  /**
   * 'webnn' only: the WebNN contexts the device probe created, so the backend reads each device's
   * preferred input layout from them instead of creating contexts again.
   */
  webnnContexts?: readonly WebNnContextAttempt[];
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

/** What the transcriber's backend was actually built with. */
export interface AppliedExecution {
  backend: string;
  layout: ExecutionLayout;
  /** The precision most of the matrices' bytes are held in once loaded. */
  precision: ExecutionPrecision;
  /** 'wasm': the kernel threads running. */
  threads?: number;
  /** 'webgpu': the kernel variants the device runs, and where they came from. */
  kernelVariants?: KernelVariants;
  kernelVariantsSource?: string;
  /** Bytes of the weights handed to the backend (after any precision change). */
  weightBytes: number;
  /** Bytes the backend itself holds for them, where it reports it ('wasm': its WebAssembly memory). */
  backendBytes?: number;
  reasons: string[];
}

export interface Transcriber {
  /**
   * The model the backend runs: with a `precision` that converted anything, the narrowed model,
   * which owns every byte it holds (nothing in it views the loaded file), so the model given to
   * createTranscriber can be dropped and its file collected.
   */
  readonly model: WhisperModel;
  /** How the backend runs the model (layout, precision, threads, kernel variants), with reasons. */
  readonly execution: AppliedExecution;
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

function backendError(problem: string): MurmurError {
  return new MurmurError('BACKEND', problem);
}

/** Options that only some backends take, refused (with both names) elsewhere. */
function checkBackendOptions(options: TranscriberOptions, backendName: BackendName): void {
  const only = (what: string, value: unknown, backend: BackendName, verb = 'applies') => {
    if (value !== undefined && backendName !== backend) throw backendError(`${what} ${verb} to the ${JSON.stringify(backend)} backend, not ${JSON.stringify(backendName)}`);
  };
  only('gpu', options.gpu, 'webgpu');
  only('threads', options.threads, 'wasm', 'apply');
  only('kernelVariants', options.kernelVariants, 'webgpu', 'apply');
  only('autotune', options.autotune, 'webgpu');
  const { layout, precision } = options;
  if (layout !== undefined && !LAYOUTS_BY_BACKEND[backendName].includes(layout)) {
    if (!['row-major', 'channels-first', 'blocked'].includes(layout)) throw backendError(`unknown layout ${JSON.stringify(layout)} (available: "row-major", "channels-first", "blocked")`);
    const quoted = (names: readonly string[]) => names.map((name) => JSON.stringify(name)).join(' or ');
    const takers = quoted((Object.keys(LAYOUTS_BY_BACKEND) as BackendName[]).filter((name) => LAYOUTS_BY_BACKEND[name].includes(layout)));
    throw backendError(`layout applies to the ${takers} backend, not ${JSON.stringify(backendName)} (${JSON.stringify(backendName)} takes ${quoted(LAYOUTS_BY_BACKEND[backendName])}; ${JSON.stringify(layout)} is for ${takers})`);
  }
  if (precision !== undefined && !['f32', 'f16', 'q8', 'q4'].includes(precision)) throw backendError(`unknown precision ${JSON.stringify(precision)} (available: "f32", "f16", "q8", "q4")`);
  if (precision !== undefined && precision !== 'f32' && backendName === 'webnn') {
    throw backendError(`precision ${JSON.stringify(precision)} does not apply to the "webnn" backend: its graphs hold f32 weights whatever the file had`);
  }
}

export async function createTranscriber(options: TranscriberOptions): Promise<Transcriber> {
  if (typeof options.backend === 'object') {
    for (const key of ['gpu', 'threads', 'layout', 'kernelVariants', 'autotune'] as const) {
      if (options[key] !== undefined) throw backendError(`${key} applies when the transcriber builds its backend, not to a backend instance (configure the instance instead)`);
    }
    const model = isWhisperModel(options.model) ? options.model : await loadModel(options.model, { onProgress: options.onProgress, signal: options.signal });
    return createTranscriberOn(options.backend, model, { ownsBackend: false, ...(options.precision ? { precision: options.precision } : {}) });
  }
  const backendName = options.backend ?? 'reference';
  if (backendName !== 'reference' && backendName !== 'wasm' && backendName !== 'webgpu' && backendName !== 'webnn') {
    throw backendError(`unknown backend ${JSON.stringify(backendName)} (available: "reference", "wasm", "webgpu", "webnn")`);
  }
  checkBackendOptions(options, backendName);
  const model = isWhisperModel(options.model)
    ? options.model
    : await loadModel(options.model, { onProgress: options.onProgress, signal: options.signal });
  const layout = options.layout ?? 'row-major';
  const backend = await buildBackend(backendName, options, layout);
  try {
    return await createTranscriberOn(backend, model, { layout, ...(options.precision ? { precision: options.precision } : {}) });
  } catch (error) {
    backend.dispose();
    throw error;
  }
}

/** The named backend, loaded on demand: each backend's code is only fetched by those who use it. */
async function buildBackend(name: BackendName, options: TranscriberOptions, layout: ExecutionLayout): Promise<WhisperBackend<any, any>> {
  switch (name) {
    case 'wasm': {
      const { createWasmBackend } = await import('../kernels-wasm/backend.ts');
      return createWasmBackend({ layout: layout as 'row-major' | 'blocked', ...(options.threads === undefined ? {} : { threads: options.threads }) });
    }
    case 'webgpu': {
      const { createWebGpuBackend } = await import('../kernels-wgsl/backend.ts');
      return createWebGpuBackend({
        layout: layout as 'row-major' | 'blocked',
        ...(options.gpu ? { gpu: options.gpu } : {}),
        ...(options.kernelVariants ? { variants: options.kernelVariants } : {}),
        ...(options.autotune ? { autotune: options.autotune } : {}),
      });
    }
    case 'webnn': {
      const { createOnnxBackend } = await import('../onnx/backend.ts');
      return createOnnxBackend({ layout: layout as 'row-major' | 'channels-first', ...(options.webnnContexts ? { webnnContexts: options.webnnContexts } : {}) });
    }
    default:
      return createReferenceBackend();
  }
}

/** What a built backend reports of itself (each backend exposes a different part). */
interface BackendFacts {
  threads?: number;
  layout?: string;
  allocatedBytes?: number;
  variants?: KernelVariants;
  tuning?: { source: string; spentMs: number; measured: number };
}

function weightBytesOf(model: WhisperModel): number {
  let total = 0;
  mapWeights(model.dims, model.weights, (tensor) => {
    total += tensor.bytes.byteLength;
    return tensor;
  });
  return total;
}

/** The applied execution, read back from the backend after it prepared the weights. */
function describeExecution(backend: WhisperBackend<any, any>, layout: ExecutionLayout, precision: { precision: ExecutionPrecision; reason: string } | undefined, model: WhisperModel, storedPrecision: ExecutionPrecision): AppliedExecution {
  const facts = backend as unknown as BackendFacts;
  const reasons: string[] = [];
  const appliedLayout = (facts.layout as ExecutionLayout | undefined) ?? layout;
  const own = backend.reasons ?? [];
  if (!own.some((reason) => reason.startsWith('layout '))) reasons.push(`layout ${appliedLayout}`);
  reasons.push(...own);
  reasons.push(precision?.reason ?? `precision ${storedPrecision}: as stored`);
  if (facts.tuning) reasons.push(`kernel variants "${facts.tuning.source}"${facts.tuning.source === 'tuned' ? ` (${facts.tuning.measured} micro-benchmark${facts.tuning.measured === 1 ? '' : 's'} in ${Math.round(facts.tuning.spentMs)} ms)` : ''}`);
  return {
    backend: backend.name,
    layout: appliedLayout,
    precision: precision?.precision ?? storedPrecision,
    ...(backend.name === 'wasm' && facts.threads !== undefined ? { threads: facts.threads } : {}),
    ...(facts.variants ? { kernelVariants: { ...facts.variants } } : {}),
    ...(facts.tuning ? { kernelVariantsSource: facts.tuning.source } : {}),
    weightBytes: weightBytesOf(model),
    ...(backend.name === 'wasm' && facts.allocatedBytes !== undefined ? { backendBytes: facts.allocatedBytes } : {}),
    reasons,
  };
}

interface BuildOptions {
  ownsBackend?: boolean;
  layout?: ExecutionLayout;
  precision?: ExecutionPrecision;
}

async function createTranscriberOn<T, W>(backend: WhisperBackend<T, W>, loaded: WhisperModel, { ownsBackend = true, layout = 'row-major', precision }: BuildOptions = {}): Promise<Transcriber> {
  const { ops } = backend;
  const narrowed = precision === undefined ? undefined : applyPrecision(loaded, precision);
  const model = narrowed?.model ?? loaded;
  let weights: WhisperWeights<W> | undefined = await backend.prepareWeights(model.dims, model.weights);
  const execution = describeExecution(backend, layout, narrowed, model, matrixPrecision(model));
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
    execution,
    transcribe,
    detectLanguage,
    dispose() {
      if (weights) backend.releaseWeights(weights);
      weights = undefined;
      if (ownsBackend) backend.dispose();
    },
  };
}

