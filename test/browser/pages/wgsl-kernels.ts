// Runs the WGSL kernel cases of test/gpu/wgsl-kernel-cases.ts on the page's WebGPU device; the
// test rebuilds the same inputs in Node and compares with the reference backend there.
import { requestGpuDevice, type GpuContext } from '../../../src/kernels-wgsl/device.ts';
import {
  runGpuAttention,
  runGpuConv,
  runGpuEmbed,
  runGpuGelu,
  runGpuLayerNorm,
  runGpuLogits,
  runGpuPositions,
  type AttentionCase,
  type ConvCase,
  type EmbedCase,
  type LayerNormCase,
  type LogitsCase,
  type PositionsCase,
} from '../../gpu/wgsl-kernel-cases.ts';
import { exposePageApi } from './page-api.ts';

let context: Promise<GpuContext> | undefined;
const device = async () => (await (context ??= requestGpuDevice())).device;

export const wgslKernelsPageApi = {
  async attention(c: AttentionCase) {
    return runGpuAttention(await device(), c);
  },
  async layerNorm(c: LayerNormCase) {
    return runGpuLayerNorm(await device(), c);
  },
  async conv(c: ConvCase) {
    return runGpuConv(await device(), c);
  },
  async gelu() {
    return runGpuGelu(await device());
  },
  async embed(c: EmbedCase) {
    return runGpuEmbed(await device(), c);
  },
  async positions(c: PositionsCase) {
    return runGpuPositions(await device(), c);
  },
  async logits(c: LogitsCase) {
    return runGpuLogits(await device(), c);
  },
};

exposePageApi(wgslKernelsPageApi);
