// The WASM-SIMD matmul over Rockchip B tiles (src/kernels-wasm/matmul-tiles.ts) against the
// reference linear on awkward shapes and every epilogue, in all four builds of the kernels
// module (plain and relaxed SIMD, each over an ordinary and over a shared memory).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MurmurError } from '../../src/core/errors.ts';
import { encodeTensor } from '../../src/core/model/dtype.ts';
import { referenceOps } from '../../src/core/reference/backend.ts';
import { RefTensor } from '../../src/core/reference/tensor.ts';
import { packRockchipB } from '../../src/core/layout/index.ts';
import { WasmHeap } from '../../src/kernels-wasm/heap.ts';
import { compileKernel, createKernelMemory, instantiateKernel, type KernelVariant } from '../../src/kernels-wasm/instantiate.ts';
import { ALL_KERNEL_BUILDS } from '../../src/kernels-wasm/kernel-builds.ts';
import { createWasmTiledMatmul, wasmTiledMatmulOver, type WasmTiledMatmul } from '../../src/kernels-wasm/matmul-tiles.ts';
import { assertClose, randomSource } from './wasm-ops-fixture.ts';

const BUILDS: KernelVariant[] = ['simd', 'relaxed-simd', 'simd-threads', 'relaxed-simd-threads'];

async function load(build: KernelVariant): Promise<WasmTiledMatmul | string> {
  try {
    const compiled = await compileKernel('kernels', ALL_KERNEL_BUILDS, { relaxed: build.startsWith('relaxed'), threads: build.endsWith('threads') });
    const memory = createKernelMemory(compiled);
    const instance = await instantiateKernel('kernels', compiled.module, memory);
    const heap = new WasmHeap(memory, (instance.exports.heapBase as () => number)());
    return wasmTiledMatmulOver(build.startsWith('relaxed') ? 'relaxed-simd' : 'simd', instance.exports, heap);
  } catch (error) {
    return `the ${build} build cannot run in this Node (${(error as Error).message}); npm test passes --experimental-wasm-relaxed-simd`;
  }
}

const kernels = new Map<KernelVariant, WasmTiledMatmul | string>();
for (const build of BUILDS) kernels.set(build, await load(build));

const EPILOGUES = [false, true].flatMap((bias) => [false, true].flatMap((gelu) => [false, true].map((residual) => ({ bias, gelu, residual }))));
const describe = (e: { bias: boolean; gelu: boolean; residual: boolean }) => [e.bias && 'bias', e.gelu && 'gelu', e.residual && 'residual'].filter(Boolean).join('+') || 'plain';

// m × k × n: single elements, tile sides ±1, primes, a decoder row, Whisper base's MLP on a slice of frames.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [37, 83, 61],
  [2, 32, 16],
  [5, 31, 17],
  [4, 33, 15],
  [1, 384, 1537],
  [37, 384, 1536],
  [150, 1536, 384],
];

function reference(x: Float32Array, m: number, k: number, w: Float32Array, n: number, bias: Float32Array | undefined, gelu: boolean, residual: Float32Array | undefined): Float32Array {
  const weights = { weight: encodeTensor(w, [n, k], 'f32'), ...(bias ? { bias: encodeTensor(bias, [n], 'f32') } : {}) };
  return referenceOps.linear(new RefTensor(x, m, k), weights, { gelu, residual: residual ? new RefTensor(residual, m, n) : undefined }).data;
}

for (const build of BUILDS) {
  for (const [m, k, n] of SHAPES) {
    test(`${build}: ${m}×${k}×${n} over Rockchip B tiles matches the reference linear with every epilogue`, (t) => {
      const matmul = kernels.get(build)!;
      if (typeof matmul === 'string') return t.skip(matmul);
      const random = randomSource(m * 7 + k * 11 + n);
      const [x, w, bias, residual] = [random.values(m * k), random.values(n * k), random.values(n), random.values(m * n)];
      const xBefore = x.slice();
      const packed = matmul.packWeights(w, n, k);
      // The slow reference once per shape on the big case, every epilogue elsewhere.
      const epilogues = m * k * n > 1e7 ? [EPILOGUES[7]!] : EPILOGUES;
      for (const e of epilogues) {
        const actual = matmul.matmul(x, m, packed, { gelu: e.gelu, ...(e.bias ? { bias } : {}), ...(e.residual ? { residual } : {}) });
        assertClose(actual, reference(x, m, k, w, n, e.bias ? bias : undefined, e.gelu, e.residual ? residual : undefined), 1e-4, `${m}×${k}×${n} ${describe(e)}`);
      }
      assert.deepEqual(x, xBefore, 'the input is left alone');
      packed.release();
      assert.ok(packed.released);
    });
  }
}

test('tiles packed outside (packRockchipB) load and match weights packed inside', async () => {
  const matmul = await createWasmTiledMatmul({ relaxed: false });
  const random = randomSource(5);
  const [x, w] = [random.values(9 * 70), random.values(20 * 70)];
  const inside = matmul.matmul(x, 9, matmul.packWeights(w, 20, 70));
  assert.deepEqual(matmul.matmul(x, 9, matmul.loadTiles(packRockchipB(w, 20, 70))), inside);
});

test('mismatched inputs, f16 tiles, foreign or released weights are refused, naming the problem', async () => {
  const matmul = await createWasmTiledMatmul({ relaxed: false });
  const other = await createWasmTiledMatmul({ relaxed: false });
  const packed = matmul.packWeights(new Float32Array(3 * 5), 3, 5);
  const refused = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof MurmurError && pattern.test(e.message), String(pattern));
  refused(() => matmul.matmul(new Float32Array(9), 2, packed), /9 input values are not \[2, 5\]/);
  refused(() => matmul.matmul(new Float32Array(10), 2, packed, { bias: new Float32Array(4) }), /bias of 4 values for 3 outputs/);
  refused(() => matmul.matmul(new Float32Array(10), 2, packed, { residual: new Float32Array(5) }), /residual of 5 values does not match the output \[2, 3\]/);
  refused(() => other.matmul(new Float32Array(10), 2, packed), /belong to a different WasmTiledMatmul/);
  refused(() => matmul.loadTiles(packRockchipB(new Float32Array(6), 2, 3, 'f16')), /reads f32 tiles, these are f16/);
  packed.release();
  refused(() => matmul.matmul(new Float32Array(10), 2, packed), /used after release\(\)/);
  assert.equal(matmul.allocatedBytes, 0, 'nothing left allocated');
});
