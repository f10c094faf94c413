/**
 * Voice activity detection without a model: 30 ms frames at 16 kHz scored on loudness above an
 * adaptive noise floor and on spectral flatness (speech has harmonics and formants; broadband
 * noise is flat), with an onset that needs a few voiced-looking frames in a row and a hangover that
 * bridges the short pauses between words.
 *
 * The noise floor follows the quietest recent frames: it drops at once to a quieter frame and rises
 * slowly, and never while speech is active, so a steady fan or hiss becomes the new silence while
 * a talker does not.
 *
 * Feed samples in chunks of any size; events carry times in seconds from the first sample fed.
 */
import { AudioError } from '../errors.ts';
import { createRealFft } from '../audio/fft.ts';

export const VAD_SAMPLE_RATE = 16000;
export const VAD_FRAME_SAMPLES = 480;
const FRAME_SECONDS = VAD_FRAME_SAMPLES / VAD_SAMPLE_RATE;
const FFT_SIZE = 512;
/** Flatness is measured over the band speech energy lives in (bins of 31.25 Hz). */
const BAND_LOW_HZ = 250;
const BAND_HIGH_HZ = 4000;
/** Frames quieter than this (dBFS) are silence whatever the floor says. */
const ABSOLUTE_SILENCE_DB = -65;

export interface VadOptions {
  /** dB above the noise floor a frame must reach to count as speech (default 6). */
  thresholdDb?: number;
  /** A frame this far (dB) above the floor counts as speech whatever its spectrum (default 18). */
  loudDb?: number;
  /** Speech frames have a band spectral flatness below this (0..1; white noise ≈ 0.56; default 0.4). */
  maxFlatness?: number;
  /** Consecutive speech frames needed to declare an onset (default 4, 120 ms). */
  onsetFrames?: number;
  /** Silent frames after the last speech frame before declaring an offset (default 12, 360 ms). */
  hangoverFrames?: number;
  /** How fast the noise floor may rise, in dB per second (default 3). */
  floorRiseDbPerSecond?: number;
}

export type VadEvent =
  | { type: 'speech-start'; /** Seconds: start of the first speech frame of the onset. */ time: number }
  | { type: 'speech-end'; /** Seconds: end of the last speech frame. */ time: number };

export interface VadFrame {
  /** Seconds at the frame's start. */
  time: number;
  energyDb: number;
  floorDb: number;
  flatness: number;
  speechLike: boolean;
  active: boolean;
}

export class VoiceActivityDetector {
  private readonly thresholdDb: number;
  private readonly loudDb: number;
  private readonly maxFlatness: number;
  private readonly onsetFrames: number;
  private readonly hangoverFrames: number;
  private readonly floorRisePerFrame: number;
  private readonly fft = createRealFft(FFT_SIZE);
  private readonly frameBuffer = new Float64Array(FFT_SIZE);
  private readonly power = new Float64Array(FFT_SIZE / 2 + 1);
  private readonly window = hannWindow(VAD_FRAME_SAMPLES);
  private readonly windowPower = this.window.reduce((total, w) => total + w * w, 0);
  private readonly pending = new Float32Array(VAD_FRAME_SAMPLES);
  private pendingLength = 0;
  private framesSeen = 0;
  private floorDb = Number.NaN;
  private speechRun = 0;
  private silenceRun = 0;
  private lastSpeechFrame = -1;
  private isActive = false;
  /** Per-frame features of the last `push`, for tuning and tests. */
  readonly frames: VadFrame[] = [];
  keepFrames = false;

  constructor(options: VadOptions = {}) {
    this.thresholdDb = options.thresholdDb ?? 6;
    this.loudDb = options.loudDb ?? 18;
    this.maxFlatness = options.maxFlatness ?? 0.4;
    this.onsetFrames = positiveInteger(options.onsetFrames ?? 4, 'onsetFrames');
    this.hangoverFrames = positiveInteger(options.hangoverFrames ?? 12, 'hangoverFrames');
    this.floorRisePerFrame = (options.floorRiseDbPerSecond ?? 3) * FRAME_SECONDS;
  }

  /** True between a speech-start and the following speech-end. */
  get active(): boolean {
    return this.isActive;
  }

  /** Consecutive non-speech frames so far (0 while speech goes on): a pause that may become an offset. */
  get silentFrames(): number {
    return this.silenceRun;
  }

  /** Seconds of audio consumed so far (whole frames only). */
  get time(): number {
    return this.framesSeen * FRAME_SECONDS;
  }

  /** Consumes 16 kHz samples; returns the onsets and offsets they complete, in order. */
  push(samples: Float32Array): VadEvent[] {
    const events: VadEvent[] = [];
    let offset = 0;
    while (offset < samples.length) {
      const take = Math.min(VAD_FRAME_SAMPLES - this.pendingLength, samples.length - offset);
      this.pending.set(samples.subarray(offset, offset + take), this.pendingLength);
      this.pendingLength += take;
      offset += take;
      if (this.pendingLength === VAD_FRAME_SAMPLES) {
        this.pendingLength = 0;
        const event = this.frame(this.pending);
        if (event) events.push(event);
      }
    }
    return events;
  }

  /** Ends the stream: an utterance still active ends at its last speech frame. */
  flush(): VadEvent[] {
    if (!this.isActive) return [];
    this.isActive = false;
    this.speechRun = 0;
    return [{ type: 'speech-end', time: (this.lastSpeechFrame + 1) * FRAME_SECONDS }];
  }

  private frame(samples: Float32Array): VadEvent | undefined {
    const index = this.framesSeen++;
    for (let i = 0; i < VAD_FRAME_SAMPLES; i++) {
      const sample = samples[i]!;
      if (!Number.isFinite(sample)) throw new AudioError(`voice activity detection: sample ${index * VAD_FRAME_SAMPLES + i} is ${sample}, not a finite number`);
      this.frameBuffer[i] = sample * this.window[i]!;
    }
    const { energyDb, flatness } = this.bandFeatures();
    if (Number.isNaN(this.floorDb)) this.floorDb = energyDb;
    const above = energyDb - this.floorDb;
    const speechLike = energyDb > ABSOLUTE_SILENCE_DB && (above > this.loudDb || (above > this.thresholdDb && flatness < this.maxFlatness));

    let event: VadEvent | undefined;
    if (speechLike) {
      this.speechRun++;
      this.silenceRun = 0;
      this.lastSpeechFrame = index;
      if (!this.isActive && this.speechRun >= this.onsetFrames) {
        this.isActive = true;
        event = { type: 'speech-start', time: (index - this.onsetFrames + 1) * FRAME_SECONDS };
      }
    } else {
      this.speechRun = 0;
      this.silenceRun++;
      if (this.isActive && this.silenceRun >= this.hangoverFrames) {
        this.isActive = false;
        event = { type: 'speech-end', time: (this.lastSpeechFrame + 1) * FRAME_SECONDS };
      }
    }
    // Track the floor outside speech only (and not during a possible onset being counted).
    if (!this.isActive && this.speechRun === 0) {
      this.floorDb = energyDb < this.floorDb ? energyDb : Math.min(energyDb, this.floorDb + this.floorRisePerFrame);
    }
    if (this.keepFrames) this.frames.push({ time: index * FRAME_SECONDS, energyDb, floorDb: this.floorDb, flatness, speechLike, active: this.isActive });
    return event;
  }

  /**
   * Mean-square level (dBFS) and spectral flatness (geometric over arithmetic mean of the power
   * spectrum) between BAND_LOW_HZ and BAND_HIGH_HZ. Measuring the level in the band too keeps
   * rumble (traffic, brown noise) from looking like speech.
   */
  private bandFeatures(): { energyDb: number; flatness: number } {
    this.fft.powerSpectrum(this.frameBuffer, this.power);
    const binHz = VAD_SAMPLE_RATE / FFT_SIZE;
    const low = Math.ceil(BAND_LOW_HZ / binHz);
    const high = Math.floor(BAND_HIGH_HZ / binHz);
    let logSum = 0;
    let sum = 0;
    for (let k = low; k <= high; k++) {
      const p = this.power[k]! + 1e-20;
      logSum += Math.log(p);
      sum += p;
    }
    const n = high - low + 1;
    // Parseval over the one-sided spectrum, undoing the window's power.
    const meanSquare = (2 * sum) / (FFT_SIZE * this.windowPower);
    return { energyDb: 10 * Math.log10(meanSquare + 1e-12), flatness: Math.exp(logSum / n) / (sum / n) };
  }
}

function hannWindow(length: number): Float64Array {
  const window = new Float64Array(length);
  for (let i = 0; i < length; i++) window[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / length);
  return window;
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new AudioError(`voice activity detection: ${name} must be a positive integer, got ${value}`);
  return value;
}
