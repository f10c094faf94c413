import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { toWhisperInput } from '../../src/core/audio/prepare.ts';
import { resample } from '../../src/core/audio/resample.ts';
import { parseWav } from '../../src/core/audio/wav.ts';
import { logMelWindow } from '../../src/core/audio/mel.ts';
import { AudioError } from '../../src/core/errors.ts';

const JFK = fileURLToPath(new URL('../../../shared/data/audio/jfk.wav', import.meta.url));

const isAudioError = (pattern: RegExp) => (e: unknown) => e instanceof AudioError && pattern.test(e.message);

function ramp(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.05) * 0.5);
}

test('16 kHz mono passes through unchanged (as a copy)', () => {
  const x = ramp(5000);
  const y = toWhisperInput(x, 16000);
  assert.deepEqual(y, x);
  assert.notEqual(y, x);
});

test('stereo is averaged, then resampled to 16 kHz', () => {
  const left = ramp(44100);
  const right = Float32Array.from(left, (v) => -v * 0.5);
  const y = toWhisperInput([left, right], 44100);
  assert.equal(y.length, 16000);
  const mono = Float32Array.from(left, (v, i) => (v + right[i]) / 2);
  assert.deepEqual(y, resample(mono, 44100, 16000));
});

test('empty audio is an AudioError', () => {
  assert.throws(() => toWhisperInput(new Float32Array(0), 16000), isAudioError(/empty audio: no samples/));
  assert.throws(() => toWhisperInput([new Float32Array(0), new Float32Array(0)], 44100), isAudioError(/empty audio/));
  assert.throws(() => toWhisperInput([], 16000), isAudioError(/empty audio: no channels/));
});

test('channels of different lengths are an AudioError', () => {
  assert.throws(() => toWhisperInput([new Float32Array(10), new Float32Array(9)], 16000), isAudioError(/channel 1 has 9 samples but channel 0 has 10/));
});

test('sample rates that are not finite or outside 1000–768000 Hz are an AudioError', () => {
  for (const rate of [0, 999, 768001, -16000, NaN, Infinity]) {
    assert.throws(() => toWhisperInput(ramp(100), rate), isAudioError(/sample rate .* outside/), `rate ${rate}`);
  }
  assert.equal(toWhisperInput(ramp(1000), 1000).length, 16000);
  assert.equal(toWhisperInput(ramp(768000), 768000).length, 16000);
});

test('NaN / ±Infinity: by default an AudioError naming the first bad sample and its channel', () => {
  const left = ramp(1000), right = ramp(1000);
  right[500] = NaN;
  left[700] = Infinity;
  assert.throws(() => toWhisperInput([left, right], 16000), isAudioError(/invalid sample 500 in channel 1: NaN/));
  // Same index in both channels: the lower channel is named.
  const a = ramp(10), b = ramp(10);
  a[3] = -Infinity;
  b[3] = NaN;
  assert.throws(() => toWhisperInput([a, b], 48000, { onInvalidSample: 'error' }), isAudioError(/invalid sample 3 in channel 0: -Infinity/));
  const mono = ramp(20);
  mono[0] = Infinity;
  assert.throws(() => toWhisperInput(mono, 16000), isAudioError(/invalid sample 0 in channel 0: Infinity/));
});

test("NaN / ±Infinity with onInvalidSample: 'zero' become silence; the caller's arrays are untouched", () => {
  const x = ramp(1000);
  x[10] = NaN;
  x[20] = Infinity;
  x[30] = -Infinity;
  const y = toWhisperInput(x, 16000, { onInvalidSample: 'zero' });
  assert.equal(y[10], 0);
  assert.equal(y[20], 0);
  assert.equal(y[30], 0);
  const clean = ramp(1000);
  for (let i = 0; i < 1000; i++) if (i !== 10 && i !== 20 && i !== 30) assert.equal(y[i], clean[i]);
  assert.ok(Number.isNaN(x[10]) && x[20] === Infinity, 'input not modified');

  const resampled = toWhisperInput([x, ramp(1000)], 44100, { onInvalidSample: 'zero' });
  assert.ok(resampled.every(Number.isFinite));
});

test('clipped / out-of-range samples are kept as they are', () => {
  const hot = Float32Array.from({ length: 2000 }, (_, i) => 3 * Math.sin(i * 0.1));
  const y = toWhisperInput(hot, 16000);
  assert.deepEqual(y, hot);
  assert.ok(y.some((v) => v > 2.9));
  const resampled = toWhisperInput(hot, 48000);
  assert.ok(resampled.some((v) => Math.abs(v) > 1.5), 'resampling does not limit the level');
  assert.ok(logMelWindow(y, 80).data.every(Number.isFinite));
});

test('very short audio: 1 and 100 samples', () => {
  assert.deepEqual(toWhisperInput(Float32Array.of(0.25), 16000), Float32Array.of(0.25));
  // One sample at 44.1 kHz rounds to no 16 kHz sample; one is returned rather than nothing.
  assert.equal(toWhisperInput(Float32Array.of(0.25), 44100).length, 1);
  assert.equal(toWhisperInput(Float32Array.of(0.25), 8000).length, 2);
  assert.equal(toWhisperInput(ramp(100), 44100).length, 36);
  assert.equal(toWhisperInput(ramp(100), 16000).length, 100);
  for (const n of [1, 100]) {
    const mel = logMelWindow(toWhisperInput(ramp(n), 22050), 80);
    assert.equal(mel.nFrames, 3000);
    assert.ok(mel.data.every(Number.isFinite));
  }
});

test('jfk.wav through parseWav and toWhisperInput gives its 176000 samples unchanged', (t) => {
  if (!existsSync(JFK)) return t.skip(`reference data absent: ${JFK}`);
  const { channels, sampleRate } = parseWav(readFileSync(JFK), JFK);
  const y = toWhisperInput(channels, sampleRate);
  assert.equal(y.length, 176000);
  assert.deepEqual(y, channels[0]);
});
