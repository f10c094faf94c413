import { requestGpuDevice, type GpuContext } from '../../../src/kernels-wgsl/device.ts';
import { runSmokeKernel, runSubgroupSumKernel, type AffineParams } from '../../../src/kernels-wgsl/smoke.ts';
import { exposePageApi } from './page-api.ts';

let context: Promise<GpuContext> | undefined;
const gpu = () => (context ??= requestGpuDevice());

export const smokePageApi = {
  async describeGpu() {
    const { adapter, device, features } = await gpu();
    return {
      features: [...features].sort(),
      architecture: adapter.info.architecture,
      vendor: adapter.info.vendor,
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      adapterMaxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    };
  },
  async runAffine(input: Float32Array, params: AffineParams) {
    return runSmokeKernel((await gpu()).device, input, params);
  },
  async runSubgroupSums(input: Float32Array) {
    return runSubgroupSumKernel((await gpu()).device, input);
  },
};

exposePageApi(smokePageApi);
