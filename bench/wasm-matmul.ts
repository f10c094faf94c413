// GFLOP/s of the WASM-SIMD matrix product against the reference linear, single-threaded, on the
// shape of a Whisper base encoder MLP's first projection (1500 frames × 384 → 1536).
// Run: npx tsx bench/wasm-matmul.ts   (relaxed SIMD on Node 20:
//      node --experimental-wasm-relaxed-simd --import tsx bench/wasm-matmul.ts)
import { createWasmMatmul, type WasmMatmulOptions } from '../src/kernels-wasm/matmul.ts';
import { referenceOps } from '../src/core/reference/backend.ts';
import { RefTensor } from '../src/core/reference/tensor.ts';
import { encodeTensor } from '../src/core/model/dtype.ts';

const [m, k, n] = [1500, 384, 1536];
const flops = 2 * m * k * n;
const random = (length: number) => Float32Array.from({ length }, () => Math.random() * 2 - 1);
const x = random(m * k);
const w = random(n * k);
const bias = random(n);

function gflops(seconds: number): string {
  return (flops / seconds / 1e9).toFixed(2);
}

/** Best of `repeats` timed runs after one warm-up. */
function time(run: () => void, repeats: number): number {
  run();
  let best = Infinity;
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    run();
    best = Math.min(best, (performance.now() - start) / 1000);
  }
  return best;
}

async function benchWasm(label: string, options: WasmMatmulOptions): Promise<void> {
  const matmul = await createWasmMatmul(options);
  const packed = matmul.packWeights(w, n, k);
  for (const gelu of [false, true]) {
    const seconds = time(() => matmul.matmul(x, m, packed, { bias, gelu }), 10);
    console.log(`${label} (${matmul.variant}), bias${gelu ? ' + GELU' : ''}: ${(seconds * 1000).toFixed(1)} ms, ${gflops(seconds)} GFLOP/s`);
  }
  packed.release();
}

console.log(`${m}×${k}×${n} (${(flops / 1e9).toFixed(2)} GFLOP), single thread`);
await benchWasm('wasm', { relaxed: false });
try {
  await benchWasm('wasm', { relaxed: true });
} catch (error) {
  console.log(`wasm (relaxed-simd): not run, ${(error as Error).message} (Node 20: --experimental-wasm-relaxed-simd)`);
}
const input = new RefTensor(x, m, k);
const weights = { weight: encodeTensor(w, [n, k], 'f32'), bias: encodeTensor(bias, [n], 'f32') };
const seconds = time(() => referenceOps.linear(input, weights), 2);
console.log(`reference linear, bias: ${(seconds * 1000).toFixed(1)} ms, ${gflops(seconds)} GFLOP/s`);
