/**
 * The WebGPU backend: every op of WhisperOps as our WGSL kernels, nothing on the CPU but the
 * bookkeeping. Ops are recorded into one command encoder as they are called and submitted only
 * when a value must come back (`read`): an encoder pass, or a decoder step with its logits, is one
 * submission. Activations come from a BufferPool, so consecutive windows reuse the same memory;
 * weights are uploaded once by prepareWeights (linear layers padded for the matmul kernels, ggml
 * block-quantized ones kept quantized for the kernel that widens them in place, the rest as f32
 * buffers).
 *
 * GPU validation, out-of-memory and internal errors are caught by error scopes around each
 * recording and reported by the `read` that submits it (or the next one) as a GpuKernelError
 * naming the recorded ops; a lost device fails the call in flight and every later one with a
 * GpuDeviceLostError.
 */
import { MurmurError } from '../core/errors.ts';
import { decodeRows, decodeTensor, DTYPE_LAYOUT } from '../core/model/dtype.ts';
import { GPU_TILE_K, GPU_TILE_N, packGpuTiles, packGpuTilesQ8 } from '../core/layout/gpu-tiles.ts';
import type { WhisperDims } from '../core/model/dims.ts';
import type { AttentionKeyValues, AttentionOptions, AttentionResult, Conv1dOptions, Epilogue, TokenSelection, TokenSelectionRequest, WhisperBackend, WhisperOps } from '../core/model/ops.ts';
import { checkSelectionRequest } from '../core/decoding/select-tokens.ts';
import { elementCount, weightSlots, type LayerNormWeights, type LinearWeights, type WeightTensor, type WhisperWeights } from '../core/model/weights.ts';
import { recordAttention } from './attention.ts';
import { BufferPool, type BufferPoolStats } from './buffer-pool.ts';
import { cacheWritePairs, recordCopyRows, recordFill } from './cache.ts';
import { convOutputFrames, recordConv1d } from './conv.ts';
import { GpuKernelError, requestGpuDevice } from './device.ts';
import { applyAdapterVariants, deviceAdapterFacts, kernelVariants, setKernelVariants, type KernelVariants } from './variants.ts';
import { autotuneKernels, autotuneShapes, defaultVariantStore, restoreTunedVariants, type VariantStore } from './autotune.ts';
import { isSplitLinear, recordLinearLayer, recordSplitLinear, type GpuBackendLinear, type GpuLinearChunk, type GpuLinearLayer } from './linear-layers.ts';
import { uploadTiledLinear } from './matmul-tiled-weights.ts';
import { recordAddPositionalEmbedding, recordEmbed } from './embedding.ts';
import { recordLayerNorm } from './layernorm.ts';
import { logitsResultWords, parseLogitsResults, recordLogits } from './logits.ts';
import { uploadLinearWeights, WEIGHT_K_ALIGNMENT, WEIGHT_N_ALIGNMENT, type GpuLinearWeights, type MatmulWeightDType } from './matmul.ts';
import { isQuantizedDType, QUANT_BLOCK, QUANT_TILE_N, uploadQuantizedWeights } from './matmul-quant.ts';
import { OpProfiler, type PassTimestamps, type ProfileRow, type ProfileTiming } from './profile.ts';
import { shapeError, temporaryBuffer, type GpuRecording } from './wgsl-common.ts';

export { formatProfileTable, type ProfileRow } from './profile.ts';

/** The GPU device was lost (destroyed, reset, driver crash) while or before an op ran. */
export class GpuDeviceLostError extends MurmurError {
  readonly reason: string;
  constructor(what: string, info: { reason: string; message: string }) {
    super('GPU_DEVICE_LOST', `${what}: the GPU device was lost (${info.reason}${info.message ? `: ${info.message.trim()}` : ''})`);
    this.reason = info.reason;
  }
}

/** A weight cannot be put on this device: it is larger than one storage binding may be. */
export class GpuWeightTooLargeError extends GpuKernelError {
  readonly tensor: string;
  constructor(tensor: string, problem: string) {
    super('prepareWeights', `tensor "${tensor}" ${problem}`);
    this.tensor = tensor;
  }
}

/** An activation on the GPU: [rows, cols] f32, row-major, in a pooled buffer. */
export class GpuTensor {
  #buffer: GPUBuffer | undefined;
  readonly rows: number;
  readonly cols: number;

  constructor(buffer: GPUBuffer, rows: number, cols: number) {
    this.#buffer = buffer;
    this.rows = rows;
    this.cols = cols;
  }

  get buffer(): GPUBuffer {
    if (!this.#buffer) throw new MurmurError('RELEASED', `a [${this.rows}, ${this.cols}] GPU tensor was used after release()`);
    return this.#buffer;
  }

  get released(): boolean {
    return this.#buffer === undefined;
  }

  /** Hands the buffer back (to the pool) and makes further use an error. */
  detach(): GPUBuffer {
    const buffer = this.buffer;
    this.#buffer = undefined;
    return buffer;
  }
}

/** Rows [firstRow, firstRow + rows) of a table split across bindings. */
export interface GpuTableChunk {
  readonly firstRow: number;
  readonly rows: number;
  readonly buffer: GPUBuffer;
}

/**
 * A weight on the GPU. Linear weights carry their matmul form (with the layer's bias fused in,
 * so the bias handle itself holds nothing), split into row chunks when larger than one binding;
 * convolution weights, layer-norm parameters and embedding tables carry their values as f32.
 * The tied token embedding has both, sharing buffers when the padded f32 matrix is also a plain
 * table, and its table in chunks (tableChunks, not values) when split.
 */
export class GpuWeight {
  readonly name: string;
  readonly shape: readonly number[];
  values: GPUBuffer | undefined;
  tableChunks: readonly GpuTableChunk[] | undefined;
  linear: GpuBackendLinear | undefined;
  /** For a bias: the weight whose linear layer holds it. */
  fusedInto: GpuWeight | undefined;

  constructor(name: string, shape: readonly number[]) {
    this.name = name;
    this.shape = shape;
  }

  destroy(): void {
    // The tied embedding's table may share its linear layer's buffers; destroying a buffer twice is harmless.
    this.linear?.destroy();
    this.values?.destroy();
    for (const chunk of this.tableChunks ?? []) chunk.buffer.destroy();
    this.values = undefined;
    this.tableChunks = undefined;
    this.linear = undefined;
  }
}

export interface WebGpuBackendOptions {
  /** Use this device (the backend leaves it alive on dispose); otherwise one is requested. */
  device?: GPUDevice;
  /** Where to request the device from: navigator.gpu by default; in Node, `create([])` from the 'webgpu' package. */
  gpu?: GPU;
  /** Time every op (see profile.ts); `backend.profile()` returns the totals. */
  profile?: boolean;
  /**
   * How profiled ops are timed: timestamp queries ('gpu', the default when the device has
   * "timestamp-query") or CPU time around one submission per op ('cpu').
   */
  profileTiming?: ProfileTiming;
  /**
   * How linear weights are stored: 'row-major' (the default; f16 stays f16 where the device has
   * shader-f16, ggml blocks stay quantized) or 'blocked': GPU tile-major (64 × 32 tiles) for
   * the tile-major kernel, f32 and f16 weights as f32 tiles (that kernel reads no f16), q8_0 as
   * q8_0 tiles; the other ggml types (q4_0, q4_1, q5_0, q5_1) keep their row-major blocks.
   */
  layout?: WeightLayout;
  /** Kernel variants to run, pinned: no guess from the adapter, no tuning (they apply to the whole device). */
  variants?: KernelVariants;
  /**
   * Tune the kernel variants once the model's dims are known (prepareWeights): restore what
   * `store` kept for this adapter and shapes, or measure within `budgetMs` (default 1000) and save.
   * `store` defaults to defaultVariantStore() (IndexedDB, or a file in Node); null keeps results in memory only.
   */
  autotune?: { store?: VariantStore | null; budgetMs?: number };
  /**
   * Plan weights as if a storage binding held at most this many bytes (below the device's own
   * limit; for tests): larger linear weights are split into row chunks.
   */
  maxBindingBytes?: number;
}

export type WeightLayout = 'row-major' | 'blocked';

/** Where the backend's kernel variants came from, and what choosing them cost. */
export interface BackendTuning {
  /** 'pinned': options.variants; 'cache': a tuned result restored (memory or store); 'tuned': measured now; 'default': the adapter's guess. */
  source: 'pinned' | 'cache' | 'tuned' | 'default';
  /** Time spent measuring (0 unless 'tuned'). */
  spentMs: number;
  /** Micro-benchmarks run (0 unless 'tuned'). */
  measured: number;
  /** Candidates the budget left unmeasured. */
  skipped: { op: string; variant: string }[];
}

export interface WebGpuBackendStats {
  /** Command buffers submitted so far. */
  submissions: number;
  /** The activation pool: its high-water mark must stop growing after the first window. */
  pool: BufferPoolStats;
  /** Bytes copied back to the host so far (read and selectTokens). */
  bytesRead: number;
  /** Linear-layer dispatches so far by kernel ('matmul', 'quantizedMatmul', 'tiledWeightsMatmul'), a split layer counting one per chunk. */
  linearKernels: Record<string, number>;
}

export interface WebGpuBackend extends WhisperBackend<GpuTensor, GpuWeight> {
  readonly device: GPUDevice;
  readonly layout: WeightLayout;
  /** The kernel variants this device runs now. */
  readonly variants: Readonly<KernelVariants>;
  readonly tuning: Readonly<BackendTuning>;
  stats(): WebGpuBackendStats;
  /** Per-op totals since creation (or resetProfile), once in-flight timings are back; empty unless profiling. */
  profile(): Promise<ProfileRow[]>;
  resetProfile(): void;
}

/** Op names that move data to or from the host rather than run kernels of their own. */
export const HOST_OPS = ['read', 'shape', 'release'] as const;

const ERROR_FILTERS: GPUErrorFilter[] = ['validation', 'out-of-memory', 'internal'];

interface ActiveRecording {
  readonly recording: GpuRecording;
  /** The real encoder (recording.encoder may be a timing wrapper around it). */
  readonly encoder: GPUCommandEncoder;
  readonly stamps: PassTimestamps | undefined;
  /** Op name → calls recorded, for error messages. */
  readonly ops: Map<string, number>;
  passes: number;
}

/**
 * Stands in for the recording's encoder so every compute pass a kernel begins is counted and,
 * when profiling with timestamps, gets its begin/end timestamp writes. Kernels only begin
 * compute passes on the encoder; copies go to the real one.
 */
class PassCountingEncoder {
  constructor(
    private readonly inner: GPUCommandEncoder,
    private readonly onPass: () => GPUComputePassTimestampWrites | undefined,
  ) {}

  get label(): string {
    return this.inner.label;
  }

  beginComputePass(descriptor?: GPUComputePassDescriptor): GPUComputePassEncoder {
    const timestampWrites = this.onPass();
    return this.inner.beginComputePass(timestampWrites ? { ...descriptor, timestampWrites } : descriptor);
  }

  finish(descriptor?: GPUCommandBufferDescriptor): GPUCommandBuffer {
    return this.inner.finish(descriptor);
  }
}

export async function createWebGpuBackend(options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  const device = options.device ?? (await requestGpuDevice({ gpu: options.gpu })).device;
  if (options.maxBindingBytes !== undefined && !(Number.isSafeInteger(options.maxBindingBytes) && options.maxBindingBytes > 0)) {
    throw new MurmurError('BAD_OPTION', `createWebGpuBackend: maxBindingBytes must be a positive integer, got ${options.maxBindingBytes}`);
  }
  if (options.layout !== undefined && options.layout !== 'row-major' && options.layout !== 'blocked') {
    throw new MurmurError('BAD_OPTION', `createWebGpuBackend: layout must be 'row-major' or 'blocked', got ${String(options.layout)}`);
  }
  // Pinned variants, or those for the adapter (CPU emulations get barrier-free kernels) unless some were set or tuned already.
  if (options.variants) setKernelVariants(device, options.variants);
  else applyAdapterVariants(device);
  return new WebGpuBackendImpl(device, options.device === undefined, options);
}

class WebGpuBackendImpl implements WebGpuBackend {
  readonly name = 'webgpu';
  readonly device: GPUDevice;
  readonly layout: WeightLayout;
  #tuning: BackendTuning;

  get reasons(): readonly string[] {
    return this.layout === 'blocked'
      ? ['layout blocked: linear weights in GPU tiles (64 × 32) for the tile-major kernel; f16 is held as f32 tiles, q8_0 as q8_0 tiles, the other ggml types keep their row-major blocks']
      : [];
  }

  readonly #options: WebGpuBackendOptions;
  readonly #linearKernels = new Map<string, number>();
  readonly ops: WhisperOps<GpuTensor, GpuWeight>;
  readonly #ownsDevice: boolean;
  readonly #pool: BufferPool;
  readonly #profiler: OpProfiler | undefined;
  readonly #prepared = new WeakMap<WhisperWeights<GpuWeight>, GpuWeight[]>();
  #active: ActiveRecording | undefined;
  #currentOp = '';
  /** Error checks of submitted recordings, awaited (and reported) by the next read. */
  #checks: Promise<void>[] = [];
  #submissions = 0;
  #bytesRead = 0;
  /** The suppression bitset selectTokens was last given, and its copy on the GPU. */
  #suppress: { words: Uint32Array; buffer: GPUBuffer } | undefined;
  #lost: { reason: string; message: string } | undefined;
  readonly #lostPromise: Promise<{ reason: string; message: string }>;
  #disposed = false;

  constructor(device: GPUDevice, ownsDevice: boolean, options: WebGpuBackendOptions) {
    this.device = device;
    this.layout = options.layout ?? 'row-major';
    this.#options = options;
    this.#tuning = { source: options.variants ? 'pinned' : 'default', spentMs: 0, measured: 0, skipped: [] };
    this.#ownsDevice = ownsDevice;
    this.#pool = new BufferPool(device);
    if (options.profile) {
      const timing = options.profileTiming ?? (device.features.has('timestamp-query') ? 'gpu' : 'cpu');
      if (timing === 'gpu' && !device.features.has('timestamp-query')) {
        throw new GpuKernelError('profile', 'GPU timing needs a device created with the "timestamp-query" feature');
      }
      this.#profiler = new OpProfiler(device, timing);
    }
    this.#lostPromise = device.lost.then((info) => {
      const lost = { reason: String(info.reason), message: info.message };
      this.#lost = lost;
      return lost;
    });
    this.#lostPromise.catch(() => {});
    this.ops = this.#createOps();
  }

  get variants(): Readonly<KernelVariants> {
    return kernelVariants(this.device);
  }

  get tuning(): Readonly<BackendTuning> {
    return this.#tuning;
  }

  stats(): WebGpuBackendStats {
    return { submissions: this.#submissions, pool: this.#pool.stats(), bytesRead: this.#bytesRead, linearKernels: Object.fromEntries(this.#linearKernels) };
  }

  #countKernels(kernels: readonly string[]): void {
    for (const kernel of kernels) this.#linearKernels.set(kernel, (this.#linearKernels.get(kernel) ?? 0) + 1);
  }

  /** Restores or measures the variants for these dims (options.autotune), unless they are pinned. */
  async #tune(dims: WhisperDims): Promise<void> {
    const autotune = this.#options.autotune;
    if (!autotune || this.#options.variants) return;
    const shapes = autotuneShapes(dims);
    const store = autotune.store === null ? undefined : (autotune.store ?? defaultVariantStore());
    const restored = store ? await restoreTunedVariants(store, deviceAdapterFacts(this.device), shapes) : undefined;
    if (restored) {
      setKernelVariants(this.device, restored);
      this.#tuning = { source: 'cache', spentMs: 0, measured: 0, skipped: [] };
      return;
    }
    const result = await autotuneKernels(this.device, shapes, { budgetMs: autotune.budgetMs, store });
    this.#tuning = result.cached
      ? { source: 'cache', spentMs: 0, measured: 0, skipped: [] }
      : { source: 'tuned', spentMs: result.spentMs, measured: result.timings.length, skipped: result.skipped };
  }

  async profile(): Promise<ProfileRow[]> {
    return this.#profiler ? this.#profiler.rows() : [];
  }

  resetProfile(): void {
    this.#profiler?.reset();
  }

  async prepareWeights(dims: WhisperDims, weights: WhisperWeights<WeightTensor>): Promise<WhisperWeights<GpuWeight>> {
    this.#usable('prepareWeights');
    await this.#tune(dims);
    const names = new Map<WeightTensor, string>();
    for (const slot of weightSlots(dims)) {
      const tensor = slot.get(weights);
      if (tensor) names.set(tensor, slot.name);
    }
    const limits = this.device.limits;
    const bindingLimit = Math.min(limits.maxStorageBufferBindingSize, this.#options.maxBindingBytes ?? Infinity);
    const planner = new WeightPlanner(this.device, names, this.layout, {
      bytes: Math.min(bindingLimit, limits.maxBufferSize),
      name:
        limits.maxBufferSize < bindingLimit
          ? `maxBufferSize (${limits.maxBufferSize} bytes)`
          : this.#options.maxBindingBytes !== undefined && this.#options.maxBindingBytes < limits.maxStorageBufferBindingSize
            ? `maxBindingBytes option (${bindingLimit} bytes)`
            : `maxStorageBufferBindingSize (${bindingLimit} bytes)`,
    });
    const prepared = planner.model(weights);
    planner.checkLimits();
    // Every tensor fits: upload them, inside error scopes so running out of memory is reported.
    for (const filter of ERROR_FILTERS) this.device.pushErrorScope(filter);
    let thrown: unknown;
    try {
      planner.upload();
    } catch (error) {
      thrown = error;
    }
    const errors = await Promise.all(ERROR_FILTERS.map(() => this.device.popErrorScope()));
    const gpuError = errors.find((error) => error !== null);
    if (thrown !== undefined || gpuError) {
      planner.destroy();
      if (thrown !== undefined) throw thrown;
      throw new GpuKernelError('prepareWeights', `uploading the weights failed: ${gpuError!.message.trim()}`, { cause: gpuError });
    }
    this.#prepared.set(prepared, planner.weights);
    return prepared;
  }

  releaseWeights(weights: WhisperWeights<GpuWeight>): void {
    const list = this.#prepared.get(weights);
    if (!list) return;
    // Work already recorded may still read them: submit it first (destroy waits for submitted work).
    this.#flush();
    for (const weight of list) weight.destroy();
    this.#prepared.delete(weights);
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#active) {
      // Nothing will read what was recorded: drop it unsubmitted.
      this.#active = undefined;
      for (const _ of ERROR_FILTERS) this.device.popErrorScope().catch(() => {});
    }
    this.#pool.destroy();
    this.#suppress?.buffer.destroy();
    this.#suppress = undefined;
    this.#profiler?.destroy();
    if (this.#ownsDevice) this.device.destroy();
  }

  /** Throws when the backend can no longer run anything. */
  #usable(what: string): void {
    if (this.#lost) throw new GpuDeviceLostError(what, this.#lost);
    if (this.#disposed) throw new MurmurError('DISPOSED', `${what}: the WebGPU backend was disposed`);
  }

  /** The open recording, begun (inside fresh error scopes) if there is none. */
  #recording(): ActiveRecording {
    if (this.#active) return this.#active;
    for (const filter of ERROR_FILTERS) this.device.pushErrorScope(filter);
    const encoder = this.device.createCommandEncoder({ label: 'murmur webgpu backend' });
    const profiler = this.#profiler;
    const stamps = profiler?.timing === 'gpu' ? profiler.beginTimestamps() : undefined;
    const active: ActiveRecording = {
      encoder,
      stamps,
      ops: new Map(),
      passes: 0,
      recording: {
        device: this.device,
        temporaries: [],
        encoder: new PassCountingEncoder(encoder, () => {
          active.passes++;
          return stamps && profiler ? profiler.passTimestamps(stamps, this.#currentOp) : undefined;
        }) as unknown as GPUCommandEncoder,
      },
    };
    this.#active = active;
    return active;
  }

  /** Runs one op's recording; with CPU profiling, each op is its own timed submission. */
  #run<R>(op: string, record: (recording: GpuRecording, active: ActiveRecording) => R): R {
    this.#usable(op);
    const active = this.#recording();
    this.#currentOp = op;
    active.ops.set(op, (active.ops.get(op) ?? 0) + 1);
    this.#profiler?.countCall(op);
    const passesBefore = active.passes;
    const result = record(active.recording, active);
    if (this.#profiler?.timing === 'cpu' && op !== 'read') {
      const submittedAt = performance.now();
      this.#flush();
      this.#profiler.timeSubmission(op, active.passes - passesBefore, submittedAt);
    }
    return result;
  }

  /** Submits the open recording, if any; its GPU errors are checked by the next read. */
  #flush(): void {
    const active = this.#active;
    if (!active) return;
    this.#active = undefined;
    const afterSubmit = active.stamps ? this.#profiler!.resolveTimestamps(active.encoder, active.stamps) : undefined;
    let submitError: unknown;
    try {
      this.device.queue.submit([active.encoder.finish()]);
      this.#submissions++;
    } catch (error) {
      submitError = error;
    }
    for (const buffer of active.recording.temporaries) buffer.destroy();
    afterSubmit?.();
    const scopes = ERROR_FILTERS.map(() => this.device.popErrorScope());
    const ops = [...active.ops].map(([op, calls]) => (calls > 1 ? `${op} ×${calls}` : op)).join(', ');
    const check = Promise.all(scopes).then(
      (errors) => {
        const gpuError = errors.find((error) => error !== null);
        if (gpuError) throw new GpuKernelError('webgpu backend', `${gpuError.message.trim()} (in a submission of: ${ops})`, { cause: gpuError });
        if (submitError !== undefined) throw new GpuKernelError('webgpu backend', `submit failed: ${String(submitError)} (ops: ${ops})`, { cause: submitError });
      },
      (cause: unknown) => {
        if (this.#lost) throw new GpuDeviceLostError(ops, this.#lost);
        throw new GpuKernelError('webgpu backend', `checking for errors failed: ${String(cause)}`, { cause });
      },
    );
    check.catch(() => {}); // reported by the next read
    this.#checks.push(check);
  }

  /** Awaits the error checks of everything submitted so far, throwing the first failure. */
  async #checkSubmitted(): Promise<void> {
    const checks = this.#checks;
    this.#checks = [];
    await Promise.all(checks);
  }

  async #read(x: GpuTensor): Promise<Float32Array> {
    const started = performance.now();
    const bytes = x.rows * x.cols * 4;
    const staging = this.#run('read', (_recording, active) => this.#stage(active, x.buffer, bytes));
    return new Float32Array(await this.#readStaged('read', staging, bytes, started));
  }

  /** Records a copy of `bytes` of `source` into a new mappable buffer. */
  #stage(active: ActiveRecording, source: GPUBuffer, bytes: number): GPUBuffer {
    const buffer = this.device.createBuffer({ label: 'read', size: Math.max(bytes, 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    if (bytes > 0) active.encoder.copyBufferToBuffer(source, 0, buffer, 0, bytes);
    return buffer;
  }

  /** Submits what is recorded, waits for the staged copy and returns its bytes (the wait is profiled as 'read'). */
  async #readStaged(op: string, staging: GPUBuffer, bytes: number, started: number): Promise<ArrayBuffer> {
    this.#flush();
    try {
      await this.#checkSubmitted();
      const lost = this.#lostPromise.then((info) => {
        throw new GpuDeviceLostError(op, info);
      });
      try {
        await Promise.race([staging.mapAsync(GPUMapMode.READ), lost]);
      } catch (error) {
        if (error instanceof MurmurError) throw error;
        // Mapping is aborted when the device goes away; the lost promise may settle just after.
        await Promise.race([lost, new Promise((resolve) => setTimeout(resolve, 100))]);
        if (this.#lost) throw new GpuDeviceLostError(op, this.#lost);
        throw new GpuKernelError(op, `mapping the result failed: ${String(error)}`, { cause: error });
      }
      const values = staging.getMappedRange(0, bytes).slice(0);
      staging.unmap();
      this.#bytesRead += bytes;
      this.#profiler?.addCpuTime('read', performance.now() - started);
      return values;
    } finally {
      staging.destroy();
    }
  }

  /** The GPU copy of a suppression bitset; uploaded again only when the bits change (once per window). */
  #suppressBuffer(words: Uint32Array): GPUBuffer {
    const cached = this.#suppress;
    if (cached && cached.words.length === words.length && cached.words.every((word, i) => word === words[i])) return cached.buffer;
    // Only submitted work can still use the old copy (selectTokens submits at once): destroy waits for it.
    cached?.buffer.destroy();
    const buffer = this.device.createBuffer({ label: 'suppressed tokens', size: Math.max(16, Math.ceil(words.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    this.device.queue.writeBuffer(buffer, 0, words.buffer, words.byteOffset, words.byteLength);
    this.#suppress = { words: words.slice(), buffer };
    return buffer;
  }

  async #selectTokens(x: GpuTensor, request: TokenSelectionRequest): Promise<TokenSelection[]> {
    const started = performance.now();
    checkSelectionRequest(request, x.rows, x.cols);
    const { topK, gather = [] } = request;
    const words = x.rows * logitsResultWords(topK, gather.length);
    const results = this.#tensor(words, 1);
    try {
      const staging = this.#run('selectTokens', (recording, active) => {
        recordLogits(recording, {
          logits: x.buffer,
          rows: x.rows,
          vocabulary: x.cols,
          topK,
          mask: request.suppress ? this.#suppressBuffer(request.suppress) : undefined,
          ranges: request.suppressRanges,
          timestampBegin: request.timestampBegin,
          gather,
          results: results.buffer,
        });
        return this.#stage(active, results.buffer, words * 4);
      });
      return parseLogitsResults(new Uint32Array(await this.#readStaged('selectTokens', staging, words * 4, started)), x.rows, topK, gather.length);
    } finally {
      // Later commands run after the copy in queue order, so the buffer may be reused at once.
      this.#pool.release(results.detach());
    }
  }

  #tensor(rows: number, cols: number): GpuTensor {
    return new GpuTensor(this.#pool.acquire(Math.max(rows * cols, 1) * 4), rows, cols);
  }

  /** A new output tensor filled by `record`; its buffer goes back to the pool if recording fails. */
  #output(rows: number, cols: number, record: (output: GpuTensor) => void): GpuTensor {
    const output = this.#tensor(rows, cols);
    try {
      record(output);
    } catch (error) {
      this.#pool.release(output.detach());
      throw error;
    }
    return output;
  }

  #createOps(): WhisperOps<GpuTensor, GpuWeight> {
    const run = <R>(op: string, record: (recording: GpuRecording, active: ActiveRecording) => R) => this.#run(op, record);
    const output = (rows: number, cols: number, record: (output: GpuTensor) => void) => this.#output(rows, cols, record);

    const upload = (values: Float32Array, rows: number, cols: number): GpuTensor => {
      if (!(values instanceof Float32Array) || values.length !== rows * cols || rows < 1 || cols < 1) {
        throw shapeError(`upload: ${values.length} values cannot be a [${rows}, ${cols}] tensor`);
      }
      return run('upload', (recording) =>
        output(rows, cols, (out) => {
          // A staging buffer and a recorded copy, not queue.writeBuffer: a host write would run
          // before commands recorded earlier that may still use this pooled buffer.
          const staging = temporaryBuffer(recording, 'upload', values.slice().buffer, 'storage');
          const count = rows * cols;
          recordCopyRows(recording, { kernel: 'upload', source: staging, sourceRows: 1, target: out.buffer, targetRows: 1, cols: count, pairs: [[0, 0]] });
        }),
      );
    };

    const zeros = (rows: number, cols: number): GpuTensor => {
      if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 1 || cols < 1) throw shapeError(`zeros: cannot make a [${rows}, ${cols}] tensor`);
      return run('zeros', (recording) => output(rows, cols, (out) => recordFill(recording, out.buffer, rows * cols, 0, 'zeros')));
    };

    const conv1d = (x: GpuTensor, w: LinearWeights<GpuWeight>, options: Conv1dOptions): GpuTensor => {
      const weight = valuesOf(w.weight, 'conv1d');
      const [outChannels, inChannels, kernel] = w.weight.shape as [number, number, number];
      if (w.weight.shape.length !== 3 || kernel !== 3) throw shapeError(`conv1d: weight ${w.weight.name} must be [out, in, 3], got [${w.weight.shape}]`);
      const channelsFirst = options.inputLayout === 'channels-first';
      const frames = channelsFirst ? x.cols : x.rows;
      const xChannels = channelsFirst ? x.rows : x.cols;
      if (xChannels !== inChannels) throw shapeError(`conv1d: input has ${xChannels} channels, weight ${w.weight.name} [${w.weight.shape}] expects ${inChannels}`);
      const bias = w.bias ? valuesOf(w.bias, 'conv1d') : undefined;
      const outFrames = convOutputFrames(frames, options.stride);
      return run('conv1d', (recording) =>
        output(outFrames, outChannels, (out) =>
          recordConv1d(recording, { ...options, x: x.buffer, frames, inChannels, outChannels, weight, bias, output: out.buffer }),
        ),
      );
    };

    const addPositionalEmbedding = (x: GpuTensor, table: GpuWeight): GpuTensor => {
      const tableRows = table.shape[0] ?? 0;
      if (table.shape[table.shape.length - 1] !== x.cols || tableRows < x.rows) {
        throw shapeError(`addPositionalEmbedding: ${table.name} [${table.shape}] cannot cover an input of [${x.rows}, ${x.cols}]`);
      }
      const values = valuesOf(table, 'addPositionalEmbedding');
      return run('addPositionalEmbedding', (recording) =>
        output(x.rows, x.cols, (out) => recordAddPositionalEmbedding(recording, { x: x.buffer, rows: x.rows, cols: x.cols, table: values, tableRows, output: out.buffer })),
      );
    };

    const layerNorm = (x: GpuTensor, w: LayerNormWeights<GpuWeight>): GpuTensor => {
      for (const p of [w.weight, w.bias]) {
        if (elementCount(p.shape) !== x.cols) throw shapeError(`layerNorm: ${p.name} [${p.shape}] on rows of ${x.cols}`);
      }
      const gamma = valuesOf(w.weight, 'layerNorm');
      const beta = valuesOf(w.bias, 'layerNorm');
      return run('layerNorm', (recording) =>
        output(x.rows, x.cols, (out) => recordLayerNorm(recording, { x: x.buffer, rows: x.rows, cols: x.cols, gamma, beta, output: out.buffer })),
      );
    };

    const linear = (x: GpuTensor, w: LinearWeights<GpuWeight>, epilogue: Epilogue<GpuTensor> = {}): GpuTensor => {
      const layer = w.weight.linear;
      if (!layer) throw shapeError(`linear: ${w.weight.name} [${w.weight.shape}] has no linear layer on the GPU (released, or not a linear weight)`);
      if (w.bias && w.bias.fusedInto !== w.weight) throw shapeError(`linear: bias ${w.bias.name} does not belong to ${w.weight.name}`);
      if (!w.bias && layer.hasBias) throw shapeError(`linear: ${w.weight.name} was prepared with a bias but is used without one`);
      if (x.cols !== layer.inFeatures) throw shapeError(`linear: input [${x.rows}, ${x.cols}] against weight ${w.weight.name} [${layer.outFeatures}, ${layer.inFeatures}]`);
      const residual = epilogue.residual;
      if (residual && (residual.rows !== x.rows || residual.cols !== layer.outFeatures)) {
        throw shapeError(`linear: residual [${residual.rows}, ${residual.cols}] does not match the output [${x.rows}, ${layer.outFeatures}]`);
      }
      return run('linear', (recording) =>
        output(x.rows, layer.outFeatures, (out) => {
          const args = { x: x.buffer, m: x.rows, output: out.buffer, gelu: epilogue.gelu, residual: residual?.buffer };
          if (!isSplitLinear(layer)) {
            this.#countKernels([recordLinearLayer(recording, { ...args, layer })]);
            return;
          }
          const scratch = (values: number) => this.#pool.acquire(Math.max(values, 1) * 4);
          this.#countKernels(recordSplitLinear(recording, { ...args, layer, scratch, release: (buffer) => this.#pool.release(buffer) }));
        }),
      );
    };

    const attention = (q: GpuTensor, kv: AttentionKeyValues<GpuTensor>, options: AttentionOptions): AttentionResult<GpuTensor> => {
      const { heads, sequences, causal, returnWeights } = options;
      const { capacity, length, shared } = kv;
      const queryRows = q.rows / sequences;
      if (!Number.isInteger(queryRows)) throw shapeError(`attention: ${q.rows} query rows do not split into ${sequences} sequences`);
      const storedRows = shared ? capacity : sequences * capacity;
      for (const [name, t] of [['key', kv.key], ['value', kv.value]] as const) {
        if (t.cols !== q.cols || t.rows < storedRows) throw shapeError(`attention: ${name} [${t.rows}, ${t.cols}] cannot hold ${storedRows} rows of ${q.cols}`);
      }
      if (length < 1 || length > capacity) throw shapeError(`attention: ${length} valid keys in a capacity of ${capacity}`);
      return run('attention', (recording) => {
        const weights = returnWeights ? this.#tensor(sequences * heads * queryRows, length) : undefined;
        try {
          const out = output(q.rows, q.cols, (o) =>
            recordAttention(recording, {
              q: q.buffer,
              rows: q.rows,
              cols: q.cols,
              heads,
              sequences,
              key: kv.key.buffer,
              value: kv.value.buffer,
              capacity,
              length,
              shared,
              causal,
              output: o.buffer,
              weights: weights?.buffer,
            }),
          );
          return { output: out, ...(weights ? { weights } : {}) };
        } catch (error) {
          if (weights) this.#pool.release(weights.detach());
          throw error;
        }
      });
    };

    const embed = (tokens: readonly number[], positions: readonly number[], tokenEmbedding: GpuWeight, positionalEmbedding: GpuWeight): GpuTensor => {
      const width = tokenEmbedding.shape[1] ?? 0;
      if (positionalEmbedding.shape[1] !== width) {
        throw shapeError(`embed: ${tokenEmbedding.name} rows of ${width} but ${positionalEmbedding.name} rows of ${positionalEmbedding.shape[1]}`);
      }
      const vocabulary = tokenEmbedding.shape[0]!;
      // A split table: one dispatch per chunk holding any of the tokens, each writing those tokens' rows.
      // The chunks cover the vocabulary, so none is chosen only for no tokens or bad ones: recordEmbed then refuses them.
      const chunks = tokenEmbedding.tableChunks;
      const used = chunks?.filter((chunk) => tokens.some((token) => token >= chunk.firstRow && token < chunk.firstRow + chunk.rows));
      const tables = chunks ? (used!.length > 0 ? used! : chunks.slice(0, 1)) : [{ firstRow: 0, rows: vocabulary, buffer: valuesOf(tokenEmbedding, 'embed') }];
      const positionTable = valuesOf(positionalEmbedding, 'embed');
      return run('embed', (recording) =>
        output(tokens.length, width, (out) => {
          for (const table of tables) {
            recordEmbed(recording, {
              tokens,
              positions,
              tokenEmbedding: table.buffer,
              vocabulary,
              ...(tokenEmbedding.tableChunks ? { tokenRows: { first: table.firstRow, count: table.rows } } : {}),
              positionalEmbedding: positionTable,
              contexts: positionalEmbedding.shape[0]!,
              width,
              output: out.buffer,
            });
          }
        }),
      );
    };

    const writeCache = (cache: GpuTensor, x: GpuTensor, options: { sequences: number; capacity: number; offset: number }): void => {
      const { sequences, capacity, offset } = options;
      const n = x.rows / sequences;
      if (!Number.isInteger(n) || x.cols !== cache.cols || cache.rows < sequences * capacity) {
        throw shapeError(`writeCache: [${x.rows}, ${x.cols}] into a cache [${cache.rows}, ${cache.cols}] of ${sequences} × ${capacity} rows`);
      }
      if (offset < 0 || offset + n > capacity) throw shapeError(`writeCache: rows ${offset}..${offset + n - 1} exceed the capacity of ${capacity}`);
      run('writeCache', (recording) =>
        recordCopyRows(recording, {
          kernel: 'writeCache',
          source: x.buffer,
          sourceRows: x.rows,
          target: cache.buffer,
          targetRows: cache.rows,
          cols: x.cols,
          pairs: cacheWritePairs(sequences, n, capacity, offset),
        }),
      );
    };

    const reorderCache = (cache: GpuTensor, order: readonly number[], options: { capacity: number; length: number }): void => {
      const { capacity, length } = options;
      const sequences = order.length;
      if (cache.rows < sequences * capacity || length > capacity) throw shapeError(`reorderCache: cache [${cache.rows}, ${cache.cols}] for ${sequences} × ${capacity} rows`);
      for (const from of order) {
        if (!Number.isInteger(from) || from < 0 || from >= sequences) throw shapeError(`reorderCache: sequence ${from} does not exist`);
      }
      if (length === 0 || order.every((from, s) => from === s)) return;
      run('reorderCache', (recording) => {
        // Through a scratch copy of the valid rows: a sequence may be read after its rows were overwritten.
        const scratch = this.#tensor(sequences * length, cache.cols);
        try {
          const keep: [number, number][] = [];
          const place: [number, number][] = [];
          for (let s = 0; s < sequences; s++) {
            for (let j = 0; j < length; j++) {
              keep.push([s * capacity + j, s * length + j]);
              place.push([order[s]! * length + j, s * capacity + j]);
            }
          }
          const common = { kernel: 'reorderCache', cols: cache.cols };
          recordCopyRows(recording, { ...common, source: cache.buffer, sourceRows: cache.rows, target: scratch.buffer, targetRows: scratch.rows, pairs: keep });
          recordCopyRows(recording, { ...common, source: scratch.buffer, sourceRows: scratch.rows, target: cache.buffer, targetRows: cache.rows, pairs: place });
        } finally {
          // Later commands run after these in queue order, so the scratch may be reused at once.
          this.#pool.release(scratch.detach());
        }
      });
    };

    const gatherRows = (x: GpuTensor, rows: readonly number[]): GpuTensor => {
      for (const row of rows) {
        if (!Number.isInteger(row) || row < 0 || row >= x.rows) throw shapeError(`gatherRows: row ${row} of a [${x.rows}, ${x.cols}] tensor`);
      }
      return run('gatherRows', (recording) =>
        output(rows.length, x.cols, (out) =>
          recordCopyRows(recording, {
            kernel: 'gatherRows',
            source: x.buffer,
            sourceRows: x.rows,
            target: out.buffer,
            targetRows: rows.length,
            cols: x.cols,
            pairs: rows.map((row, i) => [row, i] as const),
          }),
        ),
      );
    };

    return {
      upload,
      zeros,
      read: (x) => this.#read(x),
      selectTokens: (x, request) => this.#selectTokens(x, request),
      shape: (x) => [x.rows, x.cols],
      release: (x) => {
        if (x.released) throw new MurmurError('RELEASED', `a [${x.rows}, ${x.cols}] GPU tensor was released twice`);
        this.#pool.release(x.detach());
      },
      conv1d,
      addPositionalEmbedding,
      layerNorm,
      linear,
      attention,
      embed,
      writeCache,
      reorderCache,
      gatherRows,
    };
  }
}

function valuesOf(weight: GpuWeight, op: string): GPUBuffer {
  if (!weight.values) throw shapeError(`${op}: ${weight.name} [${weight.shape}] has no f32 values on the GPU (released, or prepared for another op)`);
  return weight.values;
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

/** How a linear weight is stored on the GPU (each form is one of the matmul kernels' inputs). */
type LinearForm = { kind: 'row-major'; dtype: MatmulWeightDType } | { kind: 'quantized' } | { kind: 'tiled'; format: 'f32' | 'q8_0' };

/** Weight rows are stored in groups of every kernel's N tile (all 64), so chunks split at multiples of it. */
const ROW_GROUP = Math.max(WEIGHT_N_ALIGNMENT, QUANT_TILE_N, GPU_TILE_N);

/** The largest buffer the planner may make, and the limit's name for error messages. */
interface BindingLimit {
  bytes: number;
  name: string;
}

/** Bytes one output row of W [n, k] takes in its stored form (padding of K included). */
function linearRowBytes(form: LinearForm, tensor: WeightTensor): number {
  const k = tensor.shape[1] ?? 0;
  switch (form.kind) {
    case 'row-major':
      return roundUp(k, WEIGHT_K_ALIGNMENT) * (form.dtype === 'f16' ? 2 : 4);
    case 'quantized':
      // Each block is repacked into whole u32 words (matmul-quant.ts).
      return (k / QUANT_BLOCK) * Math.ceil(DTYPE_LAYOUT[tensor.dtype].blockBytes / 4) * 4;
    case 'tiled':
      // q8_0: 32 quants in 8 words plus one scale word per row and block of 32.
      return form.format === 'f32' ? roundUp(k, GPU_TILE_K) * 4 : (roundUp(k, GPU_TILE_K) / 32) * 36;
  }
}

function describeForm(form: LinearForm, dtype: string): string {
  switch (form.kind) {
    case 'row-major':
      return `a padded ${form.dtype} matrix`;
    case 'quantized':
      return `${dtype} blocks`;
    case 'tiled':
      return `${form.format} tiles`;
  }
}

/** Rows [first, first + rows) of a 2-D tensor, in its own encoding (rows are whole blocks). */
function tensorRows(tensor: WeightTensor, first: number, rows: number): WeightTensor {
  const k = tensor.shape[1]!;
  const { blockValues, blockBytes } = DTYPE_LAYOUT[tensor.dtype];
  const rowBytes = (k / blockValues) * blockBytes;
  return { dtype: tensor.dtype, shape: [rows, k], bytes: tensor.bytes.subarray(first * rowBytes, (first + rows) * rowBytes) };
}

/**
 * Maps the weight schema to GpuWeights in two steps: first decide every buffer and its size (so
 * a tensor too large for the device is reported before anything is uploaded), then upload.
 * A linear weight (the tied token embedding included) larger than one binding is planned as row
 * chunks, each under the limit; what cannot be split is refused with GpuWeightTooLargeError:
 * the other tables (positional embeddings, convolutions, layer norms), and a linear weight of
 * which even ROW_GROUP rows exceed the limit.
 */
class WeightPlanner {
  readonly weights: GpuWeight[] = [];
  readonly #jobs: { weight: GpuWeight; bytes: number; what: string; run: () => void }[] = [];
  readonly #forms = new Map<GpuWeight, LinearForm>();

  constructor(
    private readonly device: GPUDevice,
    private readonly names: Map<WeightTensor, string>,
    private readonly layout: WeightLayout,
    private readonly limit: BindingLimit,
  ) {}

  model(w: WhisperWeights<WeightTensor>): WhisperWeights<GpuWeight> {
    const attention = (a: WhisperWeights<WeightTensor>['encoder']['blocks'][number]['attn']) => ({
      query: this.linear(a.query),
      key: this.linear(a.key),
      value: this.linear(a.value),
      out: this.linear(a.out),
    });
    const block = (b: WhisperWeights<WeightTensor>['encoder']['blocks'][number]) => ({
      attnLn: this.layerNorm(b.attnLn),
      attn: attention(b.attn),
      mlpLn: this.layerNorm(b.mlpLn),
      mlp: { fc1: this.linear(b.mlp.fc1), fc2: this.linear(b.mlp.fc2) },
    });
    const tokenEmbedding = this.linear({ weight: w.decoder.tokenEmbedding }).weight;
    this.#table(tokenEmbedding, w.decoder.tokenEmbedding);
    return {
      encoder: {
        conv1: this.conv(w.encoder.conv1),
        conv2: this.conv(w.encoder.conv2),
        positionalEmbedding: this.table(w.encoder.positionalEmbedding),
        blocks: w.encoder.blocks.map(block),
        lnPost: this.layerNorm(w.encoder.lnPost),
      },
      decoder: {
        tokenEmbedding,
        positionalEmbedding: this.table(w.decoder.positionalEmbedding),
        blocks: w.decoder.blocks.map((b) => ({ ...block(b), crossAttnLn: this.layerNorm(b.crossAttnLn), crossAttn: attention(b.crossAttn) })),
        ln: this.layerNorm(w.decoder.ln),
      },
    };
  }

  /** Refuses, naming the tensor, any buffer larger than one binding or one buffer may be (only unsplittable ones can be). */
  checkLimits(): void {
    for (const job of this.#jobs) {
      if (job.bytes > this.limit.bytes) {
        throw new GpuWeightTooLargeError(job.weight.name, `[${job.weight.shape}] needs ${job.bytes} bytes as ${job.what}, more than this device's ${this.limit.name}`);
      }
    }
  }

  upload(): void {
    for (const job of this.#jobs) job.run();
  }

  destroy(): void {
    for (const weight of this.weights) weight.destroy();
  }

  #weight(tensor: WeightTensor): GpuWeight {
    const weight = new GpuWeight(this.names.get(tensor) ?? `[${tensor.shape}] ${tensor.dtype}`, [...tensor.shape]);
    this.weights.push(weight);
    return weight;
  }

  /**
   * How a linear weight is stored. Row-major: ggml block types stay quantized (their kernel
   * widens them in place) when K is whole blocks; f16 stays f16 where the device computes in f16;
   * everything else is widened to f32, which represents it exactly. Blocked: q8_0 as q8_0 tiles,
   * the other ggml block types as in row-major (the tile-major kernel reads no other), the rest
   * as f32 tiles (it reads no f16 either).
   */
  #linearForm(tensor: WeightTensor): LinearForm {
    const k = tensor.shape[1] ?? 0;
    const wholeBlocks = k % QUANT_BLOCK === 0;
    if (this.layout === 'blocked') {
      if (tensor.dtype === 'q8_0' && wholeBlocks) return { kind: 'tiled', format: 'q8_0' };
      if (!isQuantizedDType(tensor.dtype)) return { kind: 'tiled', format: 'f32' };
    }
    if (isQuantizedDType(tensor.dtype) && wholeBlocks) return { kind: 'quantized' };
    return { kind: 'row-major', dtype: tensor.dtype === 'f16' && this.device.features.has('shader-f16') ? 'f16' : 'f32' };
  }

  /**
   * Rows per chunk for `rows` rows of `rowBytes` each stored in groups of `group`: all of them
   * when they fit one buffer, else the most whole groups that do.
   */
  #chunkRows(weight: GpuWeight, rows: number, rowBytes: number, group: number, what: string): number {
    if (roundUp(rows, group) * rowBytes <= this.limit.bytes) return rows;
    const chunkRows = Math.floor(this.limit.bytes / rowBytes / group) * group;
    if (chunkRows < group) {
      throw new GpuWeightTooLargeError(
        weight.name,
        `[${weight.shape}] cannot be split: ${group} of its rows need ${group * rowBytes} bytes as ${what}, more than this device's ${this.limit.name}`,
      );
    }
    return chunkRows;
  }

  /** Uploads rows [first, first + rows) of a linear weight in its form. */
  #uploadLayer(form: LinearForm, tensor: WeightTensor, first: number, rows: number, bias: Float32Array | undefined, label: string): GpuLinearLayer {
    const k = tensor.shape[1]!;
    const whole = first === 0 && rows === tensor.shape[0];
    if (form.kind === 'quantized') return uploadQuantizedWeights(this.device, whole ? tensor : tensorRows(tensor, first, rows), bias, label);
    if (form.kind === 'tiled' && form.format === 'q8_0') return uploadTiledLinear(this.device, packGpuTilesQ8(whole ? tensor : tensorRows(tensor, first, rows)), bias, label);
    const values = whole ? decodeTensor(tensor) : decodeRows(tensor, first, rows, new Float32Array(rows * k));
    if (form.kind === 'tiled') return uploadTiledLinear(this.device, packGpuTiles(values, rows, k), bias, label);
    return uploadLinearWeights(this.device, values, rows, k, bias, { dtype: form.dtype, label });
  }

  linear(lw: LinearWeights<WeightTensor>): LinearWeights<GpuWeight> {
    const tensor = lw.weight;
    const weight = this.#weight(tensor);
    if (tensor.shape.length !== 2) throw shapeError(`prepareWeights: linear weight ${weight.name} must be 2-D, got [${tensor.shape}]`);
    const [n, k] = tensor.shape as [number, number];
    const form = this.#linearForm(tensor);
    this.#forms.set(weight, form);
    const bias = lw.bias ? this.#weight(lw.bias) : undefined;
    if (bias) {
      bias.fusedInto = weight;
      if (elementCount(bias.shape) !== n) throw shapeError(`prepareWeights: bias ${bias.name} [${bias.shape}] for ${n} outputs of ${weight.name}`);
    }
    let biasValues: Float32Array | undefined;
    const biasRows = (first: number, rows: number) => {
      if (!lw.bias) return undefined;
      biasValues ??= decodeTensor(lw.bias);
      return rows === n ? biasValues : biasValues.subarray(first, first + rows);
    };
    const rowBytes = linearRowBytes(form, tensor);
    const what = describeForm(form, tensor.dtype);
    const chunkRows = this.#chunkRows(weight, n, rowBytes, ROW_GROUP, what);
    if (chunkRows >= n) {
      this.#jobs.push({ weight, bytes: roundUp(n, ROW_GROUP) * rowBytes, what, run: () => (weight.linear = this.#uploadLayer(form, tensor, 0, n, biasRows(0, n), weight.name)) });
      return { weight, ...(bias ? { bias } : {}) };
    }
    const chunks: GpuLinearChunk[] = [];
    weight.linear = {
      chunks,
      outFeatures: n,
      inFeatures: k,
      hasBias: lw.bias !== undefined,
      destroy() {
        for (const chunk of chunks) chunk.layer.destroy();
      },
    };
    for (let first = 0; first < n; first += chunkRows) {
      const rows = Math.min(chunkRows, n - first);
      this.#jobs.push({
        weight,
        bytes: roundUp(rows, ROW_GROUP) * rowBytes,
        what: `a chunk of ${what}`,
        run: () => {
          const layer = this.#uploadLayer(form, tensor, first, rows, biasRows(first, rows), `${weight.name} rows ${first}..${first + rows - 1}`);
          chunks.push({ firstRow: first, rows, layer });
        },
      });
    }
    return { weight, ...(bias ? { bias } : {}) };
  }

  /** An f32 table for a weight that is also a linear layer (the tied token embedding), in chunks if need be. */
  #table(weight: GpuWeight, tensor: WeightTensor): void {
    const [rows, cols] = tensor.shape as [number, number];
    const form = this.#forms.get(weight);
    // The padded f32 matrix is the table itself when its rows needed no padding: share its buffers.
    if (form?.kind === 'row-major' && form.dtype === 'f32' && cols % WEIGHT_K_ALIGNMENT === 0) {
      this.#jobs.push({
        weight,
        bytes: 0,
        what: 'an f32 table',
        run: () => {
          const layer = weight.linear!;
          if (isSplitLinear(layer)) weight.tableChunks = layer.chunks.map((chunk) => ({ firstRow: chunk.firstRow, rows: chunk.rows, buffer: (chunk.layer as GpuLinearWeights).weight }));
          else weight.values = (layer as GpuLinearWeights).weight;
        },
      });
      return;
    }
    const chunkRows = this.#chunkRows(weight, rows, cols * 4, 1, 'an f32 table');
    if (chunkRows >= rows) {
      this.#jobs.push({ weight, bytes: rows * cols * 4, what: 'an f32 table', run: () => (weight.values = this.#upload(weight.name, decodeTensor(tensor))) });
      return;
    }
    const chunks: GpuTableChunk[] = [];
    weight.tableChunks = chunks;
    for (let first = 0; first < rows; first += chunkRows) {
      const count = Math.min(chunkRows, rows - first);
      this.#jobs.push({
        weight,
        bytes: count * cols * 4,
        what: 'a chunk of an f32 table',
        run: () => chunks.push({ firstRow: first, rows: count, buffer: this.#upload(`${weight.name} table rows ${first}..${first + count - 1}`, decodeRows(tensor, first, count, new Float32Array(count * cols))) }),
      });
    }
  }

  table(tensor: WeightTensor): GpuWeight {
    const weight = this.#weight(tensor);
    this.#jobs.push({ weight, bytes: elementCount(tensor.shape) * 4, what: 'f32 values', run: () => (weight.values = this.#upload(weight.name, decodeTensor(tensor))) });
    return weight;
  }

  conv(lw: LinearWeights<WeightTensor>): LinearWeights<GpuWeight> {
    return { weight: this.table(lw.weight), ...(lw.bias ? { bias: this.table(lw.bias) } : {}) };
  }

  layerNorm(ln: LayerNormWeights<WeightTensor>): LayerNormWeights<GpuWeight> {
    return { weight: this.table(ln.weight), bias: this.table(ln.bias) };
  }

  #upload(label: string, values: Float32Array): GPUBuffer {
    const buffer = this.device.createBuffer({ label, size: Math.max(16, roundUp(values.byteLength, 16)), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    this.device.queue.writeBuffer(buffer, 0, values.buffer, values.byteOffset, values.byteLength);
    return buffer;
  }
}
