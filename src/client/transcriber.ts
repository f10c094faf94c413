/**
 * The public `createTranscriber`: what `import { createTranscriber } from 'murmur'` gives.
 *
 * In a browser it spawns a module worker (src/workers/engine.worker.ts) and runs everything there,
 * so the page never blocks: model download and compile, audio parsing, inference. In Node (no
 * global Worker) the same engine runs on the calling thread, behind the same API, so scripts and
 * benchmarks use identical code. The engine itself is src/workers/engine-host.ts either way.
 *
 * Why it is named createTranscriber and the in-process one became createLocalTranscriber: users
 * should get the non-blocking version by default, without knowing about workers. The in-process
 * transcriber stays public under the other name for callers that already are in a worker, bring
 * their own backend instance or a loaded WhisperModel (neither crosses a worker boundary).
 */
import * as Comlink from 'comlink';
import { AbortError, MurmurError } from '../core/errors.ts';
import type { ModelSource } from '../core/formats/load-model.ts';
import type { LanguageDetection, TranscribeOptions, TranscriptionResult, TranscriptionSegment } from '../core/transcriber.ts';
import { toPortableAudio, type AudioInput } from '../core/audio/decode-input.ts';
import { createEngineHost, type EngineBackend, type EngineHost, type EngineInfo, type EngineProgressEvent, type EngineRequest, type PortableTranscribeOptions } from '../workers/engine-host.ts';
import { registerErrorTransfer } from '../workers/error-transfer.ts';

export type { AudioInput } from '../core/audio/decode-input.ts';
export type { EngineBackend as TranscriberBackend, EngineInfo as TranscriberModelInfo, EngineProgressEvent as ProgressEvent } from '../workers/engine-host.ts';

export interface CreateTranscriberOptions {
  /** Where to load the model from (see loadModel): URL, path, hub repo id, Blob, files. */
  model: ModelSource;
  /**
   * 'auto' (default): WebGPU when the browser has an adapter, else WASM. That rule is a
   * placeholder for the execution plan of issue #5.
   */
  backend?: EngineBackend;
  /** 'wasm' only: kernel threads (default: every core). */
  threads?: number;
  /** Model download, load and compile progress, shaped like transformers.js' progress_callback. */
  onProgress?: (event: EngineProgressEvent) => void;
  /** Cancels creating the transcriber (in a browser the half-started worker is terminated). */
  signal?: AbortSignal;
}

export interface MurmurTranscriber {
  /** The loaded model and the backend that runs it. */
  readonly model: EngineInfo;
  /**
   * Float32Array and ArrayBuffer inputs are transferred to the worker, not copied: afterwards the
   * caller's buffer is detached. Pass a copy to keep one.
   */
  transcribe(input: AudioInput, options?: TranscribeOptions): Promise<TranscriptionResult>;
  detectLanguage(input: AudioInput, options?: { signal?: AbortSignal }): Promise<LanguageDetection>;
  /** Stops the worker and frees the model, GPU memory and caches; later calls reject (code DISPOSED). */
  dispose(): Promise<void>;
}

/** How the client reaches the engine: through a worker, or directly. */
interface EngineLink {
  init(options: Parameters<EngineHost['init']>[0], onProgress?: (event: EngineProgressEvent) => void): Promise<EngineInfo>;
  transcribe(request: EngineRequest, transfer: Transferable[], options: PortableTranscribeOptions, onSegment?: (segment: TranscriptionSegment) => void): Promise<TranscriptionResult>;
  detectLanguage(request: EngineRequest, transfer: Transferable[]): Promise<LanguageDetection>;
  abort(id: number): void;
  dispose(): Promise<void>;
  /** Ends the link for good (terminates the worker). */
  close(): void;
  /** Called when the link breaks by itself (the worker crashed). */
  onBroken?: (error: Error) => void;
}

const DISPOSE_GRACE_MS = 2000;

export async function createTranscriber(options: CreateTranscriberOptions): Promise<MurmurTranscriber> {
  const link = typeof Worker === 'undefined' ? localLink() : workerLink();
  try {
    return await connect(link, options);
  } catch (error) {
    link.close();
    throw error;
  }
}

function workerLink(): EngineLink {
  registerErrorTransfer();
  const worker = spawnEngineWorker();
  const remote = Comlink.wrap<EngineHost>(worker);
  const link: EngineLink = {
    init: (init, onProgress) => remote.init(init, onProgress ? Comlink.proxy(onProgress) : undefined),
    transcribe: (request, transfer, options, onSegment) => remote.transcribe(Comlink.transfer(request, transfer), options, onSegment ? Comlink.proxy(onSegment) : undefined),
    detectLanguage: (request, transfer) => remote.detectLanguage(Comlink.transfer(request, transfer)),
    abort: (id) => void remote.abort(id).catch(() => {}),
    dispose: () => remote.dispose(),
    close() {
      remote[Comlink.releaseProxy]();
      worker.terminate();
    },
  };
  worker.addEventListener('error', (event) => {
    event.preventDefault();
    link.onBroken?.(new MurmurError('WORKER', `the transcriber's worker failed: ${event.message || 'it could not start (its script did not load)'}`));
  });
  worker.addEventListener('messageerror', () => link.onBroken?.(new MurmurError('WORKER', "a message from the transcriber's worker could not be read")));
  return link;
}

/**
 * A literal `new URL(..., import.meta.url)` inside `new Worker(...)`: the form Vite (and webpack,
 * Parcel, esbuild plugins) recognise and bundle without configuration. It names the `.js` file
 * because that is what exists in dist/ (tsc does not rewrite URLs); on the sources, Vite resolves
 * a `.js` URL from a TypeScript module to the `.ts` file beside it, as it does for imports.
 */
function spawnEngineWorker(): Worker {
  return new Worker(new URL('../workers/engine.worker.js', import.meta.url), { type: 'module', name: 'murmur-engine' });
}

function localLink(): EngineLink {
  const host = createEngineHost();
  return {
    init: (init, onProgress) => host.init(init, onProgress),
    transcribe: (request, _transfer, options, onSegment) => host.transcribe(request, options, onSegment),
    detectLanguage: (request) => host.detectLanguage(request),
    abort: (id) => host.abort(id),
    dispose: () => host.dispose(),
    close() {
      void host.dispose();
    },
  };
}

/** Model sources as the worker can receive them: URL objects as strings, relative paths resolved against the page. */
function portableModelSource(model: ModelSource): ModelSource {
  const text = model instanceof URL ? model.href : model;
  if (typeof text === 'string' && typeof location !== 'undefined' && /^(\.{0,2}\/)/.test(text)) return new URL(text, location.href).href;
  return text;
}

async function connect(link: EngineLink, options: CreateTranscriberOptions): Promise<MurmurTranscriber> {
  const { signal } = options;
  if (signal?.aborted) throw new AbortError('loading the model');
  const pending = new Set<(error: Error) => void>();
  let disposed = false;
  let broken: Error | undefined;
  let nextId = 1;
  let sendTurn: Promise<unknown> = Promise.resolve();

  link.onBroken = (error) => {
    broken = error;
    for (const fail of [...pending]) fail(error);
  };

  /** Settles with `work`, or rejects early when the link breaks, the transcriber is disposed or `abort` fires. */
  function guarded<T>(work: Promise<T>, abortSignal: AbortSignal | undefined, onAbort: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const fail = (error: Error) => finish(() => reject(error));
      const abort = () => {
        const error = onAbort();
        finish(() => reject(error));
      };
      const finish = (settle: () => void) => {
        if (!pending.delete(fail)) return;
        abortSignal?.removeEventListener('abort', abort);
        settle();
      };
      pending.add(fail);
      abortSignal?.addEventListener('abort', abort, { once: true });
      work.then((value) => finish(() => resolve(value)), (error) => finish(() => reject(error)));
    });
  }

  function checkUsable(): void {
    if (disposed) throw new MurmurError('DISPOSED', 'the transcriber was disposed');
    if (broken) throw broken;
  }

  const info = await guarded(
    link.init({ model: portableModelSource(options.model), ...(options.backend !== undefined ? { backend: options.backend } : {}), ...(options.threads !== undefined ? { threads: options.threads } : {}) }, options.onProgress),
    signal,
    () => new AbortError('loading the model'),
  );

  /** One request: prepares the audio, sends it in call order, and wires the caller's signal to the engine. */
  async function request<T>(input: AudioInput, what: string, callSignal: AbortSignal | undefined, send: (request: EngineRequest, transfer: Transferable[]) => Promise<T>): Promise<T> {
    checkUsable();
    if (callSignal?.aborted) throw new AbortError(what);
    const id = nextId++;
    const abortFlag = typeof SharedArrayBuffer !== 'undefined' && (globalThis.crossOriginIsolated ?? true) ? new Int32Array(new SharedArrayBuffer(4)) : undefined;
    const prepared = toPortableAudio(input, callSignal);
    const turn = sendTurn.then(() => prepared);
    sendTurn = turn.catch(() => {});
    const work = turn.then(({ audio, transfer }) => {
      checkUsable();
      if (callSignal?.aborted) throw new AbortError(what);
      return send({ id, audio, ...(abortFlag ? { abortFlag } : {}) }, transfer);
    });
    return guarded(work, callSignal, () => {
      if (abortFlag) Atomics.store(abortFlag, 0, 1);
      link.abort(id);
      return new AbortError(what);
    });
  }

  return {
    model: info,
    transcribe(input, transcribeOptions = {}) {
      const { signal: callSignal, onSegment, ...rest } = transcribeOptions;
      return request(input, 'transcription', callSignal, (engineRequest, transfer) => link.transcribe(engineRequest, transfer, rest, onSegment));
    },
    detectLanguage(input, detectOptions = {}) {
      return request(input, 'language detection', detectOptions.signal, (engineRequest, transfer) => link.detectLanguage(engineRequest, transfer));
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      const error = new MurmurError('DISPOSED', 'the transcriber was disposed');
      for (const fail of [...pending]) fail(error);
      // The engine frees the backend (GPU buffers, WASM memory) itself if it answers in time;
      // terminating the worker frees everything else regardless.
      await Promise.race([link.dispose().catch(() => {}), new Promise((resolve) => setTimeout(resolve, DISPOSE_GRACE_MS))]);
      link.close();
    },
  };
}
