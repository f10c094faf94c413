// onnxruntime-web's MatMul on the encoder's shapes in the benchmark's Chromium: the wasm execution
// provider with the benchmark's thread count, and the WebGPU one (SwiftShader here: slow, so each
// shape runs once after its warm-up and the whole pass is capped).
import type { ortPageApi, OrtProvider } from '../pages/ort.ts';
import { encoderMatmulShapes, matmulGflops, type BenchModel } from '../shapes.ts';
import type { BenchContext, BenchEntry, BenchResult, MatmulTiming } from '../types.ts';

const WEBGPU_BUDGET_MS = 180_000;

async function ortMatmuls(context: BenchContext, provider: OrtProvider): Promise<BenchResult[]> {
  const models: BenchModel[] = context.quick ? ['tiny.en'] : ['tiny.en', 'base'];
  const threads = provider === 'wasm' ? context.threads : 1;
  const peer = 'onnxruntime-web';
  const session = await context.session();
  const page = await session.openPage('/bench/pages/ort.html');
  const result: BenchResult = { peer, backend: provider, threads, matmul: [], notes: [] };
  try {
    const api = page.api<typeof ortPageApi>({ timeoutMs: 120_000 });
    if (provider === 'webgpu') {
      const adapter = await api.webGpuAdapter();
      if (adapter === null) throw new Error('this Chromium offers no WebGPU adapter');
      result.notes!.push(`WebGPU adapter "${adapter || 'unnamed'}" (without a GPU: SwiftShader, a CPU emulation); one timed run per shape after a warm-up, including upload and read-back`);
    } else {
      result.notes!.push(`MatMul with a constant weight, best of ${context.quick ? 3 : 10} after a warm-up; includes ORT's input/output handling`);
    }
    const version = await api.setUp(provider, threads);
    result.peer = `onnxruntime-web ${version}`;
    const started = Date.now();
    for (const model of models) {
      for (const { label, shape } of encoderMatmulShapes(model)) {
        if (provider === 'webgpu' && Date.now() - started > WEBGPU_BUDGET_MS) {
          result.notes!.push(`stopped before ${label}: the WebGPU pass is capped at ${WEBGPU_BUDGET_MS / 1000} s`);
          return [result];
        }
        const repeats = provider === 'webgpu' ? 1 : context.quick ? 3 : 10;
        const { ms } = await api.timeMatmul({ shape, repeats });
        const timing: MatmulTiming = { label, shape, ms, gflops: matmulGflops(shape, ms) };
        context.log(`  ${peer} ${provider} ${label}: ${ms.toFixed(1)} ms, ${timing.gflops.toFixed(1)} GFLOP/s`);
        result.matmul!.push(timing);
      }
    }
    return [result];
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    return [result];
  } finally {
    await page.close().catch((error) => {
      result.error ??= `closing the page: ${error instanceof Error ? error.message : String(error)}`;
    });
  }
}

export const ortWasmEntry: BenchEntry = { name: 'ort-wasm', kind: 'peer', run: (context) => ortMatmuls(context, 'wasm') };
export const ortWebGpuEntry: BenchEntry = { name: 'ort-webgpu', kind: 'peer', run: (context) => ortMatmuls(context, 'webgpu') };
