/**
 * The device probe's profile and an execution plan as definition lists, so a user can see what
 * this browser offers and why the engine runs where it does. Pure: data in, elements out.
 */
import type { ExecutionPlan } from '../../src/core/device/plan.ts';
import type { DeviceProfile, WebNnDeviceOption } from '../../src/core/device/probe.ts';
import type { ManyRowsMatmulVariant } from '../../src/kernels-wgsl/variants.ts';
import type { BackendTried } from './active-plan.ts';
import { megabytes, yesNo } from './format.ts';

type Row = [term: string, value: string | Node];

export function profileReport(profile: DeviceProfile): Node[] {
  return [
    group('WebGPU', webGpuRows(profile)),
    group('WebNN', webNnRows(profile)),
    group('WebAssembly', wasmRows(profile)),
    group('Page', [
      ['Cross-origin isolated', profile.environment.crossOriginIsolated ? 'yes (shared memory for WASM threads)' : 'no (WASM runs single-threaded)'],
      ['Runs in', profile.environment.kind],
    ]),
  ];
}

export function planReport(plan: ExecutionPlan, attempts: BackendTried[]): Node[] {
  const rows: Row[] = [
    ['Backend order', plan.backendOrder.join(' → ')],
    ['Precision', plan.precision],
    ['Threads', String(plan.threads)],
    ['Layout', plan.layout],
  ];
  if (plan.kernelVariants) {
    const { source, matmul, fewRows, attention } = plan.kernelVariants;
    rows.push(['WebGPU kernels', `${source}: matmul ${matmulName(matmul)}, decoder ${fewRows}, attention ${attention}`]);
  }
  const used = attempts.find((attempt) => attempt.outcome === 'used')?.applied;
  if (used) rows.push(['Built with', builtWith(used)]);
  if (attempts.length > 0) rows.push(['Backends tried', list(attempts.map((attempt) => `${attempt.backend}: ${attempt.outcome}${attempt.reason ? ` (${attempt.reason})` : ''}`), 'attempts')]);
  rows.push(['Reasons', list(plan.reasons, 'reasons')]);
  return [group('Execution plan', rows)];
}

function builtWith(applied: NonNullable<BackendTried['applied']>): string {
  const parts = [`layout ${applied.layout}`, `precision ${applied.precision}`];
  if (applied.threads !== undefined) parts.push(`${applied.threads} thread${applied.threads === 1 ? '' : 's'}`);
  if (applied.kernelVariantsSource !== undefined) parts.push(`kernel variants: ${applied.kernelVariantsSource}`);
  if (applied.weightBytes !== undefined) parts.push(`weights ${megabytes(applied.weightBytes)}`);
  return parts.join(', ');
}

function list(items: string[], className: string): HTMLOListElement {
  const element = document.createElement('ol');
  element.className = className;
  element.append(...items.map((item) => Object.assign(document.createElement('li'), { textContent: item })));
  return element;
}

function webGpuRows(profile: DeviceProfile): Row[] {
  const gpu = profile.webgpu;
  if (!gpu.available) return [['Available', `no: ${gpu.reason}`]];
  const rows: Row[] = [
    ['Adapter', [gpu.vendor, gpu.architecture, gpu.device, gpu.description].filter(Boolean).join(' · ') || 'unnamed'],
    ['Runs shaders on', gpu.cpuLike ? 'the CPU (an emulated GPU)' : 'a GPU'],
    ['Fallback adapter', yesNo(gpu.isFallbackAdapter)],
  ];
  if (gpu.subgroupMinSize !== undefined) rows.push(['Subgroup size', `${gpu.subgroupMinSize}–${gpu.subgroupMaxSize ?? gpu.subgroupMinSize}`]);
  rows.push(
    ['Features', gpu.features.join(', ') || 'none'],
    ['Max buffer', megabytes(gpu.limits.maxBufferSize)],
    ['Max storage binding', megabytes(gpu.limits.maxStorageBufferBindingSize)],
    ['Workgroup memory', megabytes(gpu.limits.maxComputeWorkgroupStorageSize)],
    ['Invocations per workgroup', String(gpu.limits.maxComputeInvocationsPerWorkgroup)],
  );
  return rows;
}

function webNnRows(profile: DeviceProfile): Row[] {
  const webnn = profile.webnn;
  if (!webnn.available) return [['Available', `no: ${webnn.reason}`]];
  return webnn.contexts.map((attempt): Row => {
    if (!attempt.created) return [contextName(attempt.options), `failed: ${attempt.reason ?? 'no reason given'}`];
    const details = [attempt.preferredInputLayout && `input layout ${attempt.preferredInputLayout}`, attempt.opCount !== undefined && `${attempt.opCount} ops`].filter(Boolean);
    return [contextName(attempt.options), `created${details.length ? ` (${details.join(', ')})` : ''}`];
  });
}

function wasmRows(profile: DeviceProfile): Row[] {
  const wasm = profile.wasm;
  const storage = wasm.storage;
  return [
    ['SIMD', yesNo(wasm.simd)],
    ['Relaxed SIMD', yesNo(wasm.relaxedSimd)],
    ['Threads', wasm.threads ? 'yes' : `no: ${wasm.threadsReason ?? 'shared memory is unavailable'}`],
    ['Cores', String(wasm.cores)],
    ['Device memory', wasm.deviceMemoryGiB === undefined ? 'unknown' : `${wasm.deviceMemoryGiB} GiB`],
    [
      'Storage',
      storage.available
        ? `${storage.usage === undefined ? 'unknown use' : `${megabytes(storage.usage)} used`} of ${storage.quota === undefined ? 'an unknown quota' : megabytes(storage.quota)}${storage.persisted === undefined ? '' : storage.persisted ? ', persistent' : ', not persistent'}`
        : `unavailable: ${storage.reason}`,
    ],
  ];
}

function contextName(options: WebNnDeviceOption): string {
  return 'deviceType' in options ? `Context (${options.deviceType})` : `Context (${options.powerPreference} power)`;
}

function matmulName(variant: ManyRowsMatmulVariant): string {
  return variant.kind === 'tiled' ? 'tiled' : `register ${variant.rowsPerThread}×${variant.colsPerThread}`;
}

function group(title: string, rows: Row[]): HTMLElement {
  const section = document.createElement('section');
  section.className = 'device-group';
  const heading = document.createElement('h3');
  heading.textContent = title;
  const list = document.createElement('dl');
  list.className = 'device';
  for (const [term, value] of rows) {
    const dd = document.createElement('dd');
    dd.append(value);
    list.append(Object.assign(document.createElement('dt'), { textContent: term }), dd);
  }
  section.append(heading, list);
  return section;
}
