// Three transcriptions on one WebGPU backend in Node: GPU memory stays flat (the activation
// pool's high-water mark is set by the first window), each decoder step is one submission (the
// encoder's work rides along with the first step's), and the profile shows every op that ran as
// GPU kernels timed by timestamp queries.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { createTranscriber } from '../../src/core/transcriber.ts';
import type { WhisperBackend, WhisperOps } from '../../src/core/model/ops.ts';
import { createWebGpuBackend, formatProfileTable, HOST_OPS, type GpuTensor, type GpuWeight } from '../../src/kernels-wgsl/backend.ts';
import { skipWithoutSharedData } from '../shared-data.ts';
import { acquireNodeGpu, deviceOrSkip, type NodeGpu } from './node-gpu.ts';
import { testAudio } from './webgpu-backend-cases.ts';

/** The backend with every op call counted by name. */
function counted(backend: WhisperBackend<GpuTensor, GpuWeight>): { backend: WhisperBackend<GpuTensor, GpuWeight>; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const ops = Object.fromEntries(
    Object.entries(backend.ops).map(([name, op]) => [
      name,
      (...args: unknown[]) => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        return (op as (...a: unknown[]) => unknown)(...args);
      },
    ]),
  ) as unknown as WhisperOps<GpuTensor, GpuWeight>;
  return { backend: { ...backend, name: backend.name, ops, prepareWeights: backend.prepareWeights.bind(backend), releaseWeights: backend.releaseWeights.bind(backend), dispose: backend.dispose.bind(backend) }, calls };
}

describe('the WebGPU backend over several transcriptions in Node', () => {
  let gpu: NodeGpu | undefined;
  before(async () => {
    gpu = await acquireNodeGpu();
  });
  after(() => gpu?.context?.device.destroy());

  test('flat GPU memory over 3 transcriptions, one submission per decoder step, every op profiled as a GPU kernel', { skip: skipWithoutSharedData('whisper-assets/gpt2.tiktoken'), timeout: 180_000 }, async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    if (!context.features.has('timestamp-query')) return t.skip('this adapter has no "timestamp-query" feature, so the profile cannot time kernels on the GPU');
    const model = await loadModel((await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'f16' })).path);
    const webgpu = await createWebGpuBackend({ device: context.device, profile: true });
    const { backend, calls } = counted(webgpu);
    const transcriber = await createTranscriber({ model, backend });
    try {
      const audio = testAudio(4);
      const highWater: number[] = [];
      let first: unknown;
      for (let run = 0; run < 3; run++) {
        const reads = () => (calls.get('read') ?? 0) + (calls.get('selectTokens') ?? 0);
        const before = { submissions: webgpu.stats().submissions, steps: calls.get('embed') ?? 0, reads: reads(), logitReads: calls.get('read') ?? 0, bytes: webgpu.stats().bytesRead };
        const start = performance.now();
        const transcript = await transcriber.transcribe(audio, { maxTokens: 6 });
        const stats = webgpu.stats();
        const steps = (calls.get('embed') ?? 0) - before.steps;
        t.diagnostic(`transcription ${run + 1}: ${(performance.now() - start).toFixed(0)} ms, ${steps} decoder steps, ${stats.submissions - before.submissions} submissions, pool ${stats.pool.highWaterBytes} bytes in ${stats.pool.created} buffers`);
        assert.ok(steps >= 2, 'the decode ran several steps');
        assert.equal(stats.submissions - before.submissions, steps, 'one submission per decoder step');
        assert.equal(reads() - before.reads, steps, 'one readback (logits or token selection) per decoder step');
        // Temperature 0 selects on the GPU; the fallback's sampling (temperature > 0) reads the logits.
        const logitReads = (calls.get('read') ?? 0) - before.logitReads;
        const selections = steps - logitReads;
        const selectionBytes = stats.bytesRead - before.bytes - logitReads * model.dims.nVocab * 4;
        t.diagnostic(`${selections} steps selected tokens on the GPU (${(selectionBytes / selections).toFixed(1)} bytes read back each), ${logitReads} read the logits to sample`);
        assert.ok(selections >= 2);
        assert.ok(selectionBytes < selections * 64, `${selectionBytes} bytes read back by ${selections} token selections`);
        assert.equal(stats.pool.inUseBytes, 0, 'every activation went back to the pool');
        highWater.push(stats.pool.highWaterBytes);
        if (run === 0) first = transcript;
        else assert.deepEqual(transcript, first, 'the same audio gives the same transcript');
      }
      assert.ok(highWater[0]! > 0);
      assert.deepEqual(highWater, [highWater[0], highWater[0], highWater[0]], 'the pool did not grow after the first transcription');

      const rows = await webgpu.profile();
      for (const line of formatProfileTable(rows).split('\n')) t.diagnostic(line);
      const byOp = new Map(rows.map((row) => [row.op, row]));
      const kernelOps = [...calls.keys()].filter((op) => !(HOST_OPS as readonly string[]).includes(op));
      assert.deepEqual(
        kernelOps.sort(),
        // The decoding stack asks for every prompt position's logits, so no gatherRows here; each step
        // ends in selectTokens, so nothing reads the logits back.
        ['addPositionalEmbedding', 'attention', 'conv1d', 'embed', 'layerNorm', 'linear', 'selectTokens', 'upload', 'writeCache', 'zeros'],
        'the ops a transcription calls',
      );
      for (const op of kernelOps) {
        const row = byOp.get(op);
        assert.ok(row, `${op} is in the profile`);
        assert.equal(row.timing, 'gpu', `${op} timed on the GPU`);
        assert.equal(row.calls, calls.get(op), `${op} calls`);
        assert.ok(row.passes >= row.calls, `${op}: ${row.passes} kernel passes for ${row.calls} calls`);
      }
      assert.equal(byOp.get('read')?.calls ?? 0, calls.get('read') ?? 0);
      assert.ok(rows.reduce((sum, row) => sum + row.totalMs, 0) > 0);
      const shares = rows.reduce((sum, row) => sum + row.share, 0);
      assert.ok(Math.abs(shares - 1) < 1e-9, `the kernel shares add up to ${shares}`);
    } finally {
      transcriber.dispose();
      webgpu.dispose();
    }
  });
});
