/**
 * Sample-rate conversion of a stream that arrives in chunks (a microphone), giving exactly the
 * samples the block resampler (./resample.ts) gives for the whole stream at once.
 *
 * For a ratio that reduces to up/down, output sample k sits at input time k·down/up, so a slice of
 * the input that starts at a multiple of `down` maps onto whole output samples: each chunk resamples
 * the slice that reaches back far enough to cover the filter's left half, and keeps the outputs whose
 * right half is already in. Only rational ratios qualify (every common device rate does).
 */
import { AudioError } from '../errors.ts';
import { resampleToLength } from './resample.ts';

/**
 * Input samples on either side of an output sample that the filter reads: resample.ts designs its
 * filter (90 dB, transition 0.1 of the lower Nyquist) about 57.2 input samples wide per side when
 * upsampling, 57.2·from/to when downsampling. Rounded up with room to spare.
 */
const HALF_WIDTH_AT_UNIT_BAND = 60;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

export class StreamingResampler {
  private readonly up: number;
  private readonly down: number;
  private readonly margin: number;
  /** Input from absolute sample `inputBase` on. */
  private input = new Float32Array(0);
  private inputBase = 0;
  private inputLength = 0;
  /** Outputs produced so far. */
  private produced = 0;

  constructor(readonly fromRate: number, readonly toRate = 16000) {
    for (const [rate, which] of [[fromRate, 'input'], [toRate, 'output']] as const) {
      if (!Number.isInteger(rate) || rate <= 0) throw new AudioError(`streaming resampler: the ${which} sample rate must be a positive integer, got ${rate}`);
    }
    const g = gcd(fromRate, toRate);
    this.up = toRate / g;
    this.down = fromRate / g;
    if (this.up > 1024) throw new AudioError(`streaming resampler: ${fromRate} Hz → ${toRate} Hz is not a ratio of small integers (${this.up}/${this.down})`);
    this.margin = Math.ceil(HALF_WIDTH_AT_UNIT_BAND * Math.max(1, fromRate / toRate)) + 2;
  }

  /** Resamples the next chunk; returns the outputs it completes (possibly none). */
  push(chunk: Float32Array): Float32Array {
    this.append(chunk);
    const inputEnd = this.inputBase + this.inputLength;
    // Outputs whose filter window lies inside the input received so far.
    const ready = Math.max(this.produced, Math.floor(((inputEnd - this.margin) * this.up) / this.down));
    return this.emit(ready);
  }

  /** Ends the stream: the remaining outputs, as the block resampler pads with zeros. */
  flush(): Float32Array {
    const total = Math.round(((this.inputBase + this.inputLength) * this.toRate) / this.fromRate);
    return this.emit(Math.max(this.produced, total));
  }

  private emit(until: number): Float32Array {
    if (until <= this.produced) return new Float32Array(0);
    if (this.fromRate === this.toRate) {
      const out = this.input.slice(this.produced - this.inputBase, until - this.inputBase);
      this.produced = until;
      this.forget(this.produced);
      return out;
    }
    // Start the slice at a multiple of `down`, far enough back for the first output's left half.
    const firstInput = Math.floor((this.produced * this.down) / this.up) - this.margin;
    const sliceStart = Math.max(0, Math.floor(firstInput / this.down) * this.down);
    if (sliceStart < this.inputBase) throw new AudioError('streaming resampler: needed input was discarded');
    const sliceOutput = (sliceStart / this.down) * this.up;
    const slice = this.input.subarray(sliceStart - this.inputBase, this.inputLength);
    const all = resampleToLength(slice, this.fromRate, this.toRate, until - sliceOutput);
    const out = all.slice(this.produced - sliceOutput);
    this.produced = until;
    this.forget(Math.floor((this.produced * this.down) / this.up) - this.margin - this.down);
    return out;
  }

  private append(chunk: Float32Array): void {
    if (this.inputLength + chunk.length > this.input.length) {
      const grown = new Float32Array(Math.max(2 * this.input.length, this.inputLength + chunk.length, 4096));
      grown.set(this.input.subarray(0, this.inputLength));
      this.input = grown;
    }
    this.input.set(chunk, this.inputLength);
    this.inputLength += chunk.length;
  }

  /** Drops input before absolute sample `sample`. */
  private forget(sample: number): void {
    const drop = Math.min(this.inputLength, sample - this.inputBase);
    if (drop <= 0) return;
    this.input.copyWithin(0, drop, this.inputLength);
    this.inputLength -= drop;
    this.inputBase += drop;
  }
}
