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
import { AbortError, AudioError, MurmurError } from '../core/errors.ts';
import type { ModelSource } from '../core/formats/load-model.ts';
import type { LanguageDetection, TranscribeOptions, TranscriptionResult, TranscriptionSegment } from '../core/transcriber.ts';
import { toPortableAudio, type AudioInput } from '../core/audio/decode-input.ts';
import {
  createEngineHost,
  type EngineBackend,
  type EngineHost,
  type EngineInfo,
  type EnginePlan,
  type EngineProgressEvent,
  type EngineRequest,
  type EngineInit,
  type LiveClientMessage,
  type LiveHostMessage,
  type PortableLiveOptions,
  type PortableTranscribeOptions,
} from '../workers/engine-host.ts';
import { deserializeError, registerErrorTransfer } from '../workers/error-transfer.ts';
import type { LiveEvent } from '../core/streaming/session.ts';
import type { MicrophoneRequest } from '../capture/listen.ts';
import type { Capture } from '../capture/capture.ts';

export type { AudioInput } from '../core/audio/decode-input.ts';
export type { EngineBackend as TranscriberBackend, EngineInfo as TranscriberModelInfo, EngineProgressEvent as ProgressEvent, EnginePlan as TranscriberPlan, BackendAttempt } from '../workers/engine-host.ts';

export interface CreateTranscriberOptions {
  /** Where to load the model from (see loadModel): URL, path, hub repo id, Blob, files. */
  model: ModelSource;
  /**
   * 'auto' (default): WebGPU when the browser has an adapter, else WASM. That rule is a
   * placeholder for the execution plan of issue #5.
   */
  backend?: EngineBackend;
  /** 'wasm' only: kernel threads (default: the plan's, every core when shared memory is available). */
  threads?: number;
  /**
   * Overrides of the execution plan the engine is built from (see planExecution), e.g.
   * `{ backendOrder: ['wasm', 'reference'], threads: 1 }`. The plan, with its reasons and the
   * backend that was built, is `transcriber.plan`.
   */
  plan?: EngineInit['plan'];
  /** Model download, load and compile progress, shaped like transformers.js' progress_callback. */
  onProgress?: (event: EngineProgressEvent) => void;
  /** Cancels creating the transcriber (in a browser the half-started worker is terminated). */
  signal?: AbortSignal;
}

/** Live dictation options: the session's (src/core/streaming/session.ts) and the capture's. */
export interface TranscriberListenOptions extends PortableLiveOptions {
  /** Tentative and confirmed text, speech start and end (see LiveEvent). */
  onEvent?: (event: LiveEvent) => void;
  /** A decode or the capture failed; the session has stopped. */
  onError?: (error: unknown) => void;
  /** Sees each captured 16 kHz chunk before it goes to the engine (to record or meter it). */
  onAudio?: (chunk: Float32Array) => void;
  /** Capture from this stream (default: open the microphone). */
  stream?: MediaStream;
  /** Which microphone to open when no stream is given. */
  microphone?: MicrophoneRequest;
  /** false: capture nothing; audio comes through `push` (16 kHz mono). */
  capture?: boolean;
  /** The AudioContext to capture with (default: a new one, closed on stop). */
  context?: AudioContext;
  /** Seconds per captured chunk (default 0.1). */
  chunkSeconds?: number;
}

/** A live session: capture on this thread, VAD and decoding in the engine. */
export interface TranscriberListening {
  /** The capture device's rate before resampling (undefined without capture). */
  readonly inputSampleRate: number | undefined;
  /** Adds 16 kHz mono samples (push mode, `capture: false`); the buffer is transferred. */
  push(samples: Float32Array): void;
  /** Stops capturing, finalizes the utterance in progress; resolves once its events arrived. */
  stop(): Promise<{ decodes: number; finalOptions: PortableTranscribeOptions }>;
  /** Stops at once; no more events. */
  abort(): void;
}

export interface MurmurTranscriber {
  /** The loaded model and the backend that runs it. */
  readonly model: EngineInfo;
  /** The execution plan the engine was built from: backend order, threads, reasons, what was tried. */
  readonly plan: EnginePlan;
  /**
   * Float32Array and ArrayBuffer inputs are transferred to the worker, not copied: afterwards the
   * caller's buffer is detached. Pass a copy to keep one.
   */
  transcribe(input: AudioInput, options?: TranscribeOptions): Promise<TranscriptionResult>;
  detectLanguage(input: AudioInput, options?: { signal?: AbortSignal }): Promise<LanguageDetection>;
  /**
   * Live dictation: `listen(mediaStream, options?)` or `listen(options)` (opens the microphone, or
   * with `capture: false` takes pushed audio). Capture runs on this thread (an AudioWorklet, as it
   * must); voice activity detection, the local-agreement session and decoding run in the engine.
   */
  listen(source?: MediaStream | TranscriberListenOptions, options?: TranscriberListenOptions): Promise<TranscriberListening>;
  /** Stops the worker and frees the model, GPU memory and caches; later calls reject (code DISPOSED). */
  dispose(): Promise<void>;
}

/** How the client reaches the engine: through a worker, or directly. */
interface EngineLink {
  init(options: Parameters<EngineHost['init']>[0], onProgress?: (event: EngineProgressEvent) => void): ReturnType<EngineHost['init']>;
  listen(port: MessagePort, options: PortableLiveOptions): Promise<void>;
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
    listen: (port, options) => remote.listen(Comlink.transfer(port, [port]), options),
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
    listen: (port, options) => host.listen(port, options),
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
    link.init(
      {
        model: portableModelSource(options.model),
        ...(options.backend !== undefined ? { backend: options.backend } : {}),
        ...(options.threads !== undefined ? { threads: options.threads } : {}),
        ...(options.plan !== undefined ? { plan: options.plan } : {}),
      },
      options.onProgress,
    ),
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

  const { plan, ...model } = info;

  async function listen(source?: MediaStream | TranscriberListenOptions, extra?: TranscriberListenOptions): Promise<TranscriberListening> {
    checkUsable();
    const isStream = typeof MediaStream !== 'undefined' && source instanceof MediaStream;
    const options: TranscriberListenOptions = isStream ? { ...extra, stream: source } : { ...(source as TranscriberListenOptions | undefined), ...extra };
    const { onEvent, onError, onAudio, stream, microphone, capture: wantsCapture = true, context, chunkSeconds, ...sessionOptions } = options;
    const channel = new MessageChannel();
    const port = channel.port1;
    let failure: Error | undefined;
    let stopped: ((summary: { decodes: number; finalOptions: PortableTranscribeOptions }) => void) | undefined;
    const stoppedSummary = new Promise<{ decodes: number; finalOptions: PortableTranscribeOptions }>((resolve) => (stopped = resolve));
    port.onmessage = (event: MessageEvent<LiveHostMessage>) => {
      const message = event.data;
      if (message.type === 'event') onEvent?.(message.event);
      else if (message.type === 'error') {
        failure = deserializeError(message.error);
        onError?.(failure);
      } else if (message.type === 'stopped') stopped?.(message);
    };
    const send = (message: LiveClientMessage, transfer: Transferable[] = []) => port.postMessage(message, transfer);
    await guarded(link.listen(channel.port2, sessionOptions), undefined, () => new AbortError('listening'));

    let capture: Capture | undefined;
    let release = () => {};
    let pump: Promise<void> = Promise.resolve();
    let ended = false;
    const close = () => {
      ended = true;
      port.onmessage = null;
      port.close();
    };
    if (wantsCapture) {
      try {
        const { captureInput } = await import('../capture/listen.ts');
        ({ capture, release } = await captureInput(stream ?? microphone ?? {}, { ...(context ? { context } : {}), ...(chunkSeconds !== undefined ? { chunkSeconds } : {}) }));
      } catch (error) {
        send({ type: 'abort' });
        close();
        throw error;
      }
      const chunks = capture.chunks;
      pump = (async () => {
        for await (const chunk of chunks) {
          if (ended) return;
          onAudio?.(chunk.slice());
          send({ type: 'audio', samples: chunk }, [chunk.buffer as ArrayBuffer]);
        }
      })();
    }

    let stopping: Promise<{ decodes: number; finalOptions: PortableTranscribeOptions }> | undefined;
    return {
      inputSampleRate: capture?.inputSampleRate,
      push(samples) {
        if (capture) throw new AudioError('listen: push() is for sessions without capture (capture: false)');
        if (ended || stopping) throw new AudioError('listen: audio pushed after stop() or abort()');
        const movable = samples.byteOffset === 0 && samples.byteLength === samples.buffer.byteLength ? samples : samples.slice();
        send({ type: 'audio', samples: movable }, [movable.buffer as ArrayBuffer]);
      },
      stop() {
        stopping ??= (async () => {
          await capture?.stop();
          await pump;
          release();
          if (ended) throw new AbortError('listening');
          try {
            checkUsable();
          } catch (error) {
            close();
            throw error;
          }
          send({ type: 'stop' });
          try {
            const summary = await guarded(stoppedSummary, undefined, () => new AbortError('listening'));
            if (failure) throw failure;
            return summary;
          } finally {
            close();
          }
        })();
        return stopping;
      },
      abort() {
        if (ended) return;
        send({ type: 'abort' });
        close();
        void capture?.stop().finally(release);
      },
    };
  }

  return {
    model,
    plan,
    listen,
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
