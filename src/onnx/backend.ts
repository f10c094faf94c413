/**
 * The 'webnn' backend: whisper.ts lowered to ONNX graphs in the page (trace-ops.ts), run by
 * onnxruntime-web. Each graph is compiled once per structure: WebNN is asked for first (NPU, then
 * GPU), and when a provider cannot take the graph the same ModelProto bytes go to the next, down to
 * onnxruntime's WebAssembly CPU provider. Which provider each session got, and why the ones before
 * it failed, is recorded in `sessions` (and `provider` names the latest).
 *
 * Shapes. A decoder-step graph names the sizes that vary from step to step (dim_params: 'rows', the
 * tokens fed; 'ranges' and 'gathered' of the token selection). Providers that take such free
 * dimensions (wasm) get one session per graph, for every step shape ('dynamic'). WebNN needs static
 * shapes, so a WebNN attempt gets the same bytes with `freeDimensionOverrides` fixing every named
 * size to this step's ('overridden'), and a WebNN session is kept per step shape. A graph that names
 * no size (the encoder, the cross-attention K/V, every graph with `staticShapes`) is 'static' on
 * any provider. A provider that refused a graph is not asked again for it at other sizes.
 *
 * Memory. Weights become f32 initializers (ggml quantized, f16 and bf16 weights are widened once, at
 * prepareWeights), so a graph's bytes carry the weights it uses, and onnxruntime keeps its own copy
 * per session. Sessions: the encoder, the cross-attention K/V, and the decoder step. On wasm one
 * decoder session per batch size serves every row count (the prompt and the one-token steps), so
 * the decoder's weights are held once per batch size (with `staticShapes`, once per step shape
 * instead). On WebNN the decoder's weights are held once per step shape — typically twice, the
 * window's prompt and its one-token steps — and at most `webnnShapesPerGraph` step shapes of one
 * graph keep a session (the least recently used is released). The encoder's and the cross-attention
 * weights are held once either way. Graphs are lowered row-major or channels-first (`layout`); their
 * inputs and outputs are row-major either way.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-web';
import type { WhisperBackend } from '../core/model/ops.ts';
import { mapWeights, type WeightTensor } from '../core/model/weights.ts';
import { decodeTensor } from '../core/model/dtype.ts';
import { MurmurError } from '../core/errors.ts';
import { DataType, encodeModel } from './onnx-schema.ts';
import { createOnnxOps, type OnnxLayout, type OnnxOps, type OnnxTensor, type OnnxWeight, type PlannedGraph } from './trace-ops.ts';
import type { WebNnContextAttempt } from '../core/device/probe.ts';
import { layoutDisagreement, probedPreference, queryPreferredInputLayout, type WebNnDeviceType } from './webnn-layout.ts';

export type OrtModule = typeof import('onnxruntime-web');
export type ExecutionProvider = InferenceSession.ExecutionProviderConfig;

/** WebNN on an NPU, then on a GPU, then onnxruntime's WebAssembly CPU provider. */
export const DEFAULT_PROVIDERS: readonly ExecutionProvider[] = [{ name: 'webnn', deviceType: 'npu' }, { name: 'webnn', deviceType: 'gpu' }, 'wasm'];

/**
 * How a session's graph got its sizes: 'static', it names none; 'dynamic', its named sizes vary from
 * run to run (one session for every step shape); 'overridden', each named size fixed to one step
 * shape's with `freeDimensionOverrides` (a session per step shape, for providers needing static shapes).
 */
export type ShapeStrategy = 'static' | 'dynamic' | 'overridden';

export interface ProviderAttempt {
  /** e.g. 'webnn:npu', 'wasm'. */
  provider: string;
  /** How the graph's sizes were offered to this provider. */
  shapes: ShapeStrategy;
  /** The sizes fixed for an 'overridden' attempt (dim_param → size). */
  freeDimensionOverrides?: Readonly<Record<string, number>>;
  /** Why session creation failed; absent for the provider that took the graph. */
  error?: string;
  /** The provider refused this graph at another step shape and was not asked again (`error` is that refusal). */
  notAskedAgain?: true;
}

export interface CompiledSession {
  /** The recorded ops the graph was lowered from, in order (e.g. conv1d, conv1d, addPositionalEmbedding, …). */
  readonly ops: readonly string[];
  /** Node count and the distinct ONNX op types the graph uses. */
  readonly nodes: number;
  readonly opTypes: readonly string[];
  /** Size of the ModelProto handed to every provider tried. */
  readonly bytes: number;
  /** Bytes of model weights among its initializers (each session holds its own copy). */
  readonly weightBytes: number;
  /** The provider that runs it. */
  readonly provider: string;
  /** Every provider tried, in order, the failed ones with their error. */
  readonly attempts: readonly ProviderAttempt[];
  /** How its graph's sizes reached the provider (the successful attempt's). */
  readonly shapes: ShapeStrategy;
  /** The step shape an 'overridden' session is fixed to. */
  readonly freeDimensionOverrides?: Readonly<Record<string, number>>;
  runs: number;
  /** Released to keep at most `webnnShapesPerGraph` step shapes of its graph (or with the weights). */
  released: boolean;
}

export interface OnnxBackendOptions {
  /** Execution providers to try, in order (default DEFAULT_PROVIDERS). */
  providers?: readonly ExecutionProvider[];
  /**
   * onnxruntime-web's WebAssembly threads (ort.env.wasm.numThreads; global to the page, so the first
   * backend created sets it). Default: 1 in Node, up to 4 in a cross-origin-isolated page.
   */
  threads?: number;
  /** The onnxruntime-web module to use (default: imported on demand). */
  ort?: OrtModule;
  /**
   * How activations are held inside each graph (inputs and outputs are row-major either way):
   * 'row-major' [rows, cols], or 'channels-first', the Neural Engine recipe, (B, C, 1, S) with S
   * padded to 64 bytes and every linear a 1×1 Conv (default 'row-major').
   */
  layout?: OnnxLayout;
  /**
   * Every size static (default false): a decoder-step graph, with its own copy of the decoder's
   * weights, per step shape, for providers that cannot take dynamic dimensions.
   */
  staticShapes?: boolean;
  /**
   * Step shapes of one graph that keep a WebNN session, each with its own copy of the graph's
   * weights; beyond it the least recently used is released (default 2: a window's prompt and its
   * one-token steps).
   */
  webnnShapesPerGraph?: number;
  /**
   * The WebNN contexts the device probe created (WebNnProfile.contexts), for their preferred input
   * layout; without them navigator.ml is asked, once per device type, at the first WebNN attempt.
   */
  webnnContexts?: readonly WebNnContextAttempt[];
}

export interface OnnxBackend extends WhisperBackend<OnnxTensor, OnnxWeight> {
  readonly ops: OnnxOps;
  /** The provider of the most recently compiled session; undefined before the first graph. */
  readonly provider: string | undefined;
  /** Every session compiled so far, in order. */
  readonly sessions: readonly CompiledSession[];
  readonly layout: OnnxLayout;
  /** Why the graphs may not suit a provider they were offered to (a WebNN context preferring another layout). */
  readonly reasons: readonly string[];
}

/** WebNN compiles fixed shapes: named sizes are fixed per step shape for it. */
function needsStaticShapes(provider: ExecutionProvider): boolean {
  return (typeof provider === 'string' ? provider : provider.name) === 'webnn';
}

function deviceTypeOf(provider: ExecutionProvider): WebNnDeviceType | undefined {
  const deviceType = typeof provider === 'string' ? undefined : (provider as { deviceType?: string }).deviceType;
  return deviceType === 'npu' || deviceType === 'gpu' || deviceType === 'cpu' ? deviceType : undefined;
}

function providerLabel(provider: ExecutionProvider): string {
  if (typeof provider === 'string') return provider;
  const deviceType = (provider as { deviceType?: string }).deviceType;
  return deviceType ? `${provider.name}:${deviceType}` : provider.name;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function defaultThreads(): number {
  const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string' && typeof window === 'undefined';
  if (isNode) return 1;
  const cores = typeof navigator !== 'undefined' ? navigator.hardwareConcurrency || 1 : 1;
  return typeof crossOriginIsolated !== 'undefined' && crossOriginIsolated ? Math.max(1, Math.min(4, cores)) : 1;
}

let configuredOrt: Promise<OrtModule> | undefined;
async function loadOrt(threads: number): Promise<OrtModule> {
  configuredOrt ??= (async () => {
    const ort = (await import('onnxruntime-web')) as OrtModule;
    ort.env.wasm.numThreads = threads;
    ort.env.logLevel = 'error';
    return ort;
  })();
  return configuredOrt;
}

/** f32 weights stay views of the loaded bytes where aligned; every other dtype is widened once. */
function initializerValues(tensor: WeightTensor): Float32Array {
  if (tensor.dtype === 'f32' && tensor.bytes.byteOffset % 4 === 0) return new Float32Array(tensor.bytes.buffer, tensor.bytes.byteOffset, tensor.bytes.byteLength / 4);
  return decodeTensor(tensor);
}

let nextOwner = 1;

export async function createOnnxBackend(options: OnnxBackendOptions = {}): Promise<OnnxBackend> {
  const providers = [...(options.providers ?? DEFAULT_PROVIDERS)];
  if (providers.length === 0) throw new MurmurError('BACKEND', 'the webnn backend needs at least one execution provider to try');
  const ort = options.ort ?? (await loadOrt(options.threads ?? defaultThreads()));
  if (options.ort && options.threads !== undefined) ort.env.wasm.numThreads = options.threads;

  const shapesPerGraph = options.webnnShapesPerGraph ?? 2;
  if (!Number.isInteger(shapesPerGraph) || shapesPerGraph < 1) throw new MurmurError('BACKEND', `webnnShapesPerGraph must be a positive integer, not ${shapesPerGraph}`);
  const layout = options.layout ?? 'row-major';
  if (layout !== 'row-major' && layout !== 'channels-first') throw new MurmurError('BACKEND', `the webnn backend lowers 'row-major' or 'channels-first' graphs, not ${JSON.stringify(layout)}`);

  interface Opened {
    readonly session: InferenceSession;
    readonly info: CompiledSession;
  }
  /** What one graph structure (PlannedGraph.key) has compiled, and which providers refused it. */
  interface GraphSessions {
    readonly refused: Map<string, string>;
    /** The session of a provider taking free dimensions: every step shape. */
    shared?: Opened;
    /** Sessions fixed to one step shape, least recently used first. */
    readonly bySize: Map<string, Opened>;
  }
  const graphs = new Map<string, GraphSessions>();
  const compiled: CompiledSession[] = [];
  const reasons: string[] = [];
  const layoutChecked = new Set<WebNnDeviceType>();
  let disposed = false;

  async function noteLayoutPreference(provider: ExecutionProvider): Promise<void> {
    const deviceType = deviceTypeOf(provider);
    if (!deviceType || layoutChecked.has(deviceType)) return;
    layoutChecked.add(deviceType);
    const preferred = probedPreference(options.webnnContexts, deviceType) ?? (options.webnnContexts ? undefined : await queryPreferredInputLayout(deviceType));
    const reason = layoutDisagreement(layout, providerLabel(provider), preferred);
    if (reason) reasons.push(reason);
  }

  function release(opened: Opened): void {
    if (opened.info.released) return;
    opened.info.released = true;
    opened.session.release().catch(() => {});
  }

  /** The session for this graph at this step shape: walks the providers in order, skipping those that refused the graph before. */
  async function open(planned: PlannedGraph, sessions: GraphSessions, sizes: Record<string, number>, sizeKey: string): Promise<Opened> {
    const named = Object.keys(sizes).length > 0;
    let model: ReturnType<PlannedGraph['graph']['model']> | undefined;
    let bytes: Uint8Array | undefined;
    const attempts: ProviderAttempt[] = [];
    for (const provider of providers) {
      const label = providerLabel(provider);
      const perSize = named && needsStaticShapes(provider);
      const shapes: ShapeStrategy = perSize ? 'overridden' : named ? 'dynamic' : 'static';
      const fixed = perSize ? { freeDimensionOverrides: sizes } : {};
      const refusal = sessions.refused.get(label);
      if (refusal !== undefined) {
        attempts.push({ provider: label, shapes, ...fixed, error: refusal, notAskedAgain: true });
        continue;
      }
      if (!perSize && sessions.shared) return sessions.shared;
      if (needsStaticShapes(provider)) await noteLayoutPreference(provider);
      model ??= planned.graph.model(`murmur-${compiled.length}`);
      bytes ??= encodeModel(model);
      let session: InferenceSession;
      try {
        session = await ort.InferenceSession.create(bytes, { executionProviders: [provider], graphOptimizationLevel: 'all', ...fixed });
      } catch (error) {
        const message = messageOf(error);
        attempts.push({ provider: label, shapes, ...fixed, error: message });
        sessions.refused.set(label, message);
        continue;
      }
      attempts.push({ provider: label, shapes, ...fixed });
      const info: CompiledSession = {
        ops: planned.ops,
        nodes: model.graph.node.length,
        opTypes: [...new Set(model.graph.node.map((n) => n.opType))].sort(),
        bytes: bytes.byteLength,
        weightBytes: planned.graph.weightBytes,
        provider: label,
        attempts,
        shapes,
        ...fixed,
        runs: 0,
        released: false,
      };
      compiled.push(info);
      const opened: Opened = { session, info };
      if (!perSize) sessions.shared = opened;
      else {
        sessions.bySize.set(sizeKey, opened);
        for (const [key, old] of sessions.bySize) {
          if (sessions.bySize.size <= shapesPerGraph) break;
          sessions.bySize.delete(key);
          release(old);
        }
      }
      return opened;
    }
    throw new MurmurError('BACKEND', `no execution provider could compile the graph: ${attempts.map((a) => `${a.provider}: ${a.error}`).join('; ')}`);
  }

  async function execute(planned: PlannedGraph): Promise<Float32Array[]> {
    if (disposed) throw new MurmurError('DISPOSED', 'the webnn backend was disposed');
    let sessions = graphs.get(planned.key);
    if (!sessions) graphs.set(planned.key, (sessions = { refused: new Map(), bySize: new Map() }));
    const sizes = planned.graph.freeDimensions();
    const sizeKey = JSON.stringify(sizes);
    let opened = sessions.bySize.get(sizeKey);
    if (opened) {
      // Most recently used last.
      sessions.bySize.delete(sizeKey);
      sessions.bySize.set(sizeKey, opened);
    } else {
      opened = await open(planned, sessions, sizes, sizeKey);
      if (graphs.get(planned.key) !== sessions) {
        // Disposed, or the weights released, while the session was being created: it is nobody's.
        release(opened);
        throw new MurmurError(disposed ? 'DISPOSED' : 'RELEASED', disposed ? 'the webnn backend was disposed' : "the graph's weights were released while its session was created");
      }
    }
    const feeds: Record<string, Tensor> = {};
    for (const input of planned.graph.inputs) {
      const type = input.dataType === DataType.INT64 ? 'int64' : input.dataType === DataType.BOOL ? 'bool' : 'float32';
      feeds[input.name] = new ort.Tensor(type, input.data() as never, [...input.shape]);
    }
    const results = await opened.session.run(feeds);
    opened.info.runs++;
    return planned.graph.outputNames.map((name) => {
      const data = results[name]?.data;
      if (!(data instanceof Float32Array)) throw new MurmurError('BACKEND', `the graph did not return its output ${name} as f32`);
      return data;
    });
  }

  function releaseSessions(): void {
    for (const sessions of graphs.values()) {
      if (sessions.shared) release(sessions.shared);
      for (const opened of sessions.bySize.values()) release(opened);
    }
    graphs.clear();
  }

  const ops = createOnnxOps(execute, { layout, staticShapes: options.staticShapes ?? false });
  return {
    name: 'webnn',
    ops,
    layout,
    get provider() {
      return compiled[compiled.length - 1]?.provider;
    },
    sessions: compiled,
    reasons,
    async prepareWeights(dims, weights) {
      const owner = nextOwner++;
      return mapWeights(dims, weights, (tensor, slot): OnnxWeight => ({ name: slot.name, dims: [...tensor.shape], data: initializerValues(tensor), owner }));
    },
    releaseWeights() {
      // Each session holds the initializers it was built with: the weights' sessions go with them.
      releaseSessions();
    },
    dispose() {
      disposed = true;
      releaseSessions();
    },
  };
}
