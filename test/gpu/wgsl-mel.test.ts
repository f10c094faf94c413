import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AudioError } from '../../src/core/errors.ts';
import { logMelSpectrogram, logMelWindow, N_FRAMES, SAMPLE_RATE, type LogMel } from '../../src/core/audio/mel.ts';
import { parseWav } from '../../src/core/audio/wav.ts';
import { readFloat32 } from '../../src/kernels-wgsl/device.ts';
import { logMelFrameCount, recordLogMel, runLogMel, runLogMelWindow } from '../../src/kernels-wgsl/mel.ts';
import { createStorage, destroyAll, runRecorded, uploadStorage } from '../../src/kernels-wgsl/wgsl-common.ts';
import { acquireNodeGpu, deviceOrSkip, type NodeGpu } from './node-gpu.ts';
import { testValues } from './smoke-reference.ts';

const JFK = join(fileURLToPath(new URL('../../../shared/data/', import.meta.url)), 'audio/jfk.wav');
/** Log-domain tolerance on the final (x + 4) / 4 values. */
const TOLERANCE = 1e-4;

/** Tones, a chirp, a burst and quiet noise: peaks, sidelobes and near-floor bins all occur. */
function syntheticSignal(seconds: number): Float32Array {
  const n = Math.round(seconds * SAMPLE_RATE);
  const noise = testValues(n, { seed: 9, range: 1 });
  return Float32Array.from({ length: n }, (_, i) => {
    const t = i / SAMPLE_RATE;
    const chirp = 0.3 * Math.sin(2 * Math.PI * (200 * t + 900 * t * t));
    const tone = 0.2 * Math.sin(2 * Math.PI * 440 * t) + 0.05 * Math.sin(2 * Math.PI * 5123 * t);
    const burst = t > 0.5 && t < 0.7 ? 0.4 * noise[i]! : 0;
    return chirp + tone + burst + 0.001 * noise[(i * 7) % n]!;
  });
}

function mismatch(actual: LogMel, expected: LogMel): string | undefined {
  if (actual.nFrames !== expected.nFrames || actual.nMels !== expected.nMels) {
    return `[${actual.nMels}, ${actual.nFrames}], expected [${expected.nMels}, ${expected.nFrames}]`;
  }
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.data.length; i++) {
    const error = Math.abs(actual.data[i]! - expected.data[i]!);
    if (!(error <= worst)) {
      worst = Number.isNaN(error) ? Infinity : error;
      at = i;
    }
  }
  if (worst <= TOLERANCE) return undefined;
  const mel = Math.floor(at / expected.nFrames);
  return `mel ${mel}, frame ${at % expected.nFrames}: got ${actual.data[at]}, expected ${expected.data[at]} (error ${worst.toExponential(2)})`;
}

describe('log-mel spectrogram on WebGPU in Node (Dawn) against src/core/audio/mel.ts', () => {
  let gpu: NodeGpu | undefined;
  before(async () => {
    gpu = await acquireNodeGpu();
  });
  after(() => gpu?.context?.device.destroy());

  for (const nMels of [80, 128]) {
    test(`2 s of a synthetic signal, ${nMels} mels`, async (t) => {
      const context = deviceOrSkip(gpu, t);
      if (!context) return;
      const samples = syntheticSignal(2);
      const actual = await runLogMel(context.device, samples, nMels);
      assert.equal(actual.nFrames, 200);
      assert.equal(mismatch(actual, logMelSpectrogram(samples, { nMels })), undefined);
    });
  }

  test('short signals: reflection repeated past the ends, a single frame, and none', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    for (const length of [1000, 170, 160, 1]) {
      const samples = syntheticSignal(length / SAMPLE_RATE);
      for (const padding of [0, 300]) {
        const expected = logMelSpectrogram(samples, { nMels: 80, padding });
        assert.equal(mismatch(await runLogMel(context.device, samples, 80, { padding }), expected), undefined, `${length} samples + ${padding} zeros`);
      }
    }
    const none = await runLogMel(context.device, syntheticSignal(100 / SAMPLE_RATE), 80);
    assert.equal(none.nFrames, 0);
    assert.equal(none.data.length, 0);
  });

  test("jfk.wav's first 3 s, 80 mels", async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    if (!existsSync(JFK)) {
      t.skip(`${JFK} is absent (the shared reference data is not mounted)`);
      return;
    }
    const samples = parseWav(readFileSync(JFK), JFK).channels[0]!.subarray(0, 3 * SAMPLE_RATE);
    assert.equal(mismatch(await runLogMel(context.device, samples, 80), logMelSpectrogram(samples, { nMels: 80 })), undefined);
  });

  test('a full 30 s window (logMelWindow) of 2 s of signal, 80 mels', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const samples = syntheticSignal(2);
    const actual = await runLogMelWindow(context.device, samples, 80);
    assert.equal(actual.nFrames, N_FRAMES);
    assert.equal(mismatch(actual, logMelWindow(samples, 80)), undefined);
  });

  test('recordLogMel writes into a caller buffer that later kernels can read, and returns the frame count', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const { device } = context;
    const samples = syntheticSignal(0.5);
    const nFrames = logMelFrameCount(samples.length);
    const input = uploadStorage(device, 'samples', samples);
    const output = createStorage(device, 'mel', 80 * nFrames);
    try {
      let recorded = -1;
      await runRecorded(device, 'test', (rec) => {
        recorded = recordLogMel(rec, { samples: input, nSamples: samples.length, nMels: 80, output }).nFrames;
      });
      assert.equal(recorded, nFrames);
      const data = await readFloat32(device, output, 80 * nFrames);
      assert.equal(mismatch({ data, nMels: 80, nFrames }, logMelSpectrogram(samples, { nMels: 80 })), undefined);
    } finally {
      destroyAll([input, output]);
    }
  });

  test('bad input is refused with an AudioError naming it', async (t) => {
    const context = deviceOrSkip(gpu, t);
    if (!context) return;
    const { device } = context;
    const samples = syntheticSignal(0.1);
    samples[37] = NaN;
    await assert.rejects(runLogMel(device, samples, 80), (e: unknown) => e instanceof AudioError && /sample 37 is NaN/.test(e.message));
    await assert.rejects(runLogMel(device, new Float32Array(0), 80), (e: unknown) => e instanceof AudioError && /no samples/.test(e.message));
    await assert.rejects(runLogMel(device, new Float32Array(400), 0), (e: unknown) => e instanceof AudioError && /nMels must be a positive integer, got 0/.test(e.message));
    await assert.rejects(
      runLogMel(device, new Float32Array(400), 80, { filters: new Float32Array(10) }),
      (e: unknown) => e instanceof AudioError && /filters have 10 values, expected 80 × 201/.test(e.message),
    );
    const input = uploadStorage(device, 'samples', new Float32Array(1600));
    const small = createStorage(device, 'small', 80 * 10 - 4);
    try {
      await assert.rejects(
        runRecorded(device, 'test', (rec) => recordLogMel(rec, { samples: input, nSamples: 1600, nMels: 80, output: small })),
        /output holds 3184 bytes, fewer than the 3200/,
      );
    } finally {
      destroyAll([input, small]);
    }
  });
});
