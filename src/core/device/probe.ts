// What this environment can run, gathered without throwing: every part of the profile is either
// a plain-data description or `{ available: false, reason }`, so the profile can cross a worker
// boundary or be stored as JSON.
import { isCpuAdapter } from '../../kernels-wgsl/variants.ts';
import { defaultThreadCount, sharedMemorySupported } from '../../kernels-wasm/threads.ts';

export interface Unavailable {
  available: false;
  reason: string;
}

export interface WebGpuProfile {
  available: true;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  isFallbackAdapter: boolean;
  /** True for adapters that run shaders on the CPU (isCpuAdapter in kernels-wgsl/variants.ts). */
  cpuLike: boolean;
  features: string[];
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
  };
}

export type WebNnDeviceOption = { deviceType: 'npu' | 'gpu' | 'cpu' } | { powerPreference: 'high-performance' | 'low-power' | 'default' };

export interface WebNnContextAttempt {
  options: WebNnDeviceOption;
  created: boolean;
  reason?: string;
  /** From MLContext.opSupportLimits() where the implementation has it. */
  preferredInputLayout?: string;
  opCount?: number;
}

export interface WebNnProfile {
  available: true;
  contexts: WebNnContextAttempt[];
}

export type StorageProfile = { available: true; quota?: number; usage?: number; persisted?: boolean } | Unavailable;

export interface WasmProfile {
  simd: boolean;
  relaxedSimd: boolean;
  threads: boolean;
  /** Why threads are off, when they are. */
  threadsReason?: string;
  cores: number;
  /** navigator.deviceMemory (GiB, rounded by the browser) or Node's total memory in GiB. */
  deviceMemoryGiB?: number;
  storage: StorageProfile;
}

export interface EnvironmentProfile {
  kind: 'browser' | 'worker' | 'node' | 'unknown';
  userAgent?: string;
  crossOriginIsolated?: boolean;
}

export interface DeviceProfile {
  webgpu: WebGpuProfile | Unavailable;
  webnn: WebNnProfile | Unavailable;
  wasm: WasmProfile;
  environment: EnvironmentProfile;
}

export interface ProbeOptions {
  /** The WebGPU entry point to probe (Node's `webgpu` package); navigator.gpu by default. */
  gpu?: GPU;
  /** How long one WebNN createContext may take before it counts as failed. */
  webnnTimeoutMs?: number;
}

const WEBNN_ATTEMPTS: WebNnDeviceOption[] = [
  { deviceType: 'npu' },
  { deviceType: 'gpu' },
  { deviceType: 'cpu' },
  { powerPreference: 'high-performance' },
  { powerPreference: 'low-power' },
];

/** Describes WebGPU, WebNN, WASM and the environment; never throws. */
export async function probeDevice(options: ProbeOptions = {}): Promise<DeviceProfile> {
  const [webgpu, webnn, wasm] = await Promise.all([
    settle(() => probeWebGpu(options.gpu)),
    settle(() => probeWebNn(options.webnnTimeoutMs ?? 2000)),
    probeWasm(),
  ]);
  return { webgpu, webnn, wasm, environment: probeEnvironment() };
}

async function settle<T>(probe: () => Promise<T | Unavailable>): Promise<T | Unavailable> {
  try {
    return await probe();
  } catch (error) {
    return unavailable(`probe failed: ${describeError(error)}`);
  }
}

function unavailable(reason: string): Unavailable {
  return { available: false, reason };
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

type Navigatorish = {
  gpu?: GPU;
  ml?: { createContext?: (options?: unknown) => Promise<unknown> };
  userAgent?: string;
  hardwareConcurrency?: number;
  deviceMemory?: number;
  storage?: { estimate?: () => Promise<{ quota?: number; usage?: number }>; persisted?: () => Promise<boolean> };
};

function navigatorObject(): Navigatorish | undefined {
  return (globalThis as { navigator?: Navigatorish }).navigator;
}

function isNode(): boolean {
  return Boolean((globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node);
}

async function probeWebGpu(gpuOverride: GPU | undefined): Promise<WebGpuProfile | Unavailable> {
  const gpu = gpuOverride ?? navigatorObject()?.gpu;
  if (!gpu) {
    return unavailable(isNode() ? 'Node has no navigator.gpu; pass the webgpu package\'s GPU as options.gpu' : 'navigator.gpu is missing (WebGPU disabled or unsupported, or not a secure context)');
  }
  const adapter = await gpu.requestAdapter();
  if (!adapter) return unavailable('requestAdapter() returned null (no usable GPU adapter, or it is blocklisted)');
  const info = (adapter.info ?? {}) as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number; isFallbackAdapter?: boolean; type?: string };
  const isFallbackAdapter = Boolean(info.isFallbackAdapter ?? (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter);
  const facts = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    type: info.type,
    isFallbackAdapter,
  };
  const limits = adapter.limits;
  return {
    available: true,
    vendor: facts.vendor,
    architecture: facts.architecture,
    device: facts.device,
    description: facts.description,
    ...(typeof info.subgroupMinSize === 'number' ? { subgroupMinSize: info.subgroupMinSize } : {}),
    ...(typeof info.subgroupMaxSize === 'number' ? { subgroupMaxSize: info.subgroupMaxSize } : {}),
    isFallbackAdapter,
    cpuLike: isCpuAdapter(facts),
    features: [...(adapter.features as ReadonlySet<string>)].sort(),
    limits: {
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
    },
  };
}

async function probeWebNn(timeoutMs: number): Promise<WebNnProfile | Unavailable> {
  const ml = navigatorObject()?.ml;
  if (!ml) return unavailable(isNode() ? 'Node has no navigator.ml (WebNN is a browser API)' : 'navigator.ml is missing (WebNN not enabled in this browser)');
  if (typeof ml.createContext !== 'function') return unavailable('navigator.ml has no createContext()');
  const contexts: WebNnContextAttempt[] = [];
  // One at a time: some implementations serialize context creation and parallel attempts only add up timeouts.
  for (const options of WEBNN_ATTEMPTS) contexts.push(await tryWebNnContext(ml.createContext.bind(ml), options, timeoutMs));
  return { available: true, contexts };
}

async function tryWebNnContext(
  createContext: (options?: unknown) => Promise<unknown>,
  options: WebNnDeviceOption,
  timeoutMs: number,
): Promise<WebNnContextAttempt> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`createContext did not settle within ${timeoutMs} ms`)), timeoutMs);
    });
    const context = (await Promise.race([createContext(options), timeout])) as { opSupportLimits?: () => Record<string, unknown> } | null;
    const attempt: WebNnContextAttempt = { options, created: true };
    if (context && typeof context.opSupportLimits === 'function') {
      const limits = context.opSupportLimits();
      if (typeof limits.preferredInputLayout === 'string') attempt.preferredInputLayout = limits.preferredInputLayout;
      attempt.opCount = Object.keys(limits).filter((key) => key !== 'preferredInputLayout').length;
    }
    (context as { destroy?: () => void } | null)?.destroy?.();
    return attempt;
  } catch (error) {
    return { options, created: false, reason: describeError(error) };
  } finally {
    clearTimeout(timer);
  }
}

// (module (func (result v128) v128.const i32x4 0 0 0 0))
const SIMD_MODULE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11,
]);
// (module (func (result v128) v128.const ×3, f32x4.relaxed_madd))
const RELAXED_SIMD_MODULE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 61, 1, 59, 0,
  253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  253, 133, 2, 11,
]);

function validates(bytes: Uint8Array<ArrayBuffer>): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

async function probeWasm(): Promise<WasmProfile> {
  const threads = safe(sharedMemorySupported, false);
  const threadsReason = threads
    ? undefined
    : typeof SharedArrayBuffer !== 'function'
      ? 'SharedArrayBuffer is missing'
      : 'the page is not cross-origin isolated (needs COOP/COEP headers)';
  let cores = 1;
  try {
    cores = await defaultThreadCount();
  } catch {
    // one core is the safe assumption
  }
  return {
    simd: validates(SIMD_MODULE),
    relaxedSimd: validates(RELAXED_SIMD_MODULE),
    threads,
    ...(threadsReason ? { threadsReason } : {}),
    cores,
    ...(await deviceMemory()),
    storage: await probeStorage(),
  };
}

function safe<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

async function deviceMemory(): Promise<{ deviceMemoryGiB?: number }> {
  const reported = navigatorObject()?.deviceMemory;
  if (typeof reported === 'number') return { deviceMemoryGiB: reported };
  if (isNode()) {
    try {
      const os = await import('node:os');
      return { deviceMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10 };
    } catch {
      return {};
    }
  }
  return {};
}

async function probeStorage(): Promise<StorageProfile> {
  const storage = navigatorObject()?.storage;
  if (!storage?.estimate) return unavailable(isNode() ? 'Node has no navigator.storage' : 'navigator.storage.estimate is missing');
  try {
    const { quota, usage } = await storage.estimate();
    const persisted = storage.persisted ? await storage.persisted().catch(() => undefined) : undefined;
    return {
      available: true,
      ...(quota !== undefined ? { quota } : {}),
      ...(usage !== undefined ? { usage } : {}),
      ...(persisted !== undefined ? { persisted } : {}),
    };
  } catch (error) {
    return unavailable(`storage.estimate() failed: ${describeError(error)}`);
  }
}

function probeEnvironment(): EnvironmentProfile {
  const scope = globalThis as { window?: unknown; document?: unknown; importScripts?: unknown; crossOriginIsolated?: boolean };
  const userAgent = navigatorObject()?.userAgent;
  const kind: EnvironmentProfile['kind'] = scope.document
    ? 'browser'
    : typeof scope.importScripts === 'function' || (scope.window === undefined && userAgent && !isNode())
      ? 'worker'
      : isNode()
        ? 'node'
        : 'unknown';
  return {
    kind,
    ...(userAgent ? { userAgent } : {}),
    ...(typeof scope.crossOriginIsolated === 'boolean' ? { crossOriginIsolated: scope.crossOriginIsolated } : {}),
  };
}
