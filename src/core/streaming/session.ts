/**
 * Live dictation over a stream of 16 kHz audio: voice activity detection decides when someone
 * speaks; while they do, the utterance so far is transcribed again every `stepSeconds` of new
 * audio, and the words two consecutive hypotheses agree on (LocalAgreement-2) become confirmed.
 * When the utterance ends, the whole of it is transcribed once more and the words not yet
 * confirmed are confirmed from that pass, so an utterance's confirmed text is the offline
 * transcription of its audio whenever the earlier confirmations agree with it (they are prefixes
 * of it in practice; see `finish`).
 *
 * Confirmed text never changes once emitted. Nothing is decoded during silence.
 *
 * Whisper pads every input to a 30 s window, so re-transcribing the whole utterance costs about
 * the same as transcribing its tail; the interim buffer is therefore only trimmed (at the end of a
 * confirmed word, with the confirmed text as the prompt) once it grows past `trimSeconds`.
 */
import type { TranscribeOptions, TranscriptionResult, TranscriptionWord } from '../transcriber.ts';
import { AudioError, MurmurError } from '../errors.ts';
import { VAD_FRAME_SAMPLES, VAD_SAMPLE_RATE, VoiceActivityDetector, type VadOptions } from './vad.ts';

/** What the session needs of a transcriber: tests inject a scripted one. */
export interface StreamingTranscriber {
  transcribe(audio: Float32Array, options?: TranscribeOptions): Promise<TranscriptionResult>;
}

export interface LiveWord {
  word: string;
  /** Seconds from the start of the session. */
  start: number;
  end: number;
  probability?: number;
}

export interface LiveTextEvent {
  type: 'tentative' | 'confirmed';
  /**
   * 'confirmed': the newly confirmed words, to append to what was confirmed before.
   * 'tentative': the current guess for everything after the confirmed text (replaces the previous guess).
   */
  text: string;
  /** Seconds from the start of the session. */
  start: number;
  end: number;
  words?: LiveWord[];
  /** Which utterance, from 0. */
  utterance: number;
}

export type LiveEvent =
  | LiveTextEvent
  | { type: 'speech-start'; time: number; utterance: number }
  | {
      type: 'speech-end';
      time: number;
      utterance: number;
      /** Everything confirmed in this utterance. */
      text: string;
      /** The audio span (seconds) the final pass transcribed. */
      audioStart: number;
      audioEnd: number;
    };

export interface LiveSessionOptions {
  onEvent: (event: LiveEvent) => void;
  /** Called when a decode fails; the session stops. */
  onError?: (error: unknown) => void;
  language?: string;
  /** Options for every transcription, interim and final (default: temperature 0). */
  transcribe?: Omit<TranscribeOptions, 'signal' | 'wordTimestamps' | 'onSegment'>;
  /** New audio (seconds) between interim decodes (default 0.5). */
  stepSeconds?: number;
  /** Audio kept before a detected onset (default 0.3 s), so the first syllable is not clipped. */
  prerollSeconds?: number;
  /**
   * Interim decodes stop after this many tokens per second of audio, plus 8 (default 8, about twice
   * what English speech needs), so a hypothesis that loops cannot hold the engine for the whole
   * window's 224 tokens. The final pass is not limited (it must equal the offline transcription).
   */
  interimTokensPerSecond?: number;
  /**
   * No interim decode starts while the speaker has been silent this long (seconds, default 0.12):
   * the pause may be the end of the utterance, whose final pass should not wait for an interim
   * decode of silence. Infinity: decode regardless.
   */
  pauseSeconds?: number;
  /** Trim the interim buffer once it is longer than this (default 10 s). */
  trimSeconds?: number;
  /** An utterance longer than this is ended and finalized (default 28 s, under Whisper's window). */
  maxUtteranceSeconds?: number;
  vad?: VadOptions;
  /**
   * Ask for word timestamps in the final pass (default false). With them, Whisper's long-form loop
   * seeks to the last word and encodes the rest of the utterance as another window, which doubled
   * the confirmed latency in the live bench (tiny.en, WASM: 3.0 s → 1.6 s without). Without them
   * (or on models without alignment heads) words get their segment's time spread evenly and its
   * average probability.
   */
  wordTimestamps?: boolean;
  /**
   * Word timestamps in interim decodes too (default false). With word timestamps, Whisper's
   * long-form loop starts another window after the last word, so a decode of speech still going on
   * encodes twice; without them an interim decode is one encoder pass and its words get times
   * spread over their segment. The final pass always follows `wordTimestamps`.
   */
  interimWordTimestamps?: boolean;
}

interface Utterance {
  index: number;
  /** Absolute sample index where its audio starts. */
  startSample: number;
  /** Absolute sample index where the interim buffer starts (after trimming). */
  windowSample: number;
  confirmed: LiveWord[];
  previous: LiveWord[] | undefined;
  samplesAtLastDecode: number;
  ended: boolean;
  endSample: number;
}

const SILENT_TAIL_SECONDS = 0.15;

export class LiveSession {
  private readonly vad: VoiceActivityDetector;
  private readonly options: LiveSessionOptions;
  private readonly stepSamples: number;
  private readonly prerollSamples: number;
  private readonly trimSamples: number;
  private readonly maxUtteranceSamples: number;
  private readonly interimTokensPerSecond: number;
  private readonly pauseFrames: number;
  private readonly controller = new AbortController();
  /** Audio from absolute sample `base` on. */
  private audio = new Float32Array(VAD_SAMPLE_RATE * 4);
  private audioLength = 0;
  private base = 0;
  private utterance: Utterance | undefined;
  private finishing: Utterance[] = [];
  private utteranceCount = 0;
  private work: Promise<void> = Promise.resolve();
  private busy = false;
  private failed: unknown;
  private closed = false;
  private wordTimestamps: boolean;
  /** Cancels the interim decode in flight when its utterance ends, so the final pass starts sooner. */
  private interimController: AbortController | undefined;
  /** Transcriptions run so far (interim and final), to check that silence costs nothing. */
  decodes = 0;

  constructor(private readonly transcriber: StreamingTranscriber, options: LiveSessionOptions) {
    this.options = options;
    this.vad = new VoiceActivityDetector(options.vad);
    this.wordTimestamps = options.wordTimestamps ?? false;
    this.stepSamples = Math.round((options.stepSeconds ?? 0.5) * VAD_SAMPLE_RATE);
    this.prerollSamples = Math.round((options.prerollSeconds ?? 0.3) * VAD_SAMPLE_RATE);
    this.trimSamples = Math.round((options.trimSeconds ?? 10) * VAD_SAMPLE_RATE);
    this.maxUtteranceSamples = Math.round((options.maxUtteranceSeconds ?? 28) * VAD_SAMPLE_RATE);
    this.interimTokensPerSecond = options.interimTokensPerSecond ?? 8;
    this.pauseFrames = Math.ceil(((options.pauseSeconds ?? 0.12) * VAD_SAMPLE_RATE) / VAD_FRAME_SAMPLES);
    if (!(this.stepSamples > 0)) throw new AudioError(`live session: stepSeconds must be positive, got ${options.stepSeconds}`);
  }

  /** Seconds of audio received. */
  get time(): number {
    return (this.base + this.audioLength) / VAD_SAMPLE_RATE;
  }

  get speaking(): boolean {
    return this.utterance !== undefined;
  }

  /** Adds 16 kHz mono samples; decoding happens in the background. */
  push(samples: Float32Array): void {
    // After a failed decode the error goes to onError and stop(); late audio is dropped.
    if (this.failed) return;
    if (this.closed) throw new AudioError('live session: audio pushed after stop()');
    const at = this.base + this.audioLength;
    this.append(samples);
    for (const event of this.vad.push(samples)) {
      const sample = Math.round(event.time * VAD_SAMPLE_RATE);
      if (event.type === 'speech-start') this.begin(sample);
      else this.end(sample + Math.round(SILENT_TAIL_SECONDS * VAD_SAMPLE_RATE));
    }
    if (this.utterance && at + samples.length - this.utterance.startSample >= this.maxUtteranceSamples) {
      this.end(at + samples.length);
    }
    if (!this.utterance) this.forgetBefore(this.base + this.audioLength - this.prerollSamples - VAD_SAMPLE_RATE);
    this.schedule();
  }

  /** Ends the stream: finalizes an utterance in progress and resolves when every event is out. */
  async stop(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      if (this.vad.flush().length > 0 && this.utterance) this.end(this.base + this.audioLength);
      this.schedule();
    }
    await this.idle();
    if (this.failed) throw this.failed;
  }

  /** Stops at once: cancels the decode in flight, emits nothing more. */
  abort(): void {
    this.closed = true;
    this.utterance = undefined;
    this.finishing = [];
    this.controller.abort();
  }

  /** Resolves when no decode is running or due. */
  async idle(): Promise<void> {
    for (;;) {
      const pending = this.work;
      await pending;
      if (pending === this.work && !this.busy) return;
    }
  }

  private begin(sample: number): void {
    const startSample = Math.max(this.base, sample - this.prerollSamples);
    const index = this.utteranceCount++;
    this.utterance = { index, startSample, windowSample: startSample, confirmed: [], previous: undefined, samplesAtLastDecode: startSample, ended: false, endSample: 0 };
    this.emit({ type: 'speech-start', time: sample / VAD_SAMPLE_RATE, utterance: index });
  }

  private end(sample: number): void {
    const utterance = this.utterance;
    if (!utterance) return;
    utterance.ended = true;
    utterance.endSample = Math.min(sample, this.base + this.audioLength);
    this.interimController?.abort();
    this.finishing.push(utterance);
    this.utterance = undefined;
  }

  private schedule(): void {
    if (this.busy || this.failed || !this.hasJob()) return;
    this.busy = true;
    this.work = this.work.then(async () => {
      try {
        // Audio that arrived while the previous decode ran waits in the event loop's queue (the
        // worker's messages); let it in first, so this decode hears all of it.
        await yieldToEventLoop();
        const next = this.nextJob();
        if (next) await next();
      } catch (error) {
        if (this.controller.signal.aborted) return;
        this.failed = error;
        this.closed = true;
        this.options.onError?.(error);
      } finally {
        this.busy = false;
      }
      this.schedule();
    });
  }

  private hasJob(): boolean {
    if (this.controller.signal.aborted) return false;
    return this.finishing.length > 0 || this.interimDue();
  }

  /** Enough new audio since the last interim decode, and the speaker is not pausing. */
  private interimDue(): boolean {
    const utterance = this.utterance;
    if (!utterance || this.base + this.audioLength - utterance.samplesAtLastDecode < this.stepSamples) return false;
    return this.vad.silentFrames < this.pauseFrames;
  }

  private nextJob(): (() => Promise<void>) | undefined {
    if (this.controller.signal.aborted) return undefined;
    const finishing = this.finishing.shift();
    if (finishing) return () => this.finish(finishing);
    const utterance = this.utterance;
    if (utterance && this.interimDue()) return () => this.interim(utterance);
    return undefined;
  }

  private transcribeOptions(initialPrompt: string | undefined, signal = this.controller.signal, interimSamples?: number): TranscribeOptions {
    const interim = interimSamples !== undefined;
    const wordTimestamps = this.wordTimestamps && (!interim || (this.options.interimWordTimestamps ?? false));
    const options: TranscribeOptions = { temperature: 0, ...this.options.transcribe, wordTimestamps, signal };
    if (this.options.language !== undefined) options.language = this.options.language;
    if (initialPrompt) options.initialPrompt = initialPrompt;
    if (interimSamples !== undefined && Number.isFinite(this.interimTokensPerSecond)) {
      const budget = Math.ceil((this.interimTokensPerSecond * interimSamples) / VAD_SAMPLE_RATE) + 8;
      options.maxTokens = Math.min(options.maxTokens ?? budget, budget);
    }
    return options;
  }

  private async interim(utterance: Utterance): Promise<void> {
    const endSample = this.base + this.audioLength;
    utterance.samplesAtLastDecode = endSample;
    if (endSample - utterance.windowSample > this.trimSamples) this.trim(utterance);
    const prompt = utterance.windowSample > utterance.startSample ? joinWords(utterance.confirmed).trim() : this.options.transcribe?.initialPrompt;
    const audio = this.slice(utterance.windowSample, endSample);
    const controller = new AbortController();
    this.interimController = controller;
    let result: TranscriptionResult;
    try {
      result = await this.decode(audio, prompt, AbortSignal.any([this.controller.signal, controller.signal]), true);
    } catch (error) {
      if (controller.signal.aborted && !this.controller.signal.aborted) return;
      throw error;
    } finally {
      this.interimController = undefined;
    }
    if (this.controller.signal.aborted || utterance.ended) return;
    const hypothesis = unconfirmedTail(wordsOf(result, utterance.windowSample / VAD_SAMPLE_RATE), utterance.confirmed);
    if (utterance.previous) {
      const agreed = commonPrefix(utterance.previous, hypothesis);
      if (agreed > 0) this.confirm(utterance, hypothesis.slice(0, agreed));
      utterance.previous = hypothesis.slice(agreed);
    } else {
      utterance.previous = hypothesis;
    }
    const tentative = utterance.previous;
    this.emit({ type: 'tentative', text: joinWords(tentative), start: tentative[0]?.start ?? endSample / VAD_SAMPLE_RATE, end: tentative.at(-1)?.end ?? endSample / VAD_SAMPLE_RATE, words: tentative, utterance: utterance.index });
  }

  /**
   * The final pass over the whole utterance. Its first words are normally the confirmed ones; if the
   * model changed its mind about them, confirmation cannot be undone, so only the words after the
   * last confirmed word's end are added.
   */
  private async finish(utterance: Utterance): Promise<void> {
    const audio = this.slice(utterance.startSample, utterance.endSample);
    const result = await this.decode(audio, this.options.transcribe?.initialPrompt);
    if (this.controller.signal.aborted) return;
    const rest = unconfirmedTail(wordsOf(result, utterance.startSample / VAD_SAMPLE_RATE), utterance.confirmed);
    if (rest.length > 0) this.confirm(utterance, rest);
    const endTime = utterance.endSample / VAD_SAMPLE_RATE;
    this.emit({ type: 'tentative', text: '', start: endTime, end: endTime, words: [], utterance: utterance.index });
    this.emit({
      type: 'speech-end',
      time: endTime,
      utterance: utterance.index,
      text: joinWords(utterance.confirmed),
      audioStart: utterance.startSample / VAD_SAMPLE_RATE,
      audioEnd: endTime,
    });
    if (!this.utterance) this.forgetBefore(this.base + this.audioLength - this.prerollSamples - VAD_SAMPLE_RATE);
  }

  private async decode(audio: Float32Array, prompt: string | undefined, signal = this.controller.signal, interim = false): Promise<TranscriptionResult> {
    this.decodes++;
    const options = () => this.transcribeOptions(prompt, signal, interim ? audio.length : undefined);
    try {
      return await this.transcriber.transcribe(audio, options());
    } catch (error) {
      const noAlignment = error instanceof MurmurError && error.code === 'UNSUPPORTED' && /alignment heads/.test(error.message);
      if (!noAlignment || !this.wordTimestamps) throw error;
      this.wordTimestamps = false;
      return await this.transcriber.transcribe(audio, options());
    }
  }

  /** The options of every pass, interim and final alike, so the final pass equals an offline run. */
  finalOptions(): TranscribeOptions {
    const { signal: _signal, ...options } = this.transcribeOptions(this.options.transcribe?.initialPrompt);
    return options;
  }

  private confirm(utterance: Utterance, words: LiveWord[]): void {
    utterance.confirmed.push(...words);
    this.emit({ type: 'confirmed', text: joinWords(words), start: words[0]!.start, end: words.at(-1)!.end, words, utterance: utterance.index });
  }

  /** Moves the interim window's start to the end of the last confirmed word. */
  private trim(utterance: Utterance): void {
    const last = utterance.confirmed.at(-1);
    if (!last) return;
    utterance.windowSample = Math.max(utterance.windowSample, Math.round(last.end * VAD_SAMPLE_RATE));
  }

  private emit(event: LiveEvent): void {
    if (this.controller.signal.aborted) return;
    this.options.onEvent(event);
  }

  private append(samples: Float32Array): void {
    for (let i = 0; i < samples.length; i++) {
      if (!Number.isFinite(samples[i]!)) throw new AudioError(`live session: sample ${this.base + this.audioLength + i} is ${samples[i]}, not a finite number`);
    }
    if (this.audioLength + samples.length > this.audio.length) {
      const grown = new Float32Array(Math.max(this.audio.length * 2, this.audioLength + samples.length));
      grown.set(this.audio.subarray(0, this.audioLength));
      this.audio = grown;
    }
    this.audio.set(samples, this.audioLength);
    this.audioLength += samples.length;
  }

  /** Drops audio before absolute sample `sample`, unless an utterance still needs it. */
  private forgetBefore(sample: number): void {
    let keepFrom = sample;
    for (const utterance of [this.utterance, ...this.finishing]) if (utterance) keepFrom = Math.min(keepFrom, utterance.startSample);
    const drop = Math.min(this.audioLength, keepFrom - this.base);
    if (drop <= 0) return;
    this.audio.copyWithin(0, drop, this.audioLength);
    this.audioLength -= drop;
    this.base += drop;
  }

  private slice(from: number, to: number): Float32Array {
    if (from < this.base) throw new AudioError(`live session: audio from sample ${from} was already discarded`);
    return this.audio.slice(from - this.base, to - this.base);
  }
}

/** The result's words in session time; segments without word timings get evenly spread words with the segment's mean token probability. */
export function wordsOf(result: TranscriptionResult, offsetSeconds: number): LiveWord[] {
  const words: LiveWord[] = [];
  for (const segment of result.segments) {
    if (segment.words) {
      for (const word of segment.words) words.push(liveWord(word, offsetSeconds));
      continue;
    }
    const parts = segment.text.match(/\s*\S+/g) ?? [];
    const span = (segment.end - segment.start) / Math.max(1, parts.length);
    const probability = Math.exp(segment.avg_logprob);
    parts.forEach((word, i) =>
      words.push({
        word,
        start: offsetSeconds + segment.start + i * span,
        end: offsetSeconds + segment.start + (i + 1) * span,
        ...(Number.isFinite(probability) ? { probability } : {}),
      }),
    );
  }
  return words;
}

function liveWord(word: TranscriptionWord, offsetSeconds: number): LiveWord {
  return { word: word.word, start: offsetSeconds + word.start, end: offsetSeconds + word.end, probability: word.probability };
}

/** Compares words as spoken: case, punctuation and spacing aside. */
export function normalizeWord(word: string): string {
  return word.toLowerCase().replace(/[^\p{L}\p{N}']+/gu, '');
}

/** How many leading words two hypotheses share. */
export function commonPrefix(a: LiveWord[], b: LiveWord[]): number {
  let n = 0;
  while (n < a.length && n < b.length && normalizeWord(a[n]!.word) === normalizeWord(b[n]!.word)) n++;
  return n;
}

/**
 * The part of a hypothesis after the confirmed words: by position when it starts with them (the
 * usual case), else by time (words starting after the last confirmed word's middle).
 */
export function unconfirmedTail(hypothesis: LiveWord[], confirmed: LiveWord[]): LiveWord[] {
  if (confirmed.length === 0) return hypothesis;
  if (commonPrefix(hypothesis, confirmed) === confirmed.length) return hypothesis.slice(confirmed.length);
  const last = confirmed.at(-1)!;
  const boundary = (last.start + last.end) / 2;
  return hypothesis.filter((word) => word.start >= boundary);
}

/** A macrotask boundary: whatever the event loop has queued (audio messages) runs before we go on. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export function joinWords(words: LiveWord[]): string {
  return words.map((w) => w.word).join('');
}
