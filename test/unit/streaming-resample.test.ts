// The streaming resampler gives the block resampler's output for the whole stream, whatever the
// chunking, at device rates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamingResampler } from '../../src/core/audio/stream-resample.ts';
import { resample } from '../../src/core/audio/resample.ts';
import { AudioError } from '../../src/core/errors.ts';

function signal(length: number, rate: number): Float32Array {
  const out = new Float32Array(length);
  let seed = 7;
  for (let i = 0; i < length; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    out[i] = 0.5 * Math.sin((2 * Math.PI * 440 * i) / rate) + 0.1 * (seed / 2 ** 30 - 1);
  }
  return out;
}

test('chunked streaming equals block resampling at 48, 44.1, 22.05, 16 and 8 kHz', () => {
  for (const rate of [48000, 44100, 22050, 16000, 8000]) {
    const input = signal(Math.round(rate * 1.37), rate);
    const expected = resample(input, rate, 16000);
    for (const chunk of [128, 4410, 4800, 999]) {
      const resampler = new StreamingResampler(rate, 16000);
      const parts: Float32Array[] = [];
      for (let i = 0; i < input.length; i += chunk) parts.push(resampler.push(input.subarray(i, i + chunk)));
      parts.push(resampler.flush());
      const got = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        got.set(p, at);
        at += p.length;
      }
      assert.equal(got.length, expected.length, `${rate} Hz in chunks of ${chunk}: length`);
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - expected[i]!));
      assert.ok(worst < 1e-6, `${rate} Hz in chunks of ${chunk}: max difference ${worst}`);
    }
  }
});

test('a 128-sample render quantum at 48 kHz yields output with under 5 ms of delay', () => {
  const resampler = new StreamingResampler(48000);
  let produced = 0;
  const input = signal(48000, 48000);
  for (let i = 0; i < input.length; i += 128) produced += resampler.push(input.subarray(i, i + 128)).length;
  assert.ok(16000 - produced <= 70,  `only ${16000 - produced} output samples held back`);
});

test('rates that are not small-integer ratios, or not rates at all, are errors', () => {
  assert.throws(() => new StreamingResampler(44056.5), (e: unknown) => e instanceof AudioError && /positive integer, got 44056.5/.test(e.message));
  assert.throws(() => new StreamingResampler(44059), (e: unknown) => e instanceof AudioError && /44059 Hz → 16000 Hz is not a ratio of small integers/.test(e.message));
  assert.throws(() => new StreamingResampler(0), AudioError);
});
