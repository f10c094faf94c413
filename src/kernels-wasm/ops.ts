/**
 * TypeScript side of the non-matmul kernels of the one kernels module (src/kernels-wasm/assembly):
 * layer norm, the im2col half of the convolution, flash attention, embeddings and the logits tail.
 *
 * Two layers:
 * - `kernelExports` types the module's exports. They take byte offsets into the module's memory,
 *   sizes, and a row or work-unit range [start, end), so a thread pool can give each thread a
 *   slice of the same call (every output element is written by exactly one unit).
 * - `WasmKernels` runs a whole op over Float32Arrays: it copies inputs into heap allocations,
 *   checks shapes (MurmurError 'SHAPE'), runs the full range and copies the result out. Tests use
 *   it against the reference backend; the backend uses the exports directly.
 */
import type { Conv1dOptions } from '../core/model/ops.ts';
import { MurmurError } from '../core/errors.ts';
import { WasmHeap } from './heap.ts';
import { loadKernel, type WasmVariant } from './instantiate.ts';
import { KERNEL_BUILDS } from './kernel-builds.ts';
import { wasmMatmulOver, type PackedWeights, type WasmMatmul } from './matmul.ts';

export { KERNELS_THREADS_MAXIMUM_PAGES } from './kernel-builds.ts';

/** matmul's `flags`: apply GELU before the residual. */
export const MATMUL_FLAG_GELU = 1;

/**
 * The kernels module's exports. Pointers are byte offsets into its memory; f32 tensors are
 * row-major. Optional pointers are 0 when absent.
 */
export interface KernelExports {
  /** First byte free for the heap. */
  heapBase(): number;
  /** Output columns per packed weight panel (matmul.ts). */
  panelWidth(): number;
  /**
   * y[m, n] = epilogue(x[m, k] · Wᵀ + bias); packed: panels of W; bias: n rounded up to panels, or 0;
   * residual and y rows are yStride floats apart; flags: MATMUL_FLAG_GELU. Split by rows: offset x,
   * residual and y by the first row.
   */
  matmul(x: number, m: number, k: number, packed: number, n: number, bias: number, residual: number, y: number, yStride: number, flags: number): void;
  /** Rows rowStart..rowEnd of x [rows, cols] normalised into y (y may be x); gamma, beta: cols floats. */
  layerNorm(x: number, gamma: number, beta: number, y: number, cols: number, rowStart: number, rowEnd: number): void;
  /**
   * Rows rowStart..rowEnd of patches [outFrames, 3·channels] (tap-major: column k·channels + c) from
   * x [channels, frames] (channelsFirst = 1) or [frames, channels] (0).
   */
  im2col(x: number, channels: number, frames: number, stride: number, channelsFirst: number, patches: number, rowStart: number, rowEnd: number): void;
  /** Independent work units of one attention call (sequence × head × query block). */
  attentionWorkUnits(heads: number, sequences: number, queryRows: number): number;
  /** Scratch bytes each concurrently running attention call needs. */
  attentionScratchBytes(): number;
  /**
   * Units unitStart..unitEnd of WhisperOps.attention. out must not overlap q. shared: 0 | 1;
   * queryOffset: -1 when not causal; weights: [sequences × heads × queryRows, length] or 0.
   */
  attention(
    q: number, key: number, value: number, out: number, weights: number,
    cols: number, heads: number, sequences: number, queryRows: number,
    capacity: number, length: number, shared: number, queryOffset: number,
    scratch: number, unitStart: number, unitEnd: number,
  ): void;
  /**
   * Bytes of packed keys attentionBlocked needs for this call, or 0 when the call must run
   * `attention` (causal, weights wanted, few queries, head width not a multiple of 8).
   */
  attentionPackedKeyBytes(cols: number, heads: number, sequences: number, queryRows: number, length: number, shared: number, queryOffset: number, wantWeights: number): number;
  /** Work units of attentionPackKeys: one per (key sequence, head). */
  attentionPackUnits(heads: number, sequences: number, shared: number): number;
  /**
   * Units unitStart..unitEnd of packing, per (key sequence, head), the keys into transposed panels
   * of 8 keys and the values into contiguous rows.
   */
  attentionPackKeys(key: number, value: number, packed: number, cols: number, heads: number, capacity: number, length: number, unitStart: number, unitEnd: number): void;
  /** `attention` over packed keys and values, for calls attentionPackedKeyBytes accepts; same work units. */
  attentionBlocked(
    q: number, packed: number, out: number, cols: number, heads: number, sequences: number, queryRows: number,
    length: number, shared: number, scratch: number, unitStart: number, unitEnd: number,
  ): void;
  /** y[r] = x[r] + table[r], rows rowStart..rowEnd (y may be x). */
  addPositionalEmbedding(x: number, table: number, y: number, width: number, rowStart: number, rowEnd: number): void;
  /** y[i] = tokenTable[tokens[i]] + positionTable[positions[i]] (i32 ids, already validated), i in rowStart..rowEnd. */
  embed(tokens: number, positions: number, tokenTable: number, positionTable: number, y: number, width: number, rowStart: number, rowEnd: number): void;
  /** Largest topK logitsTopK supports (8). */
  logitsMaxTopK(): number;
  /**
   * Rows rowStart..rowEnd of logits [rows, vocabulary]: mask (u8, 0 = allowed) shared (maskStride 0)
   * or per row (maskStride = vocabulary), or 0; ids i32 [rows, topK] (-1 past the allowed tokens),
   * logProbs f32 [rows, topK], logSumExps f32 [rows] or 0 (NaN when a logit is NaN).
   */
  logitsTopK(
    logits: number, vocabulary: number, mask: number, maskStride: number, topK: number,
    ids: number, logProbs: number, logSumExps: number, rowStart: number, rowEnd: number,
  ): void;
}

const KERNEL_NAMES: readonly (keyof KernelExports)[] = [
  'heapBase', 'panelWidth', 'matmul', 'layerNorm', 'im2col', 'attentionWorkUnits', 'attentionScratchBytes',
  'attention', 'attentionPackedKeyBytes', 'attentionPackUnits', 'attentionPackKeys', 'attentionBlocked', 'addPositionalEmbedding', 'embed', 'logitsMaxTopK', 'logitsTopK',
];

/** The instance's exports as KernelExports; a module missing one is an error, not a later crash. */
export function kernelExports(exports: WebAssembly.Exports): KernelExports {
  for (const name of KERNEL_NAMES) {
    if (typeof exports[name] !== 'function') throw new MurmurError('WASM_UNSUPPORTED', `the WebAssembly kernels module does not export ${name}`);
  }
  return exports as unknown as KernelExports;
}

/** Output frames of a kernel-3, padding-1 convolution. */
export function convOutputFrames(frames: number, stride: 1 | 2): number {
  return Math.floor((frames - 1) / stride) + 1;
}

/**
 * The conv weight [out, in, 3] as the [out, 3·in] matrix im2col's tap-major columns meet:
 * W'[o, k·in + c] = W[o, c, k]. Pack the result like any linear weight.
 */
export function convWeightMatrix(weight: Float32Array, outChannels: number, inChannels: number): Float32Array {
  if (weight.length !== outChannels * inChannels * 3) {
    throw shapeError(`conv1d: ${weight.length} weight values are not [${outChannels}, ${inChannels}, 3]`);
  }
  const matrix = new Float32Array(weight.length);
  const width = 3 * inChannels;
  for (let o = 0; o < outChannels; o++) {
    for (let c = 0; c < inChannels; c++) {
      const source = (o * inChannels + c) * 3;
      for (let k = 0; k < 3; k++) matrix[o * width + k * inChannels + c] = weight[source + k]!;
    }
  }
  return matrix;
}

export interface AttentionCall {
  heads: number;
  sequences: number;
  /** Rows reserved per sequence in key/value (or the shared rows). */
  capacity: number;
  /** Valid key rows per sequence, 1..capacity. */
  length: number;
  shared: boolean;
  causal?: { queryOffset: number };
  returnWeights?: boolean;
}

/**
 * Checks an attention call's shape (as the reference backend does) and returns queryRows and
 * headDim. qRows and kvRows are the row counts of q and of key/value, all with `cols` columns.
 */
export function checkAttention(qRows: number, kvRows: number, cols: number, call: AttentionCall): { queryRows: number; headDim: number } {
  const { heads, sequences, capacity, length, shared, causal } = call;
  for (const [name, value] of [['heads', heads], ['sequences', sequences], ['capacity', capacity], ['length', length]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw shapeError(`attention: ${name} must be a positive integer, got ${value}`);
  }
  const headDim = cols / heads;
  if (!Number.isInteger(headDim) || headDim < 1) throw shapeError(`attention: ${cols} channels do not split into ${heads} heads`);
  const queryRows = qRows / sequences;
  if (!Number.isInteger(queryRows)) throw shapeError(`attention: ${qRows} query rows do not split into ${sequences} sequences`);
  const storedRows = shared ? capacity : sequences * capacity;
  if (kvRows < storedRows) throw shapeError(`attention: key/value of ${kvRows} rows cannot hold ${storedRows} rows of ${cols}`);
  if (length > capacity) throw shapeError(`attention: ${length} valid keys in a capacity of ${capacity}`);
  if (causal) {
    const { queryOffset } = causal;
    if (!Number.isSafeInteger(queryOffset) || queryOffset < 0) throw shapeError(`attention: query offset ${queryOffset} is not a non-negative integer`);
    if (queryOffset + queryRows > length) {
      throw shapeError(`attention: queries at positions ${queryOffset}..${queryOffset + queryRows - 1} need ${queryOffset + queryRows} keys, only ${length} are valid`);
    }
  }
  return { queryRows, headDim };
}

export interface TopTokens {
  /** [rows, topK] token ids, best first; -1 where a row has fewer than topK allowed tokens. */
  ids: Int32Array;
  /** [rows, topK] log-probabilities under the log-softmax over the allowed tokens. */
  logProbs: Float32Array;
  /** [rows] log Σ exp(logit) over the allowed tokens (-Infinity when every token is suppressed). */
  logSumExp: Float32Array;
}

function shapeError(problem: string): MurmurError {
  return new MurmurError('SHAPE', problem);
}

function checkCount(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw shapeError(`${what} must be a non-negative integer, got ${value}`);
}

function checkLength(array: ArrayLike<number>, expected: number, what: string): void {
  if (array.length !== expected) throw shapeError(`${what}: ${array.length} values where ${expected} were expected`);
}

/** Whole ops over host arrays, on one single-threaded instance of the kernels module. */
export class WasmKernels {
  readonly variant: WasmVariant;
  readonly heap: WasmHeap;
  readonly kernels: KernelExports;
  /** The matrix product over the same memory (conv1d packs its weights with it). */
  readonly matmul: WasmMatmul;

  constructor(variant: WasmVariant, exports: WebAssembly.Exports, heap: WasmHeap) {
    this.variant = variant;
    this.kernels = kernelExports(exports);
    this.heap = heap;
    this.matmul = wasmMatmulOver(variant, exports, heap);
  }

  /** Allocates every block, runs `body` with their offsets, frees them whatever happens. */
  #withBlocks<R>(bytes: readonly number[], body: (at: number[]) => R): R {
    const at: number[] = [];
    try {
      for (const size of bytes) at.push(this.heap.allocate(size));
      return body(at);
    } finally {
      for (const offset of at.reverse()) this.heap.free(offset);
    }
  }

  #f32(offset: number, length: number): Float32Array {
    return this.heap.f32(offset, length);
  }

  #i32(offset: number, length: number): Int32Array {
    return new Int32Array(this.heap.memory.buffer, offset, length);
  }

  /** x [rows, cols] normalised per row with gamma and beta [cols], eps 1e-5. */
  layerNorm(x: Float32Array, rows: number, cols: number, gamma: Float32Array, beta: Float32Array): Float32Array {
    checkCount(rows, 'layerNorm rows');
    checkCount(cols, 'layerNorm cols');
    checkLength(x, rows * cols, `layerNorm input [${rows}, ${cols}]`);
    checkLength(gamma, cols, 'layerNorm gamma');
    checkLength(beta, cols, 'layerNorm beta');
    if (rows * cols === 0) return new Float32Array(0);
    return this.#withBlocks([x.length * 4, cols * 4, cols * 4], ([xAt, gammaAt, betaAt]) => {
      this.#f32(xAt!, x.length).set(x);
      this.#f32(gammaAt!, cols).set(gamma);
      this.#f32(betaAt!, cols).set(beta);
      this.kernels.layerNorm(xAt!, gammaAt!, betaAt!, xAt!, cols, 0, rows);
      return this.#f32(xAt!, x.length).slice();
    });
  }

  /** Packs a conv weight [out, in, 3] for `conv1d`. */
  packConvWeights(weight: Float32Array, outChannels: number, inChannels: number): PackedWeights {
    return this.matmul.packWeights(convWeightMatrix(weight, outChannels, inChannels), outChannels, 3 * inChannels);
  }

  /**
   * Kernel 3, padding 1 over x ([inChannels, frames] channels-first or [frames, inChannels]
   * time-major): im2col, then the packed matmul with bias and GELU. Returns [outFrames, outChannels].
   */
  conv1d(x: Float32Array, inChannels: number, frames: number, packed: PackedWeights, bias: Float32Array | undefined, options: Conv1dOptions): Float32Array {
    checkCount(inChannels, 'conv1d input channels');
    checkCount(frames, 'conv1d frames');
    checkLength(x, inChannels * frames, `conv1d input of ${inChannels} channels × ${frames} frames`);
    if (packed.k !== 3 * inChannels) throw shapeError(`conv1d: packed weight of ${packed.k} columns for ${inChannels} input channels (expected ${3 * inChannels})`);
    if (options.stride !== 1 && options.stride !== 2) throw shapeError(`conv1d: stride ${String(options.stride)} is not 1 or 2`);
    if (frames === 0) throw shapeError('conv1d: the input has no frames');
    const outFrames = convOutputFrames(frames, options.stride);
    const width = 3 * inChannels;
    const patches = this.#withBlocks([x.length * 4, outFrames * width * 4], ([xAt, patchesAt]) => {
      this.#f32(xAt!, x.length).set(x);
      this.kernels.im2col(xAt!, inChannels, frames, options.stride, options.inputLayout === 'channels-first' ? 1 : 0, patchesAt!, 0, outFrames);
      return this.#f32(patchesAt!, outFrames * width).slice();
    });
    return this.matmul.matmul(patches, outFrames, packed, { ...(bias ? { bias } : {}), gelu: options.gelu === true });
  }

  /** WhisperOps.attention over q [sequences × queryRows, cols] and key/value [≥ stored rows, cols]. */
  attention(q: Float32Array, key: Float32Array, value: Float32Array, cols: number, call: AttentionCall): { output: Float32Array; weights?: Float32Array } {
    checkCount(cols, 'attention cols');
    if (cols === 0 || q.length % cols !== 0 || key.length % cols !== 0) throw shapeError(`attention: q of ${q.length} and key of ${key.length} values are not rows of ${cols}`);
    checkLength(value, key.length, 'attention value (must match key)');
    const { queryRows } = checkAttention(q.length / cols, key.length / cols, cols, call);
    const { heads, sequences, capacity, length, shared, causal, returnWeights } = call;
    const weightCount = returnWeights ? sequences * heads * queryRows * length : 0;
    const units = this.kernels.attentionWorkUnits(heads, sequences, queryRows);
    const packedBytes = this.kernels.attentionPackedKeyBytes(cols, heads, sequences, queryRows, length, shared ? 1 : 0, causal ? causal.queryOffset : -1, returnWeights ? 1 : 0);
    const sizes = [q.length * 4, key.length * 4, value.length * 4, q.length * 4, Math.max(weightCount, 1) * 4, this.kernels.attentionScratchBytes(), Math.max(packedBytes, 1)];
    return this.#withBlocks(sizes, ([qAt, keyAt, valueAt, outAt, weightsAt, scratchAt, packedAt]) => {
      this.#f32(qAt!, q.length).set(q);
      this.#f32(keyAt!, key.length).set(key);
      this.#f32(valueAt!, value.length).set(value);
      if (packedBytes > 0) {
        this.kernels.attentionPackKeys(keyAt!, valueAt!, packedAt!, cols, heads, capacity, length, 0, this.kernels.attentionPackUnits(heads, sequences, shared ? 1 : 0));
        this.kernels.attentionBlocked(qAt!, packedAt!, outAt!, cols, heads, sequences, queryRows, length, shared ? 1 : 0, scratchAt!, 0, units);
      } else {
        this.kernels.attention(
          qAt!, keyAt!, valueAt!, outAt!, returnWeights ? weightsAt! : 0,
          cols, heads, sequences, queryRows, capacity, length, shared ? 1 : 0, causal ? causal.queryOffset : -1,
          scratchAt!, 0, units,
        );
      }
      const output = this.#f32(outAt!, q.length).slice();
      return returnWeights ? { output, weights: this.#f32(weightsAt!, weightCount).slice() } : { output };
    });
  }

  /** x [rows, cols] + table rows 0..rows (table holds at least rows × cols values). */
  addPositionalEmbedding(x: Float32Array, rows: number, cols: number, table: Float32Array): Float32Array {
    checkCount(rows, 'addPositionalEmbedding rows');
    checkCount(cols, 'addPositionalEmbedding cols');
    checkLength(x, rows * cols, `addPositionalEmbedding input [${rows}, ${cols}]`);
    if (table.length < rows * cols || (cols > 0 && table.length % cols !== 0)) {
      throw shapeError(`addPositionalEmbedding: a table of ${table.length} values cannot cover [${rows}, ${cols}]`);
    }
    if (rows * cols === 0) return new Float32Array(0);
    return this.#withBlocks([x.length * 4, x.length * 4], ([xAt, tableAt]) => {
      this.#f32(xAt!, x.length).set(x);
      this.#f32(tableAt!, x.length).set(table.subarray(0, x.length));
      this.kernels.addPositionalEmbedding(xAt!, tableAt!, xAt!, cols, 0, rows);
      return this.#f32(xAt!, x.length).slice();
    });
  }

  /** tokenTable[tokens[i]] + positionTable[positions[i]]: tables are [entries, width] row-major. */
  embed(tokens: readonly number[], positions: readonly number[], tokenTable: Float32Array, positionTable: Float32Array, width: number): Float32Array {
    checkCount(width, 'embed width');
    if (width === 0 || tokenTable.length % width !== 0 || positionTable.length % width !== 0) {
      throw shapeError(`embed: tables of ${tokenTable.length} and ${positionTable.length} values are not rows of ${width}`);
    }
    if (tokens.length !== positions.length) throw shapeError(`embed: ${tokens.length} tokens but ${positions.length} positions`);
    const vocabulary = tokenTable.length / width;
    const contexts = positionTable.length / width;
    tokens.forEach((token) => {
      if (!Number.isInteger(token) || token < 0 || token >= vocabulary) throw shapeError(`embed: token id ${token} outside the vocabulary of ${vocabulary}`);
    });
    positions.forEach((position) => {
      if (!Number.isInteger(position) || position < 0 || position >= contexts) throw shapeError(`embed: position ${position} outside the context of ${contexts}`);
    });
    const n = tokens.length;
    if (n === 0) return new Float32Array(0);
    const sizes = [n * 4, n * 4, tokenTable.length * 4, positionTable.length * 4, n * width * 4];
    return this.#withBlocks(sizes, ([tokensAt, positionsAt, tokenTableAt, positionTableAt, outAt]) => {
      this.#i32(tokensAt!, n).set(tokens);
      this.#i32(positionsAt!, n).set(positions);
      this.#f32(tokenTableAt!, tokenTable.length).set(tokenTable);
      this.#f32(positionTableAt!, positionTable.length).set(positionTable);
      this.kernels.embed(tokensAt!, positionsAt!, tokenTableAt!, positionTableAt!, outAt!, width, 0, n);
      return this.#f32(outAt!, n * width).slice();
    });
  }

  /**
   * Top `topK` tokens per row of logits [rows, vocabulary] with their log-probabilities, after
   * suppressing every token whose mask byte is non-zero (mask: one row of `vocabulary` for all
   * rows, or rows × vocabulary). A NaN logit is an error.
   */
  logitsTopK(logits: Float32Array, rows: number, vocabulary: number, topK: number, mask?: Uint8Array): TopTokens {
    checkCount(rows, 'logitsTopK rows');
    checkCount(vocabulary, 'logitsTopK vocabulary');
    checkLength(logits, rows * vocabulary, `logitsTopK logits [${rows}, ${vocabulary}]`);
    const maxTopK = this.kernels.logitsMaxTopK();
    if (!Number.isInteger(topK) || topK < 1 || topK > maxTopK) throw shapeError(`logitsTopK: top ${topK} is outside 1..${maxTopK}`);
    if (mask && mask.length !== vocabulary && mask.length !== rows * vocabulary) {
      throw shapeError(`logitsTopK: a mask of ${mask.length} flags is neither one row of ${vocabulary} nor ${rows} rows`);
    }
    const perRow = mask !== undefined && mask.length === rows * vocabulary && rows > 1;
    const sizes = [logits.length * 4, mask ? mask.length : 1, rows * topK * 4, rows * topK * 4, rows * 4];
    const result = this.#withBlocks(sizes, ([logitsAt, maskAt, idsAt, logProbsAt, logSumExpAt]) => {
      this.#f32(logitsAt!, logits.length).set(logits);
      if (mask) new Uint8Array(this.heap.memory.buffer, maskAt!, mask.length).set(mask);
      this.kernels.logitsTopK(logitsAt!, vocabulary, mask ? maskAt! : 0, perRow ? vocabulary : 0, topK, idsAt!, logProbsAt!, logSumExpAt!, 0, rows);
      return {
        ids: this.#i32(idsAt!, rows * topK).slice(),
        logProbs: this.#f32(logProbsAt!, rows * topK).slice(),
        logSumExp: this.#f32(logSumExpAt!, rows).slice(),
      };
    });
    const bad = result.logSumExp.findIndex((v) => Number.isNaN(v));
    if (bad !== -1) throw new MurmurError('NUMERIC', `logits row ${bad} contains a NaN`);
    return result;
  }
}

export interface WasmKernelsOptions {
  /** true: relaxed SIMD (fails where unsupported); false: plain SIMD128; absent: relaxed where it validates. */
  relaxed?: boolean;
}

/** One single-threaded instance of the kernels module in a memory of its own. */
export async function createWasmKernels(options: WasmKernelsOptions = {}): Promise<WasmKernels> {
  const { variant, exports, memory, heapBase } = await loadKernel('kernels', KERNEL_BUILDS, options.relaxed);
  return new WasmKernels(variant, exports, new WasmHeap(memory, heapBase));
}
