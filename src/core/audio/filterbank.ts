/**
 * Mel filterbank on the Slaney mel scale with Slaney (area) normalisation, as librosa.filters.mel
 * computes it with htk=False, norm='slaney' — the filters Whisper ships in mel_filters.npz.
 * Computed in float64, returned as float32 like the npz.
 */
import { AudioError } from '../errors.ts';

export interface MelFilterbankOptions {
  /** Sample rate in Hz; default 16000. */
  sampleRate?: number;
  /** FFT length; the filters have nFft / 2 + 1 columns. Default 400. */
  nFft?: number;
  /** Lowest band edge in Hz; default 0. */
  fMin?: number;
  /** Highest band edge in Hz; default sampleRate / 2. */
  fMax?: number;
}

// Slaney's auditory toolbox scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above
// (27 mels per factor 6.4).
const LINEAR_HZ_PER_MEL = 200 / 3;
const LOG_START_HZ = 1000;
const LOG_START_MEL = LOG_START_HZ / LINEAR_HZ_PER_MEL;
const LOG_STEP = Math.log(6.4) / 27;

export function hzToMel(hz: number): number {
  return hz >= LOG_START_HZ
    ? LOG_START_MEL + Math.log(hz / LOG_START_HZ) / LOG_STEP
    : hz / LINEAR_HZ_PER_MEL;
}

export function melToHz(mel: number): number {
  return mel >= LOG_START_MEL
    ? LOG_START_HZ * Math.exp(LOG_STEP * (mel - LOG_START_MEL))
    : LINEAR_HZ_PER_MEL * mel;
}

/** Row-major [nMels × (nFft/2 + 1)] triangular filters; rows are mel bands, columns FFT bins. */
export function melFilterbank(nMels: number, options: MelFilterbankOptions = {}): Float32Array {
  const sampleRate = options.sampleRate ?? 16000;
  const nFft = options.nFft ?? 400;
  const fMin = options.fMin ?? 0;
  const fMax = options.fMax ?? sampleRate / 2;
  if (!Number.isInteger(nMels) || nMels < 1) throw new AudioError(`mel filterbank: nMels must be a positive integer, got ${nMels}`);
  if (!Number.isInteger(nFft) || nFft < 2) throw new AudioError(`mel filterbank: nFft must be an integer ≥ 2, got ${nFft}`);
  if (!(sampleRate > 0) || !Number.isFinite(sampleRate)) throw new AudioError(`mel filterbank: bad sample rate ${sampleRate}`);
  if (!(fMin >= 0 && fMax > fMin && Number.isFinite(fMax))) throw new AudioError(`mel filterbank: bad band ${fMin}..${fMax} Hz`);

  const bins = Math.floor(nFft / 2) + 1;
  const binHz = new Float64Array(bins);
  const hzPerBin = 1 / (nFft * (1 / sampleRate)); // numpy.fft.rfftfreq spells it this way
  for (let k = 0; k < bins; k++) binHz[k] = k * hzPerBin;

  // nMels + 2 edges evenly spaced in mel (numpy.linspace: start + i·step, last point exact).
  const edges = new Float64Array(nMels + 2);
  const melLo = hzToMel(fMin), melHi = hzToMel(fMax);
  const melStep = (melHi - melLo) / (nMels + 1);
  for (let i = 0; i < nMels + 2; i++) edges[i] = melToHz(i === nMels + 1 ? melHi : melLo + i * melStep);

  const filters = new Float32Array(nMels * bins);
  for (let m = 0; m < nMels; m++) {
    const lo = edges[m], mid = edges[m + 1], hi = edges[m + 2];
    const area = 2 / (hi - lo);
    for (let k = 0; k < bins; k++) {
      const rising = (binHz[k] - lo) / (mid - lo);
      const falling = (hi - binHz[k]) / (hi - mid);
      const w = Math.max(0, Math.min(rising, falling));
      filters[m * bins + k] = w * area;
    }
  }
  return filters;
}
