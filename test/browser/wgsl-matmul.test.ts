import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gelu } from '../../src/core/reference/math.ts';
import { GEMV_MAX_ROWS, type MatmulVariant } from '../../src/kernels-wgsl/matmul.ts';
import { ALL_EPILOGUES, describeEpilogue, MATMUL_SHAPES, matmulCase, matmulMismatch, referenceMatmul, type MatmulCase } from '../gpu/matmul-cases.ts';
import { useBrowserSession, type RemoteApi, type TestPage } from './harness.ts';
import type { matmulPageApi } from './pages/wgsl-matmul.ts';

const GEMV_SHAPES = [...MATMUL_SHAPES.filter(([m]) => m <= GEMV_MAX_ROWS), [4, 70, 64] as const];

describe('WGSL matmul on WebGPU in headless Chromium', () => {
  const session = useBrowserSession();
  let page: TestPage;
  let api: RemoteApi<typeof matmulPageApi>;
  let features: string[];
  before(async () => {
    page = await session().openPage('/test/browser/pages/wgsl-matmul.html');
    api = page.api<typeof matmulPageApi>();
    features = await api.features();
  });

  async function expectReference(c: MatmulCase, variant: MatmulVariant | undefined, what: string): Promise<void> {
    const actual = await api.runMatmul(c, { variant });
    assert.ok(actual instanceof Float32Array, 'a Float32Array comes back');
    assert.equal(matmulMismatch(actual, referenceMatmul(c)), undefined, what);
  }

  const gemv = (m: number, k: number, reduction: 'workgroup' | 'subgroup'): MatmulVariant => ({ kind: 'gemv', rows: m, reduction, vectorX: k % 4 === 0 });

  test('the tiled kernel matches the reference on every shape and epilogue', async () => {
    for (const [m, n, k] of MATMUL_SHAPES) {
      for (const epilogue of ALL_EPILOGUES) {
        await expectReference(matmulCase(m, n, k, epilogue), { kind: 'tiled', vectorX: k % 4 === 0 }, `${m}×${n}×${k} ${describeEpilogue(epilogue)}`);
      }
    }
  });

  test("matmulVariant's choice matches the reference on every shape", async () => {
    for (const [m, n, k] of MATMUL_SHAPES) {
      await expectReference(matmulCase(m, n, k, ALL_EPILOGUES[7]!, 2), undefined, `${m}×${n}×${k} as ${JSON.stringify(await api.chosenVariant(m, n, k))}`);
    }
  });

  test('gemv with a workgroup tree reduction matches the reference on every epilogue', async () => {
    for (const [m, n, k] of GEMV_SHAPES) {
      const variant = gemv(m, k, 'workgroup');
      for (const epilogue of ALL_EPILOGUES) {
        await expectReference(matmulCase(m, n, k, epilogue, 3), variant, `${m}×${n}×${k} ${describeEpilogue(epilogue)}`);
      }
    }
  });

  test('gemv with subgroupAdd matches the reference on every epilogue', async (t) => {
    if (!features.includes('subgroups')) {
      t.skip(`this adapter has no "subgroups" feature (it has: ${features.join(', ')})`);
      return;
    }
    for (const [m, n, k] of GEMV_SHAPES) {
      const variant = gemv(m, k, 'subgroup');
      for (const epilogue of ALL_EPILOGUES) {
        await expectReference(matmulCase(m, n, k, epilogue, 4), variant, `${m}×${n}×${k} ${describeEpilogue(epilogue)}`);
      }
    }
  });

  test('f16 weights (f32 accumulation) match the reference on f16-rounded weights', async (t) => {
    if (!features.includes('shader-f16')) {
      t.skip(`this adapter has no "shader-f16" feature (it has: ${features.join(', ')}), so the f16 path cannot run here`);
      return;
    }
    for (const [m, n, k] of [[3, 5, 7], [17, 33, 65], [1, 384, 1001], [5, 130, 77]] as const) {
      const c = matmulCase(m, n, k, ALL_EPILOGUES[7]!, 5);
      const actual = await api.runMatmul(c, { dtype: 'f16' });
      assert.equal(matmulMismatch(actual, referenceMatmul(c, 'f16')), undefined, `${m}×${n}×${k} f16`);
    }
  });

  test('the GELU epilogue follows exact GELU (erf) across both tails', async () => {
    const k = 64;
    const m = 3;
    const weight = Float32Array.from({ length: k * k }, (_, i) => (i % (k + 1) === 0 ? 1 : 0));
    const x = Float32Array.from({ length: m * k }, (_, i) => -12 + (24 * i) / (m * k - 1));
    const actual = await api.runMatmul({ m, n: k, k, x, weight, gelu: true }, { variant: { kind: 'tiled', vectorX: true } });
    for (let i = 0; i < x.length; i++) {
      const expected = gelu(x[i]!);
      assert.ok(Math.abs(actual[i]! - expected) <= 2e-6 * Math.max(1, Math.abs(expected)), `gelu(${x[i]}) = ${actual[i]}, expected ${expected}`);
    }
  });

  test('the page reported no errors', async () => {
    await page.close();
  });
});
