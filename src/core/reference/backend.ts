/**
 * The reference backend: every op of WhisperOps in plain TypeScript over Float32Arrays.
 *
 * It is the oracle every fast kernel is tested against, so it is written to be read: one loop
 * nest per op, sums accumulated in double, weights read a few rows at a time in their stored
 * dtype. It is not gratuitously slow either: weight rows are decoded once per block and dotted
 * against every activation row while they are hot, and nothing allocates per element.
 */
import type { AttentionKeyValues, AttentionOptions, AttentionResult, Conv1dOptions, Epilogue, WhisperBackend, WhisperOps } from '../model/ops.ts';
import type { LayerNormWeights, LinearWeights, WeightTensor } from '../model/weights.ts';
import { RefTensor, shapeError } from './tensor.ts';
import { asMatrix, readRows, readVector, rowLength } from './weight-rows.ts';
import { gelu } from './math.ts';
import { selectTokensOnHost } from '../decoding/select-tokens.ts';

const LAYER_NORM_EPS = 1e-5;
/** Weight rows decoded per block: about 64 KiB of f32, small enough to stay in cache. */
const BLOCK_VALUES = 16384;

/**
 * out[r, o] = x[r, :] · weight[o, :] + bias[o]. The weight is [out, in] with rows contiguous,
 * so each output is a dot product of two contiguous rows; looping weight-row blocks outermost
 * streams the weight once while the activation rows are reused from cache.
 */
function matmulTransposed(x: Float32Array, rows: number, weight: WeightTensor, bias: Float32Array | undefined): Float32Array {
  const [outDim, inDim] = weight.shape as [number, number];
  const out = new Float32Array(rows * outDim);
  const blockRows = Math.max(1, Math.min(outDim, Math.floor(BLOCK_VALUES / inDim)));
  const scratch = new Float32Array(blockRows * inDim);
  for (let o0 = 0; o0 < outDim; o0 += blockRows) {
    const count = Math.min(blockRows, outDim - o0);
    const w = readRows(weight, o0, count, scratch);
    for (let r = 0; r < rows; r++) {
      const xBase = r * inDim;
      const outBase = r * outDim + o0;
      for (let j = 0; j < count; j++) {
        const wBase = j * inDim;
        // Four partial sums: shorter dependency chains, same result up to rounding order in double.
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        let i = 0;
        for (; i + 3 < inDim; i += 4) {
          s0 += x[xBase + i]! * w[wBase + i]!;
          s1 += x[xBase + i + 1]! * w[wBase + i + 1]!;
          s2 += x[xBase + i + 2]! * w[wBase + i + 2]!;
          s3 += x[xBase + i + 3]! * w[wBase + i + 3]!;
        }
        for (; i < inDim; i++) s0 += x[xBase + i]! * w[wBase + i]!;
        out[outBase + j] = s0 + s1 + (s2 + s3) + (bias ? bias[o0 + j]! : 0);
      }
    }
  }
  return out;
}

function applyEpilogue(out: Float32Array, rows: number, cols: number, epilogue: Epilogue<RefTensor> | undefined): void {
  if (epilogue?.gelu) for (let i = 0; i < out.length; i++) out[i] = gelu(out[i]!);
  const residual = epilogue?.residual;
  if (residual) {
    if (residual.rows !== rows || residual.cols !== cols) {
      throw shapeError(`residual [${residual.rows}, ${residual.cols}] does not match the output [${rows}, ${cols}]`);
    }
    const r = residual.data;
    for (let i = 0; i < out.length; i++) out[i] = out[i]! + r[i]!;
  }
}

function biasOf(w: LinearWeights<WeightTensor>, outDim: number): Float32Array | undefined {
  if (!w.bias) return undefined;
  const bias = readVector(w.bias);
  if (bias.length !== outDim) throw shapeError(`bias of ${bias.length} values for ${outDim} outputs`);
  return bias;
}

function linear(x: RefTensor, w: LinearWeights<WeightTensor>, epilogue?: Epilogue<RefTensor>): RefTensor {
  if (w.weight.shape.length !== 2) throw shapeError(`linear weight must be 2-D, got [${w.weight.shape}]`);
  const [outDim, inDim] = w.weight.shape as [number, number];
  if (x.cols !== inDim) throw shapeError(`linear: input [${x.rows}, ${x.cols}] against weight [${outDim}, ${inDim}]`);
  const out = matmulTransposed(x.data, x.rows, w.weight, biasOf(w, outDim));
  applyEpilogue(out, x.rows, outDim, epilogue);
  return new RefTensor(out, x.rows, outDim);
}

/**
 * Kernel-3 convolution as a matrix product: each output frame's receptive field (in channels ×
 * 3 taps, zero-padded at the edges) is gathered into a row laid out like the weight's [in, 3].
 */
function conv1d(x: RefTensor, w: LinearWeights<WeightTensor>, options: Conv1dOptions): RefTensor {
  const [outChannels, inChannels, kernel] = w.weight.shape as [number, number, number];
  if (w.weight.shape.length !== 3 || kernel !== 3) throw shapeError(`conv1d weight must be [out, in, 3], got [${w.weight.shape}]`);
  const channelsFirst = options.inputLayout === 'channels-first';
  const frames = channelsFirst ? x.cols : x.rows;
  const xChannels = channelsFirst ? x.rows : x.cols;
  if (xChannels !== inChannels) throw shapeError(`conv1d: input has ${xChannels} channels, weight [${w.weight.shape}] expects ${inChannels}`);
  const { stride } = options;
  const outFrames = Math.floor((frames - 1) / stride) + 1;
  const patchWidth = inChannels * 3;
  const patches = new Float32Array(outFrames * patchWidth);
  const data = x.data;
  for (let t = 0; t < outFrames; t++) {
    const base = t * patchWidth;
    for (let c = 0; c < inChannels; c++) {
      for (let k = 0; k < 3; k++) {
        const source = t * stride + k - 1;
        if (source < 0 || source >= frames) continue;
        patches[base + c * 3 + k] = channelsFirst ? data[c * frames + source]! : data[source * inChannels + c]!;
      }
    }
  }
  const out = matmulTransposed(patches, outFrames, asMatrix(w.weight, outChannels, patchWidth), biasOf(w, outChannels));
  applyEpilogue(out, outFrames, outChannels, { gelu: options.gelu });
  return new RefTensor(out, outFrames, outChannels);
}

function addPositionalEmbedding(x: RefTensor, table: WeightTensor): RefTensor {
  const tableRows = table.shape[0] ?? 0;
  if (rowLength(table) !== x.cols || tableRows < x.rows) {
    throw shapeError(`positional embedding [${table.shape}] cannot cover an input of [${x.rows}, ${x.cols}]`);
  }
  const positions = readRows(table, 0, x.rows, new Float32Array(x.rows * x.cols));
  const out = new Float32Array(x.data);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! + positions[i]!;
  return new RefTensor(out, x.rows, x.cols);
}

function layerNorm(x: RefTensor, w: LayerNormWeights<WeightTensor>): RefTensor {
  const gamma = readVector(w.weight);
  const beta = readVector(w.bias);
  const n = x.cols;
  if (gamma.length !== n || beta.length !== n) throw shapeError(`layer norm of ${gamma.length} channels on rows of ${n}`);
  const data = x.data;
  const out = new Float32Array(data.length);
  for (let r = 0; r < x.rows; r++) {
    const base = r * n;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += data[base + i]!;
    const mean = sum / n;
    let squares = 0;
    for (let i = 0; i < n; i++) {
      const d = data[base + i]! - mean;
      squares += d * d;
    }
    const inverseStd = 1 / Math.sqrt(squares / n + LAYER_NORM_EPS);
    for (let i = 0; i < n; i++) out[base + i] = (data[base + i]! - mean) * inverseStd * gamma[i]! + beta[i]!;
  }
  return new RefTensor(out, x.rows, n);
}

function attention(q: RefTensor, kv: AttentionKeyValues<RefTensor>, options: AttentionOptions): AttentionResult<RefTensor> {
  const { heads, sequences, causal, returnWeights } = options;
  const { capacity, length, shared } = kv;
  const cols = q.cols;
  const headDim = cols / heads;
  if (!Number.isInteger(headDim)) throw shapeError(`attention: ${cols} channels do not split into ${heads} heads`);
  const queryRows = q.rows / sequences;
  if (!Number.isInteger(queryRows)) throw shapeError(`attention: ${q.rows} query rows do not split into ${sequences} sequences`);
  const storedRows = shared ? capacity : sequences * capacity;
  for (const [name, t] of [['key', kv.key], ['value', kv.value]] as const) {
    if (t.cols !== cols || t.rows < storedRows) throw shapeError(`attention: ${name} [${t.rows}, ${t.cols}] cannot hold ${storedRows} rows of ${cols}`);
  }
  if (length < 1 || length > capacity) throw shapeError(`attention: ${length} valid keys in a capacity of ${capacity}`);
  if (causal && causal.queryOffset + queryRows > length) {
    throw shapeError(`attention: queries at positions ${causal.queryOffset}..${causal.queryOffset + queryRows - 1} need ${causal.queryOffset + queryRows} keys, only ${length} are valid`);
  }

  const qData = q.data;
  const kData = kv.key.data;
  const vData = kv.value.data;
  const out = new Float32Array(q.rows * cols);
  const weights = returnWeights ? new Float32Array(sequences * heads * queryRows * length) : undefined;
  const scale = 1 / Math.sqrt(headDim);
  const scores = new Float64Array(length);
  const mixed = new Float64Array(headDim);

  for (let s = 0; s < sequences; s++) {
    const keyBase = shared ? 0 : s * capacity;
    for (let h = 0; h < heads; h++) {
      const channel = h * headDim;
      for (let i = 0; i < queryRows; i++) {
        const visible = causal ? causal.queryOffset + i + 1 : length;
        const qBase = (s * queryRows + i) * cols + channel;
        let max = -Infinity;
        for (let j = 0; j < visible; j++) {
          const kBase = (keyBase + j) * cols + channel;
          let d0 = 0;
          let d1 = 0;
          let c = 0;
          for (; c + 1 < headDim; c += 2) {
            d0 += qData[qBase + c]! * kData[kBase + c]!;
            d1 += qData[qBase + c + 1]! * kData[kBase + c + 1]!;
          }
          if (c < headDim) d0 += qData[qBase + c]! * kData[kBase + c]!;
          const score = (d0 + d1) * scale;
          scores[j] = score;
          if (score > max) max = score;
        }
        let total = 0;
        for (let j = 0; j < visible; j++) {
          const e = Math.exp(scores[j]! - max);
          scores[j] = e;
          total += e;
        }
        mixed.fill(0);
        for (let j = 0; j < visible; j++) {
          const p = scores[j]! / total;
          scores[j] = p;
          const vBase = (keyBase + j) * cols + channel;
          for (let c = 0; c < headDim; c++) mixed[c] = mixed[c]! + p * vData[vBase + c]!;
        }
        for (let c = 0; c < headDim; c++) out[qBase + c] = mixed[c]!;
        if (weights) {
          const wBase = ((s * heads + h) * queryRows + i) * length;
          for (let j = 0; j < visible; j++) weights[wBase + j] = scores[j]!;
        }
      }
    }
  }
  return {
    output: new RefTensor(out, q.rows, cols),
    ...(weights ? { weights: new RefTensor(weights, sequences * heads * queryRows, length) } : {}),
  };
}

function embed(tokens: readonly number[], positions: readonly number[], tokenEmbedding: WeightTensor, positionalEmbedding: WeightTensor): RefTensor {
  if (tokens.length !== positions.length) throw shapeError(`embed: ${tokens.length} tokens but ${positions.length} positions`);
  const width = rowLength(tokenEmbedding);
  if (rowLength(positionalEmbedding) !== width) throw shapeError(`embed: token rows of ${width} but positional rows of ${rowLength(positionalEmbedding)}`);
  const vocabulary = tokenEmbedding.shape[0] ?? 0;
  const contexts = positionalEmbedding.shape[0] ?? 0;
  const out = new Float32Array(tokens.length * width);
  const tokenRow = new Float32Array(width);
  const positionRow = new Float32Array(width);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const position = positions[i]!;
    if (!Number.isInteger(token) || token < 0 || token >= vocabulary) throw shapeError(`embed: token id ${token} outside the vocabulary of ${vocabulary}`);
    if (!Number.isInteger(position) || position < 0 || position >= contexts) throw shapeError(`embed: position ${position} outside the context of ${contexts}`);
    const t = readRows(tokenEmbedding, token, 1, tokenRow);
    const p = readRows(positionalEmbedding, position, 1, positionRow);
    for (let c = 0; c < width; c++) out[i * width + c] = t[c]! + p[c]!;
  }
  return new RefTensor(out, tokens.length, width);
}

function writeCache(cache: RefTensor, x: RefTensor, options: { sequences: number; capacity: number; offset: number }): void {
  const { sequences, capacity, offset } = options;
  const n = x.rows / sequences;
  if (!Number.isInteger(n) || x.cols !== cache.cols || cache.rows < sequences * capacity) {
    throw shapeError(`writeCache: [${x.rows}, ${x.cols}] into a cache [${cache.rows}, ${cache.cols}] of ${sequences} × ${capacity} rows`);
  }
  if (offset < 0 || offset + n > capacity) throw shapeError(`writeCache: rows ${offset}..${offset + n - 1} exceed the capacity of ${capacity}`);
  const source = x.data;
  const target = cache.data;
  const cols = x.cols;
  for (let s = 0; s < sequences; s++) {
    target.set(source.subarray(s * n * cols, (s + 1) * n * cols), (s * capacity + offset) * cols);
  }
}

function reorderCache(cache: RefTensor, order: readonly number[], options: { capacity: number; length: number }): void {
  const { capacity, length } = options;
  const sequences = order.length;
  if (cache.rows < sequences * capacity || length > capacity) throw shapeError(`reorderCache: cache [${cache.rows}, ${cache.cols}] for ${sequences} × ${capacity} rows`);
  const cols = cache.cols;
  const before = cache.data.slice(0, sequences * capacity * cols);
  for (let s = 0; s < sequences; s++) {
    const from = order[s]!;
    if (!Number.isInteger(from) || from < 0 || from >= sequences) throw shapeError(`reorderCache: sequence ${from} does not exist`);
    cache.data.set(before.subarray(from * capacity * cols, (from * capacity + length) * cols), s * capacity * cols);
  }
}

function gatherRows(x: RefTensor, rows: readonly number[]): RefTensor {
  const cols = x.cols;
  const out = new Float32Array(rows.length * cols);
  rows.forEach((row, i) => {
    if (!Number.isInteger(row) || row < 0 || row >= x.rows) throw shapeError(`gatherRows: row ${row} of a [${x.rows}, ${cols}] tensor`);
    out.set(x.data.subarray(row * cols, (row + 1) * cols), i * cols);
  });
  return new RefTensor(out, rows.length, cols);
}

export const referenceOps: WhisperOps<RefTensor, WeightTensor> = {
  upload: (values, rows, cols) => new RefTensor(Float32Array.from(values), rows, cols),
  zeros: (rows, cols) => new RefTensor(new Float32Array(rows * cols), rows, cols),
  read: async (x) => x.data.slice(),
  shape: (x) => [x.rows, x.cols],
  release: (x) => x.release(),
  conv1d,
  addPositionalEmbedding,
  layerNorm,
  linear,
  attention,
  embed,
  writeCache,
  reorderCache,
  gatherRows,
  selectTokens: async (x, request) => selectTokensOnHost(x.data, x.rows, x.cols, request),
};

/** The reference backend: weights stay the loaded WeightTensors, read in their own dtype. */
export function createReferenceBackend(): WhisperBackend<RefTensor, WeightTensor> {
  return {
    name: 'reference',
    ops: referenceOps,
    prepareWeights: async (_dims, weights) => weights,
    releaseWeights: () => {},
    dispose: () => {},
  };
}
