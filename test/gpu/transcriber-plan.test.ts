// createTranscriber hands the execution plan's WebGPU settings to the backend (src/core/transcriber.ts):
// the blocked layout, pinned kernel variants, and autotuning whose first start measures and saves
// while the second restores from the store; each read back in `transcriber.execution`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acquireNodeGpu, dawnGpu, deviceOrSkip } from './node-gpu.ts';
import { createTranscriber } from '../../src/core/transcriber.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { clearAutotuneCache, type VariantStore } from '../../src/kernels-wgsl/autotune-cache.ts';
import { CPU_KERNEL_VARIANTS, type KernelVariants } from '../../src/kernels-wgsl/variants.ts';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { skipWithoutSharedData } from '../shared-data.ts';

const gpu = await acquireNodeGpu();

test('webgpu through createTranscriber: blocked layout with pinned variants; autotune measures on the first start and restores on the second', { skip: skipWithoutSharedData('whisper-assets/gpt2.tiktoken'), timeout: 240_000 }, async (t) => {
  const context = deviceOrSkip(gpu, t);
  if (!context) return;
  context.device.destroy();
  const model = await loadModel((await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' })).dir);
  const audio = new Float32Array(16000);

  const pinned = await createTranscriber({ model, backend: 'webgpu', gpu: await dawnGpu(), layout: 'blocked', precision: 'q8', kernelVariants: { ...CPU_KERNEL_VARIANTS } });
  try {
    const { execution } = pinned;
    assert.equal(execution.layout, 'blocked');
    assert.equal(execution.precision, 'q8');
    assert.equal(execution.kernelVariantsSource, 'pinned');
    assert.deepEqual(execution.kernelVariants, { ...CPU_KERNEL_VARIANTS });
    assert.ok(execution.reasons.some((r) => r.startsWith('layout blocked: linear weights in GPU tiles')), execution.reasons.join('\n'));
    assert.equal(typeof (await pinned.transcribe(audio, { maxTokens: 3, temperature: 0 })).text, 'string');
  } finally {
    pinned.dispose();
  }

  clearAutotuneCache();
  const saved = new Map<string, KernelVariants>();
  const store: VariantStore = { kind: 'test', load: async (key) => saved.get(key), save: async (key, variants) => void saved.set(key, variants) };
  const sources: string[] = [];
  for (let start = 0; start < 2; start++) {
    // A fresh page: the in-memory cache is gone, the store stays.
    clearAutotuneCache();
    const transcriber = await createTranscriber({ model, backend: 'webgpu', gpu: await dawnGpu(), autotune: { store, budgetMs: 400 } });
    try {
      sources.push(transcriber.execution.kernelVariantsSource!);
      t.diagnostic(`start ${start + 1}: ${transcriber.execution.reasons.join('; ')}`);
    } finally {
      transcriber.dispose();
    }
  }
  assert.deepEqual(sources, ['tuned', 'cache']);
  assert.equal(saved.size, 1, 'the first start saved one result');
});
