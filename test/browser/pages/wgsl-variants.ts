// Runs the non-default kernel variants (src/kernels-wgsl/variants.ts) on the page's WebGPU
// device; the test rebuilds the same inputs in Node and compares with the reference backend.
import { autotuneKernels, indexedDbVariantStore } from '../../../src/kernels-wgsl/autotune.ts';
import { requestGpuDevice, type GpuContext } from '../../../src/kernels-wgsl/device.ts';
import type { MatmulVariant } from '../../../src/kernels-wgsl/matmul.ts';
import { applyAdapterVariants, kernelVariants, type AttentionVariant, type ConvVariant, type LayerNormVariantName } from '../../../src/kernels-wgsl/variants.ts';
import { runGpuMatmul, type MatmulCase } from '../../gpu/matmul-cases.ts';
import { runGpuAttention, runGpuConv, runGpuLayerNorm, type AttentionCase, type ConvCase, type LayerNormCase } from '../../gpu/wgsl-kernel-cases.ts';
import { exposePageApi } from './page-api.ts';

let context: Promise<GpuContext> | undefined;
const device = async () => (await (context ??= requestGpuDevice())).device;

export const wgslVariantsPageApi = {
  async attention(c: AttentionCase, variant: AttentionVariant) {
    return runGpuAttention(await device(), c, variant);
  },
  async layerNorm(c: LayerNormCase, variant: LayerNormVariantName) {
    return runGpuLayerNorm(await device(), c, variant);
  },
  async conv(c: ConvCase, variant: ConvVariant) {
    return runGpuConv(await device(), c, variant);
  },
  async matmul(c: MatmulCase, variant: MatmulVariant) {
    return runGpuMatmul(await device(), c, { variant });
  },
  /** What selectVariants picks for this page's adapter. */
  async adapterVariants() {
    return { ...applyAdapterVariants(await device()) };
  },
  async autotune(budgetMs: number) {
    const gpu = await device();
    const started = performance.now();
    const result = await autotuneKernels(gpu, { rows: 150, width: 64, heads: 2 }, { budgetMs });
    return { ms: performance.now() - started, timings: result.timings, skipped: result.skipped, applied: { ...kernelVariants(gpu) }, variants: result.variants };
  },
  /** Autotunes through the IndexedDB store (a page load is a start: the in-memory cache is empty). */
  async autotuneStored(budgetMs: number, databaseName: string) {
    const result = await autotuneKernels(await device(), { rows: 120, width: 64, heads: 2 }, { budgetMs, store: indexedDbVariantStore({ databaseName }) });
    return { cached: result.cached, timings: result.timings, skipped: result.skipped, spentMs: result.spentMs, variants: result.variants };
  },
};

exposePageApi(wgslVariantsPageApi);
