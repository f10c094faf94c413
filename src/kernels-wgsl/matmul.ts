/**
 * The linear layer on WebGPU: y[M,N] = x[M,K] · Wᵀ + bias, optionally GELU, optionally + a
 * residual, in one dispatch (shaders in matmul-shaders.ts). Weights are uploaded once, padded so
 * the kernels never bounds-check them; activations are the caller's GPUBuffers, unpadded.
 *
 * `recordMatmul` records into a GpuRecording (wgsl-common.ts) like every other kernel, so a whole
 * encoder pass or decoder step is one submission; `recordLinear` is the one entry the backend
 * uses, choosing the kernel from the weight's dtype.
 */
import { f32ToF16 } from '../core/model/dtype.ts';
import { GpuKernelError, GpuUnavailableError } from './device.ts';
import { recordQuantizedMatmul, type GpuQuantizedLinear } from './matmul-quant.ts';
import { kernelVariants } from './variants.ts';
import { cachedPipeline, residualPlaceholder, runRecorded, shapeError, tileGrid, uniformWords, type GpuRecording } from './wgsl-common.ts';
import {
  COLUMNS_PER_GROUP,
  GEMV_COLUMNS,
  GEMV_LANES,
  GEMV_MAX_ROWS,
  matmulShader,
  TILE_K,
  TILE_M,
  TILE_N,
  type MatmulShaderConfig,
  type MatmulVariant,
  type MatmulWeightDType,
} from './matmul-shaders.ts';

export type { GpuQuantizedLinear } from './matmul-quant.ts';
export { GEMV_MAX_ROWS, type MatmulShaderConfig, type MatmulVariant, type MatmulWeightDType } from './matmul-shaders.ts';

/** Weight rows are padded to a multiple of this many values (the tiled kernel's K step, a multiple of 4). */
export const WEIGHT_K_ALIGNMENT = TILE_K;
/** The number of weight rows is padded to a multiple of this (the tiled kernel's N tile, a multiple of the gemv block). */
export const WEIGHT_N_ALIGNMENT = TILE_N;

const KERNEL = 'matmul';

/** A linear layer's weight and bias on the GPU, padded for the matmul kernels. */
export interface GpuLinearWeights {
  /** [paddedN, paddedK] row-major, zeros in the padding. */
  readonly weight: GPUBuffer;
  /** [paddedN] f32; zeros when the layer has no bias. */
  readonly bias: GPUBuffer;
  /** Outputs (N) and inputs (K) of the layer, before padding. */
  readonly outFeatures: number;
  readonly inFeatures: number;
  readonly paddedOutFeatures: number;
  readonly paddedInFeatures: number;
  readonly dtype: MatmulWeightDType;
  readonly hasBias: boolean;
  destroy(): void;
}

export interface UploadLinearWeightsOptions {
  /** Storage type of the weight; f16 (f32 accumulation) needs the device feature "shader-f16". */
  dtype?: MatmulWeightDType;
  label?: string;
}

/**
 * Uploads W [n, k] (row-major, as the weight schema stores it) and an optional bias [n], padding
 * k to WEIGHT_K_ALIGNMENT and n to WEIGHT_N_ALIGNMENT with zeros.
 */
export function uploadLinearWeights(
  device: GPUDevice,
  values: Float32Array,
  n: number,
  k: number,
  bias?: Float32Array,
  options: UploadLinearWeightsOptions = {},
): GpuLinearWeights {
  const dtype = options.dtype ?? 'f32';
  const label = options.label ?? 'linear';
  checkCount('uploadLinearWeights', 'n', n);
  checkCount('uploadLinearWeights', 'k', k);
  if (values.length !== n * k) throw shapeError(`uploadLinearWeights: ${values.length} weight values cannot be [${n}, ${k}]`);
  if (bias && bias.length !== n) throw shapeError(`uploadLinearWeights: a bias of ${bias.length} values for ${n} outputs`);
  if (dtype === 'f16' && !device.features.has('shader-f16')) {
    throw new GpuUnavailableError('f16 weights need a device created with the "shader-f16" feature');
  }

  const paddedN = roundUp(Math.max(n, 1), WEIGHT_N_ALIGNMENT);
  const paddedK = roundUp(Math.max(k, 1), WEIGHT_K_ALIGNMENT);
  const padded = dtype === 'f16' ? new Uint16Array(paddedN * paddedK) : new Float32Array(paddedN * paddedK);
  for (let row = 0; row < n; row++) {
    const source = values.subarray(row * k, (row + 1) * k);
    if (padded instanceof Float32Array) padded.set(source, row * paddedK);
    else for (let i = 0; i < k; i++) padded[row * paddedK + i] = f32ToF16(source[i]!);
  }
  const paddedBias = new Float32Array(paddedN);
  if (bias) paddedBias.set(bias);

  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const weight = device.createBuffer({ label: `${label} weight`, size: padded.byteLength, usage });
  const biasBuffer = device.createBuffer({ label: `${label} bias`, size: paddedBias.byteLength, usage });
  device.queue.writeBuffer(weight, 0, padded.buffer, padded.byteOffset, padded.byteLength);
  device.queue.writeBuffer(biasBuffer, 0, paddedBias.buffer, paddedBias.byteOffset, paddedBias.byteLength);
  return {
    weight,
    bias: biasBuffer,
    outFeatures: n,
    inFeatures: k,
    paddedOutFeatures: paddedN,
    paddedInFeatures: paddedK,
    dtype,
    hasBias: bias !== undefined,
    destroy() {
      weight.destroy();
      biasBuffer.destroy();
    },
  };
}

/**
 * The kernel for an [m, k] · [n, k]ᵀ product: for up to GEMV_MAX_ROWS rows, one invocation per
 * column when K is short, else split-K gemv (with subgroupAdd when the device has subgroups);
 * the tiled kernel for more rows; x is read as vec4
 * whenever its rows are 16-byte aligned. Gemv is compiled for exactly m rows: a decoder uses one
 * or two row counts, and spare rows would cost accumulator registers in a bandwidth-bound loop.
 */
export function matmulVariant(m: number, _n: number, k: number, features: ReadonlySet<string>): MatmulVariant {
  const vectorX = k % 4 === 0;
  // Split-K needs several vec4s of K per lane to keep its lanes busy; short rows go whole to one invocation.
  if (m >= 1 && m <= GEMV_MAX_ROWS && k < 4 * GEMV_LANES) return { kind: 'columns', rows: m, vectorX };
  if (m >= 1 && m <= GEMV_MAX_ROWS) {
    return { kind: 'gemv', rows: m, reduction: features.has('subgroups') ? 'subgroup' : 'workgroup', vectorX };
  }
  return { kind: 'tiled', vectorX };
}

/** matmulVariant, with the many-rows kernel the device's chosen variants name (variants.ts). */
export function deviceMatmulVariant(device: GPUDevice, m: number, n: number, k: number): MatmulVariant {
  const variant = matmulVariant(m, n, k, device.features as ReadonlySet<string>);
  const chosen = kernelVariants(device);
  if (variant.kind === 'gemv' && chosen.fewRows === 'columns') return { kind: 'columns', rows: variant.rows, vectorX: variant.vectorX };
  if (variant.kind !== 'tiled') return variant;
  return { ...chosen.matmul, vectorX: variant.vectorX };
}

export interface MatmulArgs {
  /** [m, weights.inFeatures] f32, row-major, unpadded. */
  x: GPUBuffer;
  m: number;
  weights: GpuLinearWeights;
  /** [m, weights.outFeatures] f32; must not be x or residual. */
  output: GPUBuffer;
  gelu?: boolean;
  /** [m, weights.outFeatures] f32, added after the GELU. */
  residual?: GPUBuffer;
  /** Overrides matmulVariant's choice (tests, tuning). */
  variant?: MatmulVariant;
}

/** output = gelu?(x · Wᵀ + bias) + residual, as one dispatch on its own submission (tests, experiments). */
export async function matmul(device: GPUDevice, args: MatmulArgs): Promise<void> {
  await runRecorded(device, KERNEL, (recording) => recordMatmul(recording, args));
}

/** Records output = gelu?(x · Wᵀ + bias) + residual as one dispatch into `recording`. */
export function recordMatmul(recording: GpuRecording, args: MatmulArgs): void {
  const { device } = recording;
  const { x, m, weights, output, residual } = args;
  const n = weights.outFeatures;
  const k = weights.inFeatures;
  checkCount(KERNEL, 'm', m);
  checkBuffer('x', x, m * k);
  checkBuffer('output', output, m * n);
  if (residual) checkBuffer('residual', residual, m * n);
  if (output === x || output === residual) throw shapeError(`${KERNEL}: the output buffer must not also be an input`);
  if (m === 0 || n === 0) return;

  const variant = args.variant ?? deviceMatmulVariant(device, m, n, k);
  checkVariant(device, variant, weights, m, k);
  const config: MatmulShaderConfig = { variant, weightDType: weights.dtype };
  const pipeline = matmulPipeline(device, config);
  const grid = dispatchGrid(device, variant, m, n);

  const uniforms = uniformWords(recording, KERNEL, [m, n, k, weights.paddedInFeatures / 4, grid[0], args.gelu ? 1 : 0, residual ? 1 : 0, 0]);
  const entries: GPUBindGroupEntry[] = [
    { binding: 0, resource: { buffer: uniforms } },
    { binding: 1, resource: { buffer: x, size: byteSize(m * k) } },
    { binding: 2, resource: { buffer: weights.weight } },
    { binding: 3, resource: { buffer: weights.bias } },
    { binding: 4, resource: { buffer: output, size: byteSize(m * n) } },
    { binding: 5, resource: residual ? { buffer: residual, size: byteSize(m * n) } : { buffer: residualPlaceholder(device) } },
  ];
  const label = describeConfig(config);
  const bindGroup = device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
  const pass = recording.encoder.beginComputePass({ label });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(grid[0], grid[1]);
  pass.end();
}

/** A linear layer's weights on the GPU, whatever their storage type. */
export type GpuLinear = GpuLinearWeights | GpuQuantizedLinear;

export interface LinearArgs {
  /** [m, weights.inFeatures] f32. */
  x: GPUBuffer;
  m: number;
  weights: GpuLinear;
  /** [m, weights.outFeatures] f32; must not be x or residual. */
  output: GPUBuffer;
  gelu?: boolean;
  /** [m, weights.outFeatures] f32, added after the GELU. */
  residual?: GPUBuffer;
}

function isFloatLinear(weights: GpuLinear): weights is GpuLinearWeights {
  return weights.dtype === 'f32' || weights.dtype === 'f16';
}

/**
 * Records output = gelu?(x · Wᵀ + bias) + residual with the kernel for the weight's dtype:
 * f32/f16 on the tiled, gemv or columns kernel (matmulVariant), the ggml block types on the
 * kernel that widens them in place (matmul-quant.ts).
 */
export function recordLinear(recording: GpuRecording, args: LinearArgs): void {
  const { weights } = args;
  if (isFloatLinear(weights)) recordMatmul(recording, { ...args, weights });
  else recordQuantizedMatmul(recording, { ...args, weights });
}

/** The compiled pipeline for a shader config, compiled once per device and source. */
export function matmulPipeline(device: GPUDevice, config: MatmulShaderConfig): GPUComputePipeline {
  const code = matmulShader(config);
  let compiled = compiledSources.get(device);
  if (!compiled) compiledSources.set(device, (compiled = new Set()));
  compiled.add(code);
  return cachedPipeline(device, describeConfig(config), code);
}

const compiledSources = new WeakMap<GPUDevice, Set<string>>();

/** How many matmul pipelines this device has compiled. */
export function matmulPipelineCount(device: GPUDevice): number {
  return compiledSources.get(device)?.size ?? 0;
}

function describeConfig({ variant, weightDType }: MatmulShaderConfig): string {
  const kind =
    variant.kind === 'tiled'
      ? 'tiled'
      : variant.kind === 'register'
        ? `register ${variant.rowsPerThread}×${variant.colsPerThread} wg${variant.workgroup}`
        : variant.kind === 'gemv'
          ? `gemv×${variant.rows} ${variant.reduction}`
          : `columns×${variant.rows}`;
  return `matmul ${kind}${variant.vectorX ? ' vec4-x' : ''} ${weightDType}`;
}

function checkVariant(device: GPUDevice, variant: MatmulVariant, weights: GpuLinearWeights, m: number, k: number): void {
  if (variant.vectorX && k % 4 !== 0) throw shapeError(`${KERNEL}: vec4 loads of x need K % 4 == 0, K is ${k}`);
  if (weights.dtype === 'f16' && !device.features.has('shader-f16')) {
    throw new GpuUnavailableError('f16 weights need a device created with the "shader-f16" feature');
  }
  if (variant.kind === 'tiled') return;
  if (variant.kind === 'register') {
    const blocks = [1, 2, 4, 8];
    if (!blocks.includes(variant.rowsPerThread) || !blocks.includes(variant.colsPerThread) || ![64, 128, 256].includes(variant.workgroup)) {
      throw shapeError(`${KERNEL}: register blocks ${variant.rowsPerThread}×${variant.colsPerThread} in workgroups of ${variant.workgroup} are not a supported variant`);
    }
    return;
  }
  if (!Number.isInteger(variant.rows) || variant.rows < m || variant.rows > GEMV_MAX_ROWS) {
    throw shapeError(`${KERNEL}: a ${variant.kind} variant for ${variant.rows} rows cannot multiply ${m} rows (it takes ${GEMV_MAX_ROWS} at most)`);
  }
  if (variant.kind === 'gemv' && variant.reduction === 'subgroup' && !device.features.has('subgroups')) {
    throw new GpuUnavailableError('the subgroup gemv variant needs a device created with the "subgroups" feature');
  }
}

function dispatchGrid(device: GPUDevice, variant: MatmulVariant, m: number, n: number): [number, number] {
  if (variant.kind === 'tiled') return tileGrid(device, KERNEL, m, n, TILE_M, TILE_N);
  const limit = device.limits.maxComputeWorkgroupsPerDimension;
  if (variant.kind === 'register') {
    const threads = Math.ceil(m / variant.rowsPerThread) * Math.ceil(n / variant.colsPerThread);
    const groups = Math.ceil(threads / variant.workgroup);
    const x = Math.min(groups, limit);
    const y = Math.ceil(groups / x);
    if (y > limit) throw new GpuKernelError(KERNEL, `[${m}, ${n}] needs ${groups} workgroups, more than ${limit}² can hold`);
    return [x, y];
  }
  // Column blocks folded into two dimensions; the kernel skips the few past the end.
  const blocks = Math.ceil(n / (variant.kind === 'gemv' ? GEMV_COLUMNS : COLUMNS_PER_GROUP));
  const x = Math.min(blocks, limit);
  return [x, Math.ceil(blocks / x)];
}

function checkBuffer(name: string, buffer: GPUBuffer, values: number): void {
  if (buffer.size < byteSize(values)) {
    throw shapeError(`${KERNEL}: ${name} holds ${buffer.size} bytes, fewer than the ${byteSize(values)} its ${values} f32 values need`);
  }
}

function checkCount(where: string, name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw shapeError(`${where}: ${name} must be a non-negative integer, got ${value}`);
}

/** Binding sizes must be positive; an empty x (K = 0) still binds 4 bytes it never reads. */
function byteSize(values: number): number {
  return Math.max(values, 1) * Float32Array.BYTES_PER_ELEMENT;
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}
