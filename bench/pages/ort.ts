// Times onnxruntime-web's MatMul on Whisper encoder shapes, with its wasm or WebGPU execution
// provider. One page load serves one provider and thread count: ORT fixes both at first use.
import { exposePageApi } from '../../test/browser/pages/page-api.ts';
import { matmulModel, seededValues } from '../peers/onnx-matmul.ts';

type Ort = typeof import('onnxruntime-web');
export type OrtProvider = 'wasm' | 'webgpu';

export interface OrtMatmulRequest {
  shape: [number, number, number];
  /** Timed runs after one warm-up run; the best is kept. */
  repeats: number;
}

let ort: Ort | undefined;
let provider: OrtProvider | undefined;

async function setUp(which: OrtProvider, threads: number): Promise<string> {
  if (ort) throw new Error('this page is already set up; open a new page for another provider or thread count');
  // Each build is its own module (the wasm-only one has no WebGPU code).
  ort = which === 'webgpu' ? await import('onnxruntime-web/webgpu') : await import('onnxruntime-web/wasm');
  provider = which;
  ort.env.wasm.wasmPaths = '/node_modules/onnxruntime-web/dist/';
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = 'error';
  return ort.env.versions.web ?? 'unknown';
}

async function timeMatmul({ shape, repeats }: OrtMatmulRequest): Promise<{ ms: number; runs: number }> {
  if (!ort || !provider) throw new Error('call setUp first');
  const [m, k, n] = shape;
  const session = await ort.InferenceSession.create(matmulModel(m, k, n), { executionProviders: [provider], graphOptimizationLevel: 'all' });
  try {
    const x = new ort.Tensor('float32', seededValues(m * k, 2), [m, k]);
    const run = async () => {
      const start = performance.now();
      const outputs = await session.run({ x });
      const ms = performance.now() - start;
      for (const output of Object.values(outputs)) output.dispose();
      return ms;
    };
    await run();
    let best = Infinity;
    for (let i = 0; i < repeats; i++) best = Math.min(best, await run());
    return { ms: best, runs: repeats };
  } finally {
    await session.release();
  }
}

/** The WebGPU adapter's description ('' when it gives none), or null without WebGPU. */
async function webGpuAdapter(): Promise<string | null> {
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) return null;
  const { vendor, architecture, description } = adapter.info;
  return [vendor, architecture, description].filter(Boolean).join(' ');
}

export const ortPageApi = { setUp, timeMatmul, webGpuAdapter };

exposePageApi(ortPageApi);
