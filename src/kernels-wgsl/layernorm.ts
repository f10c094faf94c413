/**
 * LayerNorm over each row on WebGPU (PyTorch's nn.LayerNorm: eps 1e-5, biased variance), one
 * workgroup per row (or one invocation per row, see LayerNormVariant). Like the reference it takes two passes over the row, the mean first and then
 * the squared deviations from it, which stays accurate when the mean is large against the spread.
 */
import { readFloat32 } from './device.ts';
import { kernelVariants } from './variants.ts';
import {
  cachedPipeline,
  checkBuffer,
  checkCount,
  createStorage,
  destroyAll,
  f32Bits,
  foldedGrid,
  recordDispatch,
  runRecorded,
  shapeError,
  uniformWords,
  uploadStorage,
  type GpuRecording,
} from './wgsl-common.ts';

const KERNEL = 'layerNorm';
export const LAYER_NORM_EPS = 1e-5;
const WORKGROUP = 128;

/**
 * 'workgroup' (the default, shaped for GPUs): one workgroup per row, tree reductions in workgroup
 * memory. 'thread': one invocation per row and no barriers, with vec4 reads when the row length
 * allows; the fast choice where workgroups are emulated on a few CPU cores (SwiftShader).
 */
export type LayerNormVariant = 'workgroup' | 'thread';
const THREAD_WORKGROUP = 64;

function threadShader(vectorised: boolean): string {
  const element = vectorised ? 'vec4<f32>' : 'f32';
  const total = vectorised ? (v: string) => `dot(${v}, vec4<f32>(1.0))` : (v: string) => v;
  return /* wgsl */ `
struct Params { rows: u32, cols: u32, groupsX: u32, eps: f32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<${element}>;
@group(0) @binding(2) var<storage, read> gamma: array<${element}>;
@group(0) @binding(3) var<storage, read> beta: array<${element}>;
@group(0) @binding(4) var<storage, read_write> y: array<${element}>;

@compute @workgroup_size(${THREAD_WORKGROUP})
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) local: u32) {
  let row = (group.x + group.y * params.groupsX) * ${THREAD_WORKGROUP}u + local;
  if (row >= params.rows) { return; }
  // Elements per row: vec4s when vectorised (cols % 4 == 0).
  let n = ${vectorised ? 'params.cols / 4u' : 'params.cols'};
  let base = row * n;
  // Summed relative to the row's first value: one running sum of a row with a large mean would
  // lose the digits the variance needs, a tree reduction does not, and this keeps up with it.
  let shift = ${vectorised ? 'x[base].x' : 'x[base]'};
  var sum = ${element}(0.0);
  for (var i = 0u; i < n; i++) { sum += x[base + i] - shift; }
  let mean = shift + ${total('sum')} / f32(params.cols);
  var squares = ${element}(0.0);
  for (var i = 0u; i < n; i++) {
    let d = x[base + i] - mean;
    squares += d * d;
  }
  let inverseStd = inverseSqrt(${total('squares')} / f32(params.cols) + params.eps);
  for (var i = 0u; i < n; i++) { y[base + i] = (x[base + i] - mean) * inverseStd * gamma[i] + beta[i]; }
}
`;
}

const SHADER = /* wgsl */ `
struct Params { rows: u32, cols: u32, groupsX: u32, eps: f32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const WORKGROUP = ${WORKGROUP}u;
var<workgroup> partial: array<f32, ${WORKGROUP}>;

/** The workgroup's sum of \`value\`, returned to every invocation. */
fn workgroupSum(value: f32, local: u32) -> f32 {
  partial[local] = value;
  workgroupBarrier();
  for (var half = WORKGROUP / 2u; half > 0u; half /= 2u) {
    if (local < half) { partial[local] += partial[local + half]; }
    workgroupBarrier();
  }
  let total = partial[0];
  // Everyone has read the total before the next reduction overwrites it.
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) local: u32) {
  let row = group.x + group.y * params.groupsX;
  if (row >= params.rows) { return; }
  let base = row * params.cols;
  let n = params.cols;

  var sum = 0.0;
  for (var i = local; i < n; i += WORKGROUP) { sum += x[base + i]; }
  let mean = workgroupSum(sum, local) / f32(n);

  var squares = 0.0;
  for (var i = local; i < n; i += WORKGROUP) {
    let d = x[base + i] - mean;
    squares += d * d;
  }
  let inverseStd = inverseSqrt(workgroupSum(squares, local) / f32(n) + params.eps);

  for (var i = local; i < n; i += WORKGROUP) { y[base + i] = (x[base + i] - mean) * inverseStd * gamma[i] + beta[i]; }
}
`;

export interface LayerNormArgs {
  /** [rows, cols] f32. */
  x: GPUBuffer;
  rows: number;
  cols: number;
  /** [cols] f32 each. */
  gamma: GPUBuffer;
  beta: GPUBuffer;
  /** [rows, cols] f32; may not be x. */
  output: GPUBuffer;
  /** Overrides the device's chosen variant (kernelVariants). */
  variant?: LayerNormVariant;
}

export function recordLayerNorm(recording: GpuRecording, args: LayerNormArgs): void {
  const { rows, cols } = args;
  checkCount(KERNEL, 'rows', rows);
  checkCount(KERNEL, 'cols', cols);
  checkBuffer(KERNEL, 'x', args.x, rows * cols);
  checkBuffer(KERNEL, 'gamma', args.gamma, cols);
  checkBuffer(KERNEL, 'beta', args.beta, cols);
  checkBuffer(KERNEL, 'output', args.output, rows * cols);
  if (args.output === args.x) throw shapeError(`${KERNEL}: the output buffer is also the input`);
  const variant = args.variant ?? kernelVariants(recording.device).layerNorm;
  const perThread = variant === 'thread';
  const grid = foldedGrid(recording.device, KERNEL, perThread ? Math.ceil(rows / THREAD_WORKGROUP) : rows);
  const params = uniformWords(recording, KERNEL, [rows, cols, grid[0], f32Bits(LAYER_NORM_EPS)]);
  const vectorised = cols % 4 === 0;
  const pipeline = perThread
    ? cachedPipeline(recording.device, `${KERNEL} thread${vectorised ? ' vec4' : ''}`, threadShader(vectorised))
    : cachedPipeline(recording.device, KERNEL, SHADER);
  // The early return for rows past the end comes before any barrier and is uniform per workgroup.
  recordDispatch(recording, KERNEL, pipeline, [params, args.x, args.gamma, args.beta, args.output], grid);
}

/** Uploads, runs and reads back one layer norm (tests, experiments). */
export async function runLayerNorm(
  device: GPUDevice,
  x: Float32Array,
  rows: number,
  gamma: Float32Array,
  beta: Float32Array,
  variant?: LayerNormVariant,
): Promise<Float32Array> {
  const cols = gamma.length;
  if (x.length !== rows * cols) throw shapeError(`${KERNEL}: ${x.length} values are not [${rows}, ${cols}]`);
  const buffers = {
    x: uploadStorage(device, 'layerNorm x', x),
    gamma: uploadStorage(device, 'layerNorm gamma', gamma),
    beta: uploadStorage(device, 'layerNorm beta', beta),
    output: createStorage(device, 'layerNorm output', x.length),
  };
  try {
    await runRecorded(device, KERNEL, (recording) => recordLayerNorm(recording, { ...buffers, rows, cols, variant }));
    return await readFloat32(device, buffers.output, x.length);
  } finally {
    destroyAll(Object.values(buffers));
  }
}
