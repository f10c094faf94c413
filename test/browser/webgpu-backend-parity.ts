// The browser side of the WebGPU backend tests: a page (pages/webgpu-backend.ts) with the synthetic
// models mounted, and the parity test against the reference backend, both run in the page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import type { SyntheticPreset } from '../../scripts/synthetic/presets.ts';
import { LOGIT_TOLERANCE, PARITY_STEPS } from '../gpu/webgpu-backend-parity.ts';
import { summarize } from '../gpu/webgpu-backend-cases.ts';
import type { BrowserSession, RemoteApi, TestPage } from './harness.ts';
import type { backendPageApi } from './pages/webgpu-backend.ts';

export const BROWSER_TIMEOUT_MS = 180_000;

export interface BackendPage {
  page: TestPage;
  api: RemoteApi<typeof backendPageApi>;
  /** Where the model is served from. */
  modelUrl: string;
}

/** Mounts the synthetic model (Hugging Face, f32) and opens the backend test page. */
export async function openBackendPage(session: BrowserSession, preset: SyntheticPreset, seed: number): Promise<BackendPage> {
  const modelUrl = `/@models/${preset}-${seed}/`;
  session.mount(modelUrl, (await cachedSyntheticModel({ preset, seed, format: 'huggingface', dtype: 'f32' })).dir);
  const page = await session.openPage('/test/browser/pages/webgpu-backend.html');
  return { page, api: page.api<typeof backendPageApi>({ timeoutMs: BROWSER_TIMEOUT_MS }), modelUrl };
}

/** Registers the parity test: every one of PARITY_STEPS greedy steps, as in Node. */
export function parityTest(label: string, backendPage: () => Promise<BackendPage>, skip: string | false): void {
  test(`${label}: logits within ${LOGIT_TOLERANCE} and the same argmax at each of ${PARITY_STEPS} greedy steps`, { skip, timeout: BROWSER_TIMEOUT_MS }, async (t) => {
    const { api, modelUrl } = await backendPage();
    const report = await api.parity(modelUrl, PARITY_STEPS);
    t.diagnostic(summarize(report));
    assert.deepEqual(report.nonFinite, []);
    assert.ok(report.encoderError < LOGIT_TOLERANCE, `encoder output off by ${report.encoderError}`);
    assert.equal(report.stepErrors.length, PARITY_STEPS);
    report.stepErrors.forEach((error, step) => assert.ok(error < LOGIT_TOLERANCE, `step ${step}: logits off by ${error}`));
    assert.deepEqual(report.gpuTokens, report.referenceTokens);
  });
}
