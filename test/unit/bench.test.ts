// The benchmark's own pieces that can be checked without a browser: the hand-written peak
// module computes what it claims, the hand-written ONNX model multiplies, whisper.cpp's timing
// lines parse, and the report's ratios point at the fastest peer.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-web';
import { ACCUMULATORS, FLOPS_PER_ITERATION, peakModuleBytes, peakVariantSupported, type PeakVariant } from '../../bench/peak-kernel.ts';
import { matmulModel, seededValues } from '../../bench/peers/onnx-matmul.ts';
import { parsePrintTimings } from '../../bench/peers/whisper-cpp.ts';
import { formatReport, peakFor, type BenchReport, type EntryResult } from '../../bench/report.ts';
import { encoderMatmulShapes } from '../../bench/shapes.ts';

describe('peak kernel', () => {
  // The module's accumulators start at 0.5 + i/64 and each step maps acc → acc·0.9999 + 1e-4 in f32.
  function expectedSum(iterations: number): number {
    const steps = (FLOPS_PER_ITERATION / (ACCUMULATORS * 8)) * iterations;
    let sum = 0;
    for (let i = 0; i < ACCUMULATORS; i++) {
      let acc = Math.fround(0.5 + i / 64);
      for (let s = 0; s < steps; s++) acc = Math.fround(Math.fround(acc * Math.fround(0.9999)) + Math.fround(1e-4));
      sum += acc;
    }
    return sum;
  }

  for (const variant of ['mul+add', 'relaxed_madd'] as PeakVariant[]) {
    test(`${variant}: the module runs the chains it claims`, (t) => {
      if (!peakVariantSupported(variant)) return t.skip(`this Node's WebAssembly lacks ${variant} (Node 20: --experimental-wasm-relaxed-simd)`);
      const run = new WebAssembly.Instance(new WebAssembly.Module(peakModuleBytes(variant))).exports.run as (n: number) => number;
      for (const iterations of [0, 1, 50]) {
        const got = run(iterations);
        const want = expectedSum(iterations);
        assert.ok(Math.abs(got - want) <= 1e-4 * want, `${iterations} iterations: ${got}, expected ≈${want}`);
      }
    });
  }
});

describe('ONNX MatMul model', () => {
  test('onnxruntime-web loads it and multiplies x by the seeded weight', async () => {
    const [m, k, n] = [5, 7, 3];
    ort.env.wasm.numThreads = 1;
    const session = await ort.InferenceSession.create(matmulModel(m, k, n, 9), { executionProviders: ['wasm'] });
    try {
      const x = seededValues(m * k, 4);
      const { y } = await session.run({ x: new ort.Tensor('float32', x, [m, k]) });
      assert.deepEqual(y!.dims, [m, n]);
      const w = seededValues(k * n, 9);
      const got = y!.data as Float32Array;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let want = 0;
          for (let p = 0; p < k; p++) want += x[i * k + p]! * w[p * n + j]!;
          assert.ok(Math.abs(got[i * n + j]! - want) < 1e-5, `y[${i},${j}] = ${got[i * n + j]}, expected ${want}`);
        }
      }
    } finally {
      await session.release();
    }
  });
});

test('whisper_print_timings lines parse into per-stage times', () => {
  const timings = parsePrintTimings([
    'whisper_print_timings:     load time =    81.25 ms',
    'whisper_print_timings:     fallbacks =   5 p /   1 h',
    'whisper_print_timings:   encode time =  8768.10 ms /     1 runs ( 8768.10 ms per run)',
    'whisper_print_timings:   decode time = 18173.00 ms /   228 runs (   79.71 ms per run)',
    'something else',
  ]);
  assert.deepEqual(timings.get('encode'), { ms: 8768.1, runs: 1, msPerRun: 8768.1 });
  assert.deepEqual(timings.get('decode'), { ms: 18173, runs: 228, msPerRun: 79.71 });
  assert.deepEqual(timings.get('load'), { ms: 81.25 });
  assert.equal(timings.has('fallbacks'), false);
});

test('encoder shapes follow the model width', () => {
  assert.deepEqual(encoderMatmulShapes('base').map((s) => s.shape), [[1500, 512, 512], [1500, 512, 2048], [1500, 2048, 512]]);
});

test('the report divides each time by the fastest peer\'s and shares of peak use the same thread count', () => {
  const result = (entry: string, kind: 'peer' | 'murmur', encoderMs: number, ms: number): EntryResult => ({
    entry, kind, peer: entry, backend: 'wasm', model: 'tiny.en f16', threads: 2, encoderMs,
    matmul: [{ label: 'tiny.en mlp.0', shape: [1500, 384, 1536], ms, gflops: 20 }],
  });
  const report: BenchReport = {
    date: 'today',
    machine: { cpu: 'cpu', cores: 2, node: '20', loadAverage: { start: 1 } },
    options: { threads: 2, quick: true, only: [] },
    peak: [
      { where: 'chromium', variant: 'mul+add', threads: 2, gflops: 30, seconds: 1 },
      { where: 'chromium', variant: 'relaxed_madd', threads: 2, gflops: 40, seconds: 1 },
      { where: 'node', variant: 'relaxed_madd', threads: 2, gflops: 80, seconds: 1 },
    ],
    results: [result('slow-peer', 'peer', 300, 30), result('fast-peer', 'peer', 100, 10), result('murmur', 'murmur', 50, 5)],
    notes: [],
  };
  assert.equal(peakFor(report.peak, 2)?.gflops, 40);
  const text = formatReport(report);
  const row = (name: string, section: string) => text.split(section)[1]!.split('\n').find((line) => line.startsWith(name) || line.includes(` ${name} `))!;
  assert.match(row('slow-peer', 'Whisper stages'), /300\s+3\.00/);
  assert.match(row('fast-peer', 'Whisper stages'), /100\s+1\.00/);
  assert.match(row('murmur [murmur]', 'Whisper stages'), /50\s+0\.50/);
  assert.match(row('murmur [murmur]', 'Encoder matmuls'), /50%\s+0\.50$/);
});
