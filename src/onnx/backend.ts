/**
 * The 'webnn' backend: whisper.ts lowered to ONNX graphs in the page (trace-ops.ts), run by
 * onnxruntime-web. Each graph is compiled once per structure: WebNN is asked for first (NPU, then
 * GPU), and when a provider cannot take the graph the same ModelProto bytes go to the next, down to
 * onnxruntime's WebAssembly CPU provider. Which provider each session got, and why the ones before
 * it failed, is recorded in `sessions` (and `provider` names the latest).
 *
 * Weights become f32 initializers (ggml quantized, f16 and bf16 weights are widened once, at
 * prepareWeights), so a graph's bytes carry the weights it uses, and onnxruntime keeps its own copy
 * per session. Sessions: the encoder, the cross-attention K/V, and one decoder step per batch size
 * that serves every row count (the prompt and the one-token steps), so the decoder's weights are
 * held once per batch size (with `staticShapes`, once per step shape instead). Graphs are lowered
 * row-major or channels-first (`layout`); their inputs and outputs are row-major either way.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-web';
import type { WhisperBackend } from '../core/model/ops.ts';
import { mapWeights, type WeightTensor } from '../core/model/weights.ts';
import { decodeTensor } from '../core/model/dtype.ts';
import { MurmurError } from '../core/errors.ts';
import { DataType, encodeModel } from './onnx-schema.ts';
import { createOnnxOps, type OnnxLayout, type OnnxOps, type OnnxTensor, type OnnxWeight, type PlannedGraph } from './trace-ops.ts';

export type OrtModule = typeof import('onnxruntime-web');
export type ExecutionProvider = InferenceSession.ExecutionProviderConfig;

/** WebNN on an NPU, then on a GPU, then onnxruntime's WebAssembly CPU provider. */
export const DEFAULT_PROVIDERS: readonly ExecutionProvider[] = [{ name: 'webnn', deviceType: 'npu' }, { name: 'webnn', deviceType: 'gpu' }, 'wasm'];

export interface ProviderAttempt {
  /** e.g. 'webnn:npu', 'wasm'. */
  provider: string;
  /** Why session creation failed; absent for the provider that took the graph. */
  error?: string;
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
  runs: number;
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
}

export interface OnnxBackend extends WhisperBackend<OnnxTensor, OnnxWeight> {
  readonly ops: OnnxOps;
  /** The provider of the most recently compiled session; undefined before the first graph. */
  readonly provider: string | undefined;
  /** Every session compiled so far, in order. */
  readonly sessions: readonly CompiledSession[];
  readonly layout: OnnxLayout;
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

  interface Entry {
    session: Promise<InferenceSession>;
  }
  const cache = new Map<string, Entry>();
  const compiled: CompiledSession[] = [];
  const infoByKey = new Map<string, CompiledSession>();
  let disposed = false;

  async function compile(planned: PlannedGraph): Promise<InferenceSession> {
    const model = planned.graph.model(`murmur-${compiled.length}`);
    const bytes = encodeModel(model);
    const attempts: ProviderAttempt[] = [];
    for (const provider of providers) {
      const label = providerLabel(provider);
      try {
        const session = await ort.InferenceSession.create(bytes, { executionProviders: [provider], graphOptimizationLevel: 'all' });
        attempts.push({ provider: label });
        const info: CompiledSession = {
          ops: planned.ops,
          nodes: model.graph.node.length,
          opTypes: [...new Set(model.graph.node.map((n) => n.opType))].sort(),
          bytes: bytes.byteLength,
          weightBytes: planned.graph.weightBytes,
          provider: label,
          attempts,
          runs: 0,
        };
        compiled.push(info);
        infoByKey.set(planned.key, info);
        return session;
      } catch (error) {
        attempts.push({ provider: label, error: messageOf(error) });
      }
    }
    throw new MurmurError('BACKEND', `no execution provider could compile the graph: ${attempts.map((a) => `${a.provider}: ${a.error}`).join('; ')}`);
  }

  async function execute(planned: PlannedGraph): Promise<Float32Array[]> {
    if (disposed) throw new MurmurError('DISPOSED', 'the webnn backend was disposed');
    let entry = cache.get(planned.key);
    if (!entry) {
      entry = { session: compile(planned) };
      cache.set(planned.key, entry);
      // A graph no provider takes fails every time: keep the rejection, but do not report it unhandled here.
      entry.session.catch(() => {});
    }
    const session = await entry.session;
    const feeds: Record<string, Tensor> = {};
    for (const input of planned.graph.inputs) {
      const type = input.dataType === DataType.INT64 ? 'int64' : input.dataType === DataType.BOOL ? 'bool' : 'float32';
      feeds[input.name] = new ort.Tensor(type, input.data() as never, [...input.shape]);
    }
    const results = await session.run(feeds);
    const info = infoByKey.get(planned.key);
    if (info) info.runs++;
    return planned.graph.outputNames.map((name) => {
      const data = results[name]?.data;
      if (!(data instanceof Float32Array)) throw new MurmurError('BACKEND', `the graph did not return its output ${name} as f32`);
      return data;
    });
  }

  function releaseSessions(): void {
    for (const entry of cache.values()) entry.session.then((s) => s.release()).catch(() => {});
    cache.clear();
    infoByKey.clear();
  }

  const layout = options.layout ?? 'row-major';
  if (layout !== 'row-major' && layout !== 'channels-first') throw new MurmurError('BACKEND', `the webnn backend lowers 'row-major' or 'channels-first' graphs, not ${JSON.stringify(layout)}`);
  const ops = createOnnxOps(execute, { layout, staticShapes: options.staticShapes ?? false });
  return {
    name: 'webnn',
    ops,
    layout,
    get provider() {
      return compiled[compiled.length - 1]?.provider;
    },
    sessions: compiled,
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
