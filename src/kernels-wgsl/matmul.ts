/**
 * The linear layer on WebGPU: y[M,N] = x[M,K] · Wᵀ + bias, optionally GELU, optionally + a
 * residual, in one dispatch (shaders in matmul-shaders.ts). Weights are uploaded once, padded so
 * the kernels never bounds-check them; activations are the caller's GPUBuffers, unpadded.
 */
import { MurmurError } from '../core/errors.ts';
import { f32ToF16 } from '../core/model/dtype.ts';
import { GpuKernelError, GpuUnavailableError, submitChecked } from './device.ts';
import {
  GEMV_COLUMNS,
  GEMV_MAX_ROWS,
  MATMUL_PARAMS_BYTES,
  matmulShader,
  TILE_K,
  TILE_M,
  TILE_N,
  type MatmulShaderConfig,
  type MatmulVariant,
  type MatmulWeightDType,
} from './matmul-shaders.ts';

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
 * The kernel for an [m, k] · [n, k]ᵀ product: gemv for up to GEMV_MAX_ROWS rows (with
 * subgroupAdd when the device has subgroups), the tiled kernel otherwise; x is read as vec4
 * whenever its rows are 16-byte aligned. Gemv is compiled for exactly m rows: a decoder uses one
 * or two row counts, and spare rows would cost accumulator registers in a bandwidth-bound loop.
 */
export function matmulVariant(m: number, _n: number, k: number, features: ReadonlySet<string>): MatmulVariant {
  const vectorX = k % 4 === 0;
  if (m >= 1 && m <= GEMV_MAX_ROWS) {
    return { kind: 'gemv', rows: m, reduction: features.has('subgroups') ? 'subgroup' : 'workgroup', vectorX };
  }
  return { kind: 'tiled', vectorX };
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

/** output = gelu?(x · Wᵀ + bias) + residual, as one dispatch on one command encoder. */
export async function matmul(device: GPUDevice, args: MatmulArgs): Promise<void> {
  const { x, m, weights, output, residual } = args;
  const n = weights.outFeatures;
  const k = weights.inFeatures;
  checkCount(KERNEL, 'm', m);
  checkBuffer('x', x, m * k);
  checkBuffer('output', output, m * n);
  if (residual) checkBuffer('residual', residual, m * n);
  if (output === x || output === residual) throw shapeError(`${KERNEL}: the output buffer must not also be an input`);
  if (m === 0 || n === 0) return;

  const variant = args.variant ?? matmulVariant(m, n, k, device.features as ReadonlySet<string>);
  checkVariant(device, variant, weights, m, k);
  const config: MatmulShaderConfig = { variant, weightDType: weights.dtype };
  const pipeline = await matmulPipeline(device, config);
  const grid = dispatchGrid(device, variant, m, n);

  const params = new ArrayBuffer(MATMUL_PARAMS_BYTES);
  new Uint32Array(params).set([m, n, k, weights.paddedInFeatures / 4, grid[0], args.gelu ? 1 : 0, residual ? 1 : 0]);
  const uniforms = device.createBuffer({ label: 'matmul params', size: MATMUL_PARAMS_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  try {
    await submitChecked(device, KERNEL, () => {
      device.queue.writeBuffer(uniforms, 0, params);
      const entries: GPUBindGroupEntry[] = [
        { binding: 0, resource: { buffer: uniforms } },
        { binding: 1, resource: { buffer: x, size: byteSize(m * k) } },
        { binding: 2, resource: { buffer: weights.weight } },
        { binding: 3, resource: { buffer: weights.bias } },
        { binding: 4, resource: { buffer: output, size: byteSize(m * n) } },
        { binding: 5, resource: residual ? { buffer: residual, size: byteSize(m * n) } : { buffer: placeholderBuffer(device) } },
      ];
      const bindGroup = device.createBindGroup({ label: 'matmul', layout: pipeline.getBindGroupLayout(0), entries });
      const encoder = device.createCommandEncoder({ label: 'matmul' });
      const pass = encoder.beginComputePass({ label: 'matmul' });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(grid[0], grid[1]);
      pass.end();
      device.queue.submit([encoder.finish()]);
    });
  } finally {
    // Work already submitted keeps the buffer alive until it completes.
    uniforms.destroy();
  }
}

const pipelineCache = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/** The compiled pipeline for a shader config, compiled once per device and source. */
export function matmulPipeline(device: GPUDevice, config: MatmulShaderConfig): Promise<GPUComputePipeline> {
  let cache = pipelineCache.get(device);
  if (!cache) pipelineCache.set(device, (cache = new Map()));
  const code = matmulShader(config);
  let pipeline = cache.get(code);
  if (!pipeline) {
    pipeline = compile(device, code, describeConfig(config));
    cache.set(code, pipeline);
    // A failed compile is not cached: the next call reports the error again.
    pipeline.catch(() => cache.delete(code));
  }
  return pipeline;
}

/** How many matmul pipelines this device has compiled (or is compiling). */
export function matmulPipelineCount(device: GPUDevice): number {
  return pipelineCache.get(device)?.size ?? 0;
}

async function compile(device: GPUDevice, code: string, label: string): Promise<GPUComputePipeline> {
  try {
    return await device.createComputePipelineAsync({
      label,
      layout: 'auto',
      compute: { module: device.createShaderModule({ label, code }), entryPoint: 'main' },
    });
  } catch (cause) {
    throw new GpuKernelError(KERNEL, `compiling the ${label} pipeline failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Bound in place of an absent residual, which the shader then never reads. */
const placeholders = new WeakMap<GPUDevice, GPUBuffer>();

function placeholderBuffer(device: GPUDevice): GPUBuffer {
  let buffer = placeholders.get(device);
  if (!buffer) {
    buffer = device.createBuffer({ label: 'matmul residual placeholder', size: 4, usage: GPUBufferUsage.STORAGE });
    placeholders.set(device, buffer);
  }
  return buffer;
}

function describeConfig({ variant, weightDType }: MatmulShaderConfig): string {
  const kind = variant.kind === 'tiled' ? 'tiled' : `gemv×${variant.rows} ${variant.reduction}`;
  return `matmul ${kind}${variant.vectorX ? ' vec4-x' : ''} ${weightDType}`;
}

function checkVariant(device: GPUDevice, variant: MatmulVariant, weights: GpuLinearWeights, m: number, k: number): void {
  if (variant.vectorX && k % 4 !== 0) throw shapeError(`${KERNEL}: vec4 loads of x need K % 4 == 0, K is ${k}`);
  if (weights.dtype === 'f16' && !device.features.has('shader-f16')) {
    throw new GpuUnavailableError('f16 weights need a device created with the "shader-f16" feature');
  }
  if (variant.kind !== 'gemv') return;
  if (!Number.isInteger(variant.rows) || variant.rows < m || variant.rows > GEMV_MAX_ROWS) {
    throw shapeError(`${KERNEL}: a gemv variant for ${variant.rows} rows cannot multiply ${m} rows (it takes ${GEMV_MAX_ROWS} at most)`);
  }
  if (variant.reduction === 'subgroup' && !device.features.has('subgroups')) {
    throw new GpuUnavailableError('the subgroup gemv variant needs a device created with the "subgroups" feature');
  }
}

function dispatchGrid(device: GPUDevice, variant: MatmulVariant, m: number, n: number): [number, number] {
  const limit = device.limits.maxComputeWorkgroupsPerDimension;
  if (variant.kind === 'tiled') {
    const grid: [number, number] = [Math.ceil(n / TILE_N), Math.ceil(m / TILE_M)];
    if (grid[0] > limit || grid[1] > limit) {
      throw new GpuKernelError(KERNEL, `[${m}, ${n}] needs ${grid[0]} × ${grid[1]} workgroups, more than maxComputeWorkgroupsPerDimension (${limit})`);
    }
    return grid;
  }
  // Column blocks folded into two dimensions; the kernel skips the few past the end.
  const blocks = Math.ceil(n / GEMV_COLUMNS);
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

function shapeError(problem: string): MurmurError {
  return new MurmurError('SHAPE', problem);
}
