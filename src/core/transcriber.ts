/**
 * Audio in, text out: load a model (or take a loaded one), cut 16 kHz mono audio into 30 s
 * windows, and for each window compute the log-mel spectrogram, encode it and decode greedily.
 *
 * For now windows are a plain split every 30 s, decoded without timestamps, so a word that
 * straddles a boundary may be cut or garbled; seeking by timestamps (as Whisper's transcribe does)
 * comes with the full decoding stack.
 */
import type { WhisperModel } from './model/model.ts';
import type { WhisperBackend } from './model/ops.ts';
import type { WhisperWeights } from './model/weights.ts';
import type { Task } from './tokenizer/tokenizer.ts';
import { isMultilingual } from './model/dims.ts';
import { createLogitsSource, encode } from './model/whisper.ts';
import type { ModelParameters } from './model/whisper.ts';
import { createReferenceBackend } from './reference/backend.ts';
import { defaultPrompt, greedyDecode, pickGreedy } from './decoding/greedy.ts';
import { logMelWindow, N_SAMPLES, SAMPLE_RATE } from './audio/mel.ts';
import { loadModel } from './formats/load-model.ts';
import type { ModelSource, LoadModelOptions } from './formats/load-model.ts';
import { AbortError, AudioError, MurmurError } from './errors.ts';

export type BackendName = 'reference' | 'wasm' | 'webgpu';

export interface TranscriberOptions {
  /** A loaded model, or where to load one from (see loadModel). */
  model: WhisperModel | ModelSource;
  /**
   * Default 'reference' (plain TypeScript). 'wasm': the WebAssembly SIMD kernels
   * (src/kernels-wasm), multi-threaded where shared memory is available. 'webgpu': the WGSL
   * kernels (src/kernels-wgsl). Or a backend instance, which the transcriber uses but does not dispose.
   */
  backend?: BackendName | WhisperBackend<any, any>;
  /** 'webgpu' only: the WebGPU entry point, default navigator.gpu; in Node, `create([])` from the 'webgpu' package. */
  gpu?: GPU;
  /** 'wasm' only: kernel threads, the calling thread included (default: every core). */
  threads?: number;
  /** Download/read progress while loading the model. */
  onProgress?: LoadModelOptions['onProgress'];
  /** Cancels loading the model. */
  signal?: AbortSignal;
}

export interface TranscribeOptions {
  /** Spoken language code or name; multilingual models detect it from the first window when absent. */
  language?: string;
  task?: Task;
  /** Most tokens decoded per 30 s window; default nTextCtx / 2. */
  maxTokens?: number;
  signal?: AbortSignal;
}

export interface TranscriptSegment {
  /** Seconds from the start of the audio. */
  start: number;
  end: number;
  text: string;
  tokens: number[];
}

export interface Transcript {
  text: string;
  /** Text tokens of every window, in order (no prompt, no end-of-text). */
  tokens: number[];
  /** Language code: given, detected, or 'en' for English-only models. */
  language?: string;
  /** One segment per 30 s window. */
  segments: TranscriptSegment[];
}

export interface Transcriber {
  readonly model: WhisperModel;
  /** `audio`: 16 kHz mono samples. */
  transcribe(audio: Float32Array, options?: TranscribeOptions): Promise<Transcript>;
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
  if (backendName !== 'reference' && backendName !== 'wasm' && backendName !== 'webgpu') {
    throw new MurmurError('BACKEND', `unknown backend ${JSON.stringify(backendName)} (available: "reference", "wasm", "webgpu")`);
  }
  if (options.gpu !== undefined && backendName !== 'webgpu') throw new MurmurError('BACKEND', `gpu applies to the "webgpu" backend, not ${JSON.stringify(backendName)}`);
  if (options.threads !== undefined && backendName !== 'wasm') throw new MurmurError('BACKEND', `threads apply to the "wasm" backend, not ${JSON.stringify(backendName)}`);
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

  async function transcribe(audio: Float32Array, options: TranscribeOptions = {}): Promise<Transcript> {
    const params = parameters();
    checkAudio(audio);
    const { signal, task, maxTokens } = options;
    // Checked before any work: English-only models refuse other languages and translation.
    tokenizer.sotSequence({ language: options.language, task });
    // Kept as a code ('de' for 'german'); undefined until detected from the first window.
    let language = !isMultilingual(dims) ? 'en' : options.language === undefined ? undefined : tokenizer.languageOf(tokenizer.languageToken(options.language));
    const segments: TranscriptSegment[] = [];

    for (let start = 0; start < audio.length; start += N_SAMPLES) {
      if (signal?.aborted) throw new AbortError('transcription');
      const window = audio.subarray(start, start + N_SAMPLES);
      const features = encode(ops, params, logMelWindow(window, dims.nMels));
      const source = createLogitsSource(ops, params, features);
      try {
        if (language === undefined) {
          // Language detection as Whisper does it: the most likely language token right after <|startoftranscript|>.
          const logits = await source.next([tokenizer.sot]);
          const languageTokens = new Set(tokenizer.languages.map((code) => tokenizer.languageToken(code)));
          language = tokenizer.languageOf(pickGreedy(logits, (id) => !languageTokens.has(id)).token);
        }
        const prompt = defaultPrompt(tokenizer, { language, task });
        const result = await greedyDecode(source, model, { prompt, maxTokens, signal });
        segments.push({
          start: start / SAMPLE_RATE,
          end: (start + window.length) / SAMPLE_RATE,
          text: result.text,
          tokens: result.tokens,
        });
      } finally {
        source.dispose();
        ops.release(features);
      }
    }

    const tokens = segments.flatMap((segment) => segment.tokens);
    return { text: tokenizer.decode(tokens), tokens, ...(language !== undefined ? { language } : {}), segments };
  }

  return {
    model,
    transcribe,
    dispose() {
      if (weights) backend.releaseWeights(weights);
      weights = undefined;
      if (ownsBackend) backend.dispose();
    },
  };
}
