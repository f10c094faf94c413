/**
 * The linear layer as a 1×1 convolution over channels-first activations (src/core/layout/
 * channels-first.ts): x (B, K, 1, S) → y (B, N, 1, S), y[b, n, s] = gelu?(Σ_k W[n, k]·x[b, k, s] +
 * bias[n]) + residual[b, n, s]. The weight is the linear's own [N, K], uploaded by matmul.ts's
 * uploadLinearWeights (padded to 64 rows and 16 columns, f32 or f16): a linear weight already is
 * the 1×1 convolution's (N, K, 1, 1).
 *
 * The sequence axis is padded to 64 bytes, so every channel row is a whole number of vec4s and
 * is read with no bounds checks; the weight's padding covers the channel blocks past N. Each
 * invocation owns 4 output channels × 8 positions (8 vec4 accumulators), without workgroup
 * memory or barriers. Padded positions of y are written as zeros, keeping the layout's invariant.
 * The epilogue is wgsl-common's MATMUL_EPILOGUE_WGSL (finishAt, with the channels-first index).
 */
import { channelsFirstSequenceMultiple } from '../core/layout/channels-first.ts';
import { GpuUnavailableError } from './device.ts';
import type { GpuLinearWeights } from './matmul.ts';
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
  uniformWords,
  type GpuRecording,
} from './wgsl-common.ts';

const KERNEL = 'conv1x1ChannelsFirst';
const WORKGROUP = 64;
const CHANNELS_PER_THREAD = 4;
const POSITIONS_PER_THREAD = 8;

export interface Conv1x1ChannelsFirstArgs {
  /** (batch, weights.inFeatures, 1, paddedSequence) f32. */
  x: GPUBuffer;
  batch: number;
  /** Valid positions; the rest of each row is padding. */
  sequence: number;
  /** A multiple of 16 (64 bytes of f32). */
  paddedSequence: number;
  weights: GpuLinearWeights;
  /** (batch, weights.outFeatures, 1, paddedSequence) f32; must not be x or residual. */
  output: GPUBuffer;
  gelu?: boolean;
  /** Shaped like the output, added after the GELU. */
  residual?: GPUBuffer;
}

export function recordConv1x1ChannelsFirst(recording: GpuRecording, args: Conv1x1ChannelsFirstArgs): void {
  const { device } = recording;
  const { x, batch, sequence, paddedSequence, weights, output, residual } = args;
  const n = weights.outFeatures;
  const k = weights.inFeatures;
  checkCount(KERNEL, 'batch', batch);
  checkCount(KERNEL, 'sequence', sequence);
  const multiple = channelsFirstSequenceMultiple('f32');
  if (!Number.isSafeInteger(paddedSequence) || paddedSequence < sequence || paddedSequence % multiple !== 0) {
    throw shapeError(`${KERNEL}: the padded sequence must be a multiple of ${multiple} holding ${sequence} positions, got ${paddedSequence}`);
  }
  checkActivations(KERNEL, args, batch * k * paddedSequence, batch * n * paddedSequence);
  if (weights.dtype === 'f16' && !device.features.has('shader-f16')) {
    throw new GpuUnavailableError('f16 weights need a device created with the "shader-f16" feature');
  }
  const limit = device.limits.maxComputeWorkgroupsPerDimension;
  if (batch > limit) throw shapeError(`${KERNEL}: a batch of ${batch} is more than maxComputeWorkgroupsPerDimension (${limit})`);

  const threads = Math.ceil(n / CHANNELS_PER_THREAD) * (paddedSequence / POSITIONS_PER_THREAD);
  const [groupsX, groupsY] = foldedGrid(device, KERNEL, Math.ceil(threads / WORKGROUP));
  const label = `${KERNEL} ${weights.dtype}`;
  const params = uniformWords(recording, label, [n, k, sequence, paddedSequence, groupsX, args.gelu ? 1 : 0, residual ? 1 : 0, weights.paddedInFeatures / 4]);
  recordDispatch(
    recording,
    label,
    cachedPipeline(device, label, conv1x1ChannelsFirstShader(weights.dtype)),
    [params, x, weights.weight, weights.bias, output, residual ?? residualPlaceholder(device)],
    [groupsX, groupsY, batch],
  );
}

/** Uploads x (and a residual), runs the kernel and reads y back, padding included (tests, benchmarks). */
export async function runConv1x1ChannelsFirst(
  device: GPUDevice,
  weights: GpuLinearWeights,
  x: Float32Array,
  shape: { batch: number; sequence: number; paddedSequence: number },
  options: { gelu?: boolean; residual?: Float32Array } = {},
): Promise<Float32Array> {
  const outputValues = shape.batch * weights.outFeatures * shape.paddedSequence;
  if (x.length !== shape.batch * weights.inFeatures * shape.paddedSequence) {
    throw shapeError(`${KERNEL}: ${x.length} values of x are not (${shape.batch}, ${weights.inFeatures}, 1, ${shape.paddedSequence})`);
  }
  if (options.residual && options.residual.length !== outputValues) throw shapeError(`${KERNEL}: ${options.residual.length} residual values, the output has ${outputValues}`);
  return runOnActivations(device, KERNEL, x, options.residual, outputValues, (recording, buffers) =>
    recordConv1x1ChannelsFirst(recording, { ...shape, ...buffers, weights, gelu: options.gelu }),
  );
}

export function conv1x1ChannelsFirstShader(weightDType: 'f32' | 'f16'): string {
  const channels = Array.from({ length: CHANNELS_PER_THREAD }, (_, j) => j);
  const halves = [0, 1];
  const ks = [0, 1, 2, 3];
  const c = ['x', 'y', 'z', 'w'];
  const accumulate = channels
    .flatMap((j) => halves.map((h) => `      acc${j}_${h} = ${ks.reduceRight((inner, i) => `fma(vec4<f32>(w${j}.${c[i]}), x${i}_${h}, ${inner})`, `acc${j}_${h}`)};`))
    .join('\n');
  const loadW = channels.map((j) => `      let w${j} = vec4<f32>(w[(n0 + ${j}u) * params.wRow4 + k4]);`).join('\n');
  return /* wgsl */ `
${weightDType === 'f16' ? 'enable f16;' : ''}
struct Params {
  n: u32,
  k: u32,
  sequence: u32,
  paddedSequence: u32,
  groupsX: u32,
  gelu: u32,
  addResidual: u32,
  // Length of a padded weight row, in vec4s.
  wRow4: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<${weightDType}>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> residual: array<f32>;
${MATMUL_EPILOGUE_WGSL}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lane: u32) {
  let id = (group.y * params.groupsX + group.x) * ${WORKGROUP}u + lane;
  let blocksPerRow = params.paddedSequence / ${POSITIONS_PER_THREAD}u;
  let n0 = (id / blocksPerRow) * ${CHANNELS_PER_THREAD}u;
  if (n0 >= params.n) { return; }
  let s0 = (id % blocksPerRow) * ${POSITIONS_PER_THREAD}u;
  let b = group.z;
  let row4 = params.paddedSequence / 4u;
  let xBase = b * params.k * row4 + s0 / 4u;
${channels.flatMap((j) => halves.map((h) => `  var acc${j}_${h} = vec4<f32>(0.0);`)).join('\n')}
  let fullK4 = params.k / 4u;
  for (var k4 = 0u; k4 < fullK4; k4++) {
    {
${loadW}
      let at = xBase + k4 * 4u * row4;
${ks.flatMap((i) => halves.map((h) => `      let x${i}_${h} = x[at + ${i}u * row4 + ${h}u];`)).join('\n')}
${accumulate}
    }
  }
  // The last k % 4 input channels: rows past K are not read (row 0 of the step stands in, then
  // zeroed; the weight's padding is zero there anyway).
  let left = params.k - fullK4 * 4u;
  if (left > 0u) {
    let k4 = fullK4;
${loadW}
    let at = xBase + k4 * 4u * row4;
${ks.flatMap((i) => halves.map((h) => `    let x${i}_${h} = select(vec4<f32>(0.0), x[at + select(0u, ${i}u * row4, ${i}u < left) + ${h}u], ${i}u < left);`)).join('\n')}
${accumulate.replace(/^ {6}/gm, '    ')}
  }
${channels
  .map(
    (j) => `  if (n0 + ${j}u < params.n) {
    let rowAt = (b * params.n + n0 + ${j}u) * params.paddedSequence + s0;
${halves
  .flatMap((h) =>
    ks.map(
      (l) =>
        `    y[rowAt + ${h * 4 + l}u] = select(0.0, finishAt(acc${j}_${h}.${c[l]}, n0 + ${j}u, rowAt + ${h * 4 + l}u), s0 + ${h * 4 + l}u < params.sequence);`,
    ),
  )
  .join('\n')}
  }`,
  )
  .join('\n')}
}
`;
}
