import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { melFilterbank } from '../../src/core/audio/filterbank.ts';
import {
  HOP_LENGTH, N_FFT, N_FRAMES, N_SAMPLES, logMelSpectrogram, logMelWindow, padOrTrimFrames, type LogMel,
} from '../../src/core/audio/mel.ts';
import { parseWav } from '../../src/core/audio/wav.ts';
import { AudioError } from '../../src/core/errors.ts';

const DATA = fileURLToPath(new URL('../../../shared/data/', import.meta.url));
const JFK = join(DATA, 'audio/jfk.wav');
const NPZ = join(DATA, 'whisper-assets/mel_filters.npz');
const PY_REFERENCE = fileURLToPath(new URL('../reference/whisper_mel.py', import.meta.url));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) max = d; // NaN-propagating
  }
  return max;
}

/** Seeded noise-plus-tones test signal (no dependence on reference data). */
function testSignal(n: number, seed = 1): Float32Array {
  let state = seed;
  const random = () => ((state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = 0.3 * Math.sin(2 * Math.PI * 440 * i / 16000) + 0.2 * Math.sin(2 * Math.PI * (200 + i * 0.5) * i / 16000) + 0.05 * random();
  }
  return out;
}

/**
 * Independent float64 reference: a plain O(n²) DFT per frame, np.pad-style reflection built by
 * explicit repeated mirroring, filters in float64.
 */
function referenceLogMel(samples: Float32Array, nMels: number, padding = 0): { data: Float64Array; nFrames: number } {
  const audio = [...samples, ...new Array<number>(padding).fill(0)];
  const half = N_FFT / 2;
  // Mirror (excluding the edge sample) until both sides are long enough, like numpy's iterative pad.
  let left: number[] = [];
  let right: number[] = [];
  while (left.length < half) {
    const body = [...left, ...audio, ...right];
    const take = Math.min(half - left.length, audio.length - 1 || 1);
    const mirrored = audio.length === 1 ? [audio[0]] : body.slice(1, 1 + take).reverse();
    left = [...mirrored, ...left];
  }
  while (right.length < half) {
    const body = [...left, ...audio, ...right];
    const take = Math.min(half - right.length, audio.length - 1 || 1);
    const mirrored = audio.length === 1 ? [audio[0]] : body.slice(body.length - 1 - take, body.length - 1).reverse();
    right = [...right, ...mirrored];
  }
  const padded = [...left.slice(left.length - half), ...audio, ...right.slice(0, half)];
  const nFrames = Math.floor((padded.length - N_FFT) / HOP_LENGTH); // 1 + ... minus the dropped last frame
  const filters = melFilterbank(nMels);
  const logs = new Float64Array(nMels * nFrames);
  const power = new Float64Array(201);
  for (let f = 0; f < nFrames; f++) {
    for (let k = 0; k <= 200; k++) {
      let re = 0, im = 0;
      for (let j = 0; j < N_FFT; j++) {
        const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * j) / N_FFT);
        const x = padded[f * HOP_LENGTH + j] * w;
        re += x * Math.cos((2 * Math.PI * j * k) / N_FFT);
        im -= x * Math.sin((2 * Math.PI * j * k) / N_FFT);
      }
      power[k] = re * re + im * im;
    }
    for (let m = 0; m < nMels; m++) {
      let sum = 0;
      for (let k = 0; k <= 200; k++) sum += filters[m * 201 + k] * power[k];
      logs[m * nFrames + f] = Math.log10(Math.max(sum, 1e-10));
    }
  }
  const max = logs.reduce((a, b) => Math.max(a, b), -Infinity);
  for (let i = 0; i < logs.length; i++) logs[i] = (Math.max(logs[i], max - 8) + 4) / 4;
  return { data: logs, nFrames };
}

function findNumpyPython(): string | undefined {
  for (const python of ['python3', '/usr/bin/python3']) {
    const probe = spawnSync(python, ['-c', 'import numpy'], { encoding: 'utf8' });
    if (probe.status === 0) return python;
  }
  return undefined;
}

function pythonLogMel(python: string, samples: Float32Array, nMels: number, padding: number): { data: Float64Array; nFrames: number } {
  const dir = mkdtempSync(join(tmpdir(), 'murmur-mel-'));
  try {
    const input = join(dir, 'samples.f32');
    const output = join(dir, 'mel.f64');
    writeFileSync(input, new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength));
    const run = spawnSync(python, [PY_REFERENCE, input, NPZ, String(nMels), String(padding), output], { encoding: 'utf8' });
    assert.equal(run.status, 0, `whisper_mel.py failed: ${run.stderr}`);
    const shape = JSON.parse(run.stdout) as { nMels: number; nFrames: number };
    assert.equal(shape.nMels, nMels);
    const bytes = readFileSync(output);
    const data = new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    return { data, nFrames: shape.nFrames };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const python = findNumpyPython();
const havePythonRef = python !== undefined && existsSync(NPZ);
const skipPython = python === undefined
  ? 'no python3 with numpy found (tried python3, /usr/bin/python3); the NumPy reference comparison cannot run'
  : `reference data absent: ${NPZ}`;

for (const nMels of [80, 128]) {
  for (const padding of [0, N_SAMPLES]) {
    test(`jfk.wav log-mel (${nMels} mels, padding ${padding}) matches the float64 NumPy port of whisper within 1e-4`, (t) => {
      if (!existsSync(JFK)) return t.skip(`reference data absent: ${JFK}`);
      if (!havePythonRef) return t.skip(skipPython);
      const samples = parseWav(readFileSync(JFK), JFK).channels[0];
      const ours = logMelSpectrogram(samples, { nMels, padding });
      const expected = pythonLogMel(python!, samples, nMels, padding);
      assert.equal(ours.nFrames, expected.nFrames);
      assert.equal(ours.nFrames, Math.floor((samples.length + padding) / HOP_LENGTH));
      const diff = maxAbsDiff(ours.data, expected.data);
      t.diagnostic(`${nMels} mels, padding ${padding}: ${ours.nFrames} frames, max abs diff ${diff.toExponential(3)}`);
      assert.ok(diff <= 1e-4, `max abs diff ${diff}`);
    });
  }
}

test('short clips (170, 250 samples) follow numpy reflect padding, checked against the NumPy port', (t) => {
  if (!havePythonRef) return t.skip(skipPython);
  for (const n of [170, 250]) {
    const samples = testSignal(n, n);
    const ours = logMelSpectrogram(samples, { nMels: 80 });
    const expected = pythonLogMel(python!, samples, 80, 0);
    assert.equal(ours.nFrames, 1);
    assert.equal(expected.nFrames, 1);
    assert.ok(maxAbsDiff(ours.data, expected.data) <= 1e-4);
  }
});

test('log-mel matches a plain-DFT float64 TypeScript reference (no python needed)', (t) => {
  for (const [n, nMels, padding] of [[3000, 80, 0], [2345, 128, 0], [1000, 80, 800], [170, 80, 0], [1, 80, 320]] as const) {
    const samples = testSignal(n, n + 7);
    const ours = logMelSpectrogram(samples, { nMels, padding });
    const expected = referenceLogMel(samples, nMels, padding);
    assert.equal(ours.nFrames, expected.nFrames, `frames for n=${n}`);
    assert.equal(ours.nFrames, Math.floor((n + padding) / HOP_LENGTH));
    const diff = maxAbsDiff(ours.data, expected.data);
    t.diagnostic(`n=${n}, ${nMels} mels, padding ${padding}: max abs diff ${diff.toExponential(3)}`);
    assert.ok(diff <= 1e-5, `n=${n}: max abs diff ${diff}`);
  }
});

test('layout is [nMels, nFrames]: a pure tone lights the same mel row in every frame', () => {
  const samples = new Float32Array(16000);
  for (let i = 0; i < samples.length; i++) samples[i] = 0.5 * Math.sin((2 * Math.PI * 1000 * i) / 16000);
  const mel = logMelSpectrogram(samples, { nMels: 80 });
  assert.equal(mel.nFrames, 100);
  const rowMeans = Array.from({ length: 80 }, (_, m) => mel.data.subarray(m * 100 + 5, m * 100 + 95).reduce((a, b) => a + b, 0) / 90);
  const loudest = rowMeans.indexOf(Math.max(...rowMeans));
  // 1 kHz is mel 15 on the Slaney scale; with 80 bands over 0..45.2 mel the peak band is ~25-26.
  assert.ok(loudest >= 24 && loudest <= 27, `loudest band ${loudest}`);
  for (let f = 5; f < 95; f++) assert.ok(Math.abs(mel.data[loudest * 100 + f] - rowMeans[loudest]) < 0.05);
});

test('very short audio: under one hop gives no frames; logMelWindow and padding still give model input', () => {
  for (const n of [1, 100]) {
    const samples = testSignal(n, 3);
    const bare = logMelSpectrogram(samples, { nMels: 80 });
    assert.equal(bare.nFrames, 0);
    assert.equal(bare.data.length, 0);
    const window = logMelWindow(samples, 80);
    assert.equal(window.nFrames, N_FRAMES);
    assert.equal(window.data.length, 80 * N_FRAMES);
    assert.ok(window.data.every(Number.isFinite));
    const padded = logMelSpectrogram(samples, { nMels: 80, padding: N_SAMPLES });
    assert.equal(padded.nFrames, Math.floor((n + N_SAMPLES) / HOP_LENGTH));
  }
  const oneHop = logMelSpectrogram(testSignal(160), { nMels: 80 });
  assert.equal(oneHop.nFrames, 1);
  assert.ok(oneHop.data.every(Number.isFinite));
});

test('silence gives the floor value everywhere, without NaN', () => {
  const mel = logMelSpectrogram(new Float32Array(1600), { nMels: 80 });
  assert.equal(mel.nFrames, 10);
  assert.ok(mel.data.every((v) => v === (-10 + 4) / 4));
});

test('logMelWindow pads or trims the audio to 30 s and yields exactly 3000 frames', () => {
  const short = testSignal(16000 * 11);
  const window = logMelWindow(short, 80);
  const direct = logMelSpectrogram(short, { nMels: 80, padding: N_SAMPLES - short.length });
  assert.equal(window.nFrames, N_FRAMES);
  assert.deepEqual(window.data, direct.data);

  const long = testSignal(16000 * 31);
  const trimmed = logMelWindow(long, 80);
  assert.equal(trimmed.nFrames, N_FRAMES);
  assert.deepEqual(trimmed.data, logMelSpectrogram(long.subarray(0, N_SAMPLES), { nMels: 80 }).data);
});

test('padOrTrimFrames pads with 0 and trims per mel row', () => {
  const mel: LogMel = { data: Float32Array.from({ length: 2 * 3 }, (_, i) => i + 1), nMels: 2, nFrames: 3 };
  assert.deepEqual(padOrTrimFrames(mel, 5).data, Float32Array.from([1, 2, 3, 0, 0, 4, 5, 6, 0, 0]));
  assert.deepEqual(padOrTrimFrames(mel, 2).data, Float32Array.from([1, 2, 4, 5]));
  const full = padOrTrimFrames(mel);
  assert.equal(full.nFrames, N_FRAMES);
  assert.equal(full.data[N_FRAMES], 4);
  assert.deepEqual(mel.data, Float32Array.from([1, 2, 3, 4, 5, 6]), 'input untouched');
});

test('bad input throws AudioError naming the problem', () => {
  assert.throws(() => logMelSpectrogram(new Float32Array(0), { nMels: 80 }), (e: unknown) => e instanceof AudioError && /empty/.test(e.message));
  const withNaN = testSignal(1000);
  withNaN[321] = NaN;
  assert.throws(() => logMelSpectrogram(withNaN, { nMels: 80 }), (e: unknown) => e instanceof AudioError && /sample 321/.test(e.message));
  assert.throws(() => logMelSpectrogram(testSignal(1000), { nMels: 80, filters: new Float32Array(10) }), AudioError);
  assert.throws(() => logMelSpectrogram(testSignal(1000), { nMels: 80, padding: -1 }), AudioError);
});

test('a 30 s window takes well under 150 ms (80 and 128 mels)', (t) => {
  const samples = testSignal(N_SAMPLES);
  for (const nMels of [80, 128]) {
    logMelWindow(samples, nMels); // warm-up (JIT, filter cache)
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      logMelWindow(samples, nMels);
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    t.diagnostic(`30 s log-mel, ${nMels} mels: median ${times[2].toFixed(1)} ms, best ${times[0].toFixed(1)} ms`);
    // Generous bound so a loaded CI machine does not flake; the target is far lower.
    assert.ok(times[2] < 400, `median ${times[2]} ms`);
  }
});
