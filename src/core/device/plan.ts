// Turns a DeviceProfile and a model into the choices the engine is built from. Each rule is a
// short, stated reason, so a user (or the demo) can see why a backend or precision was chosen.
import type { WhisperDims } from '../model/dims.ts';
import { weightSlots } from '../model/weights.ts';
import { selectVariants, type KernelVariants } from '../../kernels-wgsl/variants.ts';
import { autotuneShapes, tunedVariantsFor } from '../../kernels-wgsl/autotune-cache.ts';
import type { DeviceProfile } from './probe.ts';

export { LAYOUTS_BY_BACKEND } from './layouts.ts';

export type ExecutionBackend = 'webgpu' | 'webnn' | 'wasm' | 'reference';
export type ExecutionPrecision = 'f32' | 'f16' | 'q8' | 'q4';
/**
 * How weights and activations are laid out (src/core/layout): 'row-major' (B, S, C), what every
 * backend consumes; 'channels-first' (B, C, 1, S), the Neural Engine recipe (webnn's graphs);
 * 'blocked', tile-major weights (GPU (N/64, K/32, 64, 32) tiles on webgpu, Rockchip B tiles on wasm).
 * LAYOUTS_BY_BACKEND says which backend takes which; the engine runs row-major where the plan's
 * layout is not one the backend takes.
 */
export type ExecutionLayout = 'row-major' | 'channels-first' | 'blocked';

export interface ExecutionPlan {
  backendOrder: ExecutionBackend[];
  precision: ExecutionPrecision;
  threads: number;
  layout: ExecutionLayout;
  kernelVariants?: KernelVariants;
  reasons: string[];
}

export interface PlannedModel {
  dims: WhisperDims;
  /** The dtype the weights are stored in ('f32', 'f16', 'q8', 'q4', …); f32 when unknown. */
  dtype?: string;
  /** Bytes of the weights as stored; estimated from the dims and dtype when absent. */
  bytes?: number;
}

/** Bytes per weight, including the quantization scales stored beside each block. */
const BYTES_PER_WEIGHT: Record<ExecutionPrecision, number> = { f32: 4, f16: 2, q8: 1.0625, q4: 0.5625 };
const PRECISIONS_BEST_FIRST: ExecutionPrecision[] = ['f32', 'f16', 'q8', 'q4'];
/** A page can count on about half of the device's memory for one model (browser, OS and audio take the rest). */
const MEMORY_SHARE = 0.5;
const GIB = 2 ** 30;

export function planExecution(profile: DeviceProfile, model: PlannedModel, preferences: Partial<ExecutionPlan> = {}): ExecutionPlan {
  const reasons: string[] = [];
  const backendOrder = chooseBackends(profile, reasons);
  const plan: ExecutionPlan = {
    backendOrder,
    precision: choosePrecision(profile, model, reasons),
    threads: chooseThreads(profile, reasons),
    // Chosen for the order that will run, the caller's when given.
    layout: chooseLayout(preferences.backendOrder ?? backendOrder, reasons),
    reasons,
  };
  if (profile.webgpu.available) {
    // Measured before on this adapter for this model's shapes (this session, or restored from the autotune cache)?
    const tuned = tunedVariantsFor(profile.webgpu, autotuneShapes(model.dims));
    plan.kernelVariants = tuned ?? selectVariants(profile.webgpu);
    reasons.push(tuned ? 'WebGPU kernel variants "tuned": measured on this adapter for these shapes before (autotune cache)' : `WebGPU kernel variants "${plan.kernelVariants.source}" picked from the adapter info`);
  }
  applyPreferences(plan, preferences);
  return plan;
}

function chooseBackends(profile: DeviceProfile, reasons: string[]): ExecutionBackend[] {
  const order: ExecutionBackend[] = [];
  const { webgpu, webnn, wasm } = profile;
  if (webnn.available) {
    const accelerated = webnn.contexts.filter((c) => c.created && 'deviceType' in c.options && c.options.deviceType !== 'cpu');
    if (accelerated.length > 0) {
      order.push('webnn');
      reasons.push(`webnn first: an accelerated context was created (${accelerated.map((c) => JSON.stringify(c.options)).join(', ')})`);
    } else {
      reasons.push('webnn skipped: no NPU or GPU context could be created');
    }
  } else {
    reasons.push(`webnn skipped: ${webnn.reason}`);
  }
  const gpuUsable = webgpu.available;
  const gpuCpuLike = webgpu.available && webgpu.cpuLike;
  if (gpuUsable && !gpuCpuLike) {
    order.push('webgpu');
    reasons.push(`webgpu: hardware adapter ${describeAdapter(profile)}`);
  }
  if (wasm.simd) {
    order.push('wasm');
    reasons.push(
      gpuCpuLike
        ? `wasm before webgpu: the adapter ${describeAdapter(profile)} runs shaders on the CPU, and the WASM kernels are far faster than an emulated GPU`
        : 'wasm: WebAssembly SIMD is available',
    );
  } else {
    reasons.push('wasm skipped: no WebAssembly SIMD, which the WASM kernels need; the reference backend stands in');
  }
  if (gpuCpuLike) order.push('webgpu');
  if (!webgpu.available) reasons.push(`webgpu skipped: ${webgpu.reason}`);
  order.push('reference');
  return order;
}

/**
 * The layout follows the backend that leads the order: channels-first for WebNN (the Neural
 * Engine recipe its graphs are lowered in), blocked for a hardware GPU (tile-major weights, no
 * bounds checks in the hot loop), row-major for WASM (measured: the register-blocked panels reach
 * 32.0 GFLOP/s against 23.6 for the Rockchip tiles on WASM SIMD) and for CPU-like adapters, which
 * come after WASM.
 */
function chooseLayout(order: readonly ExecutionBackend[], reasons: string[]): ExecutionLayout {
  const lead = order[0];
  if (lead === 'webnn') {
    reasons.push('layout channels-first: webnn leads, and its graphs are lowered in the Neural Engine layout (B, C, 1, S); the backends after it run row-major');
    return 'channels-first';
  }
  if (lead === 'webgpu') {
    reasons.push('layout blocked: a hardware GPU leads, and its matmuls read tile-major weights without bounds checks; wasm, if used, runs row-major');
    return 'blocked';
  }
  reasons.push(`layout row-major: ${lead ?? 'the reference'} leads; on WASM SIMD the row-major panels are faster than the Rockchip tiles (32.0 vs 23.6 GFLOP/s measured), and CPU-like GPU adapters come after WASM`);
  return 'row-major';
}

function describeAdapter(profile: DeviceProfile): string {
  if (!profile.webgpu.available) return '(none)';
  const { vendor, architecture, description } = profile.webgpu;
  return `"${[vendor, architecture, description].filter(Boolean).join(' / ') || 'unnamed'}"`;
}

function choosePrecision(profile: DeviceProfile, model: PlannedModel, reasons: string[]): ExecutionPrecision {
  const stored = asPrecision(model.dtype);
  const weights = weightCount(model.dims);
  const candidates = PRECISIONS_BEST_FIRST.slice(PRECISIONS_BEST_FIRST.indexOf(stored));
  const memoryGiB = profile.wasm.deviceMemoryGiB;
  if (memoryGiB === undefined) {
    reasons.push(`precision ${stored}: as stored; the device memory is unknown, so no budget applies`);
    return stored;
  }
  const budget = memoryGiB * GIB * MEMORY_SHARE;
  const bytesAt = (precision: ExecutionPrecision) =>
    precision === stored && model.bytes !== undefined ? model.bytes : weights * BYTES_PER_WEIGHT[precision];
  const fitting = candidates.find((precision) => bytesAt(precision) <= budget);
  const budgetText = `${formatMiB(budget)} budget (${MEMORY_SHARE * 100}% of ${memoryGiB} GiB)`;
  if (fitting === undefined) {
    const smallest = candidates[candidates.length - 1]!;
    reasons.push(`precision ${smallest}: even at ${smallest} the weights (${formatMiB(bytesAt(smallest))}) exceed the ${budgetText}; loading may fail`);
    return smallest;
  }
  reasons.push(
    fitting === stored
      ? `precision ${fitting}: the weights (${formatMiB(bytesAt(fitting))}) fit the ${budgetText}`
      : `precision ${fitting}: ${stored} weights (${formatMiB(bytesAt(stored))}) exceed the ${budgetText}; ${fitting} needs ${formatMiB(bytesAt(fitting))}`,
  );
  return fitting;
}

function asPrecision(dtype: string | undefined): ExecutionPrecision {
  const name = (dtype ?? 'f32').toLowerCase();
  if (name === 'f16' || name === 'bf16' || name === 'float16') return 'f16';
  if (name.startsWith('q8') || name === 'int8') return 'q8';
  if (name.startsWith('q4') || name.startsWith('q5') || name === 'int4') return 'q4';
  return 'f32';
}

function weightCount(dims: WhisperDims): number {
  return weightSlots(dims).reduce((sum, slot) => sum + slot.shape.reduce((n, d) => n * d, 1), 0);
}

function formatMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function chooseThreads(profile: DeviceProfile, reasons: string[]): number {
  const { threads, threadsReason, cores } = profile.wasm;
  if (!threads) {
    reasons.push(`threads 1: ${threadsReason ?? 'shared memory is unavailable'}`);
    return 1;
  }
  const count = Math.max(1, cores);
  reasons.push(`threads ${count}: shared memory is available and ${cores} core(s) are reported`);
  return count;
}

function applyPreferences(plan: ExecutionPlan, preferences: Partial<ExecutionPlan>): void {
  for (const key of Object.keys(preferences) as (keyof ExecutionPlan)[]) {
    if (key === 'reasons' || preferences[key] === undefined) continue;
    const value = preferences[key];
    (plan as unknown as Record<string, unknown>)[key] = Array.isArray(value) ? [...value] : typeof value === 'object' ? { ...value } : value;
    plan.reasons.push(`${key} ${JSON.stringify(value)}: set by the caller, overriding the rule above`);
  }
}
