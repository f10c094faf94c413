/**
 * Whisper's convolutions on WebGPU: kernel 3, padding 1, stride 1 or 2, bias and optional exact
 * GELU fused, reading the log-mel spectrogram channels-first [nMels, frames] or the previous
 * convolution's time-major output [frames, channels], always writing time-major
 * [outFrames, outChannels]. A direct kernel, one invocation per output value; consecutive
 * invocations take consecutive output channels so the writes coalesce and the input reads are shared.
 */
import type { Conv1dOptions } from '../core/model/ops.ts';
import { readFloat32 } from './device.ts';
import { kernelVariants, type ConvVariant } from './variants.ts';
import {
  cachedPipeline,
  checkBuffer,
  checkCount,
  createStorage,
  destroyAll,
  GELU_WGSL,
  recordDispatch,
  runRecorded,
  shapeError,
  uniformWords,
  uploadStorage,
  type GpuRecording,
} from './wgsl-common.ts';

const KERNEL = 'conv1d';
const WORKGROUP = 64;

interface ConvShaderConfig {
  channelsFirst: boolean;
  gelu: boolean;
  bias: boolean;
}

/** What every conv shader declares: its parameters and buffers (bias and GELU when used). */
function convBindings(gelu: boolean, bias: boolean): string {
  return /* wgsl */ `struct Params { frames: u32, inChannels: u32, outChannels: u32, outFrames: u32, stride: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${bias ? '@group(0) @binding(4) var<storage, read> bias: array<f32>;' : ''}
${gelu ? GELU_WGSL : ''}
`;
}

function convShader({ channelsFirst, gelu, bias }: ConvShaderConfig): string {
  const read = channelsFirst ? 'x[c * params.frames + u32(source)]' : 'x[u32(source) * params.inChannels + c]';
  return /* wgsl */ `
${convBindings(gelu, bias)}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u) {
  let o = id.x;
  let t = id.y;
  if (o >= params.outChannels || t >= params.outFrames) { return; }
  var sum = 0.0;
  let w = o * params.inChannels * 3u;
  for (var k = 0u; k < 3u; k++) {
    let source = i32(t * params.stride + k) - 1;
    if (source < 0 || source >= i32(params.frames)) { continue; }
    for (var c = 0u; c < params.inChannels; c++) { sum += ${read} * weight[w + c * 3u + k]; }
  }
  ${bias ? 'sum += bias[o];' : ''}
  ${gelu ? 'sum = gelu(sum);' : ''}
  y[t * params.outChannels + o] = sum;
}
`;
}

/**
 * The blocked variant (variants.ts 'blocked'): each invocation computes BLOCK output channels of
 * BLOCK output frames, so every input and weight value it loads feeds BLOCK multiply-adds instead
 * of one; no workgroup memory or barriers. For CPU emulations, where loads are what costs.
 */
const BLOCK = 4;

function blockedConvShader({ channelsFirst, gelu, bias }: ConvShaderConfig): string {
  const read = (f: number) => (channelsFirst ? `x[c * params.frames + source${f}]` : `x[source${f} * params.inChannels + c]`);
  const items = [0, 1, 2, 3];
  return /* wgsl */ `
${convBindings(gelu, bias)}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u) {
  let o0 = id.x * ${BLOCK}u;
  let t0 = id.y * ${BLOCK}u;
  if (o0 >= params.outChannels || t0 >= params.outFrames) { return; }
  // Channels and frames past the end are clamped onto the last (valid reads, never stored).
${items.map((i) => `  let w${i} = min(o0 + ${i}u, params.outChannels - 1u) * params.inChannels * 3u;`).join('\n')}
${items.flatMap((f) => items.map((o) => `  var sum${f}_${o} = 0.0;`)).join('\n')}
  for (var k = 0u; k < 3u; k++) {
${items
  .map(
    (f) => `    let position${f} = i32(min(t0 + ${f}u, params.outFrames - 1u) * params.stride + k) - 1;
    // Padding: a tap outside the input reads frame 0 and counts nothing.
    let valid${f} = select(0.0, 1.0, position${f} >= 0 && position${f} < i32(params.frames));
    let source${f} = u32(clamp(position${f}, 0, i32(params.frames) - 1));`,
  )
  .join('\n')}
    for (var c = 0u; c < params.inChannels; c++) {
${items.map((f) => `      let x${f} = ${read(f)} * valid${f};`).join('\n')}
${items.map((o) => `      let k${o} = weight[w${o} + c * 3u + k];`).join('\n')}
${items.flatMap((f) => items.map((o) => `      sum${f}_${o} = fma(x${f}, k${o}, sum${f}_${o});`)).join('\n')}
    }
  }
${items
  .flatMap((f) =>
    items.map(
      (o) => `  if (t0 + ${f}u < params.outFrames && o0 + ${o}u < params.outChannels) {
    var value = sum${f}_${o};
    ${bias ? `value += bias[o0 + ${o}u];` : ''}
    ${gelu ? 'value = gelu(value);' : ''}
    y[(t0 + ${f}u) * params.outChannels + o0 + ${o}u] = value;
  }`,
    ),
  )
  .join('\n')}
}
`;
}

export interface ConvArgs extends Conv1dOptions {
  /** channels-first [inChannels, frames] or time-major [frames, inChannels], f32. */
  x: GPUBuffer;
  frames: number;
  inChannels: number;
  outChannels: number;
  /** [outChannels, inChannels, 3] f32. */
  weight: GPUBuffer;
  /** [outChannels] f32. */
  bias?: GPUBuffer;
  /** [convOutputFrames(frames, stride), outChannels] f32. */
  output: GPUBuffer;
  /** Overrides the device's chosen variant (kernelVariants). */
  variant?: ConvVariant;
}

export function convOutputFrames(frames: number, stride: 1 | 2): number {
  return Math.floor((frames - 1) / stride) + 1;
}

export function recordConv1d(recording: GpuRecording, args: ConvArgs): void {
  const { frames, inChannels, outChannels, stride } = args;
  checkCount(KERNEL, 'frames', frames);
  checkCount(KERNEL, 'inChannels', inChannels);
  checkCount(KERNEL, 'outChannels', outChannels);
  if (stride !== 1 && stride !== 2) throw shapeError(`${KERNEL}: stride must be 1 or 2, got ${String(stride)}`);
  const outFrames = convOutputFrames(frames, stride);
  checkBuffer(KERNEL, 'x', args.x, frames * inChannels);
  checkBuffer(KERNEL, 'weight', args.weight, outChannels * inChannels * 3);
  if (args.bias) checkBuffer(KERNEL, 'bias', args.bias, outChannels);
  checkBuffer(KERNEL, 'output', args.output, outFrames * outChannels);
  if (args.output === args.x) throw shapeError(`${KERNEL}: the output buffer is also the input`);
  const limit = recording.device.limits.maxComputeWorkgroupsPerDimension;
  const blocked = (args.variant ?? kernelVariants(recording.device).conv) === 'blocked';
  const grid: [number, number] = blocked
    ? [Math.ceil(Math.ceil(outChannels / BLOCK) / WORKGROUP), Math.ceil(outFrames / BLOCK)]
    : [Math.ceil(outChannels / WORKGROUP), outFrames];
  if (grid[0] > limit || grid[1] > limit) throw shapeError(`${KERNEL}: ${outFrames} × ${outChannels} outputs exceed the workgroup grid limit ${limit}`);

  const config = { channelsFirst: args.inputLayout === 'channels-first', gelu: args.gelu ?? false, bias: args.bias !== undefined };
  const label = `conv1d${blocked ? ' blocked' : ''} ${args.inputLayout}${config.gelu ? ' +gelu' : ''}`;
  const params = uniformWords(recording, KERNEL, [frames, inChannels, outChannels, outFrames, stride]);
  const buffers = [params, args.x, args.weight, args.output, ...(args.bias ? [args.bias] : [])];
  recordDispatch(recording, label, cachedPipeline(recording.device, label, blocked ? blockedConvShader(config) : convShader(config)), buffers, grid);
}

export interface ConvInput extends Conv1dOptions {
  x: Float32Array;
  frames: number;
  inChannels: number;
  outChannels: number;
  weight: Float32Array;
  bias?: Float32Array;
  variant?: ConvVariant;
}

/** Uploads, runs and reads back one convolution (tests, experiments); the result is [outFrames, outChannels]. */
export async function runConv1d(device: GPUDevice, input: ConvInput): Promise<Float32Array> {
  const count = convOutputFrames(input.frames, input.stride) * input.outChannels;
  const x = uploadStorage(device, 'conv1d x', input.x);
  const weight = uploadStorage(device, 'conv1d weight', input.weight);
  const bias = input.bias ? uploadStorage(device, 'conv1d bias', input.bias) : undefined;
  const output = createStorage(device, 'conv1d output', count);
  try {
    await runRecorded(device, KERNEL, (recording) => recordConv1d(recording, { ...input, x, weight, bias, output }));
    return await readFloat32(device, output, count);
  } finally {
    destroyAll([x, weight, bias, output]);
  }
}
