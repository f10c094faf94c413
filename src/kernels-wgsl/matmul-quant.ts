/**
 * The linear layer on WebGPU with ggml block-quantized weights (q8_0, q4_0, q4_1, q5_0, q5_1)
 * that stay quantized in GPU memory and are widened inside the kernel:
 * y[M,N] = x[M,K] · Wᵀ + bias, optionally GELU, optionally + a residual, in one dispatch.
 *
 * Upload repacks each 32-value block into whole u32 words, because core WGSL loads neither bytes
 * nor halves: word 0 holds the f16 scale d (low half) and, for the _1 types, the f16 offset m
 * (high half), read with unpack2x16float; the q5 types then have their 32 fifth bits (qh); the
 * quants follow in ggml's own byte order (q8_0: 8 words of int8, q4/q5: 4 words of nibbles).
 * Rows are padded to a multiple of the tile with all-zero blocks, which widen to zeros, so the
 * hot loops never bounds-check the weight. Widening is exact in f32 (q·d has at most 19
 * significant bits; q·d + m rounds once, as the CPU decoder's store to a Float32Array does).
 *
 * Kernels: tiled for M > QUANT_GEMV_MAX_ROWS (a 64 × 64 output tile per workgroup, K stepped one
 * block at a time, each invocation widening a quarter block into workgroup memory and
 * accumulating a 4 × 4 piece); gemv for fewer rows (a workgroup owns 4 outputs of every row, its
 * invocations split the row into quarter blocks and a tree in workgroup memory adds them up).
 */
import type { WeightDType, WeightTensor } from '../core/model/weights.ts';
import { DTYPE_LAYOUT } from '../core/model/dtype.ts';
import {
  cachedPipeline,
  checkActivations,
  checkCount,
  foldedGrid,
  MATMUL_EPILOGUE_WGSL,
  recordDispatch,
  residualPlaceholder,
  runOnActivations,
  shapeError,
  tileGrid,
  tileProductWgsl,
  tileStoreWgsl,
  uniformWords,
  uploadStorage,
  type GpuRecording,
} from './wgsl-common.ts';

const KERNEL = 'quantizedMatmul';

export type QuantizedDType = 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1';
export const QUANTIZED_DTYPES: readonly QuantizedDType[] = ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1'];

/** Values per ggml block; K must be a multiple of it. */
export const QUANT_BLOCK = 32;
/** Output tile of the tiled kernel; the number of weight rows is padded to a multiple of it. */
export const QUANT_TILE_M = 64;
export const QUANT_TILE_N = 64;
/** Up to this many rows take the gemv kernel. */
export const QUANT_GEMV_MAX_ROWS = 8;
const GEMV_LANES = 64;
const GEMV_COLUMNS = 4;

/** How a block sits in u32 words after repacking (see the file comment). */
interface BlockWords {
  /** Words per block. */
  words: number;
  /** Word index of qh (q5 types), or -1. */
  highBits: number;
  /** Word index of the first quant word. */
  quants: number;
  /** Byte offsets in a ggml block: scale d, offset m (or -1), qh (or -1), quants. */
  ggml: { d: number; m: number; qh: number; quants: number; quantBytes: number };
}

const BLOCK_WORDS: Record<QuantizedDType, BlockWords> = {
  q8_0: { words: 9, highBits: -1, quants: 1, ggml: { d: 0, m: -1, qh: -1, quants: 2, quantBytes: 32 } },
  q4_0: { words: 5, highBits: -1, quants: 1, ggml: { d: 0, m: -1, qh: -1, quants: 2, quantBytes: 16 } },
  q4_1: { words: 5, highBits: -1, quants: 1, ggml: { d: 0, m: 2, qh: -1, quants: 4, quantBytes: 16 } },
  q5_0: { words: 6, highBits: 1, quants: 2, ggml: { d: 0, m: -1, qh: 2, quants: 6, quantBytes: 16 } },
  q5_1: { words: 6, highBits: 1, quants: 2, ggml: { d: 0, m: 2, qh: 4, quants: 8, quantBytes: 16 } },
};

export function isQuantizedDType(dtype: WeightDType): dtype is QuantizedDType {
  return (QUANTIZED_DTYPES as readonly string[]).includes(dtype);
}

/** A quantized linear layer's weight (repacked blocks) and bias on the GPU. */
export interface GpuQuantizedLinear {
  /** [paddedOutFeatures, inFeatures / 32] blocks of `wordsPerBlock` u32 words. */
  readonly blocks: GPUBuffer;
  /** [paddedOutFeatures] f32; zeros when the layer has no bias. */
  readonly bias: GPUBuffer;
  readonly dtype: QuantizedDType;
  readonly wordsPerBlock: number;
  /** N and K of the layer; N padded to QUANT_TILE_N. */
  readonly outFeatures: number;
  readonly inFeatures: number;
  readonly paddedOutFeatures: number;
  readonly hasBias: boolean;
  destroy(): void;
}

/**
 * Repacks a block-quantized [N, K] weight into u32 words (see the file comment), padding N to
 * QUANT_TILE_N with zero blocks. Exported for tests; uploadQuantizedWeights uses it.
 */
export function packQuantizedBlocks(tensor: WeightTensor): { words: Uint32Array; paddedN: number } {
  const { n, k, dtype } = checkQuantizedTensor(tensor);
  const layout = BLOCK_WORDS[dtype];
  const { blockBytes } = DTYPE_LAYOUT[dtype];
  const blocksPerRow = k / QUANT_BLOCK;
  const paddedN = roundUp(n, QUANT_TILE_N);
  const words = new Uint32Array(paddedN * blocksPerRow * layout.words);
  const bytes = tensor.bytes;
  const u16 = (at: number) => bytes[at]! | (bytes[at + 1]! << 8);
  const u32 = (at: number) => (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
  const { ggml } = layout;
  for (let block = 0; block < n * blocksPerRow; block++) {
    const from = block * blockBytes;
    const to = block * layout.words;
    words[to] = (u16(from + ggml.d) | (ggml.m >= 0 ? u16(from + ggml.m) << 16 : 0)) >>> 0;
    if (layout.highBits >= 0) words[to + layout.highBits] = u32(from + ggml.qh);
    for (let w = 0; w < ggml.quantBytes / 4; w++) words[to + layout.quants + w] = u32(from + ggml.quants + 4 * w);
  }
  return { words, paddedN };
}

/**
 * Uploads a ggml block-quantized weight [N, K] (K a multiple of 32) as its blocks, repacked into
 * u32 words, and an optional f32 bias [N].
 */
export function uploadQuantizedWeights(device: GPUDevice, tensor: WeightTensor, bias?: Float32Array, label = 'quantized linear'): GpuQuantizedLinear {
  const { n, k, dtype } = checkQuantizedTensor(tensor);
  if (bias && bias.length !== n) throw shapeError(`uploadQuantizedWeights: a bias of ${bias.length} values for the ${n} outputs of a [${n}, ${k}] weight`);
  const { words, paddedN } = packQuantizedBlocks(tensor);
  const paddedBias = new Float32Array(paddedN);
  if (bias) paddedBias.set(bias);
  const blocks = uploadStorage(device, `${label} ${dtype} blocks`, words);
  const biasBuffer = uploadStorage(device, `${label} bias`, paddedBias);
  return {
    blocks,
    bias: biasBuffer,
    dtype,
    wordsPerBlock: BLOCK_WORDS[dtype].words,
    outFeatures: n,
    inFeatures: k,
    paddedOutFeatures: paddedN,
    hasBias: bias !== undefined,
    destroy() {
      blocks.destroy();
      biasBuffer.destroy();
    },
  };
}

function checkQuantizedTensor(tensor: WeightTensor): { n: number; k: number; dtype: QuantizedDType } {
  const { dtype, shape, bytes } = tensor;
  if (!isQuantizedDType(dtype)) throw shapeError(`uploadQuantizedWeights: ${dtype} is not a block-quantized dtype (${QUANTIZED_DTYPES.join(', ')})`);
  if (shape.length !== 2) throw shapeError(`uploadQuantizedWeights: a ${dtype} weight must be 2-D [N, K], got [${shape.join(', ')}]`);
  const [n, k] = shape as [number, number];
  if (!Number.isSafeInteger(n) || n < 1 || !Number.isSafeInteger(k) || k < 1 || k % QUANT_BLOCK !== 0) {
    throw shapeError(`uploadQuantizedWeights: a ${dtype} weight [${n}, ${k}] needs N ≥ 1 and K a positive multiple of ${QUANT_BLOCK}`);
  }
  const expected = (n * k / QUANT_BLOCK) * DTYPE_LAYOUT[dtype].blockBytes;
  if (bytes.length !== expected) throw shapeError(`uploadQuantizedWeights: a ${dtype} weight [${n}, ${k}] takes ${expected} bytes, got ${bytes.length}`);
  return { n, k, dtype };
}

export type QuantizedMatmulVariant = { kind: 'tiled' } | { kind: 'gemv'; rows: number };

/** Gemv (compiled for exactly m rows) up to QUANT_GEMV_MAX_ROWS rows, tiled beyond. */
export function quantizedMatmulVariant(m: number): QuantizedMatmulVariant {
  return m <= QUANT_GEMV_MAX_ROWS ? { kind: 'gemv', rows: m } : { kind: 'tiled' };
}

export interface QuantizedMatmulArgs {
  /** [m, weights.inFeatures] f32, row-major. */
  x: GPUBuffer;
  m: number;
  weights: GpuQuantizedLinear;
  /** [m, weights.outFeatures] f32; must not be x or residual. */
  output: GPUBuffer;
  gelu?: boolean;
  /** [m, weights.outFeatures] f32, added after the GELU. */
  residual?: GPUBuffer;
  /** Overrides quantizedMatmulVariant's choice (tests). */
  variant?: QuantizedMatmulVariant;
}

/** Records output = gelu?(x · Wᵀ + bias) + residual as one dispatch. */
export function recordQuantizedMatmul(recording: GpuRecording, args: QuantizedMatmulArgs): void {
  const { x, m, weights, output, residual } = args;
  const n = weights.outFeatures;
  const k = weights.inFeatures;
  checkCount(KERNEL, 'm', m);
  checkActivations(KERNEL, args, m * k, m * n);
  const variant = args.variant ?? quantizedMatmulVariant(m);
  if (variant.kind === 'gemv' && (!Number.isInteger(variant.rows) || variant.rows !== m || m > QUANT_GEMV_MAX_ROWS)) {
    throw shapeError(`${KERNEL}: a gemv variant for ${variant.rows} rows cannot multiply ${m} rows (it takes exactly its own count, at most ${QUANT_GEMV_MAX_ROWS})`);
  }

  const device = recording.device;
  const grid = variant.kind === 'tiled' ? tileGrid(device, KERNEL, m, n, QUANT_TILE_M, QUANT_TILE_N) : foldedGrid(device, KERNEL, Math.ceil(n / GEMV_COLUMNS));
  const code = variant.kind === 'tiled' ? tiledShader(weights.dtype) : gemvShader(weights.dtype, variant.rows);
  const label = `${KERNEL} ${variant.kind} ${weights.dtype}`;
  const params = uniformWords(recording, label, [m, n, k, k / QUANT_BLOCK, grid[0], args.gelu ? 1 : 0, residual ? 1 : 0, 0]);
  recordDispatch(
    recording,
    label,
    cachedPipeline(device, label, code),
    [params, x, weights.blocks, weights.bias, output, residual ?? residualPlaceholder(device)],
    grid,
  );
}

/** Uploads x (and a residual), runs one quantized matmul and reads y back (tests, experiments). */
export async function runQuantizedMatmul(
  device: GPUDevice,
  weights: GpuQuantizedLinear,
  x: Float32Array,
  m: number,
  options: { gelu?: boolean; residual?: Float32Array; variant?: QuantizedMatmulVariant } = {},
): Promise<Float32Array> {
  const n = weights.outFeatures;
  if (x.length !== m * weights.inFeatures) throw shapeError(`${KERNEL}: ${x.length} values of x are not [${m}, ${weights.inFeatures}]`);
  if (options.residual && options.residual.length !== m * n) throw shapeError(`${KERNEL}: ${options.residual.length} residual values are not [${m}, ${n}]`);
  return runOnActivations(device, KERNEL, x, options.residual, m * n, (recording, buffers) =>
    recordQuantizedMatmul(recording, { ...buffers, m, weights, gelu: options.gelu, variant: options.variant }),
  );
}

/** WGSL: the four bytes of a word as signed integers (ggml's int8 quants), low byte first. */
export const SIGNED_BYTES_WGSL = /* wgsl */ `
fn signedBytes(word: u32) -> vec4<i32> {
  return (vec4<i32>(bitcast<i32>(word)) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
}
`;

/**
 * WGSL widening one quarter of a block: `dequantQuarter(block, part)` returns the 8 values the
 * quarter holds as two vec4s, and `quarterOffsets(part)` where they sit in the block. q8_0's
 * quarter p is values 8p..8p+7; a nibble type's quarter p is quant word p, whose bytes hold values
 * 4p..4p+3 (low nibbles) and 4p+16..4p+19 (high nibbles).
 */
function dequantWgsl(dtype: QuantizedDType): string {
  const layout = BLOCK_WORDS[dtype];
  const offset = dtype.endsWith('_1');
  const scale = /* wgsl */ `
  let base = block * ${layout.words}u;
  let dm = unpack2x16float(w[base]);`;
  let body: string;
  if (dtype === 'q8_0') {
    body = /* wgsl */ `
  let q0 = w[base + 1u + 2u * part];
  let q1 = w[base + 2u + 2u * part];
  return Quarter(vec4<f32>(signedBytes(q0)) * dm.x, vec4<f32>(signedBytes(q1)) * dm.x);`;
  } else {
    const bias = dtype === 'q4_0' ? '8.0' : dtype === 'q5_0' ? '16.0' : '0.0';
    const high =
      layout.highBits >= 0
        ? /* wgsl */ `
  let qh = w[base + ${layout.highBits}u];
  // Fifth bits of values 4p..4p+3 (bits 4p..) and 4p+16..4p+19 (bits 4p+16..), moved to bit 4 of each byte.
  let loHigh = ((vec4<u32>(qh) >> (vec4<u32>(0u, 1u, 2u, 3u) + 4u * part)) & vec4<u32>(1u)) << vec4<u32>(4u);
  let hiHigh = ((vec4<u32>(qh) >> (vec4<u32>(16u, 17u, 18u, 19u) + 4u * part)) & vec4<u32>(1u)) << vec4<u32>(4u);`
        : `
  let loHigh = vec4<u32>(0u);
  let hiHigh = vec4<u32>(0u);`;
    body = /* wgsl */ `
  let q = w[base + ${layout.quants}u + part];
  let bytes = (vec4<u32>(q) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu);${high}
  let lo = vec4<f32>((bytes & vec4<u32>(0xfu)) | loHigh) - ${bias};
  let hi = vec4<f32>((bytes >> vec4<u32>(4u)) | hiHigh) - ${bias};
  return Quarter(${offset ? 'lo * dm.x + dm.y' : 'lo * dm.x'}, ${offset ? 'hi * dm.x + dm.y' : 'hi * dm.x'});`;
  }
  const offsets = dtype === 'q8_0' ? 'vec2<u32>(8u * part, 8u * part + 4u)' : 'vec2<u32>(4u * part, 4u * part + 16u)';
  return /* wgsl */ `
struct Quarter { lo: vec4<f32>, hi: vec4<f32> }

${SIGNED_BYTES_WGSL}
fn dequantQuarter(block: u32, part: u32) -> Quarter {${scale}${body}
}

fn quarterOffsets(part: u32) -> vec2<u32> {
  return ${offsets};
}
`;
}

function header(dtype: QuantizedDType): string {
  return /* wgsl */ `
struct Params {
  m: u32,
  n: u32,
  k: u32,
  blocksPerRow: u32,
  groupsX: u32,
  gelu: u32,
  addResidual: u32,
  unused: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> residual: array<f32>;
${dequantWgsl(dtype)}
${MATMUL_EPILOGUE_WGSL}
`;
}

function tiledShader(dtype: QuantizedDType): string {
  // 16 × 16 invocations, each owning a 4 × 4 piece of the 64 × 64 tile.
  const side = QUANT_TILE_M / 4;
  const rows = [0, 1, 2, 3];
  const c = ['x', 'y', 'z', 'w'];
  return /* wgsl */ `${header(dtype)}
const TILE_M = ${QUANT_TILE_M}u;
const TILE_N = ${QUANT_TILE_N}u;
const SIDE = ${side}u;

// Transposed tiles, [k][m / 4] and [k][n / 4] over one block of K: a vec4 read gives an invocation's 4 rows (columns) at one k.
var<workgroup> xTile: array<vec4<f32>, ${(QUANT_BLOCK * QUANT_TILE_M) / 4}>;
var<workgroup> wTile: array<vec4<f32>, ${(QUANT_BLOCK * QUANT_TILE_N) / 4}>;

fn storeW(k: u32, col: u32, value: f32) {
  wTile[k * SIDE + col / 4u][col % 4u] = value;
}

fn storeX(k: u32, row: u32, value: f32) {
  xTile[k * SIDE + row / 4u][row % 4u] = value;
}

@compute @workgroup_size(${side}, ${side})
fn main(
  @builtin(workgroup_id) group: vec3u,
  @builtin(local_invocation_id) local: vec3u,
  @builtin(local_invocation_index) index: u32,
) {
  let row0 = group.y * TILE_M;
  let col0 = group.x * TILE_N;
  // Loading: invocation \`index\` widens quarter \`part\` of weight row \`loadCol\`'s block, and
  // fetches two vec4s of x row \`loadCol\` (the same quarter's positions, so it covers the block).
  let loadCol = index / 4u;
  let part = index % 4u;
  let offsets = quarterOffsets(part);
  let xRow = row0 + loadCol;
  let rowInside = xRow < params.m;
  let xRow4 = min(xRow, params.m - 1u) * (params.k / 4u);
  let weightRow = (col0 + loadCol) * params.blocksPerRow;

${rows.map((i) => `  var acc${i} = vec4<f32>(0.0);`).join('\n')}

  for (var b = 0u; b < params.blocksPerRow; b++) {
    let quarter = dequantQuarter(weightRow + b, part);
    let k4 = b * ${QUANT_BLOCK / 4}u;
    let xLo = select(vec4<f32>(0.0), x[xRow4 + k4 + offsets.x / 4u], rowInside);
    let xHi = select(vec4<f32>(0.0), x[xRow4 + k4 + offsets.y / 4u], rowInside);
${rows
  .map(
    (i) => `    storeW(offsets.x + ${i}u, loadCol, quarter.lo.${c[i]});
    storeW(offsets.y + ${i}u, loadCol, quarter.hi.${c[i]});
    storeX(offsets.x + ${i}u, loadCol, xLo.${c[i]});
    storeX(offsets.y + ${i}u, loadCol, xHi.${c[i]});`,
  )
  .join('\n')}
    workgroupBarrier();
${tileProductWgsl(`${QUANT_BLOCK}u`, 'SIDE', 'SIDE', 'bw')}
    workgroupBarrier();
  }

${tileStoreWgsl()}
}
`;
}

function gemvShader(dtype: QuantizedDType, rowCount: number): string {
  const rows = Array.from({ length: rowCount }, (_, i) => i);
  const cols = Array.from({ length: GEMV_COLUMNS }, (_, j) => j);
  const outputs = rowCount * GEMV_COLUMNS;
  const sums = rows.flatMap((r) => cols.map((col) => ({ r, col, index: r * GEMV_COLUMNS + col })));
  return /* wgsl */ `${header(dtype)}
const LANES = ${GEMV_LANES}u;
const COLUMNS = ${GEMV_COLUMNS}u;
const OUTPUTS = ${outputs}u;

// [output][lane]: one partial sum per invocation for every output of the workgroup.
var<workgroup> partials: array<f32, ${outputs * GEMV_LANES}>;

fn store(output: u32, sum: f32, col0: u32) {
  let row = output / COLUMNS;
  let col = col0 + output % COLUMNS;
  if (col < params.n) { y[row * params.n + col] = finish(sum, row, col); }
}

@compute @workgroup_size(${GEMV_LANES})
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lane: u32) {
  let col0 = (group.y * params.groupsX + group.x) * COLUMNS;
  // The folded grid may hold a few workgroups past the end; they leave together (uniformly).
  if (col0 >= params.n) { return; }
  let row4 = params.k / 4u;

${sums.map(({ index }) => `  var acc${index} = vec4<f32>(0.0);`).join('\n')}
  let quarters = params.blocksPerRow * 4u;
  for (var unit = lane; unit < quarters; unit += LANES) {
    let block = unit / 4u;
    let part = unit % 4u;
    let offsets = quarterOffsets(part);
    let k4 = block * ${QUANT_BLOCK / 4}u;
${cols.map((col) => `    let w${col} = dequantQuarter((col0 + ${col}u) * params.blocksPerRow + block, part);`).join('\n')}
${rows.map((r) => `    let xLo${r} = x[${r}u * row4 + k4 + offsets.x / 4u];\n    let xHi${r} = x[${r}u * row4 + k4 + offsets.y / 4u];`).join('\n')}
${sums.map(({ r, col, index }) => `    acc${index} = fma(xHi${r}, w${col}.hi, fma(xLo${r}, w${col}.lo, acc${index}));`).join('\n')}
  }
${sums.map(({ index }) => `  partials[${index}u * LANES + lane] = dot(acc${index}, vec4<f32>(1.0));`).join('\n')}
  workgroupBarrier();
  for (var stride = LANES / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      for (var i = 0u; i < OUTPUTS; i++) { partials[i * LANES + lane] += partials[i * LANES + lane + stride]; }
    }
    workgroupBarrier();
  }
  if (lane < OUTPUTS) { store(lane, partials[lane * LANES], col0); }
}
`;
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}
