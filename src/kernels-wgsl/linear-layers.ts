/**
 * The forms a linear layer's weight takes in the WebGPU backend, and the one entry that records
 * y = gelu?(x · Wᵀ + bias) + residual for all of them:
 * - row-major f32/f16, padded (matmul.ts), and ggml blocks kept quantized (matmul-quant.ts);
 * - tile-major f32 or q8_0 (matmul-tiled-weights.ts), the backend's 'blocked' layout;
 * - row chunks of any of those, for a weight larger than one storage binding may be (the tied
 *   logits over a large vocabulary): each chunk is its own buffer holding W's rows
 *   [firstRow, firstRow + rows), i.e. the output's columns in that range. A chunk's matmul writes
 *   a scratch [m, rows] that `recordPlaceColumns` moves into its column range of the output
 *   (adding the residual there), so every kernel keeps its one-output-per-call contract.
 */
import { recordLinear, GEMV_MAX_ROWS, type GpuLinear } from './matmul.ts';
import { recordTiledWeightsMatmul, type GpuTiledLinear, type TiledWeightsVariant } from './matmul-tiled-weights.ts';
import { cachedPipeline, checkBuffer, checkCount, recordDispatch, shapeError, uniformWords, type GpuRecording } from './wgsl-common.ts';

/** One buffer's worth of a linear layer, on one of the matmul kernels. */
export type GpuLinearLayer = GpuLinear | GpuTiledLinear;

export interface GpuLinearChunk {
  /** The first of W's rows (output columns) this chunk holds. */
  readonly firstRow: number;
  readonly rows: number;
  readonly layer: GpuLinearLayer;
}

/** A linear layer stored as row chunks, each under the device's binding limit. */
export interface GpuSplitLinear {
  readonly chunks: readonly GpuLinearChunk[];
  readonly outFeatures: number;
  readonly inFeatures: number;
  readonly hasBias: boolean;
  destroy(): void;
}

export type GpuBackendLinear = GpuLinearLayer | GpuSplitLinear;

export function isSplitLinear(layer: GpuBackendLinear): layer is GpuSplitLinear {
  return 'chunks' in layer;
}

function isTiledLinear(layer: GpuLinearLayer): layer is GpuTiledLinear {
  return 'format' in layer;
}

/** The kernel a layer runs on (the name the backend's stats count). */
export function linearKernelName(layer: GpuLinearLayer): 'tiledWeightsMatmul' | 'matmul' | 'quantizedMatmul' {
  if (isTiledLinear(layer)) return 'tiledWeightsMatmul';
  return layer.dtype === 'f32' || layer.dtype === 'f16' ? 'matmul' : 'quantizedMatmul';
}

/**
 * The tile-major kernel's variant for decoder steps (m ≤ GEMV_MAX_ROWS): the register variant
 * with as few rows per invocation as cover m and 4 columns each. The workgroup variant would
 * compute a whole 64-row tile for one row, and the device's register choice (4-8 rows per
 * invocation) would waste most of its accumulators; the row-major gemv is not an option, as the
 * blocked layout keeps no row-major copy of the weight.
 */
export function fewRowsTiledVariant(m: number): TiledWeightsVariant {
  const rowsPerThread = m <= 1 ? 1 : m <= 2 ? 2 : m <= 4 ? 4 : 8;
  return { kind: 'register', rowsPerThread, colsPerThread: 4, workgroup: 64 };
}

export interface LayerArgs {
  /** [m, layer.inFeatures] f32. */
  x: GPUBuffer;
  m: number;
  layer: GpuLinearLayer;
  /** [m, layer.outFeatures] f32; must not be x or residual. */
  output: GPUBuffer;
  gelu?: boolean;
  residual?: GPUBuffer;
}

/** Records one layer (not split) on its kernel; returns the kernel's name. */
export function recordLinearLayer(recording: GpuRecording, args: LayerArgs): string {
  const { layer } = args;
  if (isTiledLinear(layer)) {
    recordTiledWeightsMatmul(recording, { ...args, weights: layer, variant: args.m <= GEMV_MAX_ROWS ? fewRowsTiledVariant(args.m) : undefined });
  } else {
    recordLinear(recording, { ...args, weights: layer });
  }
  return linearKernelName(layer);
}

export interface SplitLinearArgs {
  x: GPUBuffer;
  m: number;
  layer: GpuSplitLinear;
  /** [m, layer.outFeatures] f32. */
  output: GPUBuffer;
  gelu?: boolean;
  residual?: GPUBuffer;
  /** A buffer of at least `values` f32 for one chunk's result; handed back through `release` once recorded. */
  scratch: (values: number) => GPUBuffer;
  release: (buffer: GPUBuffer) => void;
}

/** Records a split layer: one matmul per chunk, each placed in its column range; returns the kernels' names. */
export function recordSplitLinear(recording: GpuRecording, args: SplitLinearArgs): string[] {
  const { x, m, layer, output, residual } = args;
  const kernels: string[] = [];
  for (const chunk of layer.chunks) {
    const scratch = args.scratch(m * chunk.rows);
    try {
      kernels.push(recordLinearLayer(recording, { x, m, layer: chunk.layer, output: scratch, gelu: args.gelu }));
      recordPlaceColumns(recording, { source: scratch, rows: m, width: chunk.rows, target: output, targetCols: layer.outFeatures, offset: chunk.firstRow, residual });
    } finally {
      // Later passes run after these in queue order: the next chunk may reuse the buffer at once.
      args.release(scratch);
    }
  }
  return kernels;
}

const PLACE_WORKGROUP = 64;
const PLACE_MAX_GROUPS = 4096;

const PLACE_COLUMNS_SHADER = /* wgsl */ `
struct Params { count: u32, width: u32, targetCols: u32, offset: u32, stride: u32, addResidual: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> source: array<f32>;
@group(0) @binding(2) var<storage, read_write> dest: array<f32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;

@compute @workgroup_size(${PLACE_WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u) {
  for (var i = id.x; i < params.count; i += params.stride) {
    let at = (i / params.width) * params.targetCols + params.offset + i % params.width;
    var value = source[i];
    if (params.addResidual != 0u) { value += residual[at]; }
    dest[at] = value;
  }
}
`;

export interface PlaceColumnsArgs {
  /** [rows, width] f32. */
  source: GPUBuffer;
  rows: number;
  width: number;
  /** [rows, targetCols] f32: columns [offset, offset + width) are written. */
  target: GPUBuffer;
  targetCols: number;
  offset: number;
  /** [rows, targetCols] f32, added at the same places. */
  residual?: GPUBuffer;
}

/** target[r, offset + c] = source[r, c] (+ residual[r, offset + c]). */
export function recordPlaceColumns(recording: GpuRecording, args: PlaceColumnsArgs): void {
  const kernel = 'placeColumns';
  const { rows, width, targetCols, offset } = args;
  checkCount(kernel, 'rows', rows);
  checkCount(kernel, 'width', width);
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + width > targetCols) throw shapeError(`${kernel}: columns ${offset}..${offset + width - 1} of ${targetCols}`);
  checkBuffer(kernel, 'source', args.source, rows * width);
  checkBuffer(kernel, 'target', args.target, rows * targetCols);
  if (args.residual) checkBuffer(kernel, 'residual', args.residual, rows * targetCols);
  if (args.target === args.source || args.target === args.residual) throw shapeError(`${kernel}: the target must not also be an input`);
  const count = rows * width;
  const groups = Math.max(1, Math.min(PLACE_MAX_GROUPS, Math.ceil(count / PLACE_WORKGROUP)));
  const params = uniformWords(recording, kernel, [count, width, targetCols, offset, groups * PLACE_WORKGROUP, args.residual ? 1 : 0]);
  // Without a residual the source stands in for it (read-only, never read).
  const buffers = [params, args.source, args.target, args.residual ?? args.source];
  recordDispatch(recording, kernel, cachedPipeline(recording.device, kernel, PLACE_COLUMNS_SHADER), buffers, [groups]);
}
