// One parity suite for the WebGPU backend on a synthetic model in Node: the encoder output and
// the logits of every step of a greedy decode (64 steps unless said otherwise) against the
// reference backend.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel, type SyntheticModelOptions } from '../../scripts/synthetic/generate.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { createWebGpuBackend, type WebGpuBackend, type WebGpuBackendOptions } from '../../src/kernels-wgsl/backend.ts';
import { skipWithoutSharedData } from '../shared-data.ts';
import { acquireNodeGpu, deviceOrSkip, type NodeGpu } from './node-gpu.ts';
import { compareWithReference, summarize, testMel } from './webgpu-backend-cases.ts';

export const PARITY_STEPS = 64;
export const LOGIT_TOLERANCE = 1e-3;

export interface ParityOptions {
  /** Options for the backend under test (the device is the shared one). */
  backend?: Omit<WebGpuBackendOptions, 'device' | 'gpu'>;
  /** Further checks on the backend once the decode is done (its stats, say). */
  check?: (backend: WebGpuBackend) => void;
}

export function describeParity(model: SyntheticModelOptions, steps = PARITY_STEPS, options: ParityOptions = {}): void {
  const setting = options.backend ? ` with ${JSON.stringify(options.backend)}` : '';
  describe(`the WebGPU backend${setting} matches the reference on ${model.preset} (${model.format} ${model.dtype}) in Node`, () => {
    let gpu: NodeGpu | undefined;
    before(async () => {
      gpu = await acquireNodeGpu();
    });
    after(() => gpu?.context?.device.destroy());

    const skip = skipWithoutSharedData('whisper-assets/gpt2.tiktoken', 'whisper-assets/multilingual.tiktoken');
    test(`encoder output, and logits within ${LOGIT_TOLERANCE} with the same argmax at each of ${steps} greedy steps`, { skip, timeout: 240_000 }, async (t) => {
      const context = deviceOrSkip(gpu, t);
      if (!context) return;
      const loaded = await loadModel((await cachedSyntheticModel(model)).path);
      const backend = await createWebGpuBackend({ ...options.backend, device: context.device });
      try {
        const report = await compareWithReference(backend, loaded, testMel(loaded), steps);
        t.diagnostic(summarize(report));
        assert.deepEqual(report.nonFinite, []);
        assert.ok(report.encoderError < LOGIT_TOLERANCE, `encoder output off by ${report.encoderError}`);
        assert.equal(report.stepErrors.length, steps);
        report.stepErrors.forEach((error, step) => assert.ok(error < LOGIT_TOLERANCE, `step ${step}: logits off by ${error}`));
        assert.deepEqual(report.gpuTokens, report.referenceTokens);
        assert.equal(backend.stats().pool.inUseBytes, 0, 'every activation went back to the pool');
        options.check?.(backend);
      } finally {
        backend.dispose();
      }
    });
  });
}
