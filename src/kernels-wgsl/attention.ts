/**
 * Fused multi-head attention on WebGPU, with WhisperOps.attention's semantics: softmax(q·kᵀ/√d
 * [+ causal mask])·v per head, for the encoder (every key), decoder self-attention over a KV
 * cache (causal, `length` of `capacity` rows valid per sequence) and cross-attention whose K/V
 * every sequence shares.
 *
 * Flash-style: a workgroup owns a block of query rows of one head of one sequence and streams
 * the keys through workgroup memory a tile at a time, keeping a running max and sum per row
 * (online softmax) and rescaling its partial output, so the score matrix never exists in memory.
 * Returning the softmax weights (word timestamps) adds a second sweep over the keys once each
 * row's max and sum are final.
 * Sequences that share their keys without a causal mask (cross-attention under beam search)
 * are folded into one block of rows, so each key tile is read once for all of them.
 */
import { readFloat32 } from './device.ts';
import { kernelVariants, type AttentionVariant } from './variants.ts';
import {
  cachedPipeline,
  checkBuffer,
  checkCount,
  createStorage,
  destroyAll,
  f32Bits,
  recordDispatch,
  runRecorded,
  shapeError,
  uniformWords,
  uploadStorage,
  type GpuRecording,
} from './wgsl-common.ts';

const KERNEL = 'attention';
const WORKGROUP = 64;
/** Workgroup memory the tiles may use: WebGPU's guaranteed minimum, so any device runs them. */
const WORKGROUP_BYTES = 16384;
export const ATTENTION_MAX_HEAD_DIM = 256;

export interface AttentionArgs {
  /** [sequences × queryRows, heads × headDim] f32. */
  q: GPUBuffer;
  /** Rows of q: sequences × queryRows. */
  rows: number;
  /** heads × headDim: the width of q, key, value and output. */
  cols: number;
  heads: number;
  /** Sequences stacked in q (sequence-major). */
  sequences: number;
  /** [capacity rows (shared) or sequences × capacity rows, cols] f32. */
  key: GPUBuffer;
  value: GPUBuffer;
  capacity: number;
  /** Valid key rows per sequence, from the first. */
  length: number;
  shared: boolean;
  /** Query row i of a sequence sits at position queryOffset + i and sees keys 0..queryOffset+i. */
  causal?: { queryOffset: number };
  /** [rows, cols] f32; must not be an input. */
  output: GPUBuffer;
  /** When given, receives the softmax weights [sequences × heads × queryRows, length]. */
  weights?: GPUBuffer;
  /** Overrides the device's chosen variant (kernelVariants). */
  variant?: AttentionVariant;
}

interface AttentionShape {
  headDim: number;
  /** Query rows per workgroup. */
  blockRows: number;
  /** Keys per tile in workgroup memory. */
  tileKeys: number;
  returnWeights: boolean;
}

/** Query rows per workgroup: small blocks for decoding steps, larger ones for prompts and the encoder. */
function blockRowsFor(queryRows: number): number {
  if (queryRows >= 8) return 16;
  return queryRows >= 2 ? 4 : 1;
}

/** Head channels in vec4 groups; a head size that is not a multiple of 4 is zero-padded in the tiles. */
function quads(headDim: number): number {
  return Math.ceil(headDim / 4);
}

function kvStride(headDim: number): number {
  // An odd row stride (in vec4s) spreads the score phase's per-key reads over the memory banks.
  const q = quads(headDim);
  return q % 2 === 0 ? q + 1 : q;
}

function workgroupBytes(headDim: number, blockRows: number, tileKeys: number): number {
  return 16 * (blockRows * quads(headDim) + tileKeys * kvStride(headDim)) + 4 * (blockRows * tileKeys + 2 * blockRows);
}

export function attentionShape(headDim: number, queryRows: number, returnWeights: boolean): AttentionShape {
  let blockRows = blockRowsFor(queryRows);
  let tileKeys = 64;
  while (tileKeys > 4 && workgroupBytes(headDim, blockRows, tileKeys) > WORKGROUP_BYTES) tileKeys /= 2;
  while (blockRows > 1 && workgroupBytes(headDim, blockRows, tileKeys) > WORKGROUP_BYTES) blockRows /= 4;
  return { headDim, blockRows, tileKeys, returnWeights };
}

export function attentionShader({ headDim, blockRows, tileKeys, returnWeights }: AttentionShape): string {
  const headQuads = quads(headDim);
  const stride = kvStride(headDim);
  const outputsPerThread = Math.ceil((blockRows * headQuads) / WORKGROUP);
  const scoresPerThread = Math.ceil((blockRows * tileKeys) / WORKGROUP);
  return /* wgsl */ `
struct Params {
  // Query rows per workgroup-grid sequence (all rows when shared keys let the sequences fold into one).
  queryRows: u32,
  // Query rows per real sequence: the weights are laid out by it.
  rowsPerSequence: u32,
  heads: u32,
  // Rows between sequences in key/value: the capacity, or 0 when every sequence shares them.
  sequenceKeyRows: u32,
  length: u32,
  causal: u32,
  queryOffset: u32,
  cols: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> keys: array<f32>;
@group(0) @binding(3) var<storage, read> values: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;
${returnWeights ? '@group(0) @binding(5) var<storage, read_write> weights: array<f32>;' : ''}

const HEAD_DIM = ${headDim}u;
const HEAD_QUADS = ${headQuads}u;
const BLOCK_ROWS = ${blockRows}u;
const TILE_KEYS = ${tileKeys}u;
const KV_STRIDE = ${stride}u;
const WORKGROUP = ${WORKGROUP}u;
// Stands in for -inf (which WGSL cannot spell): exp() of it minus any real score is 0, and
// exp(MASKED - MASKED) is 1, so rows that have seen no key yet never produce NaN.
const MASKED = -3.0e38;

// Tiles hold vec4s of head channels: a quarter of the workgroup-memory loads per multiply-add.
var<workgroup> queryTile: array<vec4f, ${blockRows * headQuads}>;
var<workgroup> keyValueTile: array<vec4f, ${tileKeys * stride}>;
var<workgroup> scores: array<f32, ${blockRows * tileKeys}>;
var<workgroup> rowCorrection: array<f32, ${blockRows}>;
var<workgroup> rowSum: array<f32, ${blockRows}>;
${returnWeights ? `var<workgroup> rowMax: array<f32, ${blockRows}>;` : ''}

/** How many keys query row \`row\` of a sequence sees (0 for rows past the end). */
fn visibleKeys(row: u32) -> u32 {
  if (row >= params.queryRows) { return 0u; }
  if (params.causal != 0u) { return min(params.queryOffset + row + 1u, params.length); }
  return params.length;
}
${['q', 'keys', 'values'].map((source) => /* wgsl */ `
/** Channels 4·quad.. of a head in row \`row\` of ${source}, zero past the head size. */
fn quad_${source}(row: u32, channel: u32, quad: u32) -> vec4f {
  let base = row * params.cols + channel + quad * 4u;
  var v = vec4f(0.0);
  for (var c = 0u; c < 4u; c++) {
    if (quad * 4u + c < HEAD_DIM) { v[c] = ${source}[base + c]; }
  }
  return v;
}
`).join('')}
${['keys', 'values'].map((source) => /* wgsl */ `
fn load_${source}(keyBase: u32, firstKey: u32, channel: u32, local: u32) {
  for (var i = local; i < TILE_KEYS * HEAD_QUADS; i += WORKGROUP) {
    let key = firstKey + i / HEAD_QUADS;
    var v = vec4f(0.0);
    if (key < params.length) { v = quad_${source}(keyBase + key, channel, i % HEAD_QUADS); }
    keyValueTile[(i / HEAD_QUADS) * KV_STRIDE + i % HEAD_QUADS] = v;
  }
}
`).join('')}

fn score(r: u32, j: u32) -> f32 {
  var total = 0.0;
  for (var d = 0u; d < HEAD_QUADS; d++) { total += dot(queryTile[r * HEAD_QUADS + d], keyValueTile[j * KV_STRIDE + d]); }
  return total;
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) local: u32) {
  let firstRow = group.x * BLOCK_ROWS;
  let head = group.y;
  let sequence = group.z;
  let channel = head * HEAD_DIM;
  let keyBase = sequence * params.sequenceKeyRows;
  let queryBase = sequence * params.queryRows;

  for (var i = local; i < BLOCK_ROWS * HEAD_QUADS; i += WORKGROUP) {
    let row = firstRow + i / HEAD_QUADS;
    var v = vec4f(0.0);
    if (row < params.queryRows) { v = quad_q(queryBase + row, channel, i % HEAD_QUADS) * params.scale; }
    queryTile[i] = v;
  }

  // Visible keys grow with the row, so the block's last row bounds the keys any row needs.
  let lastRow = min(firstRow + BLOCK_ROWS, params.queryRows) - 1u;
  let tiles = (visibleKeys(lastRow) + TILE_KEYS - 1u) / TILE_KEYS;
  let myVisible = visibleKeys(firstRow + local);
  var runningMax = MASKED;
  var runningSum = 0.0;
  var acc: array<vec4f, ${outputsPerThread}>;

  for (var tile = 0u; tile < tiles; tile++) {
    let firstKey = tile * TILE_KEYS;
    workgroupBarrier();
    load_keys(keyBase, firstKey, channel, local);
    workgroupBarrier();
    for (var s = 0u; s < ${scoresPerThread}u; s++) {
      let index = local + s * WORKGROUP;
      if (index < BLOCK_ROWS * TILE_KEYS) { scores[index] = score(index / TILE_KEYS, index % TILE_KEYS); }
    }
    workgroupBarrier();
    // The keys are no longer needed: their tile now takes the values, while each row's owner
    // folds the tile's scores into its running max and sum.
    load_values(keyBase, firstKey, channel, local);
    if (local < BLOCK_ROWS) {
      let limit = min(TILE_KEYS, myVisible - min(myVisible, firstKey));
      var tileMax = MASKED;
      for (var j = 0u; j < limit; j++) { tileMax = max(tileMax, scores[local * TILE_KEYS + j]); }
      let newMax = max(runningMax, tileMax);
      let correction = exp(runningMax - newMax);
      var sum = 0.0;
      for (var j = 0u; j < TILE_KEYS; j++) {
        var p = 0.0;
        if (j < limit) { p = exp(scores[local * TILE_KEYS + j] - newMax); }
        scores[local * TILE_KEYS + j] = p;
        sum += p;
      }
      runningSum = runningSum * correction + sum;
      runningMax = newMax;
      rowCorrection[local] = correction;
    }
    workgroupBarrier();
    for (var o = 0u; o < ${outputsPerThread}u; o++) {
      let index = local + o * WORKGROUP;
      if (index < BLOCK_ROWS * HEAD_QUADS) {
        let r = index / HEAD_QUADS;
        let d = index % HEAD_QUADS;
        var mixed = acc[o] * rowCorrection[r];
        for (var j = 0u; j < TILE_KEYS; j++) { mixed += scores[r * TILE_KEYS + j] * keyValueTile[j * KV_STRIDE + d]; }
        acc[o] = mixed;
      }
    }
  }

  if (local < BLOCK_ROWS) {
    rowSum[local] = runningSum;
    ${returnWeights ? 'rowMax[local] = runningMax;' : ''}
  }
  workgroupBarrier();
  for (var o = 0u; o < ${outputsPerThread}u; o++) {
    let index = local + o * WORKGROUP;
    let row = firstRow + index / HEAD_QUADS;
    if (index < BLOCK_ROWS * HEAD_QUADS && row < params.queryRows) {
      let mixed = acc[o] / rowSum[index / HEAD_QUADS];
      let base = (queryBase + row) * params.cols + channel + (index % HEAD_QUADS) * 4u;
      for (var c = 0u; c < 4u; c++) {
        if ((index % HEAD_QUADS) * 4u + c < HEAD_DIM) { output[base + c] = mixed[c]; }
      }
    }
  }
${returnWeights ? WEIGHTS_SWEEP(scoresPerThread) : ''}
}
`;
}

/** The second sweep: recompute each score exactly as before and normalise it with the row's final max and sum. */
const WEIGHTS_SWEEP = (scoresPerThread: number) => /* wgsl */ `
  let weightTiles = (params.length + TILE_KEYS - 1u) / TILE_KEYS;
  for (var tile = 0u; tile < weightTiles; tile++) {
    let firstKey = tile * TILE_KEYS;
    workgroupBarrier();
    load_keys(keyBase, firstKey, channel, local);
    workgroupBarrier();
    for (var s = 0u; s < ${scoresPerThread}u; s++) {
      let index = local + s * WORKGROUP;
      let r = index / TILE_KEYS;
      let key = firstKey + index % TILE_KEYS;
      let row = firstRow + r;
      if (index < BLOCK_ROWS * TILE_KEYS && row < params.queryRows && key < params.length) {
        var weight = 0.0;
        if (key < visibleKeys(row)) { weight = exp(score(r, index % TILE_KEYS) - rowMax[r]) / rowSum[r]; }
        let absoluteRow = queryBase + row;
        let weightRow = ((absoluteRow / params.rowsPerSequence) * params.heads + head) * params.rowsPerSequence + absoluteRow % params.rowsPerSequence;
        weights[weightRow * params.length + key] = weight;
      }
    }
  }
`;

/** Invocations per workgroup of the row variant. */
const ROW_WORKGROUP = 64;
/** Query rows each invocation of a row variant owns: they share every key and value read. */
export function attentionRowsPerThread(variant: AttentionVariant): number {
  return variant === 'rows8' ? 8 : variant === 'rows4' ? 4 : variant === 'rows2' ? 2 : 1;
}

/**
 * The row variant, for adapters that emulate workgroups on a CPU (variants.ts): each invocation
 * owns 2, 4 or 8 query rows of one head and streams every key and value it needs
 * straight from storage, with the online softmax in registers: no workgroup memory, no barriers.
 * The running output is rescaled only when a row's max grows, which after the first keys is rare.
 */
export function attentionRowShader(headDim: number, returnWeights: boolean, rowsPerThread: number): string {
  const headQuads = quads(headDim);
  const rows = Array.from({ length: rowsPerThread }, (_, r) => r);
  const ds = Array.from({ length: headQuads }, (_, d) => d);
  // Whole vec4 loads when every head starts 16-byte aligned; otherwise guarded scalar loads.
  const vectorised = headDim % 4 === 0;
  const element = vectorised ? 'vec4f' : 'f32';
  // Everything is unrolled over the head's quads: a private array indexed in a loop is a
  // per-lane gather on SIMD CPU emulations, named registers are not.
  const each = <T,>(items: T[], line: (item: T) => string) => items.map(line).join('\n');
  const pairs = rows.flatMap((r) => ds.map((d) => ({ r, d })));
  return /* wgsl */ `
struct Params {
  queryRows: u32,
  rowsPerSequence: u32,
  heads: u32,
  sequenceKeyRows: u32,
  length: u32,
  causal: u32,
  queryOffset: u32,
  cols: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<${element}>;
@group(0) @binding(2) var<storage, read> keys: array<${element}>;
@group(0) @binding(3) var<storage, read> values: array<${element}>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;
${returnWeights ? '@group(0) @binding(5) var<storage, read_write> weights: array<f32>;' : ''}

const HEAD_DIM = ${headDim}u;
const MASKED = -3.0e38;

fn visibleKeys(row: u32) -> u32 {
  if (row >= params.queryRows) { return 0u; }
  if (params.causal != 0u) { return min(params.queryOffset + row + 1u, params.length); }
  return params.length;
}
${['q', 'keys', 'values'].map((source) => /* wgsl */ `
fn quad_${source}(row: u32, channel: u32, quad: u32) -> vec4f {
${
  vectorised
    ? `  return ${source}[(row * params.cols + channel) / 4u + quad];`
    : `  let base = row * params.cols + channel + quad * 4u;
  var v = vec4f(0.0);
  for (var c = 0u; c < 4u; c++) {
    if (quad * 4u + c < HEAD_DIM) { v[c] = ${source}[base + c]; }
  }
  return v;`
}
}
`).join('')}

@compute @workgroup_size(${ROW_WORKGROUP})
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) local: u32) {
  let firstRow = (group.x * ${ROW_WORKGROUP}u + local) * ${rowsPerThread}u;
  if (firstRow >= params.queryRows) { return; }
  let head = group.y;
  let sequence = group.z;
  let channel = head * HEAD_DIM;
  let keyBase = sequence * params.sequenceKeyRows;
  let queryBase = sequence * params.queryRows;
${each(rows, (r) => `  let visible${r} = visibleKeys(firstRow + ${r}u);
  // Rows past the end read the block's first row (valid memory) and are never stored.
  let queryRow${r} = queryBase + select(firstRow, firstRow + ${r}u, visible${r} > 0u);
  var max${r} = MASKED;
  var sum${r} = 0.0;`)}
${each(pairs, ({ r, d }) => `  let q${r}_${d} = quad_q(queryRow${r}, channel, ${d}u) * params.scale;
  var acc${r}_${d} = vec4f(0.0);`)}
  // Rows later in the block see at least as many keys (causal), so the largest count bounds the loop.
  let keyCount = ${rows.slice(1).reduce((acc, r) => `max(${acc}, visible${r})`, 'visible0')};
  for (var key = 0u; key < keyCount; key++) {
    let keyRow = keyBase + key;
${each(ds, (d) => `    let k${d} = quad_keys(keyRow, channel, ${d}u);`)}
${each(rows, (r) => `    var score${r} = ${ds.map((d) => `dot(q${r}_${d}, k${d})`).join(' + ')};
    if (key >= visible${r}) { score${r} = MASKED; }
    if (score${r} > max${r}) {
      let correction = exp(max${r} - score${r});
${each(ds, (d) => `      acc${r}_${d} *= correction;`)}
      sum${r} *= correction;
      max${r} = score${r};
    }
    let p${r} = select(0.0, exp(score${r} - max${r}), key < visible${r});
    sum${r} += p${r};`)}
${each(ds, (d) => `    let v${d} = quad_values(keyRow, channel, ${d}u);
${each(rows, (r) => `    acc${r}_${d} = fma(vec4f(p${r}), v${d}, acc${r}_${d});`)}`)}
  }
${each(rows, (r) => `  if (visible${r} > 0u) {
    let base = (queryBase + firstRow + ${r}u) * params.cols + channel;
${each(ds, (d) => `    {
      let mixed = acc${r}_${d} / sum${r};
${each([0, 1, 2, 3].filter((c) => d * 4 + c < headDim), (c) => `      output[base + ${d * 4 + c}u] = mixed[${c}];`)}
    }`)}
  }`)}
${
  returnWeights
    ? each(rows, (r) => `  if (visible${r} > 0u) {
    let absoluteRow = queryBase + firstRow + ${r}u;
    let weightRow = ((absoluteRow / params.rowsPerSequence) * params.heads + head) * params.rowsPerSequence + absoluteRow % params.rowsPerSequence;
    for (var key = 0u; key < params.length; key++) {
      var weight = 0.0;
      if (key < visible${r}) {
        let score = ${ds.map((d) => `dot(q${r}_${d}, quad_keys(keyBase + key, channel, ${d}u))`).join(' + ')};
        weight = exp(score - max${r}) / sum${r};
      }
      weights[weightRow * params.length + key] = weight;
    }
  }`)
    : ''
}
}
`;
}

/** Checks the arguments against each other and returns headDim and queryRows. */
function checkArgs(args: AttentionArgs): { headDim: number; queryRows: number } {
  const { rows, cols, heads, sequences, capacity, length, shared, causal } = args;
  for (const [name, value] of [['rows', rows], ['cols', cols], ['heads', heads], ['sequences', sequences], ['capacity', capacity], ['length', length]] as const) {
    checkCount(KERNEL, name, value);
  }
  const headDim = cols / heads;
  if (!Number.isInteger(headDim)) throw shapeError(`${KERNEL}: ${cols} channels do not split into ${heads} heads`);
  if (headDim > ATTENTION_MAX_HEAD_DIM) throw shapeError(`${KERNEL}: head size ${headDim} is above the supported ${ATTENTION_MAX_HEAD_DIM}`);
  const queryRows = rows / sequences;
  if (!Number.isInteger(queryRows)) throw shapeError(`${KERNEL}: ${rows} query rows do not split into ${sequences} sequences`);
  if (length > capacity) throw shapeError(`${KERNEL}: ${length} valid keys in a capacity of ${capacity}`);
  if (causal) {
    checkCount(KERNEL, 'causal.queryOffset', causal.queryOffset, 0);
    if (causal.queryOffset + queryRows > length) {
      throw shapeError(`${KERNEL}: queries at positions ${causal.queryOffset}..${causal.queryOffset + queryRows - 1} need ${causal.queryOffset + queryRows} keys, only ${length} are valid`);
    }
  }
  const storedRows = shared ? capacity : sequences * capacity;
  checkBuffer(KERNEL, 'q', args.q, rows * cols);
  checkBuffer(KERNEL, 'key', args.key, storedRows * cols);
  checkBuffer(KERNEL, 'value', args.value, storedRows * cols);
  checkBuffer(KERNEL, 'output', args.output, rows * cols);
  if (args.weights) checkBuffer(KERNEL, 'weights', args.weights, sequences * heads * queryRows * length);
  for (const input of [args.q, args.key, args.value]) {
    if (input === args.output || input === args.weights) throw shapeError(`${KERNEL}: an output buffer is also an input`);
  }
  return { headDim, queryRows };
}

/** Records the attention dispatch into `recording`. */
export function recordAttention(recording: GpuRecording, args: AttentionArgs): void {
  const { headDim, queryRows } = checkArgs(args);
  // Sequences sharing their keys without a causal mask are one block of rows against one set of
  // keys: folding them reads each key tile once for all of them (beam search cross-attention).
  const fold = args.shared && !args.causal;
  const gridRows = fold ? args.rows : queryRows;
  const gridSequences = fold ? 1 : args.sequences;
  const returnWeights = args.weights !== undefined;
  const variant = args.variant ?? kernelVariants(recording.device).attention;
  const shape = attentionShape(headDim, gridRows, returnWeights);
  const rowsPerThread = attentionRowsPerThread(variant);
  const perThread = variant !== 'flash';
  const rowsPerWorkgroup = perThread ? ROW_WORKGROUP * rowsPerThread : shape.blockRows;
  const pipeline = perThread
      ? cachedPipeline(recording.device, `attention ${variant} d${headDim}${returnWeights ? ' +weights' : ''}`, attentionRowShader(headDim, returnWeights, rowsPerThread))
      : cachedPipeline(recording.device, `attention d${headDim} q${shape.blockRows} k${shape.tileKeys}${shape.returnWeights ? ' +weights' : ''}`, attentionShader(shape));
  const params = uniformWords(recording, KERNEL, [
    gridRows,
    queryRows,
    args.heads,
    args.shared ? 0 : args.capacity,
    args.length,
    args.causal ? 1 : 0,
    args.causal?.queryOffset ?? 0,
    args.cols,
    f32Bits(1 / Math.sqrt(headDim)),
  ]);
  const buffers = [params, args.q, args.key, args.value, args.output, ...(args.weights ? [args.weights] : [])];
  const blocks = Math.ceil(gridRows / rowsPerWorkgroup);
  const limit = recording.device.limits.maxComputeWorkgroupsPerDimension;
  if (blocks > limit || args.heads > limit || gridSequences > limit) {
    throw shapeError(`${KERNEL}: ${blocks} row blocks × ${args.heads} heads × ${gridSequences} sequences exceed the workgroup grid limit ${limit}`);
  }
  recordDispatch(recording, KERNEL, pipeline, buffers, [blocks, args.heads, gridSequences]);
}

export interface AttentionInput extends Omit<AttentionArgs, 'q' | 'key' | 'value' | 'output' | 'weights' | 'rows'> {
  q: Float32Array;
  key: Float32Array;
  value: Float32Array;
  returnWeights?: boolean;
}

/** Uploads, runs and reads back one attention (tests, experiments). */
export async function runAttention(device: GPUDevice, input: AttentionInput): Promise<{ output: Float32Array; weights?: Float32Array }> {
  const rows = input.q.length / input.cols;
  const queryRows = rows / input.sequences;
  const weightCount = input.sequences * input.heads * queryRows * input.length;
  const q = uploadStorage(device, 'attention q', input.q);
  const key = uploadStorage(device, 'attention key', input.key);
  const value = uploadStorage(device, 'attention value', input.value);
  const output = createStorage(device, 'attention output', input.q.length);
  const weights = input.returnWeights ? createStorage(device, 'attention weights', weightCount) : undefined;
  try {
    await runRecorded(device, KERNEL, (recording) => recordAttention(recording, { ...input, rows, q, key, value, output, weights }));
    return {
      output: await readFloat32(device, output, input.q.length),
      ...(weights ? { weights: await readFloat32(device, weights, weightCount) } : {}),
    };
  } finally {
    destroyAll([q, key, value, output, weights]);
  }
}
