// The WebGPU backend in headless Chromium (SwiftShader) on the English 'mini' model: parity with
// the reference backend over a 64-step greedy decode, and createTranscriber({ backend: 'webgpu' })
// on navigator.gpu giving the reference transcriber's transcript.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { comparableTranscript } from '../unit/transcriber-comparable.ts';
import { skipWithoutSharedData } from '../shared-data.ts';
import { useBrowserSession } from './harness.ts';
import { BROWSER_TIMEOUT_MS, openBackendPage, parityTest, type BackendPage } from './webgpu-backend-parity.ts';

const skip = skipWithoutSharedData('whisper-assets/gpt2.tiktoken');

describe("the WebGPU backend in headless Chromium, English 'mini'", () => {
  const session = useBrowserSession();
  let opened: Promise<BackendPage> | undefined;
  const backendPage = () => (opened ??= openBackendPage(session(), 'mini', 3));

  parityTest("English 'mini'", backendPage, skip);

  test("createTranscriber({ backend: 'webgpu' }) on navigator.gpu gives the reference's transcript", { skip, timeout: BROWSER_TIMEOUT_MS }, async (t) => {
    const { api, modelUrl } = await backendPage();
    const { expected, actual, ms } = await api.transcribeBoth(modelUrl, 6);
    t.diagnostic(`webgpu transcription of 4 s in the page: ${ms.toFixed(0)} ms, ${actual.segments.flatMap((s) => s.tokens).length} tokens`);
    assert.ok(actual.segments.flatMap((s) => s.tokens).length > 0);
    assert.deepEqual(comparableTranscript(actual), comparableTranscript(expected));
  });

  test('the page reported no errors', async () => {
    if (opened) await (await opened).page.close();
  });
});
