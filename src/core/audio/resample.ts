/**
 * Band-limited sample-rate conversion with a Kaiser-windowed sinc low-pass.
 *
 * Design (relative to the Nyquist frequency of the lower of the two rates): flat passband to 0.9,
 * stopband from 1.0 with ≥ 90 dB design attenuation, so nothing above the output Nyquist can alias
 * into the band Whisper listens to, and upsampling images are removed just as well.
 *
 * When the ratio reduces to L/M with L ≤ MAX_EXACT_PHASES (44100→16000 is 160/441, 48000→16000 is
 * 1/3, 11025→16000 is 640/441, ...) every output sample falls on one of L exact filter phases and a
 * precomputed polyphase table is used as is. Other ratios (e.g. 44056 Hz → 16 kHz) use a table of
 * INTERPOLATED_PHASES phases and interpolate linearly between the two nearest ones; the error this
 * adds lies well below the stopband level.
 *
 * Output sample k sits at input time k·from/to, so the first output sample coincides with the first
 * input sample; samples outside the input count as zero. Output length is round(n·to/from).
 */
import { AudioError } from '../errors.ts';

const STOPBAND_DB = 90;
const PASSBAND_EDGE = 0.9;
const STOPBAND_EDGE = 1.0;
const MAX_EXACT_PHASES = 1024;
const INTERPOLATED_PHASES = 512;
const KERNEL_CACHE_SIZE = 4;

interface Kernel {
  /** Output sample k reads input from floor(t) - lead + 1 on, where t = k·from/to. */
  lead: number;
  taps: number;
  /** Rows of `taps` coefficients, one per phase (fraction of an input sample); DC gain 1 each. */
  table: Float64Array;
  /** Exact polyphase (L phases, rational positions) or interpolated (phases + 1 rows). */
  rational: { up: number; down: number } | undefined;
  phases: number;
}

const kernelCache = new Map<string, Kernel>();

export function resample(samples: Float32Array, fromRate: number, toRate = 16000): Float32Array {
  checkRate(fromRate, 'input');
  checkRate(toRate, 'output');
  return resampleToLength(samples, fromRate, toRate, Math.round((samples.length * toRate) / fromRate));
}

/** Like `resample`, with the output length chosen by the caller. */
export function resampleToLength(samples: Float32Array, fromRate: number, toRate: number, outLength: number): Float32Array {
  checkRate(fromRate, 'input');
  checkRate(toRate, 'output');
  const out = new Float32Array(outLength);
  if (fromRate === toRate) {
    out.set(samples.subarray(0, Math.min(outLength, samples.length)));
    return out;
  }
  const kernel = kernelFor(fromRate, toRate);
  if (kernel.rational) runRational(samples, out, kernel, kernel.rational.up, kernel.rational.down);
  else runInterpolated(samples, out, kernel, fromRate / toRate);
  return out;
}

/** Averages the channels into one. Always returns a new array. */
export function downmix(channels: Float32Array[]): Float32Array {
  if (channels.length === 0) throw new AudioError('downmix: no channels');
  const length = channels[0].length;
  channels.forEach((channel, c) => {
    if (channel.length !== length) {
      throw new AudioError(`downmix: channel ${c} has ${channel.length} samples, channel 0 has ${length}`);
    }
  });
  if (channels.length === 1) return channels[0].slice();
  const sum = new Float64Array(length);
  for (const channel of channels) for (let i = 0; i < length; i++) sum[i] += channel[i];
  const out = new Float32Array(length);
  const scale = 1 / channels.length;
  for (let i = 0; i < length; i++) out[i] = sum[i] * scale;
  return out;
}

function checkRate(rate: number, which: string): void {
  if (!Number.isFinite(rate) || rate <= 0) throw new AudioError(`resample: ${which} sample rate must be a positive number, got ${rate}`);
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function kernelFor(fromRate: number, toRate: number): Kernel {
  const key = `${fromRate}:${toRate}`;
  let kernel = kernelCache.get(key);
  if (kernel) {
    kernelCache.delete(key); // re-insert as most recently used
  } else {
    kernel = designKernel(fromRate, toRate);
    if (kernelCache.size >= KERNEL_CACHE_SIZE) kernelCache.delete(kernelCache.keys().next().value!);
  }
  kernelCache.set(key, kernel);
  return kernel;
}

function designKernel(fromRate: number, toRate: number): Kernel {
  let rational: Kernel['rational'];
  if (Number.isInteger(fromRate) && Number.isInteger(toRate)) {
    const g = gcd(fromRate, toRate);
    if (toRate / g <= MAX_EXACT_PHASES) rational = { up: toRate / g, down: fromRate / g };
  }
  const phases = rational ? rational.up : INTERPOLATED_PHASES;
  const rows = rational ? phases : phases + 1;

  // Frequencies as fractions of the input rate's Nyquist.
  const band = Math.min(1, toRate / fromRate);
  const cutoff = (band * (PASSBAND_EDGE + STOPBAND_EDGE)) / 2;
  const transition = Math.PI * band * (STOPBAND_EDGE - PASSBAND_EDGE); // rad/sample
  const beta = 0.1102 * (STOPBAND_DB - 8.7);
  const halfWidth = (STOPBAND_DB - 7.95) / (2.285 * transition) / 2; // in input samples
  const lead = Math.floor(halfWidth) + 1;
  const taps = 2 * lead;
  const besselBeta = besselI0(beta);

  const table = new Float64Array(rows * taps);
  for (let r = 0; r < rows; r++) {
    const phase = r / phases;
    let sum = 0;
    for (let i = 0; i < taps; i++) {
      const offset = phase + lead - 1 - i; // output time minus input sample time, in input samples
      const x = offset / halfWidth;
      let h = 0;
      if (Math.abs(x) < 1) {
        const arg = Math.PI * cutoff * offset;
        const sinc = arg === 0 ? 1 : Math.sin(arg) / arg;
        h = cutoff * sinc * (besselI0(beta * Math.sqrt(1 - x * x)) / besselBeta);
      }
      table[r * taps + i] = h;
      sum += h;
    }
    for (let i = 0; i < taps; i++) table[r * taps + i] /= sum;
  }
  return { lead, taps, table, rational, phases };
}

/** Modified Bessel function of the first kind, order 0 (power series; converges for all x). */
function besselI0(x: number): number {
  const q = (x * x) / 4;
  let term = 1;
  let sum = 1;
  for (let k = 1; term > sum * 1e-17; k++) {
    term *= q / (k * k);
    sum += term;
  }
  return sum;
}

/** Σ samples[first + i] · table[row + i] over the taps that land inside the input. */
function dot(samples: Float32Array, first: number, table: Float64Array, row: number, taps: number): number {
  const lo = first < 0 ? -first : 0;
  const hi = Math.min(taps, samples.length - first);
  // Four independent sums: one accumulator would serialise on floating-point add latency.
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  let i = lo;
  for (const end = hi - 3; i < end; i += 4) {
    const x = first + i, h = row + i;
    a0 += samples[x] * table[h];
    a1 += samples[x + 1] * table[h + 1];
    a2 += samples[x + 2] * table[h + 2];
    a3 += samples[x + 3] * table[h + 3];
  }
  for (; i < hi; i++) a0 += samples[first + i] * table[row + i];
  return (a0 + a1) + (a2 + a3);
}

function runRational(samples: Float32Array, out: Float32Array, kernel: Kernel, up: number, down: number): void {
  const { lead, taps, table } = kernel;
  let base = 0; // floor(k·down / up)
  let phase = 0; // k·down mod up
  for (let k = 0; k < out.length; k++) {
    out[k] = dot(samples, base - lead + 1, table, phase * taps, taps);
    phase += down;
    if (phase >= up) {
      base += Math.floor(phase / up);
      phase %= up;
    }
  }
}

function runInterpolated(samples: Float32Array, out: Float32Array, kernel: Kernel, step: number): void {
  const { lead, taps, table, phases } = kernel;
  for (let k = 0; k < out.length; k++) {
    const t = k * step;
    const base = Math.floor(t);
    const position = (t - base) * phases;
    const row = Math.min(Math.floor(position), phases - 1);
    const weight = position - row;
    const first = base - lead + 1;
    const a = dot(samples, first, table, row * taps, taps);
    const b = dot(samples, first, table, (row + 1) * taps, taps);
    out[k] = a + (b - a) * weight;
  }
}
