// The 'webnn' backend (src/onnx) in the page: whisper.ts lowered to ONNX graphs and handed to
// onnxruntime-web, WebNN first, against the reference backend run here too.
import { loadModel } from '../../../src/core/formats/load-model.ts';
import { createOnnxBackend } from '../../../src/onnx/backend.ts';
import { compareWithReference, testMel } from '../../gpu/webgpu-backend-cases.ts';
import { exposePageApi } from './page-api.ts';

export const onnxPageApi = {
  /** What the page offers WebNN-wise, before any session is tried. */
  environment() {
    return { webnn: typeof navigator !== 'undefined' && 'ml' in navigator, crossOriginIsolated };
  },

  async parity(modelUrl: string, steps: number) {
    const model = await loadModel(modelUrl);
    const backend = await createOnnxBackend();
    try {
      const report = await compareWithReference(backend, model, testMel(model), steps);
      return {
        report,
        provider: backend.provider,
        reasons: [...backend.reasons],
        sessions: backend.sessions.map((s) => ({
          provider: s.provider,
          shapes: s.shapes,
          attempts: s.attempts.map((a) => ({ ...a, ...(a.freeDimensionOverrides ? { freeDimensionOverrides: { ...a.freeDimensionOverrides } } : {}) })),
          runs: s.runs,
          nodes: s.nodes,
          opTypes: [...s.opTypes],
        })),
      };
    } finally {
      backend.dispose();
    }
  },
};

exposePageApi(onnxPageApi);
