// Runs the quantized matmul cases of test/gpu/wgsl-quant-cases.ts on the page's WebGPU device; the
// test builds the same inputs in Node and compares with the reference backend there.
import { requestGpuDevice, type GpuContext } from '../../../src/kernels-wgsl/device.ts';
import type { QuantizedMatmulVariant } from '../../../src/kernels-wgsl/matmul-quant.ts';
import { runGpuQuantMatmul, type QuantCase } from '../../gpu/wgsl-quant-cases.ts';
import { exposePageApi } from './page-api.ts';

let context: Promise<GpuContext> | undefined;
const gpu = () => (context ??= requestGpuDevice());

export const quantPageApi = {
  async runQuantMatmul(c: QuantCase, variant?: QuantizedMatmulVariant) {
    return runGpuQuantMatmul((await gpu()).device, c, variant);
  },
  /** Several cases in one call: one page round trip for a whole sweep. */
  async runQuantMatmuls(cases: QuantCase[]) {
    const { device } = await gpu();
    const results: Float32Array[] = [];
    for (const c of cases) results.push(await runGpuQuantMatmul(device, c));
    return results;
  },
};

exposePageApi(quantPageApi);
