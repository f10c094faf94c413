/**
 * Acquiring a WebGPU device the same way in browsers (navigator.gpu) and in Node (the `webgpu`
 * package's GPU object, handed in by the caller), asking for every optional feature and the
 * larger limits the kernels can use when the adapter offers them.
 */
import { MurmurError } from '../core/errors.ts';

/** WebGPU cannot be used here: no API, no adapter, a missing required feature, or a refused device. */
export class GpuUnavailableError extends MurmurError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super('GPU_UNAVAILABLE', `WebGPU is not available: ${reason}`, options);
  }
}

/** A GPU command failed validation, ran out of memory or hit an internal error. */
export class GpuKernelError extends MurmurError {
  /** The kernel (or operation) whose commands failed. */
  readonly kernel: string;
  constructor(kernel: string, problem: string, options?: { cause?: unknown }) {
    super('GPU_KERNEL', `${kernel}: ${problem}`, options);
    this.kernel = kernel;
  }
}

/** Features the kernels use when present; none of them is required. */
export const OPTIONAL_GPU_FEATURES = ['subgroups', 'timestamp-query', 'shader-f16'] as const satisfies readonly GPUFeatureName[];

/** Limits whose defaults are too small for large models; the device gets the adapter's maximum. */
export const RAISED_GPU_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
] as const;

export interface GpuDeviceOptions {
  /** The WebGPU entry point; defaults to `navigator.gpu`. In Node pass `create([])` from the `webgpu` package. */
  gpu?: GPU;
  /** Features without which the caller cannot work; a GpuUnavailableError names any the adapter lacks. */
  requiredFeatures?: GPUFeatureName[];
  powerPreference?: GPUPowerPreference;
}

export interface GpuContext {
  adapter: GPUAdapter;
  device: GPUDevice;
  /** The features the device was created with. */
  features: ReadonlySet<GPUFeatureName>;
}

export async function requestGpuDevice(options: GpuDeviceOptions = {}): Promise<GpuContext> {
  const gpu = options.gpu ?? defaultGpu();

  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  } catch (cause) {
    throw new GpuUnavailableError(`requestAdapter() failed: ${describe(cause)}`, { cause });
  }
  if (!adapter) {
    throw new GpuUnavailableError(
      'requestAdapter() found no adapter (no supported GPU or driver, the GPU is blocklisted, ' +
        'or in Chromium without a usable backend: try --enable-unsafe-webgpu)',
    );
  }

  const required = options.requiredFeatures ?? [];
  const missing = required.filter((feature) => !adapter.features.has(feature));
  if (missing.length > 0) {
    throw new GpuUnavailableError(`the adapter lacks required feature(s) ${missing.map((f) => `"${f}"`).join(', ')}`);
  }
  const optional = OPTIONAL_GPU_FEATURES.filter((feature) => adapter.features.has(feature));
  const requiredFeatures = [...new Set<GPUFeatureName>([...required, ...optional])];

  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_GPU_LIMITS) {
    const value = adapter.limits[name];
    if (typeof value === 'number') requiredLimits[name] = value;
  }

  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  } catch (cause) {
    throw new GpuUnavailableError(
      `requestDevice() refused features [${requiredFeatures.join(', ')}] with limits ${JSON.stringify(requiredLimits)}: ${describe(cause)}`,
      { cause },
    );
  }
  return { adapter, device, features: new Set([...device.features] as GPUFeatureName[]) };
}

function defaultGpu(): GPU {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (typeof window === 'undefined' && typeof (globalThis as { process?: unknown }).process === 'object') {
    throw new GpuUnavailableError(
      "this runtime has no navigator.gpu; in Node pass options.gpu, e.g. create([]) from the 'webgpu' package",
    );
  }
  const secure = (globalThis as { isSecureContext?: boolean }).isSecureContext;
  throw new GpuUnavailableError(
    secure === false
      ? 'navigator.gpu is missing because the page is not a secure context (serve it over https or from localhost)'
      : 'navigator.gpu is missing: this browser does not support WebGPU or has it disabled',
  );
}

/**
 * Runs `record`, which must encode and submit GPU commands synchronously, inside validation,
 * out-of-memory and internal error scopes, so a bad shader or binding becomes a GpuKernelError
 * instead of silent zeros. Recording synchronously keeps other work's errors out of these scopes.
 */
export async function submitChecked<T>(device: GPUDevice, kernel: string, record: () => T): Promise<T> {
  const filters: GPUErrorFilter[] = ['validation', 'out-of-memory', 'internal'];
  for (const filter of filters) device.pushErrorScope(filter);
  let result: T | undefined;
  let thrown: unknown;
  try {
    result = record();
  } catch (error) {
    thrown = error;
  }
  const errors = await Promise.all(filters.map(() => device.popErrorScope()));
  const gpuError = errors.find((error) => error !== null);
  if (gpuError) throw new GpuKernelError(kernel, gpuError.message.trim(), { cause: gpuError });
  if (thrown !== undefined) throw thrown;
  return result as T;
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/** Copies `count` f32 values from the start of a GPU buffer (which needs COPY_SRC usage) to the CPU. */
export async function readFloat32(device: GPUDevice, source: GPUBuffer, count: number): Promise<Float32Array> {
  const byteLength = count * Float32Array.BYTES_PER_ELEMENT;
  const staging = device.createBuffer({ label: 'readback', size: byteLength, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
  try {
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(source, 0, staging, 0, byteLength);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    return new Float32Array(staging.getMappedRange().slice(0));
  } finally {
    staging.destroy();
  }
}
