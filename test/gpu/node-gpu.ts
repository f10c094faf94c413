// WebGPU in Node through the `webgpu` package (Dawn), on SwiftShader's Vulkan driver when no GPU
// is present. scripts/run-tests.mjs sets the same variables; setting them here as well lets a
// single file run directly with `node --import tsx --test`.
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { requestGpuDevice, type GpuContext, type GpuDeviceOptions } from '../../src/kernels-wgsl/device.ts';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
process.env.XDG_RUNTIME_DIR ??= '/tmp';

export type NodeGpu = { context: GpuContext; unavailable?: undefined } | { context?: undefined; unavailable: string };

// Dawn aborts the process ("futex facility returned an unexpected error code") when the GPU
// object is garbage-collected while its devices live, so one instance is kept for the process.
let dawn: GPU | undefined;

export async function dawnGpu(): Promise<GPU> {
  if (!dawn) {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    dawn = create([]);
  }
  return dawn;
}

/** A device from Dawn, or the reason there is none. */
export async function acquireNodeGpu(options: Omit<GpuDeviceOptions, 'gpu'> = {}): Promise<NodeGpu> {
  try {
    return { context: await requestGpuDevice({ ...options, gpu: await dawnGpu() }) };
  } catch (error) {
    return { unavailable: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * The device, or undefined after marking the test skipped. In CI a missing GPU is a failure:
 * the suite must really run these kernels there.
 */
export function deviceOrSkip(gpu: NodeGpu | undefined, t: TestContext): GpuContext | undefined {
  if (gpu?.context) return gpu.context;
  const reason = gpu?.unavailable ?? 'the GPU was not acquired';
  if (process.env.CI) throw new Error(`${reason} (CI must run the GPU tests)`);
  t.skip(`${reason}; on Debian install chromium (SwiftShader) and libvulkan1`);
  return undefined;
}
