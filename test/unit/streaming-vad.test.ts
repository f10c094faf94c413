// The voice activity detector on espeak-ng speech mixed with sox noise: onsets and offsets within
// ±150 ms of where the clean speech is audible, and nothing at all on noise alone.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { VoiceActivityDetector, type VadEvent } from '../../src/core/streaming/vad.ts';
import { AudioError } from '../../src/core/errors.ts';
import { layout, noise, RATE, skipWithoutSpeechTools, speak, withNoise, type Recording } from './streaming-fixture.ts';

const TOLERANCE_S = 0.15;

function detect(samples: Float32Array, chunk = 1600): VadEvent[] {
  const vad = new VoiceActivityDetector();
  const events: VadEvent[] = [];
  for (let i = 0; i < samples.length; i += chunk) events.push(...vad.push(samples.subarray(i, i + chunk)));
  return [...events, ...vad.flush()];
}

function assertBoundaries(events: VadEvent[], recording: Recording, what: string): void {
  const shown = events.map((e) => `${e.type}@${e.time.toFixed(2)}`).join(' ');
  assert.equal(events.length, recording.spans.length * 2, `${what}: one onset and one offset per phrase, got ${shown}`);
  recording.spans.forEach(([start, end], i) => {
    const onset = events[2 * i]!;
    const offset = events[2 * i + 1]!;
    assert.equal(onset.type, 'speech-start', `${what}: ${shown}`);
    assert.equal(offset.type, 'speech-end', `${what}: ${shown}`);
    assert.ok(Math.abs(onset.time - start) <= TOLERANCE_S, `${what}: phrase ${i} starts at ${start.toFixed(2)} s, onset at ${onset.time.toFixed(2)} s`);
    assert.ok(Math.abs(offset.time - end) <= TOLERANCE_S, `${what}: phrase ${i} ends at ${end.toFixed(2)} s, offset at ${offset.time.toFixed(2)} s`);
  });
}

describe('voice activity detection', { skip: skipWithoutSpeechTools }, () => {
  const recording = skipWithoutSpeechTools ? undefined : layout([
    speak('Hello world, this is a test of live dictation.'),
    speak('Seven silver foxes jumped over the fence.'),
    speak('Stop.'),
  ]);

  test('finds every phrase in clean speech, whatever the chunk size', () => {
    for (const chunk of [128, 480, 1600, 7777]) assertBoundaries(detect(recording!.samples, chunk), recording!, `chunks of ${chunk}`);
  });

  for (const kind of ['whitenoise', 'pinknoise', 'brownnoise']) {
    test(`finds every phrase in ${kind} at 20 and 10 dB SNR, and nothing in the noise alone`, () => {
      const unitNoise = noise(kind, recording!.samples.length / RATE + 1);
      for (const snr of [20, 10]) {
        assertBoundaries(detect(withNoise(recording!, unitNoise, snr)), recording!, `${kind} at ${snr} dB`);
        const level = recording!.speechRms / 10 ** (snr / 20);
        const noiseOnly = unitNoise.map((s) => s * level);
        assert.deepEqual(detect(noiseOnly), [], `${kind} alone at the level of ${snr} dB SNR`);
      }
    });
  }
});

test('digital silence never triggers; bad samples are errors', () => {
  assert.deepEqual(detect(new Float32Array(RATE * 3)), []);
  const vad = new VoiceActivityDetector();
  const samples = new Float32Array(1000);
  samples[700] = Number.NaN;
  assert.throws(() => vad.push(samples), (e: unknown) => e instanceof AudioError && /sample 700 is NaN/.test(e.message));
  assert.throws(() => new VoiceActivityDetector({ hangoverFrames: 0 }), /hangoverFrames must be a positive integer/);
});

test('a loud harmonic burst after silence is an onset; its end comes after the hangover', () => {
  const samples = new Float32Array(RATE * 3);
  for (let i = RATE; i < 2 * RATE; i++) {
    const t = i / RATE;
    samples[i] = 0.1 * (Math.sin(2 * Math.PI * 150 * t) + 0.5 * Math.sin(2 * Math.PI * 300 * t) + 0.3 * Math.sin(2 * Math.PI * 450 * t) + 0.2 * Math.sin(2 * Math.PI * 900 * t));
  }
  let seed = 1;
  for (let i = 0; i < samples.length; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    samples[i]! += 1e-4 * (seed / 2 ** 30 - 1);
  }
  const events = detect(samples);
  assert.equal(events.length, 2, JSON.stringify(events));
  assert.ok(Math.abs(events[0]!.time - 1) <= 0.06, `onset ${events[0]!.time}`);
  assert.ok(Math.abs(events[1]!.time - 2) <= 0.06, `offset ${events[1]!.time}`);
});
