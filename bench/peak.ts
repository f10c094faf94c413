// The machine's measured f32 SIMD peak (bench/peak-kernel.ts) in Node worker threads and in the
// benchmark's Chromium, one thread and `threads` threads, in GFLOP/s: the ceiling every engine's
// matmul GFLOP/s is compared against.
import { Worker } from 'node:worker_threads';
import { messageQueue, measurePeak, peakVariantSupported, PEAK_WORKER_SOURCE, type PeakMeasurement, type PeakVariant } from './peak-kernel.ts';
import type { BenchContext } from './types.ts';
import type { peakPageApi } from './pages/peak.ts';

export interface PeakResult extends PeakMeasurement {
  where: 'node' | 'chromium';
}

const VARIANTS: PeakVariant[] = ['mul+add', 'relaxed_madd'];

function threadCounts(threads: number): number[] {
  return threads > 1 ? [1, threads] : [1];
}

function spawnNodeWorker() {
  const worker = new Worker(PEAK_WORKER_SOURCE, { eval: true });
  return messageQueue(
    (message) => worker.postMessage(message),
    (onMessage, onError) => {
      worker.on('message', onMessage);
      worker.on('error', onError);
    },
    () => void worker.terminate(),
  );
}

/** Relaxed SIMD is skipped (with a note) where this Node lacks it: Node 20 needs --experimental-wasm-relaxed-simd. */
export async function peakInNode(threads: number, options: { targetSeconds?: number } = {}): Promise<{ results: PeakResult[]; notes: string[] }> {
  const results: PeakResult[] = [];
  const notes: string[] = [];
  for (const variant of VARIANTS) {
    if (!peakVariantSupported(variant)) {
      notes.push(`Node: ${variant} not measured: this Node's WebAssembly lacks it (Node 20: --experimental-wasm-relaxed-simd)`);
      continue;
    }
    for (const n of threadCounts(threads)) {
      results.push({ where: 'node', ...(await measurePeak(variant, n, spawnNodeWorker, () => performance.now(), options)) });
    }
  }
  return { results, notes };
}

export async function peakInChromium(context: BenchContext, options: { targetSeconds?: number } = {}): Promise<{ results: PeakResult[]; notes: string[] }> {
  const session = await context.session();
  const page = await session.openPage('/bench/pages/peak.html');
  try {
    const api = page.api<typeof peakPageApi>({ timeoutMs: 120_000 });
    const results: PeakResult[] = [];
    const notes: string[] = [];
    const supported = await api.supported();
    for (const variant of VARIANTS) {
      if (!supported.includes(variant)) {
        notes.push(`Chromium: ${variant} not measured: its WebAssembly lacks it`);
        continue;
      }
      for (const n of threadCounts(context.threads)) {
        results.push({ where: 'chromium', ...(await api.measure(variant, n, options.targetSeconds ?? 0.5)) });
      }
    }
    return { results, notes };
  } finally {
    await page.close();
  }
}
