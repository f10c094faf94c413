// Murmur's WebGPU backend (src/kernels-wgsl) in the benchmark's Chromium, on synthetic models:
// GPU log-mel, encoder ms per 30 s window, decoder ms per token, real-time factor, and the
// encoder's matmuls — each with the GPU-shaped default kernel variants and with the variants the
// autotuner picks for this adapter ("tuned vs default"), and onnxruntime-web's WebGPU provider on
// the same matmul shapes in the same session, so the ratio needs no other entry. The matmul lines
// also time the 'blocked' weight layout (tile-major weights, the backend's `layout: 'blocked'`).
// --quick: tiny.en only; a full run adds base (matmul lines, then the encoder and decoder within
// their budgets).
// On SwiftShader (no GPU) every run is slow, so each stage keeps to a time budget and says what
// it skipped.
import { KNOWN_DIMS } from '../src/core/model/dims.ts';
import { cachedSyntheticModel, ggmlFileName } from '../scripts/synthetic/generate.ts';
import { BENCH_SECONDS } from './audio.ts';
import type { murmurWebGpuPageApi, VariantSet } from './pages/murmur-webgpu.ts';
import type { ortPageApi } from './pages/ort.ts';
import { encoderMatmulShapes, matmulGflops, type BenchModel } from './shapes.ts';
import type { BenchContext, BenchEntry, BenchResult, MatmulTiming } from './types.ts';

const PAGE_TIMEOUT_MS = 15 * 60_000;
/** Whole-model budget per model and variant set (encoder passes, then decoder steps). */
const MODEL_BUDGET_MS = 150_000;
/** Matmul budget per model and variant set. */
const MATMUL_BUDGET_MS = 90_000;
const AUTOTUNE_BUDGET_MS = 1000;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function ortWebGpuMatmuls(context: BenchContext, model: BenchModel): Promise<Map<string, number>> {
  const times = new Map<string, number>();
  const page = await (await context.session()).openPage('/bench/pages/ort.html');
  try {
    const api = page.api<typeof ortPageApi>({ timeoutMs: PAGE_TIMEOUT_MS });
    await api.setUp('webgpu', 1);
    for (const { label, shape } of encoderMatmulShapes(model)) {
      const { ms } = await api.timeMatmul({ shape, repeats: 1 });
      context.log(`  ort-webgpu (same session) ${label}: ${ms.toFixed(0)} ms`);
      times.set(label, ms);
    }
  } catch (error) {
    context.log(`  ort-webgpu (same session): ${messageOf(error)}`);
  } finally {
    await page.close().catch(() => {});
  }
  return times;
}

async function run(context: BenchContext): Promise<BenchResult[]> {
  const models: BenchModel[] = context.quick ? ['tiny.en'] : ['tiny.en', 'base'];
  const results: BenchResult[] = [];
  const session = await context.session();
  const page = await session.openPage('/bench/pages/murmur-webgpu.html');
  const api = page.api<typeof murmurWebGpuPageApi>({ timeoutMs: PAGE_TIMEOUT_MS });
  try {
    const adapter = await api.adapter();
    const speech = await context.speech();
    for (const model of models) {
      const dims = KNOWN_DIMS[model];
      const shapes = { rows: dims.nAudioCtx, width: dims.nAudioState, heads: dims.nAudioHead };
      const tune = await api.autotune(shapes, AUTOTUNE_BUDGET_MS);
      context.log(`  murmur-webgpu ${model}: autotuned in ${tune.ms.toFixed(0)} ms → ${tune.variants}`);
      const tuneNote = `autotune (${AUTOTUNE_BUDGET_MS} ms budget, ${tune.ms.toFixed(0)} ms with compilation): ${tune.timings.map((t) => `${t.op} ${t.variant} ${t.ms.toFixed(1)} ms`).join('; ')}`;
      const ort = await ortWebGpuMatmuls(context, model);
      const { dir } = await cachedSyntheticModel({ preset: model, seed: 1, format: 'ggml', dtype: 'f16' });
      const route = `/@bench-murmur-webgpu-${model}/`;
      session.mount(route, dir);

      const perSet: Partial<Record<VariantSet, BenchResult>> = {};
      for (const set of ['tuned', 'default'] as const) {
        const variants = await api.use(set);
        const result: BenchResult = { peer: `Murmur (${set} kernels)`, backend: 'webgpu', model: `${model} f16 (synthetic)`, threads: 1, matmul: [], notes: [`adapter "${adapter || 'unnamed'}"; ${variants}`] };
        if (set === 'tuned') result.notes!.push(tuneNote);
        try {
          const melMs = await api.timeLogMel(speech.samples, dims.nMels, 2);
          result.notes!.push(`log-mel on the GPU: ${melMs.toFixed(0)} ms per 30 s window (best of 2, read-back included)`);
          const matmulStart = Date.now();
          for (const { label, shape } of encoderMatmulShapes(model)) {
            if (Date.now() - matmulStart > MATMUL_BUDGET_MS) {
              result.notes!.push(`matmul: stopped before ${label} (budget ${MATMUL_BUDGET_MS / 1000} s)`);
              break;
            }
            const { ms, kernelMs } = await api.timeMatmul(shape, 2);
            const timing: MatmulTiming = { label, shape, ms, gflops: matmulGflops(shape, ms) };
            result.matmul!.push(timing);
            const ortMs = ort.get(label);
            const ratio = ortMs ? `, ${(ortMs / ms).toFixed(2)}× onnxruntime-web WebGPU (${ortMs.toFixed(0)} ms)` : '';
            const blocked = await api.timeMatmul(shape, context.quick ? 1 : 2, 'blocked');
            const blockedNote = `; blocked layout ${blocked.ms.toFixed(0)} ms (kernel ${blocked.kernelMs.toFixed(0)} ms), ${matmulGflops(shape, blocked.ms).toFixed(2)} GFLOP/s`;
            result.notes!.push(`${label}: ${ms.toFixed(0)} ms with upload and read-back (kernel ${kernelMs.toFixed(0)} ms), ${timing.gflops.toFixed(2)} GFLOP/s${ratio}${blockedNote}`);
            context.log(`  murmur-webgpu ${set} ${label}: ${ms.toFixed(0)} ms (kernel ${kernelMs.toFixed(0)} ms), ${timing.gflops.toFixed(2)} GFLOP/s${ratio}${blockedNote}`);
          }
          const timings = await api.timeModel(route + ggmlFileName(model, 'f16'), MODEL_BUDGET_MS, context.quick ? 8 : 16);
          result.encoderMs = timings.encoderMs;
          result.decodeMsPerToken = timings.decodeMsPerToken;
          const perWindowMs = melMs + timings.encoderMs + (timings.decodeMsPerToken ?? 0) * 32;
          result.notes!.push(
            `encoder best of ${timings.encoderRuns}; decoder mean of ${timings.decodeTokens} greedy steps; real-time factor ${(perWindowMs / 1000 / BENCH_SECONDS).toFixed(2)} (log-mel + encoder + 32 tokens per 30 s window)`,
            ...timings.notes,
          );
          context.log(`  murmur-webgpu ${set} ${model}: log-mel ${melMs.toFixed(0)} ms, encoder ${timings.encoderMs.toFixed(0)} ms, decode ${timings.decodeMsPerToken?.toFixed(1) ?? '-'} ms/token`);
        } catch (error) {
          result.error = messageOf(error);
        }
        perSet[set] = result;
        results.push(result);
      }
      const [t, d] = [perSet.tuned, perSet.default];
      if (t?.encoderMs && d?.encoderMs) {
        t.notes!.push(`tuned vs default: encoder ${(d.encoderMs / t.encoderMs).toFixed(2)}× faster${t.matmul!.map((m, i) => (d.matmul![i] ? `, ${m.label} ${(d.matmul![i]!.ms / m.ms).toFixed(2)}×` : '')).join('')}`);
      }
    }
  } finally {
    await page.close().catch(() => {});
  }
  return results;
}

export const murmurWebGpuEntry: BenchEntry = { name: 'murmur-webgpu', kind: 'murmur', run };
