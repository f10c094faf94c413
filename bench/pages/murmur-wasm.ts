// Murmur's WASM backend in the benchmark's Chromium: each measurement runs in a fresh module
// Worker (bench/pages/murmur-wasm-worker.ts), which starts the kernel threads itself.
import { exposePageApi } from '../../test/browser/pages/page-api.ts';
import type { MurmurWasmJob, MurmurWasmReply } from './murmur-wasm-worker.ts';

export const murmurWasmPageApi = {
  crossOriginIsolated: () => globalThis.crossOriginIsolated,
  measure: (job: MurmurWasmJob) =>
    new Promise<MurmurWasmReply>((resolve) => {
      const worker = new Worker(new URL('./murmur-wasm-worker.ts', import.meta.url), { type: 'module' });
      worker.onmessage = (event: MessageEvent<MurmurWasmReply>) => {
        worker.terminate();
        resolve(event.data);
      };
      worker.onerror = (event) => {
        worker.terminate();
        resolve({ ok: false, error: `the benchmark worker failed: ${event.message}` });
      };
      worker.postMessage(job);
    }),
};

exposePageApi(murmurWasmPageApi);
