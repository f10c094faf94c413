// Runs Murmur's WASM backend benchmark (bench/murmur-wasm-measure.ts) inside a Web Worker, where
// the engine thread may block on Atomics while its kernel threads work, as in an application.
import { loadModel } from '../../src/core/formats/load-model.ts';
import { measureWasmBackend, type MeasureOptions, type WasmTimings } from '../murmur-wasm-measure.ts';

export interface MurmurWasmJob extends MeasureOptions {
  modelUrl: string;
}

export type MurmurWasmReply = { ok: true; timings: WasmTimings; crossOriginIsolated: boolean } | { ok: false; error: string };

const scope = globalThis as unknown as { onmessage: ((event: MessageEvent<MurmurWasmJob>) => void) | null; postMessage(reply: MurmurWasmReply): void; crossOriginIsolated?: boolean };

scope.onmessage = async (event) => {
  try {
    const { modelUrl, ...options } = event.data;
    const model = await loadModel(modelUrl);
    const timings = await measureWasmBackend(model, options);
    scope.postMessage({ ok: true, timings, crossOriginIsolated: Boolean(scope.crossOriginIsolated) });
  } catch (error) {
    scope.postMessage({ ok: false, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  }
};
