/**
 * The WASM backend: every WhisperOps op runs in the WebAssembly kernels module
 * (src/kernels-wasm/assembly), on one or more threads.
 *
 * Activations and weights live in the module's memory (shared between the kernel threads when
 * there are several) and are addressed by byte offset; `read` copies an activation out. Linear and
 * convolution weights are packed once, in their file dtype where the kernels take it (f32 widened
 * from f16/bf16, or f16 decoder weights kept as halves with `halfWeights`; int8 codes from the
 * ggml quantized types; src/kernels-wasm/quant.ts); layer-norm
 * vectors, biases and embedding tables are copied in as f32. The token embedding is kept both as a
 * table (for the decoder's input) and packed (for the tied logits projection).
 *
 * Work is split so that every output element is computed by exactly one thread with the same
 * arithmetic whatever the thread count: matrix products by panels of 8 output columns, attention
 * by (sequence, head, query block) units, row-wise kernels by rows. One thread and N threads give
 * bit-identical results. Cache writes, reorders and row gathers are plain memory moves.
 */
import type { AttentionKeyValues, AttentionOptions, AttentionResult, Conv1dOptions, Epilogue, WhisperBackend, WhisperOps } from '../core/model/ops.ts';
import type { LayerNormWeights, LinearWeights, WeightTensor, WhisperWeights } from '../core/model/weights.ts';
import { mapWeights } from '../core/model/weights.ts';
import { decodeTensor } from '../core/model/dtype.ts';
import { MurmurError } from '../core/errors.ts';
import { WasmHeap } from './heap.ts';
import { compileKernel, createKernelMemory, instantiateKernel, type KernelVariant } from './instantiate.ts';
import { KERNEL_BUILDS, KERNEL_THREADS_BUILDS } from './kernel-builds.ts';
import { biasFloats, FLAG_GELU, QUANT_BLOCK, QUANT_META_BYTES, packedColumns, packWeightTensor, quantFlags, tiledRowLength, type PackedLayout, type PackedTensor, type WasmKernels } from './quant.ts';
import { convWeightMatrix, type KernelExports } from './ops.ts';
import { ROCKCHIP_B_TILE_K } from '../core/layout/rockchip-tiles.ts';
import { createKernelThreads, defaultThreadCount, sharedMemorySupported, singleThread, splitRange, type KernelThreads } from './threads.ts';

export interface WasmBackendOptions {
  /**
   * Kernel threads, the calling thread included. Default: every core. Threads need shared
   * memory (always in Node; in a browser, a cross-origin-isolated page); without it the backend
   * runs on one thread.
   */
  threads?: number;
  /** true: relaxed SIMD (fused multiply-add) or fail; false: plain SIMD128; absent: relaxed where supported. */
  relaxed?: boolean;
  /**
   * Keep f16 decoder weights (the per-token products, the tied logits projection included) as
   * halves, widened in the kernel: half the memory and half the bytes streamed per token, for a
   * few more instructions per weight. Results are the same either way. Default: when running on
   * more than one thread, where the decoder's products are bound by the shared memory bandwidth;
   * on one thread here the widening costs more time than the bandwidth it saves.
   */
  halfWeights?: boolean;
  /**
   * How matrix weights are packed. 'row-major' (default): register-blocked panels of 8 columns,
   * the fastest here (32.0 GFLOP/s against 23.6 on WASM SIMD). 'blocked': f32/f16/bf16 matrices
   * (projections, MLP, tied logits, convolutions) in Rockchip B tiles (N/16, K/32, 16, 32) run by
   * the tiled kernel (assembly/matmul-tiles.ts) on every thread; quantized matrices keep their
   * int8 panels (there is no tiled integer kernel), and f16 is widened to f32 in the tiles
   * (halfWeights does not apply).
   */
  layout?: 'row-major' | 'blocked';
}

/** Matrix products run so far, by the layout of the packed weights. */
export type WasmMatmulCounts = Record<PackedLayout, number>;

export interface WasmBackend extends WhisperBackend<WasmTensor, WasmWeight> {
  /** The kernels build in use, e.g. 'relaxed-simd-threads'. */
  readonly variant: KernelVariant;
  /** Threads the kernels actually run on. */
  readonly threads: number;
  /** Bytes of WebAssembly memory handed out (weights and live activations). */
  readonly allocatedBytes: number;
  /** How matrix weights are packed (see WasmBackendOptions.layout). */
  readonly layout: 'row-major' | 'blocked';
  /** Matrix products run so far, by packed layout (which kernel ran). */
  matmulCounts(): WasmMatmulCounts;
}

function shapeError(problem: string): MurmurError {
  return new MurmurError('SHAPE', problem);
}

/** An activation [rows, cols] of f32 in the kernels' memory. */
export class WasmTensor {
  readonly rows: number;
  readonly cols: number;
  readonly owner: object;
  #offset: number | undefined;

  constructor(owner: object, offset: number, rows: number, cols: number) {
    this.owner = owner;
    this.#offset = offset;
    this.rows = rows;
    this.cols = cols;
  }

  get offset(): number {
    if (this.#offset === undefined) throw new MurmurError('RELEASED', `a [${this.rows}, ${this.cols}] WASM tensor was used after release()`);
    return this.#offset;
  }

  get released(): boolean {
    return this.#offset === undefined;
  }

  /** Marks the handle released and returns the offset to free (undefined when already released). */
  take(): number | undefined {
    const offset = this.#offset;
    this.#offset = undefined;
    return offset;
  }
}

/**
 * A weight in the kernels' memory: `table`, row-major f32 (vectors zero-padded to whole panels so
 * a bias reads 8 values per panel), and/or `matrix`, packed for the matrix product.
 */
export interface WasmWeight {
  readonly name: string;
  readonly shape: readonly number[];
  readonly table?: number;
  readonly matrix?: PackedTensor;
}

type Kernel =
  | 'matmul' | 'matmulHalf' | 'matmulTiles' | 'quantizeRows' | 'matmulQuant' | 'layerNorm' | 'im2col' | 'attention' | 'attentionPackKeys' | 'attentionBlocked'
  | 'addPositionalEmbedding' | 'embed';

interface Engine extends WasmKernels {
  readonly threads: KernelThreads;
  readonly halfWeights: boolean;
  readonly layout: 'row-major' | 'blocked';
  readonly matmuls: WasmMatmulCounts;
  /** Per thread: attention's scratch tile. */
  readonly attentionScratch: number[];
}

async function createEngine(options: WasmBackendOptions): Promise<Engine> {
  const requested = options.threads ?? (await defaultThreadCount());
  if (!Number.isInteger(requested) || requested < 1) throw new MurmurError('WASM_THREADS', `threads must be a whole number ≥ 1, got ${requested}`);
  const layout = options.layout ?? 'row-major';
  if (layout !== 'row-major' && layout !== 'blocked') throw new MurmurError('BACKEND', `the "wasm" backend packs weights "row-major" or "blocked", not ${JSON.stringify(layout)}`);
  const threaded = requested > 1 && sharedMemorySupported();
  const builds = threaded
    ? { 'simd-threads': KERNEL_THREADS_BUILDS.simd, 'relaxed-simd-threads': KERNEL_THREADS_BUILDS['relaxed-simd'] }
    : KERNEL_BUILDS;
  const compiled = await compileKernel('kernels', builds, { threads: threaded, ...(options.relaxed === undefined ? {} : { relaxed: options.relaxed }) });
  const memory = createKernelMemory(compiled);
  const instance = await instantiateKernel('kernels', compiled.module, memory);
  const exports = instance.exports;
  const heap = new WasmHeap(memory, (exports.heapBase as () => number)());
  const threads = threaded ? await createKernelThreads(compiled.module, memory, instance, requested) : singleThread(instance);
  const scratchBytes = (exports.attentionScratchBytes as () => number)();
  const attentionScratch = Array.from({ length: threads.count }, () => heap.allocate(scratchBytes));
  return {
    variant: compiled.variant, exports, heap, threads, attentionScratch, layout,
    halfWeights: options.halfWeights ?? threads.count > 1,
    matmuls: { f32: 0, f16: 0, int8: 0, tiles: 0 },
  };
}

/**
 * Work (in multiply-adds or comparable steps) below which a share is not worth waking a thread
 * for: a dispatch costs tens of microseconds, a decoder step's small projections less.
 */
const MIN_SHARE_WORK = 1 << 18;

/**
 * Runs `kernel` over `units` (each about `unitWork` steps), split into contiguous ranges, one per
 * thread, but no more ranges than leave each at least MIN_SHARE_WORK; `args` builds each share.
 * How many ranges there are never changes a result: kernels compute each output element the same
 * way whichever range it falls in.
 */
function parallel(engine: Engine, kernel: Kernel, units: number, unitWork: number, args: (start: number, end: number, thread: number) => number[]): void {
  if (units <= 0) return;
  const worthwhile = Math.max(1, Math.floor((units * Math.max(unitWork, 1)) / MIN_SHARE_WORK));
  const ranges = splitRange(units, Math.min(engine.threads.count, worthwhile));
  engine.threads.run(kernel, ranges.map(([start, end], thread) => args(start, end, thread)));
}

function createOps(engine: Engine): WhisperOps<WasmTensor, WasmWeight> {
  const { heap } = engine;
  let memoryView = new Float32Array(heap.memory.buffer);
  /** All of memory as floats; re-taken after growth (which detaches or outgrows the old view). */
  const floats = (): Float32Array => {
    const buffer = heap.memory.buffer;
    if (memoryView.buffer !== buffer || memoryView.length * 4 !== buffer.byteLength) memoryView = new Float32Array(buffer);
    return memoryView;
  };

  const allocate = (rows: number, cols: number): WasmTensor => {
    if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0) throw shapeError(`cannot make a [${rows}, ${cols}] tensor`);
    return new WasmTensor(engine, heap.allocate(rows * cols * 4), rows, cols);
  };
  const checkOwner = (x: WasmTensor, what: string): void => {
    if (!(x instanceof WasmTensor) || x.owner !== engine) throw new MurmurError('WASM_TENSOR', `${what} is not a tensor of this WASM backend`);
  };
  const own = (x: WasmTensor, what: string): number => {
    checkOwner(x, what);
    return x.offset;
  };
  /** Releasing twice is harmless, as on the reference backend. */
  const release = (x: WasmTensor) => {
    checkOwner(x, 'the released value');
    const offset = x.take();
    if (offset !== undefined) heap.free(offset);
  };
  /** Frees the tensor if `fill` throws, so a failed op leaks nothing. */
  const produce = (rows: number, cols: number, fill: (out: number) => void): WasmTensor => {
    const out = allocate(rows, cols);
    try {
      fill(out.offset);
    } catch (error) {
      release(out);
      throw error;
    }
    return out;
  };
  const tableOf = (w: WasmWeight, what: string): number => {
    if (w?.table === undefined) throw new MurmurError('WASM_WEIGHTS', `${w?.name ?? what} is not a table or vector weight of this WASM backend`);
    return w.table;
  };
  const vectorOf = (w: WasmWeight, length: number, what: string): number => {
    const at = tableOf(w, what);
    if (w.shape.length !== 1 || w.shape[0] !== length) throw shapeError(`${w.name}: ${what} of [${w.shape}] for rows of ${length}`);
    return at;
  };

  /** y = epilogue(x · Wᵀ + bias) for x [m, k] at `x`, into `y` [m, n]. */
  const matmul = (x: number, m: number, w: LinearWeights<WasmWeight>, y: number, flags: number, residual: number): void => {
    const matrix = w.weight.matrix!;
    const { n, k } = matrix;
    const bias = w.bias ? vectorOf(w.bias, n, 'bias') : 0;
    const width = packedColumns(matrix);
    const panels = Math.ceil(n / width);
    const columns = (p0: number, p1: number) => Math.min(n, p1 * width) - p0 * width;
    const panelFloats = (p0: number) => p0 * width * 4;
    engine.matmuls[matrix.layout]++;
    if (matrix.layout === 'tiles') {
      // The tiles kernel reads rows of whole tiles of K: x is copied with zero-padded rows when k is not a multiple of 32.
      const rowLength = tiledRowLength(k);
      const padded = rowLength === k ? 0 : heap.allocate(m * rowLength * 4);
      try {
        if (padded) {
          const memory = floats();
          memory.fill(0, padded / 4, padded / 4 + m * rowLength);
          for (let row = 0; row < m; row++) memory.copyWithin(padded / 4 + row * rowLength, x / 4 + row * k, x / 4 + (row + 1) * k);
        }
        parallel(engine, 'matmulTiles', panels, m * rowLength * width, (p0, p1) => [
          padded || x, m, rowLength / ROCKCHIP_B_TILE_K, matrix.offset + p0 * matrix.panelBytes, columns(p0, p1),
          bias && bias + panelFloats(p0), residual && residual + panelFloats(p0), y + panelFloats(p0), n, flags,
        ]);
      } finally {
        if (padded) heap.free(padded);
      }
      return;
    }
    if (matrix.layout !== 'int8') {
      parallel(engine, matrix.layout === 'f16' ? 'matmulHalf' : 'matmul', panels, m * k * width, (p0, p1) => [
        x, m, k, matrix.offset + p0 * matrix.panelBytes, columns(p0, p1),
        bias && bias + panelFloats(p0), residual && residual + panelFloats(p0), y + panelFloats(p0), n, flags,
      ]);
      return;
    }
    // Activations are quantized per row and block first (int16 codes), then the integer kernel runs by panels.
    const codeBytes = 2;
    const blocks = k / QUANT_BLOCK;
    const codes = heap.allocate(m * k * codeBytes);
    const meta = heap.allocate(m * blocks * QUANT_META_BYTES);
    try {
      parallel(engine, 'quantizeRows', m, k, (r0, r1) => [x + r0 * k * 4, r1 - r0, k, codes + r0 * k * codeBytes, meta + r0 * blocks * QUANT_META_BYTES]);
      const kernelFlags = quantFlags(matrix) | flags;
      parallel(engine, 'matmulQuant', panels, m * k * width, (p0, p1) => [
        codes, meta, m, k, matrix.offset + p0 * matrix.panelBytes, columns(p0, p1), matrix.blockStride, matrix.zero,
        bias && bias + panelFloats(p0), residual && residual + panelFloats(p0), y + panelFloats(p0), n, kernelFlags,
      ]);
    } finally {
      heap.free(meta);
      heap.free(codes);
    }
  };

  const linear = (x: WasmTensor, w: LinearWeights<WasmWeight>, epilogue: Epilogue<WasmTensor> = {}): WasmTensor => {
    const matrix = w.weight?.matrix;
    if (!matrix) throw new MurmurError('WASM_WEIGHTS', `${w.weight?.name ?? 'the weight'} is not a matrix weight of this WASM backend`);
    const xAt = own(x, 'linear input');
    if (x.cols !== matrix.k) throw shapeError(`linear: input [${x.rows}, ${x.cols}] against weight ${w.weight.name} [${matrix.n}, ${matrix.k}]`);
    const { residual } = epilogue;
    let residualAt = 0;
    if (residual) {
      residualAt = own(residual, 'the residual');
      if (residual.rows !== x.rows || residual.cols !== matrix.n) {
        throw shapeError(`residual [${residual.rows}, ${residual.cols}] does not match the output [${x.rows}, ${matrix.n}]`);
      }
    }
    return produce(x.rows, matrix.n, (y) => matmul(xAt, x.rows, w, y, epilogue.gelu ? FLAG_GELU : 0, residualAt));
  };

  const conv1d = (x: WasmTensor, w: LinearWeights<WasmWeight>, options: Conv1dOptions): WasmTensor => {
    const matrix = w.weight?.matrix;
    const shape = w.weight?.shape ?? [];
    if (!matrix || shape.length !== 3 || shape[2] !== 3) throw shapeError(`conv1d weight must be [out, in, 3], got [${shape}]`);
    const [outChannels, inChannels] = shape as [number, number];
    const xAt = own(x, 'conv1d input');
    const channelsFirst = options.inputLayout === 'channels-first';
    const frames = channelsFirst ? x.cols : x.rows;
    const xChannels = channelsFirst ? x.rows : x.cols;
    if (xChannels !== inChannels) throw shapeError(`conv1d: input has ${xChannels} channels, weight [${shape}] expects ${inChannels}`);
    const { stride } = options;
    if (stride !== 1 && stride !== 2) throw shapeError(`conv1d: stride ${stride} (Whisper uses 1 and 2)`);
    const outFrames = Math.floor((frames - 1) / stride) + 1;
    const patchWidth = 3 * inChannels;
    const patches = heap.allocate(outFrames * patchWidth * 4);
    try {
      parallel(engine, 'im2col', outFrames, patchWidth, (t0, t1) => [xAt, inChannels, frames, stride, channelsFirst ? 1 : 0, patches, t0, t1]);
      return produce(outFrames, outChannels, (y) => matmul(patches, outFrames, w, y, options.gelu ? FLAG_GELU : 0, 0));
    } finally {
      heap.free(patches);
    }
  };

  const addPositionalEmbedding = (x: WasmTensor, table: WasmWeight): WasmTensor => {
    const xAt = own(x, 'addPositionalEmbedding input');
    const tableAt = tableOf(table, 'positional embedding');
    if (table.shape.length !== 2 || table.shape[1] !== x.cols || table.shape[0]! < x.rows) {
      throw shapeError(`positional embedding [${table.shape}] cannot cover an input of [${x.rows}, ${x.cols}]`);
    }
    return produce(x.rows, x.cols, (y) => parallel(engine, 'addPositionalEmbedding', x.rows, x.cols, (r0, r1) => [xAt, tableAt, y, x.cols, r0, r1]));
  };

  const layerNorm = (x: WasmTensor, w: LayerNormWeights<WasmWeight>): WasmTensor => {
    const xAt = own(x, 'layerNorm input');
    const gamma = vectorOf(w.weight, x.cols, 'layer norm weight');
    const beta = vectorOf(w.bias, x.cols, 'layer norm bias');
    return produce(x.rows, x.cols, (y) => parallel(engine, 'layerNorm', x.rows, 4 * x.cols, (r0, r1) => [xAt, gamma, beta, y, x.cols, r0, r1]));
  };

  const attention = (q: WasmTensor, kv: AttentionKeyValues<WasmTensor>, options: AttentionOptions): AttentionResult<WasmTensor> => {
    const { heads, sequences, causal, returnWeights } = options;
    const { capacity, length, shared } = kv;
    const qAt = own(q, 'attention query');
    const keyAt = own(kv.key, 'attention key');
    const valueAt = own(kv.value, 'attention value');
    const cols = q.cols;
    if (!Number.isInteger(heads) || heads < 1 || cols % heads !== 0) throw shapeError(`attention: ${cols} channels do not split into ${heads} heads`);
    if (!Number.isInteger(sequences) || sequences < 1 || q.rows % sequences !== 0) throw shapeError(`attention: ${q.rows} query rows do not split into ${sequences} sequences`);
    const queryRows = q.rows / sequences;
    const storedRows = shared ? capacity : sequences * capacity;
    for (const [name, t] of [['key', kv.key], ['value', kv.value]] as const) {
      if (t.cols !== cols || t.rows < storedRows) throw shapeError(`attention: ${name} [${t.rows}, ${t.cols}] cannot hold ${storedRows} rows of ${cols}`);
    }
    if (!Number.isInteger(length) || length < 1 || length > capacity) throw shapeError(`attention: ${length} valid keys in a capacity of ${capacity}`);
    if (causal && (!Number.isInteger(causal.queryOffset) || causal.queryOffset < 0 || causal.queryOffset + queryRows > length)) {
      throw shapeError(`attention: queries at positions ${causal.queryOffset}..${causal.queryOffset + queryRows - 1} need ${causal.queryOffset + queryRows} keys, only ${length} are valid`);
    }
    const units = (engine.exports.attentionWorkUnits as (h: number, s: number, r: number) => number)(heads, sequences, queryRows);
    // Scores and the weighted sum: 2 · headDim steps per (query row, key); a unit is up to 16 query rows.
    const unitWork = 2 * (cols / heads) * length * Math.min(queryRows, 16);
    const weights = returnWeights ? allocate(sequences * heads * queryRows, length) : undefined;
    const kernels = engine.exports as unknown as KernelExports;
    const packedBytes = kernels.attentionPackedKeyBytes(cols, heads, sequences, queryRows, length, shared ? 1 : 0, causal ? causal.queryOffset : -1, returnWeights ? 1 : 0);
    try {
      const output = produce(q.rows, cols, (out) => {
        if (packedBytes === 0) {
          parallel(engine, 'attention', units, unitWork, (u0, u1, thread) => [
            qAt, keyAt, valueAt, out, weights ? weights.offset : 0,
            cols, heads, sequences, queryRows, capacity, length, shared ? 1 : 0, causal ? causal.queryOffset : -1,
            engine.attentionScratch[thread]!, u0, u1,
          ]);
          return;
        }
        // Keys transposed into panels and values made contiguous per head once per call, then the blocked kernel over the same units.
        const packed = heap.allocate(packedBytes);
        try {
          const packUnits = kernels.attentionPackUnits(heads, sequences, shared ? 1 : 0);
          parallel(engine, 'attentionPackKeys', packUnits, (cols / heads) * length, (u0, u1) => [keyAt, valueAt, packed, cols, heads, capacity, length, u0, u1]);
          parallel(engine, 'attentionBlocked', units, unitWork, (u0, u1, thread) => [
            qAt, packed, out, cols, heads, sequences, queryRows, length, shared ? 1 : 0,
            engine.attentionScratch[thread]!, u0, u1,
          ]);
        } finally {
          heap.free(packed);
        }
      });
      return { output, ...(weights ? { weights } : {}) };
    } catch (error) {
      if (weights) release(weights);
      throw error;
    }
  };

  const embed = (tokens: readonly number[], positions: readonly number[], tokenEmbedding: WasmWeight, positionalEmbedding: WasmWeight): WasmTensor => {
    if (tokens.length !== positions.length) throw shapeError(`embed: ${tokens.length} tokens but ${positions.length} positions`);
    const tokenAt = tableOf(tokenEmbedding, 'token embedding');
    const positionAt = tableOf(positionalEmbedding, 'positional embedding');
    const [vocabulary, width] = tokenEmbedding.shape as [number, number];
    const [contexts, positionWidth] = positionalEmbedding.shape as [number, number];
    if (positionWidth !== width) throw shapeError(`embed: token rows of ${width} but positional rows of ${positionWidth}`);
    tokens.forEach((token) => {
      if (!Number.isInteger(token) || token < 0 || token >= vocabulary) throw shapeError(`embed: token id ${token} outside the vocabulary of ${vocabulary}`);
    });
    positions.forEach((position) => {
      if (!Number.isInteger(position) || position < 0 || position >= contexts) throw shapeError(`embed: position ${position} outside the context of ${contexts}`);
    });
    const rows = tokens.length;
    const ids = heap.allocate(rows * 8);
    try {
      const view = new Int32Array(heap.memory.buffer, ids, rows * 2);
      view.set(tokens);
      view.set(positions, rows);
      return produce(rows, width, (y) => parallel(engine, 'embed', rows, width, (r0, r1) => [ids, ids + rows * 4, tokenAt, positionAt, y, width, r0, r1]));
    } finally {
      heap.free(ids);
    }
  };

  const writeCache = (cache: WasmTensor, x: WasmTensor, options: { sequences: number; capacity: number; offset: number }): void => {
    const { sequences, capacity, offset } = options;
    const cacheAt = own(cache, 'the cache') / 4;
    const xAt = own(x, 'the cache rows') / 4;
    const n = x.rows / sequences;
    if (!Number.isInteger(n) || x.cols !== cache.cols || cache.rows < sequences * capacity) {
      throw shapeError(`writeCache: [${x.rows}, ${x.cols}] into a cache [${cache.rows}, ${cache.cols}] of ${sequences} × ${capacity} rows`);
    }
    if (!Number.isInteger(offset) || offset < 0 || offset + n > capacity) throw shapeError(`writeCache: rows ${offset}..${offset + n - 1} exceed the capacity of ${capacity}`);
    const cols = x.cols;
    const memory = floats();
    for (let s = 0; s < sequences; s++) {
      const from = xAt + s * n * cols;
      memory.copyWithin(cacheAt + (s * capacity + offset) * cols, from, from + n * cols);
    }
  };

  const reorderCache = (cache: WasmTensor, order: readonly number[], options: { capacity: number; length: number }): void => {
    const { capacity, length } = options;
    const sequences = order.length;
    const cacheAt = own(cache, 'the cache') / 4;
    if (cache.rows < sequences * capacity || length > capacity) throw shapeError(`reorderCache: cache [${cache.rows}, ${cache.cols}] for ${sequences} × ${capacity} rows`);
    order.forEach((from) => {
      if (!Number.isInteger(from) || from < 0 || from >= sequences) throw shapeError(`reorderCache: sequence ${from} does not exist`);
    });
    const cols = cache.cols;
    const memory = floats();
    const before = memory.slice(cacheAt, cacheAt + sequences * capacity * cols);
    for (let s = 0; s < sequences; s++) {
      const from = order[s]! * capacity * cols;
      memory.set(before.subarray(from, from + length * cols), cacheAt + s * capacity * cols);
    }
  };

  const gatherRows = (x: WasmTensor, rows: readonly number[]): WasmTensor => {
    const xAt = own(x, 'gatherRows input') / 4;
    const cols = x.cols;
    rows.forEach((row) => {
      if (!Number.isInteger(row) || row < 0 || row >= x.rows) throw shapeError(`gatherRows: row ${row} of a [${x.rows}, ${cols}] tensor`);
    });
    return produce(rows.length, cols, (y) => {
      const memory = floats();
      rows.forEach((row, i) => memory.copyWithin(y / 4 + i * cols, xAt + row * cols, xAt + (row + 1) * cols));
    });
  };

  return {
    upload(values, rows, cols) {
      if (values.length !== rows * cols) throw shapeError(`${values.length} values cannot be a [${rows}, ${cols}] tensor`);
      return produce(rows, cols, (at) => floats().set(values, at / 4));
    },
    zeros: (rows, cols) => produce(rows, cols, (at) => floats().fill(0, at / 4, at / 4 + rows * cols)),
    read: async (x) => {
      const at = own(x, 'the value read') / 4;
      return floats().slice(at, at + x.rows * x.cols);
    },
    shape: (x) => [x.rows, x.cols],
    release,
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

/** Conv weight [out, in, 3] as the [out, 3·in] tap-major matrix the im2col patches multiply. */
function convMatrix(tensor: WeightTensor): WeightTensor {
  const [outChannels, inChannels] = tensor.shape as [number, number, number];
  const matrix = convWeightMatrix(decodeTensor(tensor), outChannels, inChannels);
  return { dtype: 'f32', shape: [outChannels, 3 * inChannels], bytes: new Uint8Array(matrix.buffer) };
}

function prepareWeight(engine: Engine, tensor: WeightTensor, name: string): WasmWeight {
  const { heap } = engine;
  const shape = tensor.shape;
  const copyTable = (): number => {
    const values = decodeTensor(tensor);
    // Vectors padded past whole panels and tiles: epilogues read biases 8 values at a time.
    const padded = biasFloats(values.length);
    const at = heap.allocate(padded * 4);
    const view = heap.f32(at, padded);
    view.set(values);
    view.fill(0, values.length);
    return at;
  };
  if (shape.length === 3) {
    if (shape[2] !== 3) throw new MurmurError('WASM_WEIGHTS', `${name}: a convolution weight must be [out, in, 3], got [${shape}]`);
    return { name, shape, matrix: packWeightTensor(engine, convMatrix(tensor), name, { layout: engine.layout === 'blocked' ? 'tiles' : 'panels' }) };
  }
  // The decoder's per-token products stream their weights once per token: f16 stays f16 there.
  // The cross-attention key/value projections run once per window over every audio frame, like
  // the encoder's, where widening in the kernel would cost more than the bandwidth it saves.
  const keepHalf = engine.halfWeights && name.startsWith('decoder.') && !/cross_attn\.(key|value)\./.test(name);
  if (shape.length === 1 || name.endsWith('positional_embedding')) return { name, shape, table: copyTable() };
  if (shape.length !== 2) throw new MurmurError('WASM_WEIGHTS', `${name}: unexpected weight shape [${shape}]`);
  const matrix = packWeightTensor(engine, tensor, name, { keepHalf, layout: engine.layout === 'blocked' ? 'tiles' : 'panels' });
  // The token embedding is also the (tied) output projection.
  if (name === 'decoder.token_embedding.weight') {
    try {
      return { name, shape, matrix, table: copyTable() };
    } catch (error) {
      matrix.release();
      throw error;
    }
  }
  return { name, shape, matrix };
}

function releaseWeight(engine: Engine, weight: WasmWeight): void {
  weight.matrix?.release();
  if (weight.table !== undefined) engine.heap.free(weight.table);
}

/** The WASM-SIMD backend, on `threads` kernel threads (default: every core). */
export async function createWasmBackend(options: WasmBackendOptions = {}): Promise<WasmBackend> {
  const engine = await createEngine(options);
  const ops = createOps(engine);
  let disposed = false;
  /** What each prepareWeights call put in the kernels' memory, to give back on releaseWeights. */
  const prepared = new Map<WhisperWeights<WasmWeight>, WasmWeight[]>();

  return {
    name: 'wasm',
    ops,
    variant: engine.variant,
    threads: engine.threads.count,
    layout: engine.layout,
    reasons:
      engine.layout === 'blocked'
        ? ['layout blocked: f32/f16 matrices packed into Rockchip tiles (N/16, K/32, 16, 32) and run by the tiled kernel on every thread; quantized matrices keep the int8 panels (there is no tiled integer kernel)']
        : [],
    get allocatedBytes() {
      return engine.heap.allocatedBytes;
    },
    matmulCounts: () => ({ ...engine.matmuls }),
    async prepareWeights(dims, weights) {
      if (disposed) throw new MurmurError('DISPOSED', 'the WASM backend was disposed');
      const made: WasmWeight[] = [];
      try {
        const result = mapWeights(dims, weights, (tensor, slot) => {
          const weight = prepareWeight(engine, tensor, slot.name);
          made.push(weight);
          return weight;
        });
        prepared.set(result, made);
        return result;
      } catch (error) {
        for (const weight of made) releaseWeight(engine, weight);
        throw error;
      }
    },
    releaseWeights(weights) {
      const made = prepared.get(weights);
      if (!made) return;
      prepared.delete(weights);
      for (const weight of made) releaseWeight(engine, weight);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      engine.threads.dispose();
    },
  };
}
