// The WebGPU backend in headless Chromium (SwiftShader) against the reference backend on the
// 'mini-multilingual' model, over a 64-step greedy decode.
import { describe, test } from 'node:test';
import { skipWithoutSharedData } from '../shared-data.ts';
import { useBrowserSession } from './harness.ts';
import { openBackendPage, parityTest, type BackendPage } from './webgpu-backend-parity.ts';

describe("the WebGPU backend in headless Chromium, 'mini-multilingual'", () => {
  const session = useBrowserSession();
  let opened: Promise<BackendPage> | undefined;
  const backendPage = () => (opened ??= openBackendPage(session(), 'mini-multilingual', 4));

  parityTest("'mini-multilingual'", backendPage, skipWithoutSharedData('whisper-assets/multilingual.tiktoken'));

  test('the page reported no errors', async () => {
    if (opened) await (await opened).page.close();
  });
});
