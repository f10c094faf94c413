// Measures the WASM SIMD peak (bench/peak-kernel.ts) with Web Workers in this page.
import { exposePageApi } from '../../test/browser/pages/page-api.ts';
import { messageQueue, measurePeak, peakVariantSupported, PEAK_WORKER_SOURCE, type PeakVariant } from '../peak-kernel.ts';

const workerUrl = URL.createObjectURL(new Blob([PEAK_WORKER_SOURCE], { type: 'text/javascript' }));

function spawn() {
  const worker = new Worker(workerUrl);
  return messageQueue(
    (message) => worker.postMessage(message),
    (onMessage, onError) => {
      worker.onmessage = (event) => onMessage(event.data);
      worker.onerror = (event) => onError(new Error(`peak worker: ${event.message}`));
    },
    () => worker.terminate(),
  );
}

export const peakPageApi = {
  supported: (): PeakVariant[] => (['mul+add', 'relaxed_madd'] as const).filter(peakVariantSupported),
  measure: (variant: PeakVariant, threads: number, targetSeconds: number) => measurePeak(variant, threads, spawn, () => performance.now(), { targetSeconds }),
};

exposePageApi(peakPageApi);
