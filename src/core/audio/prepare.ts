/**
 * Turns decoded audio (any channel count, any sane rate) into what Whisper consumes: 16 kHz mono
 * float samples. Bad input has defined outcomes:
 *
 * - No channels or no samples: AudioError (empty audio).
 * - Channels of different lengths: AudioError.
 * - Sample rate not finite or outside [1000, 768000] Hz: AudioError.
 * - NaN / ±Infinity samples: by default an AudioError naming the first bad sample (lowest index,
 *   then lowest channel); with `onInvalidSample: 'zero'` they are replaced by 0 (silence), which
 *   is what a decoder glitch most plausibly stood for. The caller's arrays are never modified.
 * - Samples beyond ±1 (clipped or over-driven decoders, float WAVs with hot peaks) are kept as
 *   they are. Hard-limiting them to ±1 would add distortion harmonics that were not in the audio,
 *   and rescaling the whole file would change the level of everything else. Whisper does not need
 *   either: its log-mel is taken relative to the loudest bin (floored at max − 8 in log10 units),
 *   and a gain only shifts log10 power, which the model tolerates because its training audio came
 *   at every recording level.
 * - Input so short that it rounds to no 16 kHz sample (one sample at more than 32 kHz) gives one
 *   output sample rather than an empty array.
 */
import { AudioError } from '../errors.ts';
import { SAMPLE_RATE } from './mel.ts';
import { downmix, resampleToLength } from './resample.ts';

export const MIN_SAMPLE_RATE = 1000;
export const MAX_SAMPLE_RATE = 768000;

export interface WhisperInputOptions {
  /** What to do with NaN / ±Infinity samples: throw (default) or replace them with 0. */
  onInvalidSample?: 'error' | 'zero';
}

export function toWhisperInput(
  channels: Float32Array[] | Float32Array,
  sampleRate: number,
  options: WhisperInputOptions = {},
): Float32Array {
  if (!Number.isFinite(sampleRate) || sampleRate < MIN_SAMPLE_RATE || sampleRate > MAX_SAMPLE_RATE) {
    throw new AudioError(`sample rate ${sampleRate} Hz is outside the supported ${MIN_SAMPLE_RATE}–${MAX_SAMPLE_RATE} Hz`);
  }
  const list = channels instanceof Float32Array ? [channels] : channels;
  if (list.length === 0) throw new AudioError('empty audio: no channels');
  const length = list[0].length;
  list.forEach((channel, c) => {
    if (channel.length !== length) {
      throw new AudioError(`channel ${c} has ${channel.length} samples but channel 0 has ${length}`);
    }
  });
  if (length === 0) throw new AudioError('empty audio: no samples');

  const cleaned = options.onInvalidSample === 'zero' ? list.map(zeroInvalid) : (assertFinite(list), list);
  const mono = downmix(cleaned);
  const outLength = Math.max(1, Math.round((length * SAMPLE_RATE) / sampleRate));
  return resampleToLength(mono, sampleRate, SAMPLE_RATE, outLength);
}

function assertFinite(channels: Float32Array[]): void {
  let badIndex = -1;
  let badChannel = -1;
  channels.forEach((channel, c) => {
    const limit = badIndex < 0 ? channel.length : badIndex;
    for (let i = 0; i < limit; i++) {
      if (!Number.isFinite(channel[i])) {
        badIndex = i;
        badChannel = c;
        break;
      }
    }
  });
  if (badIndex >= 0) {
    const value = channels[badChannel][badIndex];
    throw new AudioError(`invalid sample ${badIndex} in channel ${badChannel}: ${value} (samples must be finite numbers)`);
  }
}

function zeroInvalid(channel: Float32Array): Float32Array {
  let copy: Float32Array | undefined;
  for (let i = 0; i < channel.length; i++) {
    if (!Number.isFinite(channel[i])) {
      copy ??= channel.slice();
      copy[i] = 0;
    }
  }
  return copy ?? channel;
}
