// GFLOP/s-equivalent (2·m·k·n per call) of the one WASM matrix-product entry for f32, q8_0 and q4_0
// weights, single-threaded, on a Whisper base encoder MLP projection (1500 × 384 → 1536) and the
// decoder's vocabulary projection for one token (1 × 384 → 51865). Each call includes copying the
// activations in, quantizing them (int8 paths) and copying the result out, as a backend call would.
// Run: npx tsx bench/wasm-quant.ts   (relaxed SIMD on Node 20:
//      node --experimental-wasm-relaxed-simd --import tsx bench/wasm-quant.ts)
import { createWasmKernels, matmulPacked, packWeightTensor, type WasmKernels } from '../src/kernels-wasm/quant.ts';
import { encodeTensor } from '../src/core/model/dtype.ts';
import type { WeightDType } from '../src/core/model/weights.ts';

const SHAPES: [string, number, number, number][] = [
  ['encoder MLP', 1500, 384, 1536],
  ['vocabulary GEMV', 1, 384, 51865],
];
const DTYPES: WeightDType[] = ['f32', 'q8_0', 'q4_0'];

const random = (length: number, scale = 1) => Float32Array.from({ length }, () => (Math.random() * 2 - 1) * scale);

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

async function bench(engine: WasmKernels): Promise<void> {
  for (const [label, m, k, n] of SHAPES) {
    const flops = 2 * m * k * n;
    const x = random(m * k);
    const values = random(n * k, 0.05);
    const bias = random(n);
    const repeats = m === 1 ? 30 : 8;
    for (const dtype of DTYPES) {
      const tensor = encodeTensor(values, [n, k], dtype);
      const packStart = performance.now();
      const packed = packWeightTensor(engine, tensor);
      const packMs = performance.now() - packStart;
      const seconds = time(() => matmulPacked(engine, x, m, packed, { bias }), repeats);
      console.log(
        `${engine.variant} ${label} ${m}×${k}×${n} ${dtype.padEnd(4)}: ${(seconds * 1000).toFixed(2)} ms, ` +
          `${(flops / seconds / 1e9).toFixed(2)} GFLOP/s, packed ${(packed.byteLength / 2 ** 20).toFixed(1)} MiB in ${packMs.toFixed(0)} ms`,
      );
      packed.release();
    }
  }
}

await bench(await createWasmKernels({ relaxed: false }));
try {
  await bench(await createWasmKernels({ relaxed: true }));
} catch (error) {
  console.log(`relaxed-simd: not run, ${(error as Error).message} (Node 20: --experimental-wasm-relaxed-simd)`);
}
