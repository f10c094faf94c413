/**
 * WGSL source for y[M,N] = x[M,K] · Wᵀ + bias, then GELU and a residual add, generated per
 * variant. W is [N,K] row-major as the weight schema stores it, zero-padded at upload so that
 * every weight read stays inside the buffer (see WEIGHT_* in matmul.ts): the hot loops read W
 * without bounds checks, and only x, which arrives unpadded, is guarded.
 *
 * Two shapes of kernel:
 * - tiled, for many rows: a workgroup owns a TILE_M × TILE_N block of y, stages TILE_K-wide
 *   slices of x and W in workgroup memory, and each invocation accumulates a 4 × 4 block.
 * - gemv, for a handful of rows (decoder steps): a workgroup owns GEMV_COLUMNS outputs of every
 *   row; its invocations split K between them and their partial sums are reduced in workgroup
 *   memory (a tree) or with subgroupAdd.
 * - columns, for a handful of rows and a short K (narrow models' logits: a huge N, K = 64): each
 *   invocation owns one column of every row and runs the whole K loop itself, with no workgroup
 *   memory or barriers; split-K would leave most lanes idle when K has few vec4s.
 * The epilogue (and its GELU) is wgsl-common's MATMUL_EPILOGUE_WGSL, shared with the quantized matmul.
 */
import { MATMUL_EPILOGUE_WGSL, tileProductWgsl, tileStoreWgsl } from './wgsl-common.ts';

export const TILE_M = 64;
export const TILE_N = 64;
export const TILE_K = 16;
/** Each invocation of the tiled kernel computes a BLOCK × BLOCK piece of the output tile. */
const BLOCK = 4;
export const GEMV_LANES = 64;
export const GEMV_COLUMNS = 4;
/** The gemv kernel keeps rows × GEMV_COLUMNS vec4 accumulators per invocation, so rows stay few. */
export const GEMV_MAX_ROWS = 8;

export type MatmulWeightDType = 'f32' | 'f16';

export type MatmulVariant =
  | {
      kind: 'tiled';
      /** x read as vec4 (needs K % 4 == 0, so every row starts 16-byte aligned). */
      vectorX: boolean;
    }
  | {
      kind: 'gemv';
      /** Rows the kernel is compiled for, at least M (extra rows read as zeros and are not stored). */
      rows: number;
      reduction: 'workgroup' | 'subgroup';
      vectorX: boolean;
    }
  | {
      kind: 'columns';
      /** Rows the kernel is compiled for, at least M, at most GEMV_MAX_ROWS. */
      rows: number;
      vectorX: boolean;
    }
  | {
      /**
       * For CPU-emulated adapters (SwiftShader): no workgroup memory and no barriers; each
       * invocation owns a rowsPerThread × colsPerThread block of y and streams x and W from
       * storage with vec4 loads. Real GPUs want the tiled kernel; the autotuner picks.
       */
      kind: 'register';
      rowsPerThread: RegisterBlock;
      colsPerThread: RegisterBlock;
      /** Invocations per workgroup. */
      workgroup: 64 | 128 | 256;
      vectorX: boolean;
    };

/** Register-block sides of the register variant; each divides TILE_N, so W reads stay in the padding. */
export type RegisterBlock = 1 | 2 | 4 | 8;

/** Invocations (and so columns) per workgroup of the columns kernel. */
export const COLUMNS_PER_GROUP = 64;

/**
 * Everything a shader depends on; equal configs give identical source. The epilogue (GELU,
 * residual) is switched by uniforms instead: a branch every invocation takes the same way costs
 * nothing next to the K loop, and every epilogue sharing one pipeline keeps the number of
 * shaders to compile at model load (slow in browsers) small.
 */
export interface MatmulShaderConfig {
  variant: MatmulVariant;
  weightDType: MatmulWeightDType;
}

/** Byte size of the uniform block every variant reads (struct Params below). */
export const MATMUL_PARAMS_BYTES = 32;

export function matmulShader(config: MatmulShaderConfig): string {
  const { variant } = config;
  if (variant.kind === 'tiled') return tiledShader(config);
  if (variant.kind === 'register') return registerShader(config, variant);
  return variant.kind === 'gemv' ? gemvShader(config, variant) : columnsShader(config, variant);
}

function header(config: MatmulShaderConfig, extraEnable = ''): string {
  const wElement = config.weightDType === 'f16' ? 'vec4<f16>' : 'vec4<f32>';
  const xElement = config.variant.vectorX ? 'vec4<f32>' : 'f32';
  return /* wgsl */ `
${config.weightDType === 'f16' ? 'enable f16;' : ''}
${extraEnable}

struct Params {
  m: u32,
  n: u32,
  k: u32,
  // Length of a padded weight row, in vec4s.
  wRow4: u32,
  // Workgroups along x when the grid is folded into two dimensions.
  groupsX: u32,
  // 1: apply GELU.
  gelu: u32,
  // 1: add the residual last (otherwise binding 5 is a placeholder).
  addResidual: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<${xElement}>;
@group(0) @binding(2) var<storage, read> w: array<${wElement}>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> residual: array<f32>;

// Four consecutive values of row \`row\` of x from column \`k\` (a multiple of 4), zero past the edges.
fn loadX4(row: u32, k: u32) -> vec4<f32> {
  if (row >= params.m || k >= params.k) { return vec4<f32>(0.0); }
${
  config.variant.vectorX
    ? '  return x[(row * params.k + k) / 4u];'
    : `  let base = row * params.k + k;
  let left = params.k - k;
  return vec4<f32>(
    x[base],
    select(0.0, x[base + 1u], left > 1u),
    select(0.0, x[base + 2u], left > 2u),
    select(0.0, x[base + 3u], left > 3u),
  );`
}
}

// Padding makes every (col < padded N, k4 < padded K / 4) valid: no bounds check.
fn loadW4(col: u32, k4: u32) -> vec4<f32> {
  return vec4<f32>(w[col * params.wRow4 + k4]);
}
${MATMUL_EPILOGUE_WGSL}
`;
}

function tiledShader(config: MatmulShaderConfig): string {
  const threadsN = TILE_N / BLOCK;
  const threadsM = TILE_M / BLOCK;
  const lanesPerRow = TILE_K / 4;
  // One vec4 of x and one of W per invocation fill both tiles.
  if (threadsN * threadsM !== TILE_M * lanesPerRow || TILE_M !== TILE_N) throw new Error('tile constants do not fit the load scheme');
  const rows = Array.from({ length: BLOCK }, (_, i) => i);
  const components = ['x', 'y', 'z', 'w'];
  return /* wgsl */ `${header(config)}
const TILE_M = ${TILE_M}u;
const TILE_N = ${TILE_N}u;
const TILE_K = ${TILE_K}u;

// Transposed tiles, [k][m / 4] and [k][n / 4]: one vec4 read gives an invocation's 4 rows (or columns) at one k.
var<workgroup> xTile: array<vec4<f32>, ${(TILE_K * TILE_M) / 4}>;
var<workgroup> wTile: array<vec4<f32>, ${(TILE_K * TILE_N) / 4}>;

@compute @workgroup_size(${threadsN}, ${threadsM})
fn main(
  @builtin(workgroup_id) group: vec3u,
  @builtin(local_invocation_id) local: vec3u,
  @builtin(local_invocation_index) index: u32,
) {
  let row0 = group.y * TILE_M;
  let col0 = group.x * TILE_N;
  // Loading: invocation \`index\` fetches 4 consecutive k of tile row (and weight row) index / ${lanesPerRow}.
  let loadRow = index / ${lanesPerRow}u;
  let loadK4 = index % ${lanesPerRow}u;
  let slot = loadRow / 4u;
  let lane = loadRow % 4u;

${rows.map((i) => `  var acc${i} = vec4<f32>(0.0);`).join('\n')}

  let kTiles = (params.k + TILE_K - 1u) / TILE_K;
  for (var t = 0u; t < kTiles; t++) {
    let k0 = t * TILE_K;
    let xv = loadX4(row0 + loadRow, k0 + loadK4 * 4u);
    let wv = loadW4(col0 + loadRow, k0 / 4u + loadK4);
${rows
  .map(
    (i) => `    xTile[(loadK4 * 4u + ${i}u) * ${threadsM}u + slot][lane] = xv.${components[i]};
    wTile[(loadK4 * 4u + ${i}u) * ${threadsN}u + slot][lane] = wv.${components[i]};`,
  )
  .join('\n')}
    workgroupBarrier();
${tileProductWgsl('TILE_K', `${threadsM}u`, `${threadsN}u`, 'b')}
    workgroupBarrier();
  }

${tileStoreWgsl()}
}
`;
}

function gemvShader(config: MatmulShaderConfig, variant: Extract<MatmulVariant, { kind: 'gemv' }>): string {
  const rows = Array.from({ length: variant.rows }, (_, i) => i);
  const cols = Array.from({ length: GEMV_COLUMNS }, (_, j) => j);
  const outputs = variant.rows * GEMV_COLUMNS;
  // Partial sum i belongs to row i / GEMV_COLUMNS, column i % GEMV_COLUMNS.
  const sums = rows.flatMap((r) => cols.map((c) => ({ r, c, index: r * GEMV_COLUMNS + c })));
  const subgroups = variant.reduction === 'subgroup';

  const reduction = subgroups
    ? /* wgsl */ `
  // Each subgroup's first invocation leaves its subgroup's totals; the others leave zeros, so
  // the final sum needs no knowledge of how invocations were grouped.
${sums.map(({ index }) => `  let total${index} = subgroupAdd(s${index});`).join('\n')}
  let leader = subgroupLane == 0u;
${sums.map(({ index }) => `  partials[${index}u * LANES + lane] = select(0.0, total${index}, leader);`).join('\n')}
  workgroupBarrier();
  if (lane < OUTPUTS) {
    var sum = 0.0;
    for (var i = 0u; i < LANES; i++) { sum += partials[lane * LANES + i]; }
    store(lane, sum, col0);
  }`
    : /* wgsl */ `
${sums.map(({ index }) => `  partials[${index}u * LANES + lane] = s${index};`).join('\n')}
  workgroupBarrier();
  for (var stride = LANES / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      for (var i = 0u; i < OUTPUTS; i++) { partials[i * LANES + lane] += partials[i * LANES + lane + stride]; }
    }
    workgroupBarrier();
  }
  if (lane < OUTPUTS) { store(lane, partials[lane * LANES], col0); }`;

  return /* wgsl */ `${header(config, subgroups ? 'enable subgroups;' : '')}
const LANES = ${GEMV_LANES}u;
const COLUMNS = ${GEMV_COLUMNS}u;
const OUTPUTS = ${outputs}u;

// [output][lane]: one partial sum per invocation for every output of the workgroup.
var<workgroup> partials: array<f32, ${outputs * GEMV_LANES}>;

fn store(output: u32, sum: f32, col0: u32) {
  let row = output / COLUMNS;
  let col = col0 + output % COLUMNS;
  if (row < params.m && col < params.n) { y[row * params.n + col] = finish(sum, row, col); }
}

@compute @workgroup_size(${GEMV_LANES})
fn main(
  @builtin(workgroup_id) group: vec3u,
  @builtin(local_invocation_index) lane: u32,
${subgroups ? '  @builtin(subgroup_invocation_id) subgroupLane: u32,' : ''}
) {
  let col0 = (group.y * params.groupsX + group.x) * COLUMNS;
  // The folded grid may hold a few workgroups past the end; they all leave together (uniformly).
  if (col0 >= params.n) { return; }

${sums.map(({ index }) => `  var acc${index} = vec4<f32>(0.0);`).join('\n')}
  let k4Count = (params.k + 3u) / 4u;
  for (var k4 = lane; k4 < k4Count; k4 += LANES) {
${cols.map((c) => `    let w${c} = loadW4(col0 + ${c}u, k4);`).join('\n')}
${rows.map((r) => `    let x${r} = loadX4(${r}u, k4 * 4u);`).join('\n')}
${sums.map(({ r, c, index }) => `    acc${index} = fma(x${r}, w${c}, acc${index});`).join('\n')}
  }
${sums.map(({ index }) => `  let s${index} = dot(acc${index}, vec4<f32>(1.0));`).join('\n')}
${reduction}
}
`;
}

function columnsShader(config: MatmulShaderConfig, variant: Extract<MatmulVariant, { kind: 'columns' }>): string {
  const rows = Array.from({ length: variant.rows }, (_, i) => i);
  return /* wgsl */ `${header(config)}
@compute @workgroup_size(${COLUMNS_PER_GROUP})
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lane: u32) {
  let col = (group.y * params.groupsX + group.x) * ${COLUMNS_PER_GROUP}u + lane;
  if (col >= params.n) { return; }
${rows.map((r) => `  var acc${r} = vec4<f32>(0.0);`).join('\n')}
  let k4Count = (params.k + 3u) / 4u;
  for (var k4 = 0u; k4 < k4Count; k4++) {
    let w = loadW4(col, k4);
${rows.map((r) => `    acc${r} = fma(loadX4(${r}u, k4 * 4u), w, acc${r});`).join('\n')}
  }
${rows.map((r) => `  if (${r}u < params.m) { y[${r}u * params.n + col] = finish(dot(acc${r}, vec4<f32>(1.0)), ${r}u, col); }`).join('\n')}
}
`;
}

function registerShader(config: MatmulShaderConfig, variant: Extract<MatmulVariant, { kind: 'register' }>): string {
  const rows = Array.from({ length: variant.rowsPerThread }, (_, i) => i);
  const cols = Array.from({ length: variant.colsPerThread }, (_, j) => j);
  const pairs = rows.flatMap((r) => cols.map((c) => ({ r, c })));
  // Rows past M are clamped onto the last row (valid memory, results never stored), so the
  // vec4 path's hot loop has no bounds checks at all.
  const loadX = variant.vectorX
    ? (r: number) => `x[xRow${r} + k4]`
    : (r: number) => `loadX4(row${r}, k4 * 4u)`;
  return /* wgsl */ `${header(config)}
const ROWS = ${variant.rowsPerThread}u;
const COLS = ${variant.colsPerThread}u;

@compute @workgroup_size(${variant.workgroup})
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lane: u32) {
  let id = (group.y * params.groupsX + group.x) * ${variant.workgroup}u + lane;
  let colBlocks = (params.n + COLS - 1u) / COLS;
  let rowBlock = id / colBlocks;
  let firstRow = rowBlock * ROWS;
  let col0 = (id % colBlocks) * COLS;
  if (firstRow >= params.m) { return; }
  let k4Count = (params.k + 3u) / 4u;
${rows.map((r) => `  let row${r} = min(firstRow + ${r}u, params.m - 1u);\n  let xRow${r} = row${r} * k4Count;`).join('\n')}
${cols.map((c) => `  let wRow${c} = (col0 + ${c}u) * params.wRow4;`).join('\n')}
${pairs.map(({ r, c }) => `  var acc${r}_${c} = 0.0;`).join('\n')}
  for (var k4 = 0u; k4 < k4Count; k4++) {
${rows.map((r) => `    let x${r} = ${loadX(r)};`).join('\n')}
${cols.map((c) => `    let w${c} = vec4<f32>(w[wRow${c} + k4]);`).join('\n')}
${pairs.map(({ r, c }) => `    acc${r}_${c} += dot(x${r}, w${c});`).join('\n')}
  }
${pairs
  .map(
    ({ r, c }) =>
      `  if (firstRow + ${r}u < params.m && col0 + ${c}u < params.n) { y[(firstRow + ${r}u) * params.n + col0 + ${c}u] = finish(acc${r}_${c}, firstRow + ${r}u, col0 + ${c}u); }`,
  )
  .join('\n')}
}
`;
}
