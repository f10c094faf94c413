import { requestGpuDevice, type GpuContext } from '../../../src/kernels-wgsl/device.ts';
import { matmulVariant, type MatmulVariant, type MatmulWeightDType } from '../../../src/kernels-wgsl/matmul.ts';
import { runGpuMatmul, type MatmulCase } from '../../gpu/matmul-cases.ts';
import { exposePageApi } from './page-api.ts';

let context: Promise<GpuContext> | undefined;
const gpu = () => (context ??= requestGpuDevice());

export const matmulPageApi = {
  async features() {
    return [...(await gpu()).features].sort();
  },
  async chosenVariant(m: number, n: number, k: number) {
    return matmulVariant(m, n, k, (await gpu()).features);
  },
  async runMatmul(c: MatmulCase, options: { variant?: MatmulVariant; dtype?: MatmulWeightDType } = {}) {
    return runGpuMatmul((await gpu()).device, c, options);
  },
};

exposePageApi(matmulPageApi);
