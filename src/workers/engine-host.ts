/**
 * The engine behind the public client (src/client): one model on one backend, requests run one
 * at a time in arrival order. In browsers it lives in the module worker (engine.worker.ts) and is
 * reached through comlink; in Node the client calls it directly on the same thread. Everything
 * that crosses its methods is structured-cloneable, callbacks excepted (comlink proxies them).
 *
 * Protocol: a request carries an `id`, which `abort(id)` cancels, and optionally a one-int
 * SharedArrayBuffer flag the caller sets on abort. The flag matters because decoding rarely yields
 * to the worker's event loop, so an abort *message* is only read between requests; the flag is
 * read at every step the decoder checks its AbortSignal.
 *
 * Live dictation: `listen(port, options)` runs a LiveSession (VAD, local agreement) here, fed by
 * the messages of `port` (see LiveClientMessage / LiveHostMessage); each of its decodes joins the
 * request queue like any other request, so a transcription asked for meanwhile runs between two
 * of them.
 *
 * Building the engine (issue #5): `init` probes the device and plans (src/core/device), then tries
 * the plan's backends in order, keeping the first that builds, and reports the plan with every
 * attempt: what it was built with (layout, precision, threads, kernel variants), why that differs
 * from the plan where it does, and why it failed.
 */
import { createTranscriber as createLocalTranscriber, type AppliedExecution, type BackendName, type TranscriberOptions, type LanguageDetection, type Transcriber, type TranscribeOptions, type TranscriptionResult, type TranscriptionSegment } from '../core/transcriber.ts';
import type { WhisperModel } from '../core/model/model.ts';
import { loadModel } from '../core/formats/load-model.ts';
import type { ModelSource } from '../core/formats/load-model.ts';
import type { WhisperDims } from '../core/model/dims.ts';
import { AbortError, MurmurError } from '../core/errors.ts';
import { portableToSamples, type PortableAudio } from '../core/audio/decode-input.ts';
import { LiveSession, type LiveEvent, type LiveSessionOptions } from '../core/streaming/session.ts';
import { probeDevice, type DeviceProfile } from '../core/device/probe.ts';
import { LAYOUTS_BY_BACKEND, planExecution, type ExecutionBackend, type ExecutionLayout, type ExecutionPlan, type ExecutionPrecision } from '../core/device/plan.ts';
import { applyPrecision } from '../core/device/weight-precision.ts';
import { defaultVariantStore } from '../kernels-wgsl/autotune-cache.ts';
import type { KernelVariants } from '../kernels-wgsl/variants.ts';
import { serializeError, type SerializedError } from './error-transfer.ts';
import { releaseProxy } from 'comlink';

export type EngineBackend = 'auto' | ExecutionBackend;

/**
 * Shaped like transformers.js' progress_callback events so existing progress bars fit:
 * 'download' per model file (loaded/total bytes), 'load' while the files become a model,
 * 'compile' while the backend uploads/prepares the weights. `progress` is 0–1 (undefined when the
 * download's size is unknown).
 */
export interface EngineProgressEvent {
  /** 'plan': probing the device and choosing the backend (progress 0, then 1). */
  stage: 'download' | 'load' | 'plan' | 'compile';
  file?: string;
  loaded?: number;
  total?: number;
  progress: number | undefined;
}

export interface EngineInit {
  model: ModelSource;
  backend?: EngineBackend;
  threads?: number;
  /** Overrides of the execution plan (issue #5): backendOrder, threads, ... */
  plan?: Partial<Omit<ExecutionPlan, 'reasons'>>;
}

export interface EngineInfo {
  source: string;
  dims: WhisperDims;
  /** The backend actually used ('auto' resolved). */
  backend: ExecutionBackend;
}

/**
 * What one backend attempt was built with. For the backend in use, read back from it (the threads
 * it runs, the variants its device runs, the bytes it holds); for a failed one, what was asked.
 */
export interface AttemptExecution {
  layout: ExecutionLayout;
  precision: ExecutionPrecision;
  /** 'wasm'. */
  threads?: number;
  /** 'webgpu': the variants, and 'pinned' (the caller's) or 'autotune' (asked) / the backend's source once built. */
  kernelVariants?: KernelVariants;
  kernelVariantsSource?: string;
  /** Bytes of the weights handed to the backend, and what the backend holds for them where it says. */
  weightBytes?: number;
  backendBytes?: number;
  /** Why each setting is what it is, plan differences first. */
  reasons: string[];
}

/** One backend the engine tried to build, in plan order. */
export interface BackendAttempt {
  backend: ExecutionBackend;
  outcome: 'used' | 'failed' | 'skipped';
  /** Why it failed or was skipped. */
  reason?: string;
  applied: AttemptExecution;
}

/** The execution plan the engine was built from, with what actually happened. */
export interface EnginePlan extends ExecutionPlan {
  /** The backend that runs the model. */
  backend: ExecutionBackend;
  /** What the backend in use was built with (its attempt's `applied`). */
  applied: AttemptExecution;
  /** Every backend tried, in order, until one was built. */
  attempts: BackendAttempt[];
  /** The device as probed, in the engine's thread. */
  profile: DeviceProfile;
}

/** Session options that cross to the worker (the callbacks stay on the caller's side). */
export type PortableLiveOptions = Omit<LiveSessionOptions, 'onEvent' | 'onError'>;

/** Caller → engine, on a live session's port. Audio is 16 kHz mono, transferred. */
export type LiveClientMessage = { type: 'audio'; samples: Float32Array } | { type: 'stop' } | { type: 'abort' };

/** Engine → caller, on a live session's port. */
export type LiveHostMessage =
  | { type: 'event'; event: LiveEvent }
  | { type: 'error'; error: SerializedError }
  | { type: 'stopped'; decodes: number; finalOptions: PortableTranscribeOptions };

/** TranscribeOptions without what cannot be cloned (the signal; onSegment goes separately). */
export type PortableTranscribeOptions = Omit<TranscribeOptions, 'signal' | 'onSegment'>;

export interface EngineRequest {
  id: number;
  audio: PortableAudio;
  /** Set to 1 by the caller to abort (SharedArrayBuffer-backed, when the page may share memory). */
  abortFlag?: Int32Array;
}

export interface EngineHost {
  init(options: EngineInit, onProgress?: (event: EngineProgressEvent) => void): Promise<EngineInfo & { plan: EnginePlan }>;
  /** Starts a live session fed and answered through `port`; resolves once it listens. */
  listen(port: MessagePort, options?: PortableLiveOptions): Promise<void>;
  transcribe(request: EngineRequest, options?: PortableTranscribeOptions, onSegment?: (segment: TranscriptionSegment) => void): Promise<TranscriptionResult>;
  detectLanguage(request: EngineRequest): Promise<LanguageDetection>;
  abort(id: number): void;
  dispose(): Promise<void>;
}

/**
 * The plan for this device and model: the caller's backend (if not 'auto') and threads become
 * overrides, so the plan's reasons say they were chosen by the caller.
 */
async function planFor(model: WhisperModel, options: EngineInit): Promise<{ plan: ExecutionPlan; profile: DeviceProfile }> {
  const profile = await probeDevice();
  const overrides: Partial<ExecutionPlan> = { ...options.plan } as Partial<ExecutionPlan>;
  if (options.backend !== undefined && options.backend !== 'auto') overrides.backendOrder = [options.backend];
  if (options.threads !== undefined) overrides.threads = options.threads;
  const plan = planExecution(profile, { dims: model.dims, dtype: storedDtype(model) }, overrides);
  return { plan, profile };
}

/** The dtype most of the model's matrices are stored in (what the plan's memory budget counts). */
function storedDtype(model: WhisperModel): string {
  const counts = new Map<string, number>();
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    const tensor = node as { dtype?: unknown; bytes?: unknown };
    if (typeof tensor.dtype === 'string' && tensor.bytes instanceof Uint8Array) {
      counts.set(tensor.dtype, (counts.get(tensor.dtype) ?? 0) + tensor.bytes.byteLength);
      return;
    }
    for (const child of Object.values(node)) visit(child);
  };
  visit(model.weights);
  let best = 'f32';
  let most = -1;
  for (const [dtype, bytes] of counts) if (bytes > most) [best, most] = [dtype, bytes];
  return best;
}

/** How the plan applies to one backend: the options to build it with, and what differs from the plan and why. */
function settingsFor(backend: ExecutionBackend, plan: ExecutionPlan, profile: DeviceProfile, pinnedVariants: boolean): { options: Partial<TranscriberOptions>; applied: AttemptExecution } {
  const reasons: string[] = [];
  const consumable = LAYOUTS_BY_BACKEND[backend];
  const layout = consumable.includes(plan.layout) ? plan.layout : 'row-major';
  if (layout !== plan.layout) reasons.push(`layout row-major instead of ${plan.layout}: the ${backend} backend consumes ${consumable.join(' or ')}`);
  // The ONNX graphs hold f32 weights whatever the file had: narrowing would cost accuracy and save nothing.
  const precisionApplies = backend !== 'webnn';
  if (!precisionApplies && plan.precision !== 'f32') reasons.push(`precision ${plan.precision} not applied on webnn: its graphs hold f32 weights, so narrowing would lose accuracy without saving memory`);
  const options: Partial<TranscriberOptions> = {
    ...(layout !== 'row-major' ? { layout } : {}),
    ...(precisionApplies ? { precision: plan.precision } : {}),
    ...(backend === 'wasm' ? { threads: plan.threads } : {}),
    ...(backend === 'webnn' && profile.webnn.available ? { webnnContexts: profile.webnn.contexts } : {}),
  };
  const applied: AttemptExecution = { layout, precision: precisionApplies ? plan.precision : 'f32', reasons };
  if (backend === 'wasm') applied.threads = plan.threads;
  if (backend === 'webgpu') {
    if (pinnedVariants && plan.kernelVariants) {
      options.kernelVariants = plan.kernelVariants;
      applied.kernelVariants = plan.kernelVariants;
      applied.kernelVariantsSource = 'pinned';
      reasons.push('kernel variants pinned: set by the caller, not tuned');
    } else {
      // The first start on this adapter measures and saves; later starts restore from the store.
      const store = defaultVariantStore();
      options.autotune = { store: store ?? null };
      applied.kernelVariantsSource = 'autotune';
      reasons.push(`kernel variants autotuned at load for this model's shapes, ${store ? 'restored from the autotune cache when measured before' : 'in memory only (no persistent store here)'}`);
    }
  }
  return { options, applied };
}

/** The attempt's settings completed with what the built backend reports. */
function appliedFrom(asked: AttemptExecution, execution: AppliedExecution): AttemptExecution {
  const { backend: _backend, reasons, ...facts } = execution;
  return { ...asked, ...facts, reasons: [...asked.reasons, ...reasons] };
}

/**
 * Builds the first backend of the plan that works; records what each attempt was built with and why
 * the others did not build. The model is narrowed once per precision, before the first attempt that
 * asks for it, and every later attempt gets that same narrowed model (applyPrecision recognizes it),
 * so a failed attempt does not cost a second conversion. Attempts that take no precision (webnn) get
 * the model as loaded.
 */
async function buildFromPlan(model: WhisperModel, plan: ExecutionPlan, profile: DeviceProfile, pinnedVariants: boolean): Promise<{ transcriber: Transcriber; backend: ExecutionBackend; attempts: BackendAttempt[] }> {
  const attempts: BackendAttempt[] = [];
  const narrowed = new Map<ExecutionPrecision, WhisperModel>();
  const modelFor = (precision: ExecutionPrecision | undefined): WhisperModel => {
    if (precision === undefined) return model;
    let result = narrowed.get(precision);
    if (!result) narrowed.set(precision, (result = applyPrecision(model, precision).model));
    return result;
  };
  for (const backend of plan.backendOrder) {
    const { options, applied } = settingsFor(backend, plan, profile, pinnedVariants);
    try {
      const transcriber = await createLocalTranscriber({ model: modelFor(options.precision), backend: backend as BackendName, ...options });
      attempts.push({ backend, outcome: 'used', applied: appliedFrom(applied, transcriber.execution) });
      return { transcriber, backend, attempts };
    } catch (error) {
      const unknown = error instanceof MurmurError && error.code === 'BACKEND' && /unknown backend/.test(error.message);
      attempts.push({ backend, outcome: unknown ? 'skipped' : 'failed', reason: unknown ? `this build has no ${backend} backend (${error.message})` : describeError(error), applied });
    }
  }
  const tried = attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ');
  throw new MurmurError('BACKEND', `no backend of the plan could be built (${tried})`);
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
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
  const controllers = new Map<number | symbol, AbortController>();
  /** Ends each live session (on dispose). */
  const liveSessions = new Set<() => void>();

  function ready(): Transcriber {
    if (disposed) throw new MurmurError('DISPOSED', 'the transcriber was disposed');
    if (!transcriber) throw new MurmurError('NOT_READY', 'no model is loaded (init was not called or failed)');
    return transcriber;
  }

  /** Runs `work` after every earlier request, with an AbortSignal that abort(id) and the flag reach. */
  /**
   * Runs `work` after every earlier request, with an AbortSignal that abort(id) and the flag reach.
   * `request` undefined: internal work (a live session's decode), stopped by `extra` and dispose.
   */
  function enqueue<T>(request: Pick<EngineRequest, 'id' | 'abortFlag'> | undefined, what: string, work: (signal: AbortSignal) => Promise<T>, extra?: AbortSignal): Promise<T> {
    const controller = new AbortController();
    const key = request?.id ?? Symbol(what);
    controllers.set(key, controller);
    const flagged = signalWithFlag(controller, request?.abortFlag);
    const signal = extra ? AbortSignal.any([flagged, extra]) : flagged;
    const run = queue.then(async () => {
      try {
        if (signal.aborted) throw new AbortError(what);
        return await work(signal);
      } finally {
        controllers.delete(key);
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
        const model = await loadModel(options.model, { onProgress: onProgress ? (event) => onProgress({ ...event }) : undefined });
        onProgress?.({ stage: 'load', file: model.source, progress: 1 });
        onProgress?.({ stage: 'plan', progress: 0 });
        const { plan, profile } = await planFor(model, options);
        onProgress?.({ stage: 'plan', progress: 1 });
        onProgress?.({ stage: 'compile', progress: 0 });
        const built = await buildFromPlan(model, plan, profile, options.plan?.kernelVariants !== undefined);
        if (disposed) {
          built.transcriber.dispose();
          throw new MurmurError('DISPOSED', 'the transcriber was disposed');
        }
        transcriber = built.transcriber;
        onProgress?.({ stage: 'compile', progress: 1 });
        const used = built.attempts[built.attempts.length - 1]!;
        const enginePlan: EnginePlan = { ...plan, backend: built.backend, applied: used.applied, attempts: built.attempts, profile };
        return { source: model.source, dims: { ...model.dims }, backend: built.backend, plan: enginePlan };
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

    async listen(port, options = {}) {
      ready();
      let session: LiveSession | undefined;
      const post = (message: LiveHostMessage) => {
        try {
          port.postMessage(message);
        } catch {
          // The caller's side is gone (page closed, port closed): nothing to tell.
        }
      };
      const close = () => {
        liveSessions.delete(end);
        port.onmessage = null;
        port.close();
      };
      const end = () => {
        session?.abort();
        close();
      };
      /** Each decode is one more request in the queue, so other requests interleave with the session's. */
      const queued = {
        transcribe: (audio: Float32Array, transcribeOptions: TranscribeOptions = {}) => {
          const { signal: sessionSignal, ...rest } = transcribeOptions;
          return enqueue(undefined, 'live decode', (signal) => ready().transcribe(audio, { ...rest, signal }), sessionSignal);
        },
      };
      session = new LiveSession(queued, {
        ...options,
        onEvent: (event) => post({ type: 'event', event }),
        onError: (error) => post({ type: 'error', error: serializeError(error instanceof Error ? error : new MurmurError('LIVE', String(error))) }),
      });
      const live = session;
      liveSessions.add(end);
      port.onmessage = (event: MessageEvent<LiveClientMessage>) => {
        const message = event.data;
        if (message.type === 'audio') {
          try {
            live.push(message.samples);
          } catch (error) {
            post({ type: 'error', error: serializeError(error as Error) });
            end();
          }
        } else if (message.type === 'stop') {
          port.onmessage = null;
          live.stop().then(
            () => post({ type: 'stopped', decodes: live.decodes, finalOptions: live.finalOptions() }),
            // onError already told the caller.
            () => post({ type: 'stopped', decodes: live.decodes, finalOptions: live.finalOptions() }),
          ).finally(close);
        } else if (message.type === 'abort') {
          end();
        }
      };
    },

    abort(id) {
      controllers.get(id)?.abort();
    },

    async dispose() {
      if (disposed) return;
      disposed = true;
      for (const end of [...liveSessions]) end();
      for (const controller of controllers.values()) controller.abort();
      await queue;
      // Backend first: GPU buffers and WASM memory go before the worker itself does.
      transcriber?.dispose();
      transcriber = undefined;
    },
  };
}
