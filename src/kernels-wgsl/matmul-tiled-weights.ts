/**
 * The linear layer on WebGPU with its weight in GPU tile-major layout (src/core/layout/gpu-tiles.ts):
 * W [N, K] as (N/64, K/32, 64, 32), f32, or q8_0 with each tile's 64 scales beside its quants.
 * y[M,N] = x[M,K] · Wᵀ + bias, then GELU and a residual, in one dispatch; the epilogue is
 * wgsl-common's MATMUL_EPILOGUE_WGSL, as in every other matmul.
 *
 * What the layout buys: the 64 × 32 slice of W a workgroup stages for one step of K is one
 * contiguous 8 KiB run (consecutive invocations read consecutive vec4s), and the packer padded N
 * and K to whole tiles, so W is read with no bounds checks at all. x arrives unpadded; its
 * loads are guarded in the workgroup variant's staging and only in the register variant's last
 * partial tile of K.
 *
 * Variants, following the device's many-rows matmul choice (variants.ts):
 * - workgroup: a 64 × 64 output tile per workgroup of 16 × 16 invocations, each accumulating 4 × 4
 *   from transposed x and W tiles in workgroup memory (real GPUs);
 * - register: no workgroup memory or barriers; each invocation owns rowsPerThread ×
 *   colsPerThread outputs and streams x and its W tile rows (CPU-emulated adapters).
 * No subgroup path: neither variant reduces across invocations.
 */
import type { GpuTiledQ8Weight, GpuTiledWeight } from '../core/layout/gpu-tiles.ts';
import { GPU_TILE_K, GPU_TILE_N } from '../core/layout/gpu-tiles.ts';
import { SIGNED_BYTES_WGSL } from './matmul-quant.ts';
import type { RegisterBlock } from './matmul-shaders.ts';
import { kernelVariants } from './variants.ts';
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

const KERNEL = 'tiledWeightsMatmul';
/** Output rows per workgroup of the workgroup variant (its columns are one weight tile, GPU_TILE_N). */
const TILE_M = 64;
const SIDE = 16;
/** vec4s (f32) or quant words (q8_0) in one row of a tile. */
const ROW_SLOTS = GPU_TILE_K / 4;
/** vec4 slots in a whole tile. */
const TILE_SLOTS = GPU_TILE_N * ROW_SLOTS;
/** Scale words at the head of a q8_0 tile: one per row (a tile row is one 32-value block). */
const Q8_SCALES = GPU_TILE_N * (GPU_TILE_K / 32);

export type TiledWeightFormat = 'f32' | 'q8_0';

/** A linear layer's tile-major weight and bias on the GPU. */
export interface GpuTiledLinear {
  /** f32: (paddedN/64, paddedK/32, 64, 32) floats; q8_0: tiles of 64 scale words + 512 quant words. */
  readonly weight: GPUBuffer;
  /** [paddedOutFeatures] f32; zeros when the layer has no bias. */
  readonly bias: GPUBuffer;
  readonly format: TiledWeightFormat;
  readonly outFeatures: number;
  readonly inFeatures: number;
  readonly paddedOutFeatures: number;
  readonly paddedInFeatures: number;
  readonly hasBias: boolean;
  destroy(): void;
}

export type TiledWeightsVariant =
  | { kind: 'workgroup' }
  | { kind: 'register'; rowsPerThread: RegisterBlock; colsPerThread: RegisterBlock; workgroup: 64 | 128 | 256 };

/** The variant matching the device's many-rows matmul choice: workgroup for 'tiled', register with its blocks for 'register'. */
export function tiledWeightsVariant(device: GPUDevice): TiledWeightsVariant {
  const chosen = kernelVariants(device).matmul;
  if (chosen.kind === 'register') {
    return { kind: 'register', rowsPerThread: chosen.rowsPerThread, colsPerThread: chosen.colsPerThread, workgroup: chosen.workgroup };
  }
  return { kind: 'workgroup' };
}

function isQ8(tiles: GpuTiledWeight | GpuTiledQ8Weight): tiles is GpuTiledQ8Weight {
  return 'words' in tiles;
}

/**
 * Uploads weights packed by packGpuTiles / packGpuTilesQ8 with the kernel's tile (GPU_TILE_N ×
 * GPU_TILE_K, the packers' default) and an optional bias [n].
 */
export function uploadTiledLinear(device: GPUDevice, tiles: GpuTiledWeight | GpuTiledQ8Weight, bias?: Float32Array, label = 'tiled linear'): GpuTiledLinear {
  if (tiles.tileN !== GPU_TILE_N || tiles.tileK !== GPU_TILE_K) {
    throw shapeError(`uploadTiledLinear: the kernel reads ${GPU_TILE_N} × ${GPU_TILE_K} tiles, these are ${tiles.tileN} × ${tiles.tileK}`);
  }
  if (bias && bias.length !== tiles.n) throw shapeError(`uploadTiledLinear: a bias of ${bias.length} values for ${tiles.n} outputs`);
  const format: TiledWeightFormat = isQ8(tiles) ? 'q8_0' : 'f32';
  const values = isQ8(tiles) ? tiles.words : tiles.data;
  const paddedBias = new Float32Array(tiles.paddedN);
  if (bias) paddedBias.set(bias);
  const weight = uploadStorage(device, `${label} ${format} tiles`, values);
  const biasBuffer = uploadStorage(device, `${label} bias`, paddedBias);
  return {
    weight,
    bias: biasBuffer,
    format,
    outFeatures: tiles.n,
    inFeatures: tiles.k,
    paddedOutFeatures: tiles.paddedN,
    paddedInFeatures: tiles.paddedK,
    hasBias: bias !== undefined,
    destroy() {
      weight.destroy();
      biasBuffer.destroy();
    },
  };
}

export interface TiledWeightsMatmulArgs {
  /** [m, weights.inFeatures] f32, row-major, unpadded. */
  x: GPUBuffer;
  m: number;
  weights: GpuTiledLinear;
  /** [m, weights.outFeatures] f32; must not be x or residual. */
  output: GPUBuffer;
  gelu?: boolean;
  /** [m, weights.outFeatures] f32, added after the GELU. */
  residual?: GPUBuffer;
  /** Overrides tiledWeightsVariant's choice (tests, tuning). */
  variant?: TiledWeightsVariant;
}

/** Records output = gelu?(x · Wᵀ + bias) + residual as one dispatch into `recording`. */
export function recordTiledWeightsMatmul(recording: GpuRecording, args: TiledWeightsMatmulArgs): void {
  const { device } = recording;
  const { x, m, weights, output, residual } = args;
  const n = weights.outFeatures;
  const k = weights.inFeatures;
  checkCount(KERNEL, 'm', m);
  checkActivations(KERNEL, args, m * k, m * n);
  const variant = args.variant ?? tiledWeightsVariant(device);
  checkVariant(variant);

  const kTiles = weights.paddedInFeatures / GPU_TILE_K;
  let grid: [number, number];
  if (variant.kind === 'workgroup') {
    // The weight's N is padded to whole tiles, so its column tiles are exactly the output's.
    grid = tileGrid(device, KERNEL, m, n, TILE_M, GPU_TILE_N);
  } else {
    const threads = Math.ceil(m / variant.rowsPerThread) * (weights.paddedOutFeatures / variant.colsPerThread);
    grid = foldedGrid(device, KERNEL, Math.ceil(threads / variant.workgroup));
  }
  const vectorX = k % 4 === 0;
  const code = tiledWeightsShader(weights.format, variant, vectorX);
  const label = `${KERNEL} ${describeVariant(variant)} ${weights.format}${vectorX ? ' vec4-x' : ''}`;
  const params = uniformWords(recording, label, [m, n, k, kTiles, grid[0], args.gelu ? 1 : 0, residual ? 1 : 0, weights.paddedOutFeatures]);
  recordDispatch(recording, label, cachedPipeline(device, label, code), [params, x, weights.weight, weights.bias, output, residual ?? residualPlaceholder(device)], grid);
}

/** Uploads x (and a residual), runs one matmul and reads y back (tests, benchmarks). */
export async function runTiledWeightsMatmul(
  device: GPUDevice,
  weights: GpuTiledLinear,
  x: Float32Array,
  m: number,
  options: { gelu?: boolean; residual?: Float32Array; variant?: TiledWeightsVariant } = {},
): Promise<Float32Array> {
  const n = weights.outFeatures;
  if (x.length !== m * weights.inFeatures) throw shapeError(`${KERNEL}: ${x.length} values of x are not [${m}, ${weights.inFeatures}]`);
  if (options.residual && options.residual.length !== m * n) throw shapeError(`${KERNEL}: ${options.residual.length} residual values are not [${m}, ${n}]`);
  return runOnActivations(device, KERNEL, x, options.residual, m * n, (recording, buffers) =>
    recordTiledWeightsMatmul(recording, { ...buffers, m, weights, gelu: options.gelu, variant: options.variant }),
  );
}

function describeVariant(variant: TiledWeightsVariant): string {
  return variant.kind === 'workgroup' ? 'workgroup' : `register ${variant.rowsPerThread}×${variant.colsPerThread} wg${variant.workgroup}`;
}

function checkVariant(variant: TiledWeightsVariant): void {
  if (variant.kind === 'workgroup') return;
  const blocks = [1, 2, 4, 8];
  if (!blocks.includes(variant.rowsPerThread) || !blocks.includes(variant.colsPerThread) || ![64, 128, 256].includes(variant.workgroup)) {
    throw shapeError(`${KERNEL}: register blocks ${variant.rowsPerThread}×${variant.colsPerThread} in workgroups of ${variant.workgroup} are not a supported variant`);
  }
}

/**
 * The weight readers both variants are written over: `rawW4(tile, row, slot)` gives 4 consecutive
 * k of one tile row (f32 values, or q8_0 quants as floats) and `rowScale(tile, row)` what they
 * are multiplied by (1 for f32, the row's block scale for q8_0). `tile` counts whole tiles.
 */
function weightReaders(format: TiledWeightFormat): string {
  if (format === 'f32') {
    return /* wgsl */ `
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;

fn rawW4(tile: u32, row: u32, slot: u32) -> vec4<f32> {
  return w[tile * ${TILE_SLOTS}u + row * ${ROW_SLOTS}u + slot];
}

fn rowScale(tile: u32, row: u32) -> f32 {
  return 1.0;
}
`;
  }
  const tileWords = Q8_SCALES + TILE_SLOTS;
  return /* wgsl */ `
@group(0) @binding(2) var<storage, read> w: array<u32>;
${SIGNED_BYTES_WGSL}
fn rawW4(tile: u32, row: u32, slot: u32) -> vec4<f32> {
  return vec4<f32>(signedBytes(w[tile * ${tileWords}u + ${Q8_SCALES}u + row * ${ROW_SLOTS}u + slot]));
}

fn rowScale(tile: u32, row: u32) -> f32 {
  return bitcast<f32>(w[tile * ${tileWords}u + row]);
}
`;
}

function header(format: TiledWeightFormat, vectorX: boolean): string {
  return /* wgsl */ `
struct Params {
  m: u32,
  n: u32,
  k: u32,
  // Tiles along K (padded K / ${GPU_TILE_K}).
  kTiles: u32,
  // Workgroups along x when the grid is folded into two dimensions.
  groupsX: u32,
  gelu: u32,
  addResidual: u32,
  paddedN: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<${vectorX ? 'vec4<f32>' : 'f32'}>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> residual: array<f32>;
${weightReaders(format)}
// Four consecutive values of row \`row\` of x from column \`k\` (a multiple of 4), zero past the edges.
fn loadX4(row: u32, k: u32) -> vec4<f32> {
  if (row >= params.m || k >= params.k) { return vec4<f32>(0.0); }
${
  vectorX
    ? '  return x[(row * params.k + k) / 4u];'
    : `  let base = row * params.k + k;
  let left = params.k - k;
  return vec4<f32>(x[base], select(0.0, x[base + 1u], left > 1u), select(0.0, x[base + 2u], left > 2u), select(0.0, x[base + 3u], left > 3u));`
}
}
${MATMUL_EPILOGUE_WGSL}
`;
}

/** The WGSL source for one format, variant and x load width; equal arguments give identical source. */
export function tiledWeightsShader(format: TiledWeightFormat, variant: TiledWeightsVariant, vectorX: boolean): string {
  return variant.kind === 'workgroup' ? workgroupShader(format, vectorX) : registerShader(format, variant, vectorX);
}

function workgroupShader(format: TiledWeightFormat, vectorX: boolean): string {
  const parts = [0, 1, 2, 3];
  const c = ['x', 'y', 'z', 'w'];
  const invocations = SIDE * SIDE;
  const loads = Array.from({ length: TILE_SLOTS / invocations }, (_, h) => h);
  return /* wgsl */ `${header(format, vectorX)}
// Transposed tiles over one tile of K, [k][m / 4] and [k][n / 4]: a vec4 read gives an invocation's 4 rows (columns) at one k.
var<workgroup> xTile: array<vec4<f32>, ${(GPU_TILE_K * TILE_M) / 4}>;
var<workgroup> wTile: array<vec4<f32>, ${(GPU_TILE_K * GPU_TILE_N) / 4}>;

@compute @workgroup_size(${SIDE}, ${SIDE})
fn main(
  @builtin(workgroup_id) group: vec3u,
  @builtin(local_invocation_id) local: vec3u,
  @builtin(local_invocation_index) index: u32,
) {
  let row0 = group.y * ${TILE_M}u;
  let col0 = group.x * ${GPU_TILE_N}u;
  // The column tile's first weight tile; its K tiles follow one another.
  let firstTile = group.x * params.kTiles;
${parts.map((i) => `  var acc${i} = vec4<f32>(0.0);`).join('\n')}

  for (var t = 0u; t < params.kTiles; t++) {
    let k0 = t * ${GPU_TILE_K}u;
${loads
  .map(
    (h) => `    {
      // Slot ${h} of this invocation: consecutive invocations read consecutive vec4s of the tile.
      let slot = index + ${h * invocations}u;
      let tileRow = slot / ${ROW_SLOTS}u;
      let k4 = slot % ${ROW_SLOTS}u;
      let wv = rawW4(firstTile + t, tileRow, k4) * rowScale(firstTile + t, tileRow);
      let xv = loadX4(row0 + tileRow, k0 + k4 * 4u);
${parts
  .map(
    (i) => `      wTile[(k4 * 4u + ${i}u) * ${SIDE}u + tileRow / 4u][tileRow % 4u] = wv.${c[i]};
      xTile[(k4 * 4u + ${i}u) * ${SIDE}u + tileRow / 4u][tileRow % 4u] = xv.${c[i]};`,
  )
  .join('\n')}
    }`,
  )
  .join('\n')}
    workgroupBarrier();
${tileProductWgsl(`${GPU_TILE_K}u`, `${SIDE}u`, `${SIDE}u`, 'b')}
    workgroupBarrier();
  }

${tileStoreWgsl()}
}
`;
}

function registerShader(format: TiledWeightFormat, variant: Extract<TiledWeightsVariant, { kind: 'register' }>, vectorX: boolean): string {
  const rows = Array.from({ length: variant.rowsPerThread }, (_, i) => i);
  const cols = Array.from({ length: variant.colsPerThread }, (_, j) => j);
  const pairs = rows.flatMap((r) => cols.map((col) => ({ r, col })));
  // Rows past M are clamped onto the last row (valid memory, never stored), and whole tiles of K
  // lie inside every row, so the full-tile loop reads x unguarded when it is read as vec4.
  const fullX = vectorX ? (r: number) => `x[xRow${r} + k4]` : (r: number) => `loadX4(row${r}, k4 * 4u)`;
  const step = (loadX: (r: number) => string) => `
${rows.map((r) => `        let x${r} = ${loadX(r)};`).join('\n')}
${cols.map((col) => `        let w${col} = rawW4(tile${col}, inTile + ${col}u, slot);`).join('\n')}
${pairs.map(({ r, col }) => `        part${r}_${col} += dot(x${r}, w${col});`).join('\n')}`;
  const scaleInto = pairs.map(({ r, col }) => `      acc${r}_${col} = fma(part${r}_${col}, scale${col}, acc${r}_${col});`).join('\n');
  const startTile = (t: string) => `
${cols.map((col) => `      let tile${col} = firstTile + ${t};\n      let scale${col} = rowScale(tile${col}, inTile + ${col}u);`).join('\n')}
${pairs.map(({ r, col }) => `      var part${r}_${col} = 0.0;`).join('\n')}`;
  return /* wgsl */ `${header(format, vectorX)}
@compute @workgroup_size(${variant.workgroup})
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lane: u32) {
  let id = (group.y * params.groupsX + group.x) * ${variant.workgroup}u + lane;
  // Column blocks never straddle a weight tile: colsPerThread divides ${GPU_TILE_N}.
  let colBlocks = params.paddedN / ${variant.colsPerThread}u;
  let firstRow = (id / colBlocks) * ${variant.rowsPerThread}u;
  let col0 = (id % colBlocks) * ${variant.colsPerThread}u;
  if (firstRow >= params.m) { return; }
  let firstTile = (col0 / ${GPU_TILE_N}u) * params.kTiles;
  let inTile = col0 % ${GPU_TILE_N}u;
${rows.map((r) => `  let row${r} = min(firstRow + ${r}u, params.m - 1u);\n  let xRow${r} = row${r} * ((params.k + 3u) / 4u);`).join('\n')}
${pairs.map(({ r, col }) => `  var acc${r}_${col} = 0.0;`).join('\n')}
  let fullTiles = params.k / ${GPU_TILE_K}u;
  for (var t = 0u; t < fullTiles; t++) {
    {${startTile('t')}
      for (var slot = 0u; slot < ${ROW_SLOTS}u; slot++) {
        let k4 = t * ${ROW_SLOTS}u + slot;${step(fullX)}
      }
${scaleInto}
    }
  }
  // The last, partial tile of K: the weight's padding is zero, x past K is not read.
  let tailSlots = ((params.k % ${GPU_TILE_K}u) + 3u) / 4u;
  if (tailSlots > 0u) {${startTile('fullTiles')}
      for (var slot = 0u; slot < tailSlots; slot++) {
        let k4 = fullTiles * ${ROW_SLOTS}u + slot;${step((r) => `loadX4(row${r}, k4 * 4u)`)}
      }
${scaleInto}
  }
${pairs
  .map(
    ({ r, col }) =>
      `  if (firstRow + ${r}u < params.m && col0 + ${col}u < params.n) { y[(firstRow + ${r}u) * params.n + col0 + ${col}u] = finish(acc${r}_${col}, firstRow + ${r}u, col0 + ${col}u); }`,
  )
  .join('\n')}
}
`;
}
