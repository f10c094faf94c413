/**
 * What the WGSL kernels share: recording several dispatches into one command encoder (with the
 * small uniform and index buffers they need freed after the submission), a per-device pipeline
 * cache, exact GELU in WGSL, the shape checks every kernel makes before it records anything, and
 * the upload-run-read sequence of the `run…` helpers.
 */
import { MurmurError } from '../core/errors.ts';
import { GpuKernelError, readFloat32, submitChecked } from './device.ts';

/**
 * Where kernels record their work: one command encoder (one submission for a whole decoder step)
 * and the temporary buffers (uniforms, uploaded ids) that work reads, to destroy once submitted.
 */
export interface GpuRecording {
  readonly device: GPUDevice;
  readonly encoder: GPUCommandEncoder;
  readonly temporaries: GPUBuffer[];
}

export function beginRecording(device: GPUDevice, label = 'murmur step'): GpuRecording {
  return { device, encoder: device.createCommandEncoder({ label }), temporaries: [] };
}

/** Submits the recorded work and frees its temporaries (submitted work keeps them alive until it completes). */
export function submitRecording(recording: GpuRecording): void {
  recording.device.queue.submit([recording.encoder.finish()]);
  for (const buffer of recording.temporaries) buffer.destroy();
  recording.temporaries.length = 0;
}

/** Records with `record` into a fresh encoder and submits it inside GPU error scopes (the `run…` helpers use this). */
export async function runRecorded(device: GPUDevice, kernel: string, record: (recording: GpuRecording) => void): Promise<void> {
  await submitChecked(device, kernel, () => {
    const recording = beginRecording(device, kernel);
    try {
      record(recording);
      submitRecording(recording);
    } finally {
      for (const buffer of recording.temporaries) buffer.destroy();
    }
  });
}

/** A temporary buffer holding `data` (a uniform block, or u32 ids for storage), freed with the recording. */
export function temporaryBuffer(recording: GpuRecording, label: string, data: ArrayBuffer, usage: 'uniform' | 'storage'): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
  const buffer = recording.device.createBuffer({
    label,
    size,
    usage: usage === 'uniform' ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE,
    mappedAtCreation: true,
  });
  new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data));
  buffer.unmap();
  recording.temporaries.push(buffer);
  return buffer;
}

/** Uniform block of u32 words (f32 fields go in through their bit patterns, see f32Bits). */
export function uniformWords(recording: GpuRecording, label: string, words: readonly number[]): GPUBuffer {
  return temporaryBuffer(recording, `${label} params`, new Uint32Array(words).buffer, 'uniform');
}

const bitsView = new DataView(new ArrayBuffer(4));
/** The bit pattern of an f32, for uniform blocks written as u32 words. */
export function f32Bits(value: number): number {
  bitsView.setFloat32(0, value, true);
  return bitsView.getUint32(0, true);
}

/** One compute pass with one dispatch; `buffers[i]` is bound at @binding(i) of group 0. */
export function recordDispatch(
  recording: GpuRecording,
  label: string,
  pipeline: GPUComputePipeline,
  buffers: readonly GPUBuffer[],
  groups: readonly [number, number?, number?],
): void {
  const bindGroup = recording.device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const pass = recording.encoder.beginComputePass({ label });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(groups[0], groups[1] ?? 1, groups[2] ?? 1);
  pass.end();
}

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/**
 * The pipeline for `code` (entry point `main`), compiled once per device. Compilation is
 * synchronous so kernels can record without awaiting; a shader error surfaces as a validation
 * error in the error scope around the submission (runRecorded, submitChecked).
 */
export function cachedPipeline(device: GPUDevice, label: string, code: string): GPUComputePipeline {
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, (cache = new Map()));
  let pipeline = cache.get(code);
  if (!pipeline) {
    pipeline = device.createComputePipeline({
      label,
      layout: 'auto',
      compute: { module: device.createShaderModule({ label, code }), entryPoint: 'main' },
    });
    cache.set(code, pipeline);
  }
  return pipeline;
}

/**
 * Workgroup counts for `count` independent items (rows, blocks), folded into two dimensions when
 * one would exceed the device's limit; kernels rebuild the index as id.x + id.y · groups.x and
 * skip the few past the end.
 */
export function foldedGrid(device: GPUDevice, kernel: string, count: number): [number, number] {
  const limit = device.limits.maxComputeWorkgroupsPerDimension;
  const x = Math.max(1, Math.min(count, limit));
  const y = Math.ceil(count / x);
  if (y > limit) throw shapeError(`${kernel}: ${count} workgroups are more than ${limit}² can hold`);
  return [x, Math.max(1, y)];
}

/**
 * One workgroup per tileM × tileN tile of an [m, n] output, as [column tiles, row tiles]; a
 * GpuKernelError when either count exceeds the device's limit.
 */
export function tileGrid(device: GPUDevice, kernel: string, m: number, n: number, tileM: number, tileN: number): [number, number] {
  const grid: [number, number] = [Math.ceil(n / tileN), Math.ceil(m / tileM)];
  const limit = device.limits.maxComputeWorkgroupsPerDimension;
  if (grid[0] > limit || grid[1] > limit) {
    throw new GpuKernelError(kernel, `[${m}, ${n}] needs ${grid[0]} × ${grid[1]} workgroups, more than maxComputeWorkgroupsPerDimension (${limit})`);
  }
  return grid;
}

/**
 * Exact GELU, x·Φ(x) = x·erfc(-x/√2)/2 (PyTorch's default, not the tanh form). WGSL has no erf:
 * erfc on z ≥ 0 is the Chebyshev-fitted form t·exp(-z² + P(t)), t = 1/(1 + z/2), whose relative
 * error is below 1.2e-7 everywhere, so the negative tail keeps its precision too. For x ≥ 0 the
 * same erfc gives x - x·erfc(x/√2)/2. Absolute error against the double reference stays ~1e-7·|x|.
 */
export const GELU_WGSL = /* wgsl */ `
fn erfcNonNegative(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(p - z * z);
}

fn gelu(x: f32) -> f32 {
  let tail = 0.5 * x * erfcNonNegative(abs(x) * 0.70710678118654752);
  return select(tail, x - tail, x >= 0.0);
}
`;

/**
 * The matmul epilogue every matmul shader ends with: y = gelu?(sum + bias) + residual?, switched by
 * uniforms (`params.gelu`, `params.addResidual`) so one pipeline serves every combination.
 * The shader declares `bias`, `residual` and `params.n`. `finish` is for row-major outputs;
 * `finishAt` takes the residual's index itself, for outputs in another layout (channels-first).
 */
export const MATMUL_EPILOGUE_WGSL = /* wgsl */ `
${GELU_WGSL}
fn finishAt(sum: f32, col: u32, residualAt: u32) -> f32 {
  var value = sum + bias[col];
  if (params.gelu != 0u) { value = gelu(value); }
  if (params.addResidual != 0u) { value += residual[residualAt]; }
  return value;
}

fn finish(sum: f32, row: u32, col: u32) -> f32 {
  return finishAt(sum, col, row * params.n + col);
}
`;

/**
 * The workgroup-tiled matmuls (matmul-shaders, matmul-quant, matmul-tiled-weights) give each
 * invocation a 4 × 4 piece of the output tile, rows local.y·4.., columns local.x·4.., held in
 * acc0..acc3 (one vec4 of columns per row). This WGSL multiplies `depth` values of k out of the
 * transposed workgroup tiles xTile ([k][rows / 4], `xSide` vec4s per k) and wTile ([k][columns / 4],
 * `wSide` per k); `weight` names the local holding the wTile vector. Arguments are WGSL expressions.
 */
export function tileProductWgsl(depth: string, xSide: string, wSide: string, weight: string): string {
  const rows = [0, 1, 2, 3];
  const c = ['x', 'y', 'z', 'w'];
  return `    for (var kk = 0u; kk < ${depth}; kk++) {
      let a = xTile[kk * ${xSide} + local.y];
      let ${weight} = wTile[kk * ${wSide} + local.x];
${rows.map((i) => `      acc${i} = fma(vec4<f32>(a.${c[i]}), ${weight}, acc${i});`).join('\n')}
    }`;
}

/** Stores tileProductWgsl's 4 × 4 piece, through the matmul epilogue, into y [m, n] from output row row0 and column col0. */
export function tileStoreWgsl(): string {
  const rows = [0, 1, 2, 3];
  const c = ['x', 'y', 'z', 'w'];
  return `  let colBase = col0 + local.x * 4u;
${rows
  .map(
    (i) => `  {
    let row = row0 + local.y * 4u + ${i}u;
    if (row < params.m) {
${rows.map((j) => `      if (colBase + ${j}u < params.n) { y[row * params.n + colBase + ${j}u] = finish(acc${i}.${c[j]}, row, colBase + ${j}u); }`).join('\n')}
    }
  }`,
  )
  .join('\n')}`;
}

/** A mismatch between a kernel's arguments, named with the shapes involved. */
export function shapeError(problem: string): MurmurError {
  return new MurmurError('SHAPE', problem);
}

export function checkCount(kernel: string, name: string, value: number, minimum = 1): void {
  if (!Number.isSafeInteger(value) || value < minimum) throw shapeError(`${kernel}: ${name} must be an integer ≥ ${minimum}, got ${value}`);
}

/** The activations a matmul-like kernel reads and writes. */
export interface ActivationBuffers {
  x: GPUBuffer;
  /** Added after the GELU. */
  residual?: GPUBuffer;
  /** Must not be x or residual. */
  output: GPUBuffer;
}

/** Checks x, the output and the residual hold their values (counted in 4-byte elements) and that the output is neither input. */
export function checkActivations(kernel: string, { x, residual, output }: ActivationBuffers, xValues: number, outputValues: number): void {
  checkBuffer(kernel, 'x', x, xValues);
  checkBuffer(kernel, 'output', output, outputValues);
  if (residual) checkBuffer(kernel, 'residual', residual, outputValues);
  if (output === x || output === residual) throw shapeError(`${kernel}: the output buffer must not also be an input`);
}

/** The buffer must hold at least `values` 4-byte elements. */
export function checkBuffer(kernel: string, name: string, buffer: GPUBuffer, values: number): void {
  if (buffer.size < values * 4) {
    throw shapeError(`${kernel}: ${name} holds ${buffer.size} bytes, fewer than the ${values * 4} its ${values} values need`);
  }
}

// A function, not a constant: GPUBufferUsage exists only once a WebGPU implementation is loaded.
const storageUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** A storage buffer holding `values` (f32 or u32), usable as a kernel input or output and readable back. */
export function uploadStorage(device: GPUDevice, label: string, values: Float32Array | Uint32Array): GPUBuffer {
  const buffer = device.createBuffer({ label, size: Math.max(16, Math.ceil(values.byteLength / 16) * 16), usage: storageUsage() });
  device.queue.writeBuffer(buffer, 0, values.buffer, values.byteOffset, values.byteLength);
  return buffer;
}

/** An uninitialised storage buffer for `count` 4-byte values, readable back. */
export function createStorage(device: GPUDevice, label: string, count: number): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(16, Math.ceil((count * 4) / 16) * 16), usage: storageUsage() });
}

/** Destroys every buffer given (the `run…` helpers' cleanup). */
export function destroyAll(buffers: readonly (GPUBuffer | undefined)[]): void {
  for (const buffer of buffers) buffer?.destroy();
}

/**
 * Uploads x (and a residual), records one kernel over them into its own submission, reads the
 * output's `outputValues` values back and frees all three: the `run…` helpers (tests, benchmarks).
 */
export async function runOnActivations(
  device: GPUDevice,
  kernel: string,
  x: Float32Array,
  residual: Float32Array | undefined,
  outputValues: number,
  record: (recording: GpuRecording, buffers: ActivationBuffers) => void,
): Promise<Float32Array> {
  const buffers: ActivationBuffers = {
    x: uploadStorage(device, `${kernel} x`, x),
    residual: residual ? uploadStorage(device, `${kernel} residual`, residual) : undefined,
    output: createStorage(device, `${kernel} output`, outputValues),
  };
  try {
    await runRecorded(device, kernel, (recording) => record(recording, buffers));
    return await readFloat32(device, buffers.output, outputValues);
  } finally {
    destroyAll(Object.values(buffers));
  }
}

const placeholders = new WeakMap<GPUDevice, GPUBuffer>();

/** Bound in place of an absent residual, which the shader then never reads (one per device, shared by every kernel). */
export function residualPlaceholder(device: GPUDevice): GPUBuffer {
  let buffer = placeholders.get(device);
  if (!buffer) {
    buffer = device.createBuffer({ label: 'residual placeholder', size: 16, usage: GPUBufferUsage.STORAGE });
    placeholders.set(device, buffer);
  }
  return buffer;
}
