// Three transcriptions on one profiled WebGPU backend in headless Chromium: flat GPU memory, one
// submission per decoder step, every op in the profile as a GPU kernel; and a lost device failing
// the read in flight with a GpuDeviceLostError.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HOST_OPS } from '../../src/kernels-wgsl/backend.ts';
import { skipWithoutSharedData } from '../shared-data.ts';
import { useBrowserSession } from './harness.ts';
import { BROWSER_TIMEOUT_MS, openBackendPage, type BackendPage } from './webgpu-backend-parity.ts';

describe('the WebGPU backend over several transcriptions in headless Chromium', { skip: skipWithoutSharedData('whisper-assets/gpt2.tiktoken') }, () => {
  const session = useBrowserSession();
  let opened: Promise<BackendPage> | undefined;
  const backendPage = () => (opened ??= openBackendPage(session(), 'mini', 3));

  test('flat GPU memory over 3 transcriptions, one submission per decoder step, every op profiled as a GPU kernel', { skip: skipWithoutSharedData('whisper-assets/gpt2.tiktoken'), timeout: BROWSER_TIMEOUT_MS }, async (t) => {
    const { api, modelUrl } = await backendPage();
    if (!(await api.features()).includes('timestamp-query')) return t.skip('this adapter has no "timestamp-query" feature');
    const { runs, calls, profile } = await api.transcribeThrice(modelUrl, 6);
    for (const [i, run] of runs.entries()) {
      t.diagnostic(`transcription ${i + 1}: ${run.ms.toFixed(0)} ms, ${run.steps} steps, ${run.submissions} submissions, pool high-water ${run.pool.highWaterBytes} bytes`);
      assert.ok(run.steps >= 2);
      assert.equal(run.submissions, run.steps, 'one submission per decoder step');
      assert.equal(run.pool.inUseBytes, 0);
      assert.equal(run.pool.highWaterBytes, runs[0]!.pool.highWaterBytes, 'the pool did not grow after the first transcription');
      assert.deepEqual(run.transcript, runs[0]!.transcript);
    }
    const kernelOps = Object.keys(calls).filter((op) => !(HOST_OPS as readonly string[]).includes(op));
    assert.deepEqual(
      kernelOps.sort(),
      ['addPositionalEmbedding', 'attention', 'conv1d', 'embed', 'layerNorm', 'linear', 'selectTokens', 'upload', 'writeCache', 'zeros'],
      'the ops a transcription calls',
    );
    for (const op of kernelOps) {
      const row = profile.find((r) => r.op === op);
      assert.ok(row, `${op} is in the profile`);
      assert.equal(row.timing, 'gpu');
      assert.equal(row.calls, calls[op]);
      assert.ok(row.passes >= row.calls, `${op}: ${row.passes} passes for ${row.calls} calls`);
    }
  });

  test('a lost device fails the read in flight and later calls with GpuDeviceLostError', async () => {
    const { api } = await backendPage();
    const { read, later } = await api.loseDevice();
    assert.ok(read.lost, read.message);
    assert.match(read.message, /read: the GPU device was lost/);
    assert.ok(later.lost, later.message);
    assert.match(later.message, /zeros: the GPU device was lost/);
  });

  test('the page reported no errors', async () => {
    if (opened) await (await opened).page.close();
  });
});
