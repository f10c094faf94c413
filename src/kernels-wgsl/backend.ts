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
import { decodeTensor, DTYPE_LAYOUT } from '../core/model/dtype.ts';
import type { WhisperDims } from '../core/model/dims.ts';
import type { AttentionKeyValues, AttentionOptions, AttentionResult, Conv1dOptions, Epilogue, TokenSelection, TokenSelectionRequest, WhisperBackend, WhisperOps } from '../core/model/ops.ts';
import { checkSelectionRequest } from '../core/decoding/select-tokens.ts';
import { elementCount, weightSlots, type LayerNormWeights, type LinearWeights, type WeightTensor, type WhisperWeights } from '../core/model/weights.ts';
import { recordAttention } from './attention.ts';
import { BufferPool, type BufferPoolStats } from './buffer-pool.ts';
import { cacheWritePairs, recordCopyRows, recordFill } from './cache.ts';
import { convOutputFrames, recordConv1d } from './conv.ts';
import { GpuKernelError, requestGpuDevice } from './device.ts';
import { applyAdapterVariants } from './variants.ts';
import { recordAddPositionalEmbedding, recordEmbed } from './embedding.ts';
import { recordLayerNorm } from './layernorm.ts';
import { logitsResultWords, parseLogitsResults, recordLogits } from './logits.ts';
import { recordLinear, uploadLinearWeights, WEIGHT_K_ALIGNMENT, WEIGHT_N_ALIGNMENT, type GpuLinear, type GpuLinearWeights, type MatmulWeightDType } from './matmul.ts';
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

/**
 * A weight on the GPU. Linear weights carry their padded matmul form (with the layer's bias
 * fused in, so the bias handle itself holds nothing); convolution weights, layer-norm parameters
 * and embedding tables carry their values as f32. The tied token embedding has both, sharing one
 * buffer when the padded matrix is also a plain table.
 */
export class GpuWeight {
  readonly name: string;
  readonly shape: readonly number[];
  values: GPUBuffer | undefined;
  linear: GpuLinear | undefined;
  /** For a bias: the weight whose linear layer holds it. */
  fusedInto: GpuWeight | undefined;

  constructor(name: string, shape: readonly number[]) {
    this.name = name;
    this.shape = shape;
  }

  destroy(): void {
    // The tied embedding's table may be its linear layer's matrix: free that buffer once.
    const shared = this.linear !== undefined && 'weight' in this.linear && this.linear.weight === this.values;
    this.linear?.destroy();
    if (!shared) this.values?.destroy();
    this.values = undefined;
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
}

export interface WebGpuBackendStats {
  /** Command buffers submitted so far. */
  submissions: number;
  /** The activation pool: its high-water mark must stop growing after the first window. */
  pool: BufferPoolStats;
  /** Bytes copied back to the host so far (read and selectTokens). */
  bytesRead: number;
}

export interface WebGpuBackend extends WhisperBackend<GpuTensor, GpuWeight> {
  readonly device: GPUDevice;
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
  // Variants for the adapter (CPU emulations get barrier-free kernels) unless some were set or tuned already.
  applyAdapterVariants(device);
  return new WebGpuBackendImpl(device, options.device === undefined, options);
}

class WebGpuBackendImpl implements WebGpuBackend {
  readonly name = 'webgpu';
  readonly device: GPUDevice;
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

  stats(): WebGpuBackendStats {
    return { submissions: this.#submissions, pool: this.#pool.stats(), bytesRead: this.#bytesRead };
  }

  async profile(): Promise<ProfileRow[]> {
    return this.#profiler ? this.#profiler.rows() : [];
  }

  resetProfile(): void {
    this.#profiler?.reset();
  }

  async prepareWeights(dims: WhisperDims, weights: WhisperWeights<WeightTensor>): Promise<WhisperWeights<GpuWeight>> {
    this.#usable('prepareWeights');
    const names = new Map<WeightTensor, string>();
    for (const slot of weightSlots(dims)) {
      const tensor = slot.get(weights);
      if (tensor) names.set(tensor, slot.name);
    }
    const planner = new WeightPlanner(this.device, names);
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
        output(x.rows, layer.outFeatures, (out) =>
          recordLinear(recording, { x: x.buffer, m: x.rows, weights: layer, output: out.buffer, gelu: epilogue.gelu, residual: residual?.buffer }),
        ),
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
      const tokenTable = valuesOf(tokenEmbedding, 'embed');
      const positionTable = valuesOf(positionalEmbedding, 'embed');
      return run('embed', (recording) =>
        output(tokens.length, width, (out) =>
          recordEmbed(recording, {
            tokens,
            positions,
            tokenEmbedding: tokenTable,
            vocabulary: tokenEmbedding.shape[0]!,
            positionalEmbedding: positionTable,
            contexts: positionalEmbedding.shape[0]!,
            width,
            output: out.buffer,
          }),
        ),
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

/**
 * Maps the weight schema to GpuWeights in two steps: first decide every buffer and its size (so
 * a tensor too large for the device is reported before anything is uploaded), then upload.
 */
class WeightPlanner {
  readonly weights: GpuWeight[] = [];
  readonly #jobs: { weight: GpuWeight; bytes: number; what: string; run: () => void }[] = [];

  constructor(
    private readonly device: GPUDevice,
    private readonly names: Map<WeightTensor, string>,
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

  /** Refuses, naming the tensor, any buffer larger than one binding or one buffer may be. */
  checkLimits(): void {
    const binding = this.device.limits.maxStorageBufferBindingSize;
    const buffer = this.device.limits.maxBufferSize;
    for (const job of this.#jobs) {
      const limit = Math.min(binding, buffer);
      if (job.bytes > limit) {
        const which = binding <= buffer ? `maxStorageBufferBindingSize (${binding} bytes)` : `maxBufferSize (${buffer} bytes)`;
        throw new GpuWeightTooLargeError(job.weight.name, `[${job.weight.shape}] needs ${job.bytes} bytes as ${job.what}, more than this device's ${which}`);
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
   * How a linear weight is stored: ggml block types stay quantized (their kernel widens them in
   * place) when K is whole blocks; f16 stays f16 where the device computes in f16 (halving memory
   * and bandwidth); everything else is widened to f32, which represents it exactly.
   */
  #linearStorage(tensor: WeightTensor): MatmulWeightDType | 'quantized' {
    if (isQuantizedDType(tensor.dtype) && (tensor.shape[1] ?? 0) % QUANT_BLOCK === 0) return 'quantized';
    return tensor.dtype === 'f16' && this.device.features.has('shader-f16') ? 'f16' : 'f32';
  }

  linear(lw: LinearWeights<WeightTensor>): LinearWeights<GpuWeight> {
    const tensor = lw.weight;
    const weight = this.#weight(tensor);
    if (tensor.shape.length !== 2) throw shapeError(`prepareWeights: linear weight ${weight.name} must be 2-D, got [${tensor.shape}]`);
    const [n, k] = tensor.shape as [number, number];
    const storage = this.#linearStorage(tensor);
    const bias = lw.bias ? this.#weight(lw.bias) : undefined;
    if (bias) {
      bias.fusedInto = weight;
      if (elementCount(bias.shape) !== n) throw shapeError(`prepareWeights: bias ${bias.name} [${bias.shape}] for ${n} outputs of ${weight.name}`);
    }
    const biasValues = () => (lw.bias ? decodeTensor(lw.bias) : undefined);
    if (storage === 'quantized') {
      // Each block is repacked into whole u32 words (matmul-quant.ts).
      const blockWords = Math.ceil(DTYPE_LAYOUT[tensor.dtype].blockBytes / 4);
      this.#jobs.push({
        weight,
        bytes: roundUp(n, QUANT_TILE_N) * (k / QUANT_BLOCK) * blockWords * 4,
        what: `${tensor.dtype} blocks`,
        run: () => {
          weight.linear = uploadQuantizedWeights(this.device, tensor, biasValues(), weight.name);
        },
      });
    } else {
      this.#jobs.push({
        weight,
        bytes: roundUp(n, WEIGHT_N_ALIGNMENT) * roundUp(k, WEIGHT_K_ALIGNMENT) * (storage === 'f16' ? 2 : 4),
        what: `a padded ${storage} matrix`,
        run: () => {
          weight.linear = uploadLinearWeights(this.device, decodeTensor(tensor), n, k, biasValues(), { dtype: storage, label: weight.name });
        },
      });
    }
    return { weight, ...(bias ? { bias } : {}) };
  }

  /** An f32 table for a weight that is also a linear layer (the tied token embedding). */
  #table(weight: GpuWeight, tensor: WeightTensor): void {
    const [rows, cols] = tensor.shape as [number, number];
    // The padded f32 matrix is the table itself when its rows needed no padding: share it.
    const shared = this.#linearStorage(tensor) === 'f32' && cols % WEIGHT_K_ALIGNMENT === 0;
    this.#jobs.push({
      weight,
      bytes: shared ? 0 : rows * cols * 4,
      what: 'an f32 table',
      run: () => {
        weight.values = shared ? (weight.linear as GpuLinearWeights).weight : this.#upload(weight.name, decodeTensor(tensor));
      },
    });
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
