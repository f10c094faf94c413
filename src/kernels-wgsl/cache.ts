/**
 * Row movement and filling on WebGPU, for the KV cache and the decoder's last-row selection:
 * copying rows from one buffer to another by a list of (source row, target row) pairs serves
 * writeCache (new keys at the current offset of every sequence), reorderCache (beams swapping
 * their histories, through a scratch copy) and gatherRows; a fill gives zeroed caches.
 *
 * They are compute kernels rather than copyBufferToBuffer so they run, and are timed, like every
 * other op of a recording. Both use a grid-stride loop over the elements.
 */
import {
  cachedPipeline,
  checkBuffer,
  checkCount,
  f32Bits,
  recordDispatch,
  shapeError,
  temporaryBuffer,
  uniformWords,
  type GpuRecording,
} from './wgsl-common.ts';

const WORKGROUP = 64;
/** Workgroups of an element-wise dispatch: enough to fill a GPU, the loop covers the rest. */
const MAX_GROUPS = 4096;

const COPY_ROWS_SHADER = /* wgsl */ `
struct Params { count: u32, cols: u32, stride: u32 }

@group(0) @binding(0) var<uniform> params: Params;
// (source row, target row) per copied row.
@group(0) @binding(1) var<storage, read> pairs: array<vec2u>;
@group(0) @binding(2) var<storage, read> fromRows: array<f32>;
@group(0) @binding(3) var<storage, read_write> toRows: array<f32>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u) {
  for (var i = id.x; i < params.count; i += params.stride) {
    let pair = pairs[i / params.cols];
    let c = i % params.cols;
    toRows[pair.y * params.cols + c] = fromRows[pair.x * params.cols + c];
  }
}
`;

const FILL_SHADER = /* wgsl */ `
struct Params { count: u32, stride: u32, value: f32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> filled: array<f32>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u) {
  for (var i = id.x; i < params.count; i += params.stride) { filled[i] = params.value; }
}
`;

function elementwiseGroups(count: number): number {
  return Math.max(1, Math.min(MAX_GROUPS, Math.ceil(count / WORKGROUP)));
}

export interface CopyRowsArgs {
  /** Rows of `cols` f32 values. */
  source: GPUBuffer;
  sourceRows: number;
  target: GPUBuffer;
  targetRows: number;
  cols: number;
  /** [sourceRow, targetRow] pairs; no two may share a target row. */
  pairs: readonly (readonly [number, number])[];
  /** Names the op in errors. */
  kernel?: string;
}

/** Records target[targetRow] = source[sourceRow] for every pair. Source and target must differ. */
export function recordCopyRows(recording: GpuRecording, args: CopyRowsArgs): void {
  const kernel = args.kernel ?? 'copyRows';
  const { cols, pairs, sourceRows, targetRows } = args;
  checkCount(kernel, 'cols', cols);
  checkCount(kernel, 'rows copied', pairs.length);
  checkBuffer(kernel, 'source', args.source, sourceRows * cols);
  checkBuffer(kernel, 'target', args.target, targetRows * cols);
  if (args.source === args.target) throw shapeError(`${kernel}: source and target are the same buffer`);
  const ids = new Uint32Array(pairs.length * 2);
  pairs.forEach(([from, to], i) => {
    // The ids index GPU memory directly: out-of-range rows are refused here, never read or written.
    if (!Number.isInteger(from) || from < 0 || from >= sourceRows) throw shapeError(`${kernel}: source row ${from} of ${sourceRows}`);
    if (!Number.isInteger(to) || to < 0 || to >= targetRows) throw shapeError(`${kernel}: target row ${to} of ${targetRows}`);
    ids[2 * i] = from;
    ids[2 * i + 1] = to;
  });
  const count = pairs.length * cols;
  const groups = elementwiseGroups(count);
  const params = uniformWords(recording, kernel, [count, cols, groups * WORKGROUP]);
  const pairBuffer = temporaryBuffer(recording, `${kernel} rows`, ids.buffer, 'storage');
  recordDispatch(recording, kernel, cachedPipeline(recording.device, 'copyRows', COPY_ROWS_SHADER), [params, pairBuffer, args.source, args.target], [groups]);
}

/** Records target[0..count) = value. */
export function recordFill(recording: GpuRecording, target: GPUBuffer, count: number, value = 0, kernel = 'fill'): void {
  checkCount(kernel, 'count', count);
  checkBuffer(kernel, 'target', target, count);
  const groups = elementwiseGroups(count);
  const params = uniformWords(recording, kernel, [count, groups * WORKGROUP, f32Bits(value)]);
  recordDispatch(recording, kernel, cachedPipeline(recording.device, 'fill', FILL_SHADER), [params, target], [groups]);
}

/** Pairs for writeCache: x row s·n + i goes to cache row s·capacity + offset + i. */
export function cacheWritePairs(sequences: number, n: number, capacity: number, offset: number): [number, number][] {
  const pairs: [number, number][] = [];
  for (let s = 0; s < sequences; s++) for (let i = 0; i < n; i++) pairs.push([s * n + i, s * capacity + offset + i]);
  return pairs;
}
