/**
 * Which variant of each kernel a device runs. The defaults are shaped for real GPUs (tiled
 * matmul with workgroup memory, a workgroup per layer-norm row, flash attention over key tiles in
 * workgroup memory). CPU emulations of WebGPU (SwiftShader, llvmpipe) run workgroups as fibres on
 * a few cores, where barriers and tiny workgroups are what costs, so they get variants with no
 * barriers and lots of work per invocation. `selectVariants` guesses from the adapter;
 * autotune.ts measures on the real shapes. Kernels read the choice with `kernelVariants(device)`
 * whenever their caller does not name a variant.
 */
import type { MatmulVariant } from './matmul-shaders.ts';

/** The matmul kernel for many rows (more than the gemv kernels take). */
export type ManyRowsMatmulVariant = Extract<MatmulVariant, { kind: 'tiled' | 'register' }>;
export type AttentionVariant = 'flash' | 'rows2' | 'rows4' | 'rows8';
export type LayerNormVariantName = 'workgroup' | 'thread';
export type FewRowsMatmulVariant = 'split' | 'columns';
/** 'direct': one output per invocation; 'blocked': 4 channels × 4 frames per invocation. */
export type ConvVariant = 'direct' | 'blocked';

export interface KernelVariants {
  /** vectorX is decided per call from K; the value here is ignored. */
  matmul: ManyRowsMatmulVariant;
  /**
   * Decoder steps (M ≤ GEMV_MAX_ROWS, K long enough for split-K): 'split' is the split-K gemv
   * (workgroup or subgroup reduction); 'columns' gives each invocation whole columns, no barriers.
   */
  fewRows: FewRowsMatmulVariant;
  layerNorm: LayerNormVariantName;
  conv: ConvVariant;
  /** 'flash': a block of query rows per workgroup, key tiles in workgroup memory; 'rowsN': N query rows per invocation, no barriers. */
  attention: AttentionVariant;
  /** 'default': the GPU defaults; 'cpu': picked for an emulated adapter; 'tuned': measured by autotuneKernels. */
  source: 'default' | 'cpu' | 'tuned';
}

export const DEFAULT_KERNEL_VARIANTS: Readonly<KernelVariants> = Object.freeze<KernelVariants>({
  matmul: { kind: 'tiled', vectorX: true },
  fewRows: 'split',
  layerNorm: 'workgroup',
  conv: 'direct',
  attention: 'flash',
  source: 'default',
});

/** What suits a CPU emulation before any measurement (SwiftShader, 2 cores, measured by hand). */
export const CPU_KERNEL_VARIANTS: Readonly<KernelVariants> = Object.freeze<KernelVariants>({
  matmul: { kind: 'register', rowsPerThread: 4, colsPerThread: 8, workgroup: 64, vectorX: true },
  fewRows: 'columns',
  layerNorm: 'thread',
  conv: 'blocked',
  attention: 'rows8',
  source: 'cpu',
});

/** The adapter facts selectVariants reads (GPUAdapterInfo's fields, all optional so any partial info works). */
export interface AdapterFacts {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  /** Chromium's adapter type: 'discrete GPU', 'integrated GPU', 'CPU', 'unknown'. */
  type?: string;
  isFallbackAdapter?: boolean;
}

/** True for adapters that run shaders on the CPU. */
export function isCpuAdapter(info: AdapterFacts | undefined): boolean {
  if (!info) return false;
  if (info.isFallbackAdapter) return true;
  if ((info.type ?? '').toLowerCase() === 'cpu') return true;
  const text = [info.vendor, info.architecture, info.device, info.description].join(' ').toLowerCase();
  return /swiftshader|llvmpipe|lavapipe|softpipe|warp|microsoft basic render/.test(text);
}

/**
 * Variants chosen from what the adapter says about itself, without measuring: CPU emulations
 * get the barrier-free variants, everything else the GPU defaults. `limits` and `features` are
 * there for variants that need them (none of today's do beyond the defaults' own checks).
 */
export function selectVariants(info: AdapterFacts | undefined, _limits?: GPUSupportedLimits, _features?: ReadonlySet<string>): KernelVariants {
  return { ...(isCpuAdapter(info) ? CPU_KERNEL_VARIANTS : DEFAULT_KERNEL_VARIANTS) };
}

const chosen = new WeakMap<GPUDevice, KernelVariants>();

/** The variants kernels on `device` run when their caller names none (the GPU defaults until set). */
export function kernelVariants(device: GPUDevice): Readonly<KernelVariants> {
  return chosen.get(device) ?? DEFAULT_KERNEL_VARIANTS;
}

export function setKernelVariants(device: GPUDevice, variants: KernelVariants): void {
  chosen.set(device, { ...variants });
}

/** The device's adapter info where the implementation exposes it (GPUDevice.adapterInfo, Chrome 132+, Dawn). */
export function deviceAdapterFacts(device: GPUDevice): AdapterFacts | undefined {
  return (device as GPUDevice & { adapterInfo?: AdapterFacts }).adapterInfo;
}

/** Sets the device's variants from its adapter info (selectVariants) unless some were set already; returns them. */
export function applyAdapterVariants(device: GPUDevice): Readonly<KernelVariants> {
  const existing = chosen.get(device);
  if (existing) return existing;
  const variants = selectVariants(deviceAdapterFacts(device), device.limits, device.features as ReadonlySet<string>);
  setKernelVariants(device, variants);
  return variants;
}
