// Speech for the streaming tests: espeak-ng phrases at 16 kHz, laid out with silence between them,
// optionally mixed with sox-made noise at a chosen SNR. The true speech boundaries come from the
// clean phrases (first and last 10 ms frame within 40 dB of the phrase's loudest one).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseWav } from '../../src/core/audio/wav.ts';

export const RATE = 16000;

function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `false` when espeak-ng and sox are installed, else why the test is skipped. */
export const skipWithoutSpeechTools: false | string = hasTool('espeak-ng') && hasTool('sox')
  ? false
  : 'espeak-ng and sox are needed to synthesize test speech (apt-get install espeak-ng sox)';

function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'murmur-streaming-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function readMono(path: string): Float32Array {
  return parseWav(readFileSync(path), path).channels[0]!;
}

/** One phrase spoken by espeak-ng, resampled by sox to 16 kHz mono. */
export function speak(text: string, voice = 'en-us'): Float32Array {
  return withTempDir((dir) => {
    const raw = join(dir, 'raw.wav');
    const out = join(dir, 'speech.wav');
    execFileSync('espeak-ng', ['-v', voice, '-s', '160', '-w', raw, text]);
    execFileSync('sox', [raw, '-r', String(RATE), '-c', '1', '-b', '16', out]);
    return readMono(out);
  });
}

/** `seconds` of sox noise ('whitenoise' | 'pinknoise' | 'brownnoise'), unit RMS. */
export function noise(kind: string, seconds: number): Float32Array {
  return withTempDir((dir) => {
    const out = join(dir, 'noise.wav');
    execFileSync('sox', ['-R', '-n', '-r', String(RATE), '-c', '1', '-b', '16', out, 'synth', String(seconds), kind, 'vol', '0.1']);
    const samples = readMono(out);
    const scale = 1 / rms(samples);
    for (let i = 0; i < samples.length; i++) samples[i]! *= scale;
    return samples;
  });
}

export function rms(samples: Float32Array): number {
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / Math.max(1, samples.length));
}

/** [start, end] in seconds of the audible part of a clean phrase. */
export function audibleSpan(speech: Float32Array): [number, number] {
  const frame = RATE / 100;
  const levels: number[] = [];
  for (let i = 0; i + frame <= speech.length; i += frame) levels.push(rms(speech.subarray(i, i + frame)));
  const limit = Math.max(...levels) * 0.01;
  const first = levels.findIndex((level) => level > limit);
  const last = levels.length - 1 - [...levels].reverse().findIndex((level) => level > limit);
  return [first / 100, (last + 1) / 100];
}

export interface Recording {
  samples: Float32Array;
  /** Where each phrase is audible, in seconds. */
  spans: Array<[number, number]>;
  /** RMS of the speech parts, for setting SNRs. */
  speechRms: number;
}

/** Phrases separated by `gap` seconds of digital silence, with `lead` seconds before and after. */
export function layout(phrases: Float32Array[], { lead = 1, gap = 1.5 } = {}): Recording {
  const parts: Float32Array[] = [new Float32Array(Math.round(lead * RATE))];
  const spans: Array<[number, number]> = [];
  let at = parts[0]!.length;
  let sumSquares = 0;
  let speechSamples = 0;
  phrases.forEach((phrase, i) => {
    const [start, end] = audibleSpan(phrase);
    spans.push([at / RATE + start, at / RATE + end]);
    const audible = phrase.subarray(Math.round(start * RATE), Math.round(end * RATE));
    for (const s of audible) sumSquares += s * s;
    speechSamples += audible.length;
    parts.push(phrase);
    at += phrase.length;
    const pause = new Float32Array(Math.round((i === phrases.length - 1 ? lead : gap) * RATE));
    parts.push(pause);
    at += pause.length;
  });
  const samples = new Float32Array(at);
  let offset = 0;
  for (const part of parts) {
    samples.set(part, offset);
    offset += part.length;
  }
  return { samples, spans, speechRms: Math.sqrt(sumSquares / speechSamples) };
}

/** The recording with noise added so that speech RMS / noise RMS is `snrDb`. */
export function withNoise(recording: Recording, unitNoise: Float32Array, snrDb: number): Float32Array {
  const level = recording.speechRms / 10 ** (snrDb / 20);
  const out = new Float32Array(recording.samples.length);
  for (let i = 0; i < out.length; i++) out[i] = recording.samples[i]! + level * unitNoise[i % unitNoise.length]!;
  return out;
}
