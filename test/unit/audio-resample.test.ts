import { test } from 'node:test';
import assert from 'node:assert/strict';
import { downmix, resample } from '../../src/core/audio/resample.ts';
import { AudioError } from '../../src/core/errors.ts';

const AMPLITUDE = 0.5;
const PHASE = 0.3;
/** Output samples ignored at each end, where the filter runs off the zero-extended input. */
const EDGE = 400;

function tone(rate: number, hz: number, n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = AMPLITUDE * Math.sin((2 * Math.PI * hz * i) / rate + PHASE);
  return x;
}

const dB = (ratio: number) => 20 * Math.log10(ratio);

/** Least-squares amplitude of a sinusoid at `hz` in the interior of `y` (rate 16 kHz by default). */
function fitAmplitude(y: Float32Array, hz: number, rate = 16000): number {
  let ss = 0, cc = 0, sc = 0, ys = 0, yc = 0;
  for (let i = EDGE; i < y.length - EDGE; i++) {
    const s = Math.sin((2 * Math.PI * hz * i) / rate), c = Math.cos((2 * Math.PI * hz * i) / rate);
    ss += s * s; cc += c * c; sc += s * c; ys += y[i] * s; yc += y[i] * c;
  }
  const det = ss * cc - sc * sc;
  return Math.hypot((ys * cc - yc * sc) / det, (yc * ss - ys * sc) / det);
}

/** RMS of `y − ideal` over the interior, relative to the tone's RMS (catches gain, delay, aliasing, images). */
function errorDb(y: Float32Array, ideal: (i: number) => number): number {
  let sum = 0, n = 0;
  for (let i = EDGE; i < y.length - EDGE; i++, n++) sum += (y[i] - ideal(i)) ** 2;
  return dB(Math.sqrt(sum / n) / (AMPLITUDE / Math.SQRT2));
}

function rmsDb(y: Float32Array): number {
  let sum = 0, n = 0;
  for (let i = EDGE; i < y.length - EDGE; i++, n++) sum += y[i] ** 2;
  return dB(Math.sqrt(sum / n) / (AMPLITUDE / Math.SQRT2));
}

// 44056 Hz reduces to 2000/5507: too many phases for an exact table, so it takes the interpolated path.
const RATES = [44100, 48000, 8000, 22050, 96000, 192000, 11025, 44056];

for (const from of RATES) {
  test(`${from} Hz → 16 kHz: flat passband, ≥ 70 dB rejection of aliases and images`, (t) => {
    const lowNyquist = Math.min(from, 16000) / 2;
    const n = Math.round(from * 0.4);
    let worstGain = 0, worstError = -Infinity, worstStop = -Infinity;
    for (const fraction of [0.02, 0.25, 0.5, 0.75, 0.9]) {
      const hz = fraction * lowNyquist;
      const y = resample(tone(from, hz, n), from, 16000);
      const gainDb = Math.abs(dB(fitAmplitude(y, hz) / AMPLITUDE));
      const err = errorDb(y, (i) => AMPLITUDE * Math.sin((2 * Math.PI * hz * i) / 16000 + PHASE));
      worstGain = Math.max(worstGain, gainDb);
      worstError = Math.max(worstError, err);
      assert.ok(gainDb < 0.1, `${hz} Hz passband gain error ${gainDb} dB`);
      // Everything but the resampled tone (images when upsampling, aliasing, delay) stays 70 dB down.
      assert.ok(err < -70, `${hz} Hz: error ${err} dB`);
    }
    if (from > 16000) {
      for (const hz of [8010, 8050, 9000, 12000, from * 0.3, from * 0.49].filter((f) => f > 8000 && f < from / 2)) {
        const level = rmsDb(resample(tone(from, hz, n), from, 16000));
        worstStop = Math.max(worstStop, level);
        assert.ok(level <= -70, `${hz} Hz above the output Nyquist leaks at ${level} dB`);
      }
    }
    t.diagnostic(`passband gain error ≤ ${worstGain.toExponential(2)} dB, error ≤ ${worstError.toFixed(1)} dB` +
      (from > 16000 ? `, stopband ≤ ${worstStop.toFixed(1)} dB` : ''));
  });
}

test('a sine sweep across the passband comes through unchanged (44.1 kHz, 44056 Hz, 8 kHz)', () => {
  for (const from of [44100, 44056, 8000]) {
    const top = 0.85 * (Math.min(from, 16000) / 2);
    const seconds = 0.5;
    const phaseAt = (time: number) => 2 * Math.PI * (50 * time + ((top - 50) / (2 * seconds)) * time * time);
    const n = Math.round(from * seconds);
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = AMPLITUDE * Math.sin(phaseAt(i / from));
    const y = resample(x, from, 16000);
    const err = errorDb(y, (i) => AMPLITUDE * Math.sin(phaseAt(i / 16000)));
    assert.ok(err < -60, `${from} Hz sweep error ${err} dB`);
  }
});

test('other target rates: 16 kHz → 8 kHz rejects what the lower rate cannot hold', () => {
  const passband = resample(tone(16000, 3000, 8000), 16000, 8000);
  assert.equal(passband.length, 4000);
  assert.ok(Math.abs(dB(fitAmplitude(passband, 3000, 8000) / AMPLITUDE)) < 0.1);
  assert.ok(rmsDb(resample(tone(16000, 5000, 8000), 16000, 8000)) <= -70);
});

test('output length is round(n × to / from)', () => {
  for (const from of [...RATES, 16000, 12345.5, 1000, 768000]) {
    for (const n of [0, 1, 2, 3, 99, 1000, 44101]) {
      assert.equal(resample(new Float32Array(n), from, 16000).length, Math.round((n * 16000) / from), `${n} samples at ${from} Hz`);
    }
  }
});

test('16 kHz → 16 kHz is the identity (a copy)', () => {
  const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i * 0.37) * 1.7);
  const y = resample(x, 16000, 16000);
  assert.deepEqual(y, x);
  assert.notEqual(y, x);
});

test('DC passes with unit gain on both the exact and the interpolated paths', () => {
  for (const from of [44100, 44056, 8000, 12345.5]) {
    const y = resample(new Float32Array(Math.round(from / 4)).fill(0.25), from, 16000);
    for (let i = EDGE; i < y.length - EDGE; i++) assert.ok(Math.abs(y[i] - 0.25) < 1e-6, `${from} Hz, sample ${i}: ${y[i]}`);
  }
});

test('bad rates throw AudioError', () => {
  for (const rate of [0, -16000, NaN, Infinity]) {
    assert.throws(() => resample(new Float32Array(10), rate, 16000), AudioError);
    assert.throws(() => resample(new Float32Array(10), 16000, rate), AudioError);
  }
});

test('downmix averages channels and checks them', () => {
  const left = Float32Array.from([1, 0.5, -1]);
  const right = Float32Array.from([0, 0.5, 1]);
  assert.deepEqual(downmix([left, right]), Float32Array.from([0.5, 0.5, 0]));
  assert.deepEqual(downmix([left, right, Float32Array.from([0.5, 2, 0])]), Float32Array.from([0.5, 1, 0]));
  const mono = downmix([left]);
  assert.deepEqual(mono, left);
  assert.notEqual(mono, left);
  assert.throws(() => downmix([]), AudioError);
  assert.throws(() => downmix([left, new Float32Array(2)]), (e: unknown) => e instanceof AudioError && /channel 1 has 2 samples/.test(e.message));
});
