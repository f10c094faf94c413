/**
 * Whisper's log-mel spectrogram, numerically the same as openai/whisper's `log_mel_spectrogram`:
 * periodic Hann window of N_FFT, frames every HOP_LENGTH samples, reflect padding of N_FFT/2 at both
 * ends (torch.stft center=True), |rfft|², the last frame dropped, filters @ power,
 * log10(max(mel, 1e-10)), floored at (global max − 8), then (x + 4) / 4.
 *
 * Output layout is row-major [nMels, nFrames]: channel-first, the way Whisper's conv stem reads it.
 *
 * Audio shorter than N_FFT/2 + 1 samples (torch.stft refuses it) is reflected repeatedly, exactly as
 * numpy.pad(mode='reflect') extends a short signal: the signal is continued with period 2(n − 1)
 * (a single sample is held constant). The frame count stays floor(n / HOP_LENGTH) for every n,
 * so under 160 samples there are no frames; callers that need a model-sized input use
 * `logMelWindow` or `padding`, which append zeros first.
 */
import { AudioError } from '../errors.ts';
import { createRealFft, type RealFft } from './fft.ts';
import { melFilterbank } from './filterbank.ts';

export const SAMPLE_RATE = 16000;
export const N_FFT = 400;
export const HOP_LENGTH = 160;
/** Seconds of audio in one model window. */
export const CHUNK_LENGTH = 30;
export const N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE; // 480000
export const N_FRAMES = N_SAMPLES / HOP_LENGTH; // 3000

const BINS = N_FFT / 2 + 1;
const HALF_WINDOW = N_FFT / 2;
const LOG_FLOOR = 1e-10;
const DYNAMIC_RANGE = 8;

export interface LogMel {
  /** Row-major [nMels, nFrames]. */
  data: Float32Array;
  nMels: number;
  nFrames: number;
}

export interface LogMelOptions {
  nMels: number;
  /** Zero samples appended before the STFT (Whisper's transcribe appends N_SAMPLES). Default 0. */
  padding?: number;
  /** Row-major [nMels × 201] filters; default melFilterbank(nMels). */
  filters?: Float32Array;
}

let sharedFft: RealFft | undefined;
let sharedWindow: Float64Array | undefined;
const filterCache = new Map<number, Float32Array>();

function fft(): RealFft {
  return (sharedFft ??= createRealFft(N_FFT));
}

/** Periodic Hann window (torch.hann_window(N_FFT) with periodic=True). */
function hannWindow(): Float64Array {
  if (!sharedWindow) {
    sharedWindow = new Float64Array(N_FFT);
    for (let i = 0; i < N_FFT; i++) sharedWindow[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / N_FFT);
  }
  return sharedWindow;
}

function defaultFilters(nMels: number): Float32Array {
  let filters = filterCache.get(nMels);
  if (!filters) {
    filters = melFilterbank(nMels);
    filterCache.set(nMels, filters);
  }
  return filters;
}

/** Position in the signal that index `i` (possibly outside 0..n−1) reflects onto. */
function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}

/** The nonzero column range of each filter row, so the mel product skips the zeros. */
function nonzeroSpans(filters: Float32Array, nMels: number): Int32Array {
  const spans = new Int32Array(2 * nMels);
  for (let m = 0; m < nMels; m++) {
    let start = BINS, end = 0;
    for (let k = 0; k < BINS; k++) {
      if (filters[m * BINS + k] !== 0) {
        if (start === BINS) start = k;
        end = k + 1;
      }
    }
    spans[2 * m] = start;
    spans[2 * m + 1] = Math.max(start, end);
  }
  return spans;
}

export function logMelSpectrogram(samples: Float32Array, options: LogMelOptions): LogMel {
  const { nMels } = options;
  const padding = options.padding ?? 0;
  if (!Number.isInteger(nMels) || nMels < 1) throw new AudioError(`log-mel: nMels must be a positive integer, got ${nMels}`);
  if (!Number.isInteger(padding) || padding < 0) throw new AudioError(`log-mel: padding must be a non-negative integer, got ${padding}`);
  const filters = options.filters ?? defaultFilters(nMels);
  if (filters.length !== nMels * BINS) {
    throw new AudioError(`log-mel: filters have ${filters.length} values, expected ${nMels} × ${BINS} = ${nMels * BINS}`);
  }
  const n = samples.length + padding;
  if (n === 0) throw new AudioError('log-mel: no samples (empty audio)');
  for (let i = 0; i < samples.length; i++) {
    if (!Number.isFinite(samples[i])) throw new AudioError(`log-mel: sample ${i} is ${samples[i]}, not a finite number`);
  }

  // torch.stft(center=True) gives 1 + floor(n / hop) frames; Whisper drops the last one.
  const nFrames = Math.floor(n / HOP_LENGTH);
  const data = new Float32Array(nMels * nFrames);
  if (nFrames === 0) return { data, nMels, nFrames };

  const signalAt = (i: number): number => {
    const j = reflectIndex(i, n);
    return j < samples.length ? samples[j] : 0;
  };

  const plan = fft();
  const window = hannWindow();
  const spans = nonzeroSpans(filters, nMels);
  const frame = new Float64Array(N_FFT);
  const power = new Float64Array(BINS);
  const logs = new Float64Array(nMels * nFrames);
  let maxLog = -Infinity;

  for (let f = 0; f < nFrames; f++) {
    const start = f * HOP_LENGTH - HALF_WINDOW;
    if (start >= 0 && start + N_FFT <= samples.length) {
      for (let i = 0; i < N_FFT; i++) frame[i] = samples[start + i] * window[i];
    } else {
      for (let i = 0; i < N_FFT; i++) frame[i] = signalAt(start + i) * window[i];
    }
    plan.powerSpectrum(frame, power);
    for (let m = 0; m < nMels; m++) {
      const row = m * BINS;
      let sum = 0;
      for (let k = spans[2 * m], end = spans[2 * m + 1]; k < end; k++) sum += filters[row + k] * power[k];
      const value = Math.log10(sum > LOG_FLOOR ? sum : LOG_FLOOR);
      logs[m * nFrames + f] = value;
      if (value > maxLog) maxLog = value;
    }
  }

  const floor = maxLog - DYNAMIC_RANGE;
  for (let i = 0; i < logs.length; i++) {
    const v = logs[i];
    data[i] = ((v > floor ? v : floor) + 4) / 4;
  }
  return { data, nMels, nFrames };
}

/**
 * Pads (with 0, like Whisper's pad_or_trim of a mel segment) or trims the frame axis to `nFrames`.
 * Returns a new LogMel; the input is not modified.
 */
export function padOrTrimFrames(mel: LogMel, nFrames: number = N_FRAMES): LogMel {
  if (!Number.isInteger(nFrames) || nFrames < 0) throw new AudioError(`padOrTrimFrames: bad frame count ${nFrames}`);
  const data = new Float32Array(mel.nMels * nFrames);
  const keep = Math.min(nFrames, mel.nFrames);
  for (let m = 0; m < mel.nMels; m++) {
    data.set(mel.data.subarray(m * mel.nFrames, m * mel.nFrames + keep), m * nFrames);
  }
  return { data, nMels: mel.nMels, nFrames };
}

/**
 * One model window the way Hugging Face's WhisperFeatureExtractor builds it: the audio is zero-padded
 * or trimmed to N_SAMPLES first, then transformed, giving exactly N_FRAMES frames.
 *
 * This differs from Whisper's own transcribe, which computes the log-mel of the whole recording plus
 * 30 s of zeros once (`logMelSpectrogram(x, { padding: N_SAMPLES })`) and slices 3000-frame windows
 * out of it: there the (max − 8) floor is taken over the whole recording and the frames at a window's
 * end see the audio that follows, whereas here both are local to this 30 s window.
 */
export function logMelWindow(samples: Float32Array, nMels: number): LogMel {
  const window = samples.length >= N_SAMPLES ? samples.subarray(0, N_SAMPLES) : samples;
  return logMelSpectrogram(window, { nMels, padding: N_SAMPLES - window.length });
}
