/**
 * The engine behind the public client (src/client): one model on one backend, requests run one
 * at a time in arrival order. In browsers it lives in the module worker (engine.worker.ts) and is
 * reached through comlink; in Node the client calls it directly on the same thread. Everything
 * that crosses its methods is structured-cloneable, callbacks excepted (comlink proxies them).
 *
 * Protocol, for whoever extends it (live dictation, issue #7): a request carries an `id`, which
 * `abort(id)` cancels, and optionally a one-int SharedArrayBuffer flag the caller sets on abort.
 * The flag matters because decoding rarely yields to the worker's event loop, so an abort
 * *message* is only read between requests; the flag is read at every step the decoder checks its
 * AbortSignal. A live session is meant to be one more method here taking a MessagePort (audio
 * chunks in, events out), e.g. `listen(port: MessagePort, options)`, queued like the others.
 */
import { createTranscriber as createLocalTranscriber, type LanguageDetection, type Transcriber, type TranscribeOptions, type TranscriptionResult, type TranscriptionSegment } from '../core/transcriber.ts';
import { loadModel } from '../core/formats/load-model.ts';
import type { ModelSource } from '../core/formats/load-model.ts';
import type { WhisperDims } from '../core/model/dims.ts';
import { AbortError, MurmurError } from '../core/errors.ts';
import { portableToSamples, type PortableAudio } from '../core/audio/decode-input.ts';
import { releaseProxy } from 'comlink';

export type EngineBackend = 'auto' | 'webgpu' | 'wasm' | 'reference';

/**
 * Shaped like transformers.js' progress_callback events so existing progress bars fit:
 * 'download' per model file (loaded/total bytes), 'load' while the files become a model,
 * 'compile' while the backend uploads/prepares the weights. `progress` is 0–1 (undefined when the
 * download's size is unknown).
 */
export interface EngineProgressEvent {
  stage: 'download' | 'load' | 'compile';
  file?: string;
  loaded?: number;
  total?: number;
  progress: number | undefined;
}

export interface EngineInit {
  model: ModelSource;
  backend?: EngineBackend;
  threads?: number;
}

export interface EngineInfo {
  source: string;
  dims: WhisperDims;
  /** The backend actually used ('auto' resolved). */
  backend: Exclude<EngineBackend, 'auto'>;
}

/** TranscribeOptions without what cannot be cloned (the signal; onSegment goes separately). */
export type PortableTranscribeOptions = Omit<TranscribeOptions, 'signal' | 'onSegment'>;

export interface EngineRequest {
  id: number;
  audio: PortableAudio;
  /** Set to 1 by the caller to abort (SharedArrayBuffer-backed, when the page may share memory). */
  abortFlag?: Int32Array;
}

export interface EngineHost {
  init(options: EngineInit, onProgress?: (event: EngineProgressEvent) => void): Promise<EngineInfo>;
  transcribe(request: EngineRequest, options?: PortableTranscribeOptions, onSegment?: (segment: TranscriptionSegment) => void): Promise<TranscriptionResult>;
  detectLanguage(request: EngineRequest): Promise<LanguageDetection>;
  abort(id: number): void;
  dispose(): Promise<void>;
}

/**
 * 'auto' for now is simply: WebGPU when an adapter exists, else WASM. The real choice (device
 * limits, model size, measured speed) is issue #5's execution plan.
 */
async function resolveBackend(backend: EngineBackend): Promise<Exclude<EngineBackend, 'auto'>> {
  if (backend !== 'auto') return backend;
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return 'wasm';
  try {
    return (await gpu.requestAdapter()) ? 'webgpu' : 'wasm';
  } catch {
    return 'wasm';
  }
}

/** An AbortSignal that also reports aborted once the shared flag is set (read synchronously). */
function signalWithFlag(controller: AbortController, flag: Int32Array | undefined): AbortSignal {
  if (!flag) return controller.signal;
  return new Proxy(controller.signal, {
    get(target, key) {
      if (key === 'aborted' && !target.aborted && Atomics.load(flag, 0) !== 0) controller.abort();
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * Callbacks that came through comlink hold a MessagePort each; close it once the call is over
 * (plain functions, when the host runs on the caller's thread, have nothing to release).
 */
function releaseCallback(callback: unknown): void {
  if (typeof callback !== 'function') return;
  const release = (callback as { [releaseProxy]?: unknown })[releaseProxy];
  if (typeof release === 'function') (release as () => void)();
}

export function createEngineHost(): EngineHost {
  let transcriber: Transcriber | undefined;
  let disposed = false;
  let queue: Promise<unknown> = Promise.resolve();
  const controllers = new Map<number, AbortController>();

  function ready(): Transcriber {
    if (disposed) throw new MurmurError('DISPOSED', 'the transcriber was disposed');
    if (!transcriber) throw new MurmurError('NOT_READY', 'no model is loaded (init was not called or failed)');
    return transcriber;
  }

  /** Runs `work` after every earlier request, with an AbortSignal that abort(id) and the flag reach. */
  function enqueue<T>(request: EngineRequest, what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    controllers.set(request.id, controller);
    const signal = signalWithFlag(controller, request.abortFlag);
    const run = queue.then(async () => {
      try {
        if (signal.aborted) throw new AbortError(what);
        return await work(signal);
      } finally {
        controllers.delete(request.id);
      }
    });
    queue = run.catch(() => {});
    return run;
  }

  return {
    async init(options, onProgress) {
      try {
        if (disposed) throw new MurmurError('DISPOSED', 'the transcriber was disposed');
        if (transcriber) throw new MurmurError('ALREADY_LOADED', 'this engine already holds a model; create another transcriber for another model');
        const backend = await resolveBackend(options.backend ?? 'auto');
        const model = await loadModel(options.model, { onProgress: onProgress ? (event) => onProgress({ ...event }) : undefined });
        onProgress?.({ stage: 'load', file: model.source, progress: 1 });
        onProgress?.({ stage: 'compile', progress: 0 });
        transcriber = await createLocalTranscriber({
          model,
          backend,
          ...(backend === 'wasm' && options.threads !== undefined ? { threads: options.threads } : {}),
        });
        onProgress?.({ stage: 'compile', progress: 1 });
        return { source: model.source, dims: { ...model.dims }, backend };
      } finally {
        releaseCallback(onProgress);
      }
    },

    transcribe(request, options = {}, onSegment) {
      return enqueue(request, 'transcription', async (signal) => {
        const engine = ready();
        const samples = await portableToSamples(request.audio);
        return engine.transcribe(samples, {
          ...options,
          signal,
          ...(onSegment ? { onSegment: (segment: TranscriptionSegment) => void Promise.resolve(onSegment(segment)).catch(() => {}) } : {}),
        });
      }).finally(() => releaseCallback(onSegment));
    },

    detectLanguage(request) {
      return enqueue(request, 'language detection', async (signal) => ready().detectLanguage(await portableToSamples(request.audio), { signal }));
    },

    abort(id) {
      controllers.get(id)?.abort();
    },

    async dispose() {
      if (disposed) return;
      disposed = true;
      for (const controller of controllers.values()) controller.abort();
      await queue;
      // Backend first: GPU buffers and WASM memory go before the worker itself does.
      transcriber?.dispose();
      transcriber = undefined;
    },
  };
}
