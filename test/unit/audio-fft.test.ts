import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRealFft } from '../../src/core/audio/fft.ts';
import { AudioError } from '../../src/core/errors.ts';

function naiveDft(x: number[]): { re: number[]; im: number[] } {
  const n = x.length;
  const re: number[] = [], im: number[] = [];
  for (let k = 0; k <= n / 2; k++) {
    let sr = 0, si = 0;
    for (let j = 0; j < n; j++) {
      sr += x[j] * Math.cos((2 * Math.PI * j * k) / n);
      si -= x[j] * Math.sin((2 * Math.PI * j * k) / n);
    }
    re.push(sr);
    im.push(si);
  }
  return { re, im };
}

// 400 (Whisper's N_FFT) = 2 × 200 = 2 × 4·2·5·5; others exercise radix 3 and the generic prime path.
for (const n of [2, 4, 6, 10, 16, 30, 42, 200, 400, 512, 2 * 7 * 11 * 13]) {
  test(`real FFT of length ${n} matches a direct DFT`, () => {
    let seed = n;
    const x = Array.from({ length: n }, () => ((seed = (seed * 69069 + 1) >>> 0) / 2 ** 32) * 2 - 1);
    const fft = createRealFft(n);
    assert.equal(fft.bins, n / 2 + 1);
    const re = new Float64Array(fft.bins), im = new Float64Array(fft.bins), power = new Float64Array(fft.bins);
    fft.transform(x, re, im);
    fft.powerSpectrum(Float32Array.from(x), power);
    const ref = naiveDft(x);
    const powerX = Float32Array.from(x); // powerSpectrum saw float32-rounded input
    const refPower = naiveDft([...powerX]);
    for (let k = 0; k < fft.bins; k++) {
      assert.ok(Math.abs(re[k] - ref.re[k]) < 1e-9 * n, `re[${k}]`);
      assert.ok(Math.abs(im[k] - ref.im[k]) < 1e-9 * n, `im[${k}]`);
      const p = refPower.re[k] ** 2 + refPower.im[k] ** 2;
      assert.ok(Math.abs(power[k] - p) < 1e-9 * n * Math.max(1, p), `power[${k}]`);
    }
  });
}

test('a plan can be reused: repeated transforms give identical results', () => {
  const fft = createRealFft(400);
  const x = Float64Array.from({ length: 400 }, (_, i) => Math.cos(i * 0.3) + (i % 7) / 7);
  const a = new Float64Array(201), b = new Float64Array(201);
  fft.powerSpectrum(x, a);
  fft.powerSpectrum(Float64Array.from({ length: 400 }, () => 1), b);
  fft.powerSpectrum(x, b);
  assert.deepEqual(a, b);
  // A cosine at bin 10 puts all its energy there: (400/2)² .
  const cos = Float64Array.from({ length: 400 }, (_, i) => Math.cos((2 * Math.PI * 10 * i) / 400));
  fft.powerSpectrum(cos, a);
  assert.ok(Math.abs(a[10] - 200 ** 2) < 1e-8);
  assert.ok(a.every((v, k) => k === 10 || v < 1e-18));
});

test('odd or invalid lengths are rejected with AudioError', () => {
  for (const n of [0, 1, 3, 401, 2.5, NaN]) assert.throws(() => createRealFft(n), AudioError);
});
