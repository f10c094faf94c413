/**
 * A real-input FFT for any even length, built for the STFT of Whisper's front end (n = 400, which is
 * not a power of two). A real signal of length n is packed into a complex signal of length n/2
 * (even samples as real parts, odd samples as imaginary parts), transformed with a mixed-radix
 * Stockham FFT (radix 4, 2, 3, 5 butterflies, any other prime by a direct DFT), then unpacked into
 * the n/2 + 1 non-negative-frequency bins. Everything is float64; all twiddles and scratch buffers
 * are allocated once per plan, so transforming a frame allocates nothing.
 */
import { AudioError } from '../errors.ts';

interface Stage {
  radix: number;
  /** Length of the sub-transforms this stage splits (n / product of earlier radices). */
  span: number;
  /** Distance between interleaved sub-transforms (product of earlier radices). */
  stride: number;
  /** cos / sin of -2πqr/span for q < span/radix, r < radix, stored [q * radix + r]. */
  twCos: Float64Array;
  twSin: Float64Array;
}

export interface RealFft {
  /** The real input length. */
  readonly size: number;
  /** Number of output bins: size / 2 + 1 (DC through Nyquist). */
  readonly bins: number;
  /** Fourier transform of `input` (length `size`) into `re` / `im` (length `bins` each). */
  transform(input: ArrayLike<number>, re: Float64Array, im: Float64Array): void;
  /** |X[k]|² of `input` into `out` (length `bins`). */
  powerSpectrum(input: ArrayLike<number>, out: Float64Array): void;
}

/** Plans a real FFT of length `size` (even, ≥ 2). Plans are cheap to reuse and not thread-bound. */
export function createRealFft(size: number): RealFft {
  if (!Number.isInteger(size) || size < 2 || size % 2 !== 0) {
    throw new AudioError(`real FFT length must be an even integer ≥ 2, got ${size}`);
  }
  const half = size / 2;
  const complex = new ComplexFft(half);
  const bins = half + 1;
  // Unpacking twiddles e^{-2πik/size}, k ≤ half.
  const unpackCos = new Float64Array(bins);
  const unpackSin = new Float64Array(bins);
  for (let k = 0; k < bins; k++) {
    unpackCos[k] = Math.cos((2 * Math.PI * k) / size);
    unpackSin[k] = -Math.sin((2 * Math.PI * k) / size);
  }
  const zRe = new Float64Array(half);
  const zIm = new Float64Array(half);
  const outRe = new Float64Array(bins);
  const outIm = new Float64Array(bins);

  function transform(input: ArrayLike<number>, re: Float64Array, im: Float64Array): void {
    for (let j = 0; j < half; j++) {
      zRe[j] = input[2 * j];
      zIm[j] = input[2 * j + 1];
    }
    complex.run(zRe, zIm);
    // With Z the transform of the packed signal, the even part E[k] = (Z[k] + conj Z[half-k]) / 2 and
    // the odd part O[k] = (Z[k] - conj Z[half-k]) / 2i give X[k] = E[k] + e^{-2πik/size} O[k].
    for (let k = 0; k <= half; k++) {
      const a = k === half ? 0 : k;
      const b = k === 0 ? 0 : half - k;
      const zr = zRe[a], zi = zIm[a];
      const cr = zRe[b], ci = -zIm[b];
      const er = 0.5 * (zr + cr), ei = 0.5 * (zi + ci);
      // (Z - conj Z') / 2i = (dIm / 2, -dRe / 2)
      const or = 0.5 * (zi - ci), oi = -0.5 * (zr - cr);
      const wr = unpackCos[k], wi = unpackSin[k];
      re[k] = er + wr * or - wi * oi;
      im[k] = ei + wr * oi + wi * or;
    }
  }

  return {
    size,
    bins,
    transform,
    powerSpectrum(input: ArrayLike<number>, out: Float64Array): void {
      transform(input, outRe, outIm);
      for (let k = 0; k < bins; k++) out[k] = outRe[k] * outRe[k] + outIm[k] * outIm[k];
    },
  };
}

/** Splits n into butterfly radices, fours first (fewest passes), then 2, 3, 5 and any other prime. */
function factorize(n: number): number[] {
  const radices: number[] = [];
  let rest = n;
  while (rest % 4 === 0) { radices.push(4); rest /= 4; }
  for (const p of [2, 3, 5]) {
    while (rest % p === 0) { radices.push(p); rest /= p; }
  }
  for (let p = 7; rest > 1; p += 2) {
    while (rest % p === 0) { radices.push(p); rest /= p; }
    if (p * p > rest && rest > 1) { radices.push(rest); rest = 1; }
  }
  return radices;
}

/** In-place complex forward FFT (e^{-2πi kn/N}, unscaled) of a fixed length. */
class ComplexFft {
  private readonly stages: Stage[] = [];
  private readonly workRe: Float64Array;
  private readonly workIm: Float64Array;
  /** Scratch for radices without a dedicated butterfly. */
  private readonly genRe: Float64Array;
  private readonly genIm: Float64Array;
  private readonly genCos: Map<number, Float64Array> = new Map();
  private readonly genSin: Map<number, Float64Array> = new Map();

  constructor(readonly size: number) {
    let span = size;
    let stride = 1;
    let maxRadix = 1;
    for (const radix of factorize(size)) {
      const count = span / radix;
      const twCos = new Float64Array(count * radix);
      const twSin = new Float64Array(count * radix);
      for (let q = 0; q < count; q++) {
        for (let r = 0; r < radix; r++) {
          const angle = (-2 * Math.PI * q * r) / span;
          twCos[q * radix + r] = Math.cos(angle);
          twSin[q * radix + r] = Math.sin(angle);
        }
      }
      this.stages.push({ radix, span, stride, twCos, twSin });
      if (radix > 5 && !this.genCos.has(radix)) {
        const c = new Float64Array(radix), s = new Float64Array(radix);
        for (let j = 0; j < radix; j++) {
          c[j] = Math.cos((-2 * Math.PI * j) / radix);
          s[j] = Math.sin((-2 * Math.PI * j) / radix);
        }
        this.genCos.set(radix, c);
        this.genSin.set(radix, s);
      }
      maxRadix = Math.max(maxRadix, radix);
      span = count;
      stride *= radix;
    }
    this.workRe = new Float64Array(size);
    this.workIm = new Float64Array(size);
    this.genRe = new Float64Array(maxRadix);
    this.genIm = new Float64Array(maxRadix);
  }

  run(re: Float64Array, im: Float64Array): void {
    let srcRe = re, srcIm = im, dstRe = this.workRe, dstIm = this.workIm;
    for (const stage of this.stages) {
      switch (stage.radix) {
        case 2: radix2(stage, srcRe, srcIm, dstRe, dstIm); break;
        case 3: radix3(stage, srcRe, srcIm, dstRe, dstIm); break;
        case 4: radix4(stage, srcRe, srcIm, dstRe, dstIm); break;
        case 5: radix5(stage, srcRe, srcIm, dstRe, dstIm); break;
        default: this.radixGeneric(stage, srcRe, srcIm, dstRe, dstIm);
      }
      const tRe = srcRe, tIm = srcIm;
      srcRe = dstRe; srcIm = dstIm; dstRe = tRe; dstIm = tIm;
    }
    if (srcRe !== re) {
      re.set(srcRe);
      im.set(srcIm);
    }
  }

  // Stockham decimation in frequency: for sub-transform k (of `stride`), index q < span/radix,
  // y[k + stride·(radix·q + r)] = w^{qr} · Σ_j x[k + stride·(q + count·j)] · ω_radix^{jr}.
  private radixGeneric(st: Stage, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
    const { radix: p, span, stride: s, twCos, twSin } = st;
    const count = span / p;
    const c = this.genCos.get(p)!, sn = this.genSin.get(p)!;
    const ar = this.genRe, ai = this.genIm;
    for (let q = 0; q < count; q++) {
      for (let k = 0; k < s; k++) {
        for (let j = 0; j < p; j++) {
          ar[j] = xr[k + s * (q + count * j)];
          ai[j] = xi[k + s * (q + count * j)];
        }
        for (let r = 0; r < p; r++) {
          let sr = 0, si = 0;
          for (let j = 0; j < p; j++) {
            const idx = (j * r) % p;
            sr += ar[j] * c[idx] - ai[j] * sn[idx];
            si += ar[j] * sn[idx] + ai[j] * c[idx];
          }
          const wr = twCos[q * p + r], wi = twSin[q * p + r];
          const out = k + s * (p * q + r);
          yr[out] = sr * wr - si * wi;
          yi[out] = sr * wi + si * wr;
        }
      }
    }
  }
}

function radix2(st: Stage, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
  const { span, stride: s, twCos, twSin } = st;
  const count = span / 2;
  for (let q = 0; q < count; q++) {
    const w1r = twCos[q * 2 + 1], w1i = twSin[q * 2 + 1];
    for (let k = 0; k < s; k++) {
      const i0 = k + s * q, i1 = i0 + s * count;
      const ar = xr[i0], ai = xi[i0], br = xr[i1], bi = xi[i1];
      const o = k + s * 2 * q;
      yr[o] = ar + br;
      yi[o] = ai + bi;
      const dr = ar - br, di = ai - bi;
      yr[o + s] = dr * w1r - di * w1i;
      yi[o + s] = dr * w1i + di * w1r;
    }
  }
}

const SIN_60 = Math.sqrt(3) / 2;

function radix3(st: Stage, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
  const { span, stride: s, twCos, twSin } = st;
  const count = span / 3;
  for (let q = 0; q < count; q++) {
    const w1r = twCos[q * 3 + 1], w1i = twSin[q * 3 + 1];
    const w2r = twCos[q * 3 + 2], w2i = twSin[q * 3 + 2];
    for (let k = 0; k < s; k++) {
      const i0 = k + s * q, i1 = i0 + s * count, i2 = i1 + s * count;
      const ar = xr[i0], ai = xi[i0];
      const sr = xr[i1] + xr[i2], si = xi[i1] + xi[i2];
      const dr = xr[i1] - xr[i2], di = xi[i1] - xi[i2];
      const mr = ar - 0.5 * sr, mi = ai - 0.5 * si;
      // ω3 = e^{-2πi/3}: the ±i·sin60·d terms.
      const b1r = mr + SIN_60 * di, b1i = mi - SIN_60 * dr;
      const b2r = mr - SIN_60 * di, b2i = mi + SIN_60 * dr;
      const o = k + s * 3 * q;
      yr[o] = ar + sr;
      yi[o] = ai + si;
      yr[o + s] = b1r * w1r - b1i * w1i;
      yi[o + s] = b1r * w1i + b1i * w1r;
      yr[o + 2 * s] = b2r * w2r - b2i * w2i;
      yi[o + 2 * s] = b2r * w2i + b2i * w2r;
    }
  }
}

function radix4(st: Stage, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
  const { span, stride: s, twCos, twSin } = st;
  const count = span / 4;
  const step = s * count;
  for (let q = 0; q < count; q++) {
    const w1r = twCos[q * 4 + 1], w1i = twSin[q * 4 + 1];
    const w2r = twCos[q * 4 + 2], w2i = twSin[q * 4 + 2];
    const w3r = twCos[q * 4 + 3], w3i = twSin[q * 4 + 3];
    for (let k = 0; k < s; k++) {
      const i0 = k + s * q, i1 = i0 + step, i2 = i1 + step, i3 = i2 + step;
      const s02r = xr[i0] + xr[i2], s02i = xi[i0] + xi[i2];
      const d02r = xr[i0] - xr[i2], d02i = xi[i0] - xi[i2];
      const s13r = xr[i1] + xr[i3], s13i = xi[i1] + xi[i3];
      const d13r = xr[i1] - xr[i3], d13i = xi[i1] - xi[i3];
      // ω4 = -i: X1 = d02 - i·d13, X3 = d02 + i·d13.
      const b1r = d02r + d13i, b1i = d02i - d13r;
      const b2r = s02r - s13r, b2i = s02i - s13i;
      const b3r = d02r - d13i, b3i = d02i + d13r;
      const o = k + s * 4 * q;
      yr[o] = s02r + s13r;
      yi[o] = s02i + s13i;
      yr[o + s] = b1r * w1r - b1i * w1i;
      yi[o + s] = b1r * w1i + b1i * w1r;
      yr[o + 2 * s] = b2r * w2r - b2i * w2i;
      yi[o + 2 * s] = b2r * w2i + b2i * w2r;
      yr[o + 3 * s] = b3r * w3r - b3i * w3i;
      yi[o + 3 * s] = b3r * w3i + b3i * w3r;
    }
  }
}

const C72 = Math.cos((2 * Math.PI) / 5);
const C144 = Math.cos((4 * Math.PI) / 5);
const S72 = Math.sin((2 * Math.PI) / 5);
const S144 = Math.sin((4 * Math.PI) / 5);

function radix5(st: Stage, xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array): void {
  const { span, stride: s, twCos, twSin } = st;
  const count = span / 5;
  const step = s * count;
  for (let q = 0; q < count; q++) {
    const base = q * 5;
    for (let k = 0; k < s; k++) {
      const i0 = k + s * q, i1 = i0 + step, i2 = i1 + step, i3 = i2 + step, i4 = i3 + step;
      const ar = xr[i0], ai = xi[i0];
      const s14r = xr[i1] + xr[i4], s14i = xi[i1] + xi[i4];
      const d14r = xr[i1] - xr[i4], d14i = xi[i1] - xi[i4];
      const s23r = xr[i2] + xr[i3], s23i = xi[i2] + xi[i3];
      const d23r = xr[i2] - xr[i3], d23i = xi[i2] - xi[i3];
      const m1r = ar + C72 * s14r + C144 * s23r, m1i = ai + C72 * s14i + C144 * s23i;
      const m2r = ar + C144 * s14r + C72 * s23r, m2i = ai + C144 * s14i + C72 * s23i;
      // Imaginary parts of ω5^r = e^{-2πir/5} give the -i·(sin terms) contributions.
      const n1r = S72 * d14r + S144 * d23r, n1i = S72 * d14i + S144 * d23i;
      const n2r = S144 * d14r - S72 * d23r, n2i = S144 * d14i - S72 * d23i;
      const b1r = m1r + n1i, b1i = m1i - n1r;
      const b4r = m1r - n1i, b4i = m1i + n1r;
      const b2r = m2r + n2i, b2i = m2i - n2r;
      const b3r = m2r - n2i, b3i = m2i + n2r;
      const o = k + s * 5 * q;
      yr[o] = ar + s14r + s23r;
      yi[o] = ai + s14i + s23i;
      let wr = twCos[base + 1], wi = twSin[base + 1];
      yr[o + s] = b1r * wr - b1i * wi;
      yi[o + s] = b1r * wi + b1i * wr;
      wr = twCos[base + 2]; wi = twSin[base + 2];
      yr[o + 2 * s] = b2r * wr - b2i * wi;
      yi[o + 2 * s] = b2r * wi + b2i * wr;
      wr = twCos[base + 3]; wi = twSin[base + 3];
      yr[o + 3 * s] = b3r * wr - b3i * wi;
      yi[o + 3 * s] = b3r * wi + b3i * wr;
      wr = twCos[base + 4]; wi = twSin[base + 4];
      yr[o + 4 * s] = b4r * wr - b4i * wi;
      yi[o + 4 * s] = b4r * wi + b4i * wr;
    }
  }
}
