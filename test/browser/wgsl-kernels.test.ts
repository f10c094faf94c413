import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ATTENTION_CASES,
  CONV_CASES,
  EMBED_CASE,
  LAYER_NORM_CASES,
  LOGITS_CASES,
  logitsMismatch,
  POSITIONS_CASE,
  referenceAttention,
  referenceConv,
  referenceEmbed,
  referenceGelu,
  referenceLayerNorm,
  referenceLogits,
  referencePositions,
  scaledMismatch,
} from '../gpu/wgsl-kernel-cases.ts';
import { useBrowserSession, type RemoteApi, type TestPage } from './harness.ts';
import type { wgslKernelsPageApi } from './pages/wgsl-kernels.ts';

describe('WGSL kernels on WebGPU in headless Chromium against the reference backend', () => {
  const session = useBrowserSession();
  let page: TestPage;
  let api: RemoteApi<typeof wgslKernelsPageApi>;
  before(async () => {
    page = await session().openPage('/test/browser/pages/wgsl-kernels.html');
    api = page.api<typeof wgslKernelsPageApi>();
  });

  for (const c of ATTENTION_CASES) {
    test(`attention: ${c.name}`, async () => {
      const actual = await api.attention(c);
      const expected = referenceAttention(c);
      assert.ok(actual.output instanceof Float32Array, 'a Float32Array comes back');
      assert.equal(scaledMismatch(actual.output, expected.output), undefined, 'output');
      assert.equal(actual.weights === undefined, expected.weights === undefined, 'weights returned only when asked for');
      if (expected.weights) assert.equal(scaledMismatch(actual.weights!, expected.weights), undefined, 'weights');
    });
  }

  test('layer norm, including a single column and a large mean', async () => {
    for (const c of LAYER_NORM_CASES) {
      assert.equal(scaledMismatch(await api.layerNorm(c), referenceLayerNorm(c)), undefined, `[${c.rows}, ${c.cols}] + ${c.offset}`);
    }
  });

  for (const c of CONV_CASES) {
    test(`conv1d: ${c.name}`, async () => {
      assert.equal(scaledMismatch(await api.conv(c), referenceConv(c)), undefined);
    });
  }

  test('conv1d: the fused GELU is exact-erf GELU to 1e-6 over [-10, 10]', async () => {
    assert.equal(scaledMismatch(await api.gelu(), referenceGelu(), 1e-6), undefined);
  });

  test('token embedding gather plus positional rows', async () => {
    assert.equal(scaledMismatch(await api.embed(EMBED_CASE), referenceEmbed(EMBED_CASE)), undefined);
  });

  test('the encoder adds the first rows of its positional table', async () => {
    assert.equal(scaledMismatch(await api.positions(POSITIONS_CASE), referencePositions(POSITIONS_CASE)), undefined);
  });

  for (const c of LOGITS_CASES) {
    test(`logits: ${c.name} (vocabulary ${c.vocabulary})`, async () => {
      assert.equal(logitsMismatch(await api.logits(c), referenceLogits(c)), undefined);
    });
  }

  test('the page reported no errors', async () => {
    await page.close();
  });
});
