import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { hzToMel, melFilterbank, melToHz } from '../../src/core/audio/filterbank.ts';
import { AudioError } from '../../src/core/errors.ts';
import { readNpz } from '../reference/npz.ts';

const NPZ = fileURLToPath(new URL('../../../shared/data/whisper-assets/mel_filters.npz', import.meta.url));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

for (const nMels of [80, 128] as const) {
  test(`melFilterbank(${nMels}) equals whisper's mel_filters.npz mel_${nMels} within 1e-6`, (t) => {
    if (!existsSync(NPZ)) return t.skip(`reference data absent: ${NPZ}`);
    const reference = readNpz(readFileSync(NPZ)).get(`mel_${nMels}`);
    assert.ok(reference, `mel_${nMels} missing from the npz`);
    assert.deepEqual(reference.shape, [nMels, 201]);
    const ours = melFilterbank(nMels);
    assert.equal(ours.length, nMels * 201);
    const diff = maxAbsDiff(ours, reference.data);
    t.diagnostic(`max |ours − npz| for ${nMels} mels: ${diff.toExponential(3)}`);
    assert.ok(diff <= 1e-6, `max abs diff ${diff}`);
  });
}

test('mel scale is linear below 1 kHz, logarithmic above, and melToHz inverts hzToMel', () => {
  assert.ok(Math.abs(hzToMel(200 / 3) - 1) < 1e-12);
  assert.ok(Math.abs(hzToMel(1000) - 15) < 1e-12);
  assert.ok(Math.abs(hzToMel(500) - 7.5) < 1e-12);
  assert.ok(Math.abs(hzToMel(6400) - (15 + 27)) < 1e-12);
  for (const hz of [0, 50, 999, 1000, 1234.5, 8000, 22050]) assert.ok(Math.abs(melToHz(hzToMel(hz)) - hz) < 1e-9 * Math.max(1, hz));
});

test('any number of mel bands gives non-negative, non-empty bands', () => {
  for (const nMels of [1, 40, 64]) {
    const filters = melFilterbank(nMels);
    assert.equal(filters.length, nMels * 201);
    for (let m = 0; m < nMels; m++) {
      const row = filters.subarray(m * 201, (m + 1) * 201);
      assert.ok(row.every((v) => v >= 0));
      assert.ok(row.some((v) => v > 0), `band ${m} of ${nMels} is empty`);
    }
  }
});

test('custom sample rate / FFT size change the shape', () => {
  const filters = melFilterbank(40, { sampleRate: 22050, nFft: 1024, fMax: 8000 });
  assert.equal(filters.length, 40 * 513);
  // Nothing above fMax: bin k is k·22050/1024 Hz.
  const firstAbove = Math.ceil((8000 * 1024) / 22050);
  for (let m = 0; m < 40; m++) for (let k = firstAbove + 1; k < 513; k++) assert.equal(filters[m * 513 + k], 0);
});

test('bad parameters throw AudioError', () => {
  assert.throws(() => melFilterbank(0), AudioError);
  assert.throws(() => melFilterbank(2.5), AudioError);
  assert.throws(() => melFilterbank(80, { fMin: 9000, fMax: 8000 }), AudioError);
  assert.throws(() => melFilterbank(80, { sampleRate: NaN }), AudioError);
});
