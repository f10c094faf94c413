// The WASM-SIMD matrix product against the reference linear on awkward shapes, every epilogue,
// both builds (plain SIMD128 and relaxed SIMD), plus its error handling and memory reuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWasmMatmul, type MatmulEpilogue, type WasmMatmul } from '../../src/kernels-wasm/matmul.ts';
import { referenceOps } from '../../src/core/reference/backend.ts';
import { RefTensor } from '../../src/core/reference/tensor.ts';
import { gelu as referenceGelu } from '../../src/core/reference/math.ts';
import { encodeTensor } from '../../src/core/model/dtype.ts';
import { MurmurError } from '../../src/core/errors.ts';
import { createRandom } from '../../scripts/synthetic/weights.ts';
import { assertClose } from './wasm-ops-fixture.ts';

const random = createRandom(20261121);
const randomValues = (length: number) => Float32Array.from({ length }, () => random.normal());

const simd = await createWasmMatmul({ relaxed: false });
let relaxed: WasmMatmul | undefined;
let relaxedMissing = '';
try {
  relaxed = await createWasmMatmul({ relaxed: true });
} catch (error) {
  relaxedMissing = `relaxed SIMD is not enabled in this Node (${(error as Error).message}); npm test passes --experimental-wasm-relaxed-simd`;
}
const variants: [string, WasmMatmul | undefined][] = [
  ['simd', simd],
  ['relaxed-simd', relaxed],
];

interface Problem {
  m: number;
  k: number;
  n: number;
  x: Float32Array;
  w: Float32Array;
  bias: Float32Array;
  residual: Float32Array;
}

function problem(m: number, k: number, n: number): Problem {
  return { m, k, n, x: randomValues(m * k), w: randomValues(n * k), bias: randomValues(n), residual: randomValues(m * n) };
}

function reference(p: Problem, withBias: boolean, gelu: boolean, withResidual: boolean): Float32Array {
  const weights = { weight: encodeTensor(p.w, [p.n, p.k], 'f32'), ...(withBias ? { bias: encodeTensor(p.bias, [p.n], 'f32') } : {}) };
  const residual = withResidual ? new RefTensor(p.residual, p.m, p.n) : undefined;
  return referenceOps.linear(new RefTensor(p.x, p.m, p.k), weights, { gelu, residual }).data;
}

const EPILOGUES = [false, true].flatMap((bias) => [false, true].flatMap((gelu) => [false, true].map((residual) => ({ bias, gelu, residual }))));
const describe = (e: { bias: boolean; gelu: boolean; residual: boolean }) =>
  [e.bias && 'bias', e.gelu && 'gelu', e.residual && 'residual'].filter(Boolean).join('+') || 'plain';

// m × k × n: single elements, primes, a GEMV row wider than any panel multiple, an MLP block.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [4, 8, 16],
  [17, 33, 65],
  [6, 2, 9],
  [1, 384, 4099],
  [37, 384, 1536],
];

for (const [name, matmul] of variants) {
  for (const [m, k, n] of SHAPES) {
    test(`${name}: ${m}×${k}×${n} matches the reference linear with every epilogue`, (t) => {
      if (!matmul) return t.skip(relaxedMissing);
      const p = problem(m, k, n);
      const xBefore = p.x.slice();
      const residualBefore = p.residual.slice();
      const packed = matmul.packWeights(p.w, n, k);
      for (const e of EPILOGUES) {
        const epilogue: MatmulEpilogue = { gelu: e.gelu, ...(e.bias ? { bias: p.bias } : {}), ...(e.residual ? { residual: p.residual } : {}) };
        const actual = matmul.matmul(p.x, m, packed, epilogue);
        assertClose(actual, reference(p, e.bias, e.gelu, e.residual), 1e-4, `${m}×${k}×${n} ${describe(e)}`);
      }
      assert.deepEqual(p.x, xBefore, 'the input is left alone');
      assert.deepEqual(p.residual, residualBefore, 'the residual is left alone');
      packed.release();
    });
  }
}

test('plain SIMD and relaxed SIMD agree within 1e-5', (t) => {
  if (!relaxed) return t.skip(relaxedMissing);
  assert.equal(relaxed.variant, 'relaxed-simd');
  assert.equal(simd.variant, 'simd');
  for (const [m, k, n] of [[17, 33, 65], [37, 384, 1536], [1, 1536, 384]] as const) {
    const p = problem(m, k, n);
    const a = simd.packWeights(p.w, n, k);
    const b = relaxed.packWeights(p.w, n, k);
    for (const e of EPILOGUES) {
      const epilogue: MatmulEpilogue = { gelu: e.gelu, ...(e.bias ? { bias: p.bias } : {}), ...(e.residual ? { residual: p.residual } : {}) };
      assertClose(relaxed.matmul(p.x, m, b, epilogue), simd.matmul(p.x, m, a, epilogue), 1e-5, `${m}×${k}×${n} ${describe(e)}`);
    }
    a.release();
    b.release();
  }
});

test('createWasmMatmul picks relaxed SIMD exactly when the engine supports it', async () => {
  const chosen = await createWasmMatmul();
  assert.equal(chosen.variant, relaxed ? 'relaxed-simd' : 'simd');
});

for (const [name, matmul] of variants) {
  test(`${name}: GELU follows the reference's exact GELU, tails and non-finite values included`, (t) => {
    if (!matmul) return t.skip(relaxedMissing);
    // y = x · 1: each output is GELU of one input value.
    const values = [...Array.from({ length: 2401 }, (_, i) => -12 + i * 0.01), 1e-30, -1e-30, 0, 3.4e38, -3.4e38, Infinity, -Infinity];
    const x = Float32Array.from(values);
    const packed = matmul.packWeights(Float32Array.of(1), 1, 1);
    const y = matmul.matmul(x, x.length, packed, { gelu: true });
    for (let i = 0; i < x.length; i++) {
      const expected = Math.fround(referenceGelu(x[i]!));
      const tolerance = 5e-7 * Math.max(1, Math.abs(x[i]!));
      const ok = expected === y[i] || Math.abs(y[i]! - expected) <= tolerance;
      assert.ok(ok, `gelu(${x[i]}) = ${y[i]}, reference ${expected}`);
    }
    const nan = matmul.matmul(Float32Array.of(NaN, 1), 2, packed, { gelu: true });
    assert.ok(Number.isNaN(nan[0]), 'NaN stays NaN');
    assert.ok(Math.abs(nan[1]! - referenceGelu(1)) < 1e-6, 'its neighbour is unaffected');
    packed.release();
  });
}

test('no reduction (k = 0) gives the epilogue of zero; empty outputs are empty', () => {
  const packed = simd.packWeights(new Float32Array(0), 3, 0);
  const bias = Float32Array.of(1, -2, 0.5);
  const y = simd.matmul(new Float32Array(0), 2, packed, { bias, gelu: true, residual: Float32Array.of(1, 1, 1, 2, 2, 2) });
  const g = (v: number) => Math.fround(referenceGelu(v));
  assertClose(y, Float32Array.of(g(1) + 1, g(-2) + 1, g(0.5) + 1, g(1) + 2, g(-2) + 2, g(0.5) + 2), 1e-6, 'k = 0');
  assert.equal(simd.matmul(new Float32Array(0), 0, packed).length, 0);
  const none = simd.packWeights(new Float32Array(0), 0, 4);
  assert.equal(simd.matmul(new Float32Array(8), 2, none).length, 0);
  packed.release();
  none.release();
});

test('bad shapes, released and foreign weights are MurmurErrors naming the problem', () => {
  const packed = simd.packWeights(randomValues(12), 3, 4);
  const isError = (code: string, pattern: RegExp) => (error: unknown) => error instanceof MurmurError && error.code === code && pattern.test(error.message);
  assert.throws(() => simd.packWeights(randomValues(11), 3, 4), isError('SHAPE', /11 weight values cannot be a \[3, 4\]/));
  assert.throws(() => simd.packWeights(randomValues(12), 1.5, 8), isError('SHAPE', /weight rows \(n\)/));
  assert.throws(() => simd.packWeights(randomValues(0), -1, 0), isError('SHAPE', /weight rows \(n\)/));
  assert.throws(() => simd.matmul(randomValues(7), 2, packed), isError('SHAPE', /7 input values are not \[2, 4\]/));
  assert.throws(() => simd.matmul(randomValues(8), 2, packed, { bias: randomValues(2) }), isError('SHAPE', /bias of 2 values for 3 outputs/));
  assert.throws(() => simd.matmul(randomValues(8), 2, packed, { residual: randomValues(5) }), isError('SHAPE', /residual of 5 values .* \[2, 3\]/));
  assert.throws(() => simd.matmul(randomValues(8), NaN, packed), isError('SHAPE', /rows \(m\)/));
  if (relaxed) assert.throws(() => relaxed!.matmul(randomValues(8), 2, packed), isError('WASM_WEIGHTS', /different WasmMatmul/));
  packed.release();
  assert.equal(packed.released, true);
  assert.throws(() => simd.matmul(randomValues(8), 2, packed), isError('RELEASED', /\[3, 4\] were used after release/));
  packed.release(); // releasing twice is harmless
});

test('memory is reused across calls and returned by release()', async () => {
  const matmul = await createWasmMatmul({ relaxed: false });
  const p = problem(37, 384, 1536);
  const packed = matmul.packWeights(p.w, p.n, p.k);
  const weightBytes = matmul.allocatedBytes;
  assert.ok(weightBytes >= 1536 * 384 * 4, `packed weights take ${weightBytes} bytes`);
  const first = matmul.matmul(p.x, p.m, packed, { bias: p.bias, gelu: true });
  const grownTo = matmul.memoryBytes;
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(matmul.matmul(p.x, p.m, packed, { bias: p.bias, gelu: true }), first, 'the same call gives the same result');
  }
  assert.equal(matmul.memoryBytes, grownTo, 'repeated calls do not grow the memory');
  assert.equal(matmul.allocatedBytes, weightBytes, 'activations are freed after each call');
  // Fewer rows fit in the space the previous calls used.
  matmul.matmul(p.x.subarray(0, 384), 1, packed);
  assert.equal(matmul.memoryBytes, grownTo);
  packed.release();
  assert.equal(matmul.allocatedBytes, 0);
  // Weights packed after growth, and growth after packing, keep their values.
  const small = problem(5, 7, 11);
  const smallPacked = matmul.packWeights(small.w, small.n, small.k);
  const big = problem(300, 64, 64);
  const bigPacked = matmul.packWeights(big.w, big.n, big.k);
  matmul.matmul(big.x, big.m, bigPacked);
  assertClose(matmul.matmul(small.x, small.m, smallPacked), reference(small, false, false, false), 1e-4, 'after other allocations');
  smallPacked.release();
  bigPacked.release();
});
