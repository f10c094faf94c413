// Murmur's WASM backend (src/kernels-wasm) on the synthetic f16 ggml models the whisper.cpp peers
// run: encoder ms per 30 s window and decoder ms per token, with the benchmark's thread count,
// in the benchmark's Chromium (engine in a Web Worker, like the peers' pthreads) and in Node.
import { loadModel } from '../src/core/formats/load-model.ts';
import { cachedSyntheticModel, ggmlFileName } from '../scripts/synthetic/generate.ts';
import { measureWasmBackend, type MeasureOptions, type WasmTimings } from './murmur-wasm-measure.ts';
import type { murmurWasmPageApi } from './pages/murmur-wasm.ts';
import type { BenchModel } from './shapes.ts';
import type { BenchContext, BenchEntry, BenchResult } from './types.ts';

const RUN_TIMEOUT_MS = 10 * 60_000;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function resultOf(peer: string, label: string, timings: WasmTimings, notes: string[]): BenchResult {
  return {
    peer,
    backend: 'wasm',
    model: label,
    threads: timings.threads,
    encoderMs: timings.encoderMs,
    decodeMsPerToken: timings.decodeMsPerToken,
    notes: [
      `${timings.variant}; encoder best of ${timings.encoderRuns} after a warm-up, decoder mean of ${timings.decodeTokens} greedy single-token steps (logits read back each step); packing the weights took ${timings.prepareMs.toFixed(0)} ms`,
      ...notes,
    ],
  };
}

async function inChromium(context: BenchContext, model: BenchModel, dir: string, options: MeasureOptions): Promise<BenchResult> {
  const label = `${model} f16 (synthetic)`;
  const session = await context.session();
  const route = `/@bench-murmur-${model}/`;
  session.mount(route, dir);
  const page = await session.openPage('/bench/pages/murmur-wasm.html');
  try {
    const api = page.api<typeof murmurWasmPageApi>({ timeoutMs: RUN_TIMEOUT_MS });
    const reply = await api.measure({ modelUrl: route + ggmlFileName(model, 'f16'), ...options });
    if (!reply.ok) return { peer: 'Murmur', backend: 'wasm', model: label, threads: options.threads, error: reply.error };
    const notes = reply.crossOriginIsolated ? [] : ['the page is not cross-origin isolated: one thread only'];
    return resultOf('Murmur', label, reply.timings, ['Chromium, engine in a module Worker', ...notes]);
  } finally {
    await page.close().catch(() => {});
  }
}

async function inNode(model: BenchModel, path: string, options: MeasureOptions): Promise<BenchResult> {
  const timings = await measureWasmBackend(await loadModel(path), options);
  return resultOf('Murmur (Node)', `${model} f16 (synthetic)`, timings, [`Node ${process.versions.node} worker threads`]);
}

async function run(context: BenchContext): Promise<BenchResult[]> {
  const models: BenchModel[] = context.quick ? ['tiny.en'] : ['tiny.en', 'base'];
  const options: MeasureOptions = { threads: context.threads, encoderRuns: context.quick ? 2 : 3, decodeTokens: context.quick ? 16 : 32 };
  const results: BenchResult[] = [];
  for (const model of models) {
    const { dir, path } = await cachedSyntheticModel({ preset: model, seed: 1, format: 'ggml', dtype: 'f16' });
    for (const [where, measure] of [
      ['Chromium', () => inChromium(context, model, dir, options)],
      ['Node', () => inNode(model, path, options)],
    ] as const) {
      try {
        const result = await measure();
        results.push(result);
        if (result.error) context.log(`  murmur-wasm ${where} ${model}: ${result.error}`);
        else context.log(`  murmur-wasm ${where} ${model} ×${result.threads}: encoder ${result.encoderMs!.toFixed(0)} ms, decode ${result.decodeMsPerToken!.toFixed(1)} ms/token`);
      } catch (error) {
        results.push({ peer: where === 'Chromium' ? 'Murmur' : 'Murmur (Node)', backend: 'wasm', model: `${model} f16 (synthetic)`, threads: options.threads, error: messageOf(error) });
      }
    }
  }
  return results;
}

export const murmurWasmEntry: BenchEntry = { name: 'murmur-wasm', kind: 'murmur', run };
