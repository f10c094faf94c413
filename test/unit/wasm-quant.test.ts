// The one WASM matrix-product entry for every weight dtype (src/kernels-wasm/quant.ts):
// quantized weights against an exact model of the int8 arithmetic (wasm-quant-model.ts) and against
// the reference linear within the bound activation quantization allows; f16/bf16 against the
// reference; both builds; errors and memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWasmKernels, matmulPacked, packWeightTensor, type MatmulEpilogue, type WasmKernels } from '../../src/kernels-wasm/quant.ts';
import { referenceOps } from '../../src/core/reference/backend.ts';
import { RefTensor } from '../../src/core/reference/tensor.ts';
import { decodeTensor, encodeTensor, f32ToF16, tensorByteLength } from '../../src/core/model/dtype.ts';
import type { WeightDType, WeightTensor } from '../../src/core/model/weights.ts';
import { MurmurError } from '../../src/core/errors.ts';
import { createRandom } from '../../scripts/synthetic/weights.ts';
import { modelQuantMatmul } from './wasm-quant-model.ts';

const random = createRandom(20261122);
const normals = (length: number, scale = 1) => Float32Array.from({ length }, () => scale * random.normal());

const simd = await createWasmKernels({ relaxed: false });
let relaxed: WasmKernels | undefined;
let relaxedMissing = '';
try {
  relaxed = await createWasmKernels({ relaxed: true });
} catch (error) {
  relaxedMissing = `relaxed SIMD is not enabled in this Node (${(error as Error).message}); npm test passes --experimental-wasm-relaxed-simd`;
}
const variants: [string, WasmKernels | undefined][] = [
  ['simd', simd],
  ['relaxed-simd', relaxed],
];

const QUANT_TYPES = ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1'] as const;
const BLOCK_BYTES: Record<(typeof QUANT_TYPES)[number], number> = { q8_0: 34, q4_0: 18, q4_1: 20, q5_0: 22, q5_1: 24 };

/**
 * Activations with the awkward cases in them: a block of zeros (scale 0), a block with one huge
 * value (most codes round to 0), and a row of small values (scale far below 1).
 */
function activations(m: number, k: number): Float32Array {
  const x = normals(m * k);
  if (k >= 64) x.fill(0, 32, 64);
  if (m >= 2) x[k + 5] = 1e3;
  if (m >= 3) for (let i = 2 * k; i < 3 * k; i++) x[i]! *= 1e-4;
  return x;
}

/** ggml quantization of normal weights, as a model converter would write them. */
function quantizedWeights(dtype: WeightDType, n: number, k: number): WeightTensor {
  return encodeTensor(normals(n * k, 0.05), [n, k], dtype);
}

/**
 * Random block bytes: every code the format can hold (q8_0's −128 included, which ggml's own
 * quantizer never writes) with scales and mins of either sign.
 */
function rawBlocks(dtype: (typeof QUANT_TYPES)[number], n: number, k: number): WeightTensor {
  const size = BLOCK_BYTES[dtype];
  const blocks = (n * k) / 32;
  const bytes = new Uint8Array(blocks * size);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random.uniform() * 256);
  const hasMin = dtype === 'q4_1' || dtype === 'q5_1';
  for (let b = 0; b < blocks; b++) {
    const d = f32ToF16(random.normal() * 0.01);
    bytes[b * size] = d & 0xff;
    bytes[b * size + 1] = d >> 8;
    if (hasMin) {
      const min = f32ToF16(random.normal() * 0.1);
      bytes[b * size + 2] = min & 0xff;
      bytes[b * size + 3] = min >> 8;
    }
  }
  return { dtype, shape: [n, k], bytes };
}

function referenceLinear(x: Float32Array, m: number, w: WeightTensor, e: MatmulEpilogue): Float32Array {
  const n = w.shape[0]!;
  const weights = { weight: w, ...(e.bias ? { bias: encodeTensor(e.bias, [n], 'f32') } : {}) };
  const residual = e.residual ? new RefTensor(e.residual, m, n) : undefined;
  return referenceOps.linear(new RefTensor(x, m, w.shape[1]!), weights, { gelu: e.gelu ?? false, residual }).data;
}

/** Where actual and expected differ by more than `tolerance(i)`: the first such index, or -1. */
function firstMismatch(actual: Float32Array, expected: Float32Array, tolerance: (i: number) => number): number {
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Object.is(a, e)) continue;
    if (!(Math.abs(a - e) <= tolerance(i))) return i;
  }
  return -1;
}

const M = [1, 3, 17];
const N = [1, 7, 33, 130];
const K = [32, 64, 96, 416];

for (const dtype of QUANT_TYPES) {
  test(`${dtype}: both builds equal the integer model exactly on every awkward shape`, (t) => {
    for (const m of M) {
      for (const n of N) {
        for (const k of K) {
          const x = activations(m, k);
          const w = (m + n + k) % 2 ? quantizedWeights(dtype, n, k) : rawBlocks(dtype, n, k);
          const bias = normals(n);
          const residual = normals(m * n);
          const epilogues: [string, MatmulEpilogue, number][] = [
            ['plain', {}, 0],
            ['bias+residual', { bias, residual }, 0],
            // The kernel's GELU is a polynomial within ~2e-7 of the reference formula the model uses.
            ['bias+gelu+residual', { bias, gelu: true, residual }, 1e-6],
          ];
          for (const [what, epilogue, relative] of epilogues) {
            const expected = modelQuantMatmul(x, m, k, w, epilogue);
            for (const [name, engine] of variants) {
              if (!engine) continue;
              const packed = packWeightTensor(engine, w);
              const actual = matmulPacked(engine, x, m, packed, epilogue);
              packed.release();
              const at = firstMismatch(actual, expected, (i) => relative * Math.max(1, Math.abs(expected[i]!)));
              assert.equal(at, -1, `${name} ${dtype} ${m}×${k}×${n} ${what}: y[${at}] = ${actual[at]}, model ${expected[at]}`);
            }
          }
        }
      }
    }
    if (!relaxed) t.diagnostic(relaxedMissing);
  });
}

test('activation quantization error stays within its bound against the reference linear', (t) => {
  // Each activation x is replaced by q·dx with |x − q·dx| ≤ dx/2 = max|x_block| / 254 (round to
  // nearest; dx and 1/dx are f32, so allow a relative 1e-5 on top). The weights are the same
  // dequantized values the reference uses, so output c of row r differs by at most
  //   Σ_b (max|x_b| / 254) · Σ_{t ∈ b} |w[c, t]|
  // plus f32 rounding of the block sums (≤ 1e-5 · Σ_t |x_t · w_t| here); GELU is 1.13-Lipschitz.
  const report: string[] = [];
  for (const dtype of QUANT_TYPES) {
    for (const [m, k, n] of [[17, 416, 130], [3, 96, 33], [1, 1536, 64]] as const) {
      const x = activations(m, k);
      const w = quantizedWeights(dtype, n, k);
      const wf = decodeTensor(w);
      const bound = new Float64Array(m * n);
      const slack = new Float64Array(m * n);
      for (let r = 0; r < m; r++) {
        for (let c = 0; c < n; c++) {
          for (let b = 0; b < k / 32; b++) {
            let amax = 0;
            let wsum = 0;
            for (let t = b * 32; t < b * 32 + 32; t++) {
              amax = Math.max(amax, Math.abs(x[r * k + t]!));
              wsum += Math.abs(wf[c * k + t]!);
              slack[r * n + c]! += Math.abs(x[r * k + t]! * wf[c * k + t]!);
            }
            bound[r * n + c]! += (amax / 254) * (1 + 1e-5) * wsum;
          }
        }
      }
      for (const gelu of [false, true]) {
        const bias = normals(n, 0.1);
        const expected = referenceLinear(x, m, w, { bias, gelu });
        const actual = matmulPacked(simd, x, m, packWeightTensor(simd, w), { bias, gelu });
        const lipschitz = gelu ? 1.13 : 1;
        const at = firstMismatch(actual, expected, (i) => lipschitz * (bound[i]! + 1e-5 * slack[i]!) + 1e-7);
        assert.equal(at, -1, `${dtype} ${m}×${k}×${n}${gelu ? ' gelu' : ''}: y[${at}] = ${actual[at]}, reference ${expected[at]}, bound ${bound[at]}`);
        if (!gelu) {
          let se = 0;
          let sy = 0;
          for (let i = 0; i < expected.length; i++) {
            se += (actual[i]! - expected[i]!) ** 2;
            sy += expected[i]! ** 2;
          }
          report.push(`${dtype} ${m}×${k}×${n}: error RMS ${(Math.sqrt(se / sy) * 100).toFixed(3)}% of output RMS`);
          assert.ok(Math.sqrt(se / sy) < 0.01, `${dtype} ${m}×${k}×${n}: relative RMS error ${Math.sqrt(se / sy)}`);
        }
      }
    }
  }
  // The bound is what the test guarantees; the RMS ratios show how far inside it typical data stays.
  assert.equal(report.length, 15);
  t.diagnostic(report.join('; '));
});

for (const dtype of ['f16', 'bf16', 'f32'] as const) {
  for (const [name, engine] of variants) {
    test(`${name}: ${dtype} weights run the f32 kernel and match the reference within 1e-5`, (t) => {
      if (!engine) return t.skip(relaxedMissing);
      for (const [m, k, n] of [[1, 1, 1], [3, 5, 7], [17, 33, 130], [1, 384, 1031], [37, 416, 64]] as const) {
        const x = normals(m * k);
        const w = encodeTensor(normals(n * k, 0.05), [n, k], dtype);
        const packed = packWeightTensor(engine, w);
        assert.equal(packed.layout, 'f32');
        const bias = normals(n);
        const residual = normals(m * n);
        for (const epilogue of [{}, { bias, gelu: true, residual }] as MatmulEpilogue[]) {
          const expected = referenceLinear(x, m, w, epilogue);
          let magnitude = 1;
          for (const v of expected) magnitude = Math.max(magnitude, Math.abs(v));
          const at = firstMismatch(matmulPacked(engine, x, m, packed, epilogue), expected, () => 1e-5 * magnitude);
          assert.equal(at, -1, `${dtype} ${m}×${k}×${n} ${epilogue.gelu ? 'bias+gelu+residual' : 'plain'}: mismatch at ${at}`);
        }
        packed.release();
      }
    });
  }
}

for (const [name, engine] of variants) {
  test(`${name}: f16 weights kept as halves give the f32 layout's results bit for bit`, (t) => {
    if (!engine) return t.skip(relaxedMissing);
    for (const [m, k, n] of [[1, 1, 1], [3, 5, 7], [17, 33, 130], [1, 384, 1031], [6, 64, 24]] as const) {
      const values = normals(n * k, 0.05);
      // Zeros of both signs, subnormal halves (below 2⁻¹⁴) of both signs, the largest half.
      const specials = [0, -0, 3e-6, -5.9e-8, 6.1e-5, -1e-7, 65504, -65504];
      for (let i = 0; i < Math.min(values.length, specials.length); i++) values[(i * 7919) % values.length] = specials[i]!;
      const w = encodeTensor(values, [n, k], 'f16');
      const half = packWeightTensor(engine, w, 'w', { keepHalf: true });
      const full = packWeightTensor(engine, w, 'w');
      assert.equal(half.layout, 'f16');
      assert.equal(half.byteLength, Math.ceil(n / 8) * 8 * k * 2, 'two bytes per value');
      const x = normals(m * k);
      const bias = normals(n);
      const residual = normals(m * n);
      for (const epilogue of [{}, { bias, gelu: true, residual }] as MatmulEpilogue[]) {
        assert.deepEqual(matmulPacked(engine, x, m, half, epilogue), matmulPacked(engine, x, m, full, epilogue), `${m}×${k}×${n}`);
      }
      half.release();
      full.release();
    }
    // An infinity or NaN cannot be widened in-register: such a tensor stays in the f32 layout.
    const bad = encodeTensor(Float32Array.from([1, Infinity, 2, 3]), [2, 2], 'f16');
    const packed = packWeightTensor(engine, bad, 'bad', { keepHalf: true });
    assert.equal(packed.layout, 'f32');
    packed.release();
  });
}

test('plain SIMD and relaxed SIMD give bit-identical quantized results', (t) => {
  if (!relaxed) return t.skip(relaxedMissing);
  for (const dtype of QUANT_TYPES) {
    const [m, k, n] = [37, 384, 65];
    const x = normals(m * k);
    const w = quantizedWeights(dtype, n, k);
    const a = matmulPacked(simd, x, m, packWeightTensor(simd, w), { gelu: false });
    const b = matmulPacked(relaxed, x, m, packWeightTensor(relaxed, w), { gelu: false });
    assert.deepEqual(b, a, dtype);
  }
});

test('NaN or infinity in an activation block reaches that row of the output, not its neighbours', () => {
  const [m, k, n] = [3, 64, 9];
  const w = quantizedWeights('q4_0', n, k);
  const packed = packWeightTensor(simd, w);
  const x = normals(m * k);
  x[k + 40] = NaN;
  x[2 * k + 3] = Infinity;
  const y = matmulPacked(simd, x, m, packed);
  for (let c = 0; c < n; c++) {
    assert.ok(Number.isFinite(y[c]!), `row 0 column ${c} is finite`);
    assert.ok(Number.isNaN(y[n + c]!), `row 1 column ${c} is NaN`);
    assert.ok(!Number.isFinite(y[2 * n + c]!), `row 2 column ${c} is not finite`);
  }
  packed.release();
});

test('packing: memory per value, and every byte is returned by release()', () => {
  const before = simd.heap.allocatedBytes;
  const expectedBytes: Record<string, number> = { q8_0: 1.125, q4_0: 1.125, q4_1: 1.25, q5_0: 1.125, q5_1: 1.25, f16: 4, bf16: 4, f32: 4 };
  for (const [dtype, perValue] of Object.entries(expectedBytes)) {
    const w = encodeTensor(normals(64 * 96), [64, 96], dtype as WeightDType);
    const packed = packWeightTensor(simd, w);
    assert.equal(packed.byteLength, perValue * 64 * 96, dtype);
    assert.equal(packed.dtype, dtype);
    const x = normals(5 * 96);
    const inUse = simd.heap.allocatedBytes;
    matmulPacked(simd, x, 5, packed, { bias: normals(64), residual: normals(5 * 64) });
    assert.equal(simd.heap.allocatedBytes, inUse, `${dtype}: activations are freed after the call`);
    packed.release();
  }
  assert.equal(simd.heap.allocatedBytes, before);
});

test('bad weights and inputs are MurmurErrors that name the tensor and its shape', () => {
  const isError = (code: string, pattern: RegExp) => (error: unknown) => error instanceof MurmurError && error.code === code && pattern.test(error.message);
  const odd = { dtype: 'q8_0' as const, shape: [4, 40], bytes: new Uint8Array(5 * 34) };
  assert.throws(() => packWeightTensor(simd, odd, 'encoder.blocks.0.mlp.0.weight'), isError('SHAPE', /encoder\.blocks\.0\.mlp\.0\.weight: q8_0 weight \[4, 40\] has rows of 40 values, not whole blocks of 32/));
  const short = { dtype: 'q4_1' as const, shape: [2, 64], bytes: new Uint8Array(tensorByteLength('q4_1', [2, 64]) - 1) };
  assert.throws(() => packWeightTensor(simd, short, 'w'), isError('SHAPE', /w: q4_1 weight \[2, 64\] needs 80 bytes, got 79/));
  assert.throws(() => packWeightTensor(simd, encodeTensor(normals(8), [2, 2, 2], 'f32'), 'conv'), isError('SHAPE', /conv: .* must be \[n, k\], got \[2,2,2\]/));
  const packed = packWeightTensor(simd, quantizedWeights('q5_1', 3, 64));
  assert.throws(() => matmulPacked(simd, normals(63), 1, packed), isError('SHAPE', /63 input values are not \[1, 64\]/));
  assert.throws(() => matmulPacked(simd, normals(64), 1, packed, { bias: normals(2) }), isError('SHAPE', /bias of 2 values for 3 outputs/));
  assert.throws(() => matmulPacked(simd, normals(64), 1, packed, { residual: normals(2) }), isError('SHAPE', /residual of 2 values .* \[1, 3\]/));
  if (relaxed) assert.throws(() => matmulPacked(relaxed!, normals(64), 1, packed), isError('WASM_WEIGHTS', /different WASM kernels/));
  packed.release();
  assert.throws(() => matmulPacked(simd, normals(64), 1, packed), isError('RELEASED', /q5_1 weights \[3, 64\] were used after release/));
  assert.equal(matmulPacked(simd, new Float32Array(0), 0, packWeightTensor(simd, quantizedWeights('q8_0', 3, 32))).length, 0);
});
