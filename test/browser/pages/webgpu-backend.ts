// The WebGPU backend in the page, on navigator.gpu: parity with the reference backend (both run
// here), the transcriber's 'webgpu' option, and several transcriptions on one backend with its
// pool, submission and profile figures reported back to the test.
import { loadModel } from '../../../src/core/formats/load-model.ts';
import type { WhisperModel } from '../../../src/core/model/model.ts';
import type { WhisperOps } from '../../../src/core/model/ops.ts';
import { createTranscriber } from '../../../src/core/transcriber.ts';
import { createWebGpuBackend, GpuDeviceLostError, type GpuTensor, type GpuWeight } from '../../../src/kernels-wgsl/backend.ts';
import { requestGpuDevice } from '../../../src/kernels-wgsl/device.ts';
import { compareWithReference, testAudio, testMel } from '../../gpu/webgpu-backend-cases.ts';
import { exposePageApi } from './page-api.ts';

const models = new Map<string, Promise<WhisperModel>>();
const model = (url: string) => {
  let loaded = models.get(url);
  if (!loaded) models.set(url, (loaded = loadModel(url)));
  return loaded;
};

export const backendPageApi = {
  async features() {
    return [...(await requestGpuDevice()).features].sort();
  },

  async parity(modelUrl: string, steps: number) {
    const loaded = await model(modelUrl);
    const backend = await createWebGpuBackend();
    try {
      return await compareWithReference(backend, loaded, testMel(loaded), steps);
    } finally {
      backend.dispose();
    }
  },

  /** One transcription with createTranscriber({ backend: 'webgpu' }) and one with the reference. */
  async transcribeBoth(modelUrl: string, maxTokens: number) {
    const loaded = await model(modelUrl);
    const audio = testAudio(4);
    const reference = await createTranscriber({ model: loaded });
    const expected = await reference.transcribe(audio, { maxTokens });
    reference.dispose();
    const webgpu = await createTranscriber({ model: loaded, backend: 'webgpu' });
    const start = performance.now();
    const actual = await webgpu.transcribe(audio, { maxTokens });
    const ms = performance.now() - start;
    webgpu.dispose();
    return { expected, actual, ms };
  },

  /** Three transcriptions on one profiled backend, with the figures after each. */
  async transcribeThrice(modelUrl: string, maxTokens: number) {
    const loaded = await model(modelUrl);
    const webgpu = await createWebGpuBackend({ profile: true });
    const calls: Record<string, number> = {};
    const ops = Object.fromEntries(
      Object.entries(webgpu.ops).map(([name, op]) => [
        name,
        (...args: unknown[]) => {
          calls[name] = (calls[name] ?? 0) + 1;
          return (op as (...a: unknown[]) => unknown)(...args);
        },
      ]),
    ) as unknown as WhisperOps<GpuTensor, GpuWeight>;
    const backend = { name: webgpu.name, ops, prepareWeights: webgpu.prepareWeights.bind(webgpu), releaseWeights: webgpu.releaseWeights.bind(webgpu), dispose: () => {} };
    const transcriber = await createTranscriber({ model: loaded, backend });
    const runs = [];
    try {
      for (let run = 0; run < 3; run++) {
        const steps = calls.embed ?? 0;
        const submissions = webgpu.stats().submissions;
        const start = performance.now();
        const transcript = await transcriber.transcribe(testAudio(4), { maxTokens });
        const stats = webgpu.stats();
        runs.push({ transcript, ms: performance.now() - start, steps: (calls.embed ?? 0) - steps, submissions: stats.submissions - submissions, pool: stats.pool });
      }
      return { runs, calls, profile: await webgpu.profile() };
    } finally {
      transcriber.dispose();
      webgpu.dispose();
    }
  },

  /** Destroys the device under a read in flight; reports what the read and a later op threw. */
  async loseDevice() {
    const { device } = await requestGpuDevice();
    const backend = await createWebGpuBackend({ device });
    const x = backend.ops.upload(new Float32Array(64).fill(1), 8, 8);
    const reading = backend.ops.read(x);
    device.destroy();
    const describe = (error: unknown) => ({ lost: error instanceof GpuDeviceLostError, message: error instanceof Error ? error.message : String(error) });
    const read = await reading.then(() => ({ lost: false, message: 'the read succeeded' }), describe);
    let later = { lost: false, message: 'zeros succeeded' };
    try {
      backend.ops.zeros(2, 2);
    } catch (error) {
      later = describe(error);
    }
    backend.dispose();
    return { read, later };
  },
};

exposePageApi(backendPageApi);
