/**
 * Long-form transcription: OpenAI's seek loop over 30 s windows.
 *
 * From `seek` (a mel frame), take the next 30 s, decode it (the engine falls back to higher
 * temperatures on a bad result), skip it when it is silent, split its tokens into timed segments
 * (src/core/transcribe/segments.ts), and move `seek` to the last complete timestamp, or past the
 * window when the output says nothing follows. The text of the emitted segments is carried into
 * the next window as its prompt, unless the caller turned that off or the window needed a
 * temperature above 0.5 (a model that had to be shaken loose should not be fed its own output).
 *
 * Beyond OpenAI:
 * - Each window's spectrogram is computed from its own audio slice (window-mel.ts), and the prompt
 *   kept between windows is only as long as the decoder reads, so memory does not grow with the
 *   audio's length; only the segments (the output) do.
 * - Segment and word times are made monotonic and kept within the audio: a start before the
 *   previous end is moved up to it, an end past the audio's end is clamped, and a segment left
 *   with no duration (or no text) is not emitted. Ids stay consecutive. OpenAI keeps such
 *   segments with empty text; we drop them so every emitted segment can be a subtitle cue.
 * - A window whose only complete timestamp is <|0.00|> would make OpenAI decode the same window
 *   again; here it is consumed whole. More generally `seek` always moves forward.
 *
 * With word timestamps the engine aligns each window's words (src/core/timing), the next window
 * starts after the last word, and optionally OpenAI's hallucination guard drops invented segments
 * surrounded by silence (src/core/timing/hallucination.ts decides; this loop applies it).
 */
import { HOP_LENGTH, N_FRAMES, SAMPLE_RATE } from '../audio/mel.ts';
import { AbortError, AudioError, MurmurError } from '../errors.ts';
import type { EncodedWindow, TranscriptionEngine, WindowDecoding, WordAlignment } from './engine.ts';
import type { TranscriptionResult, TranscriptionSegment, TranscriptionWord } from './result.ts';
import { clampSpan, roundTime, splitWindowTokens, textTokens } from './segments.ts';
import type { WindowSegment } from './segments.ts';
import { windowLogMel } from './window-mel.ts';
import { skipHallucinatedSilence } from '../timing/hallucination.ts';

export interface LongFormOptions {
  /** Language code; absent: detected from the first 30 s (multilingual models), 'en' otherwise. */
  language?: string;
  /** Text to condition the first window on (names, spelling, style). */
  initialPrompt?: string;
  /** Carry each window's text into the next as its prompt (default true). */
  conditionOnPreviousText?: boolean;
  /** Ask the engine for word timestamps (segment.words) and seek to the last word's end. */
  wordTimestamps?: boolean;
  /**
   * With word timestamps: when a segment looks invented (improbable, too short or too long words)
   * and is surrounded by more than this many seconds of silence, drop it and what follows in its
   * window, and skip the silence (OpenAI's hallucination_silence_threshold). Default: off.
   */
  hallucinationSilenceThreshold?: number;
  /**
   * A window is silent, and skipped, when its no-speech probability is above noSpeechThreshold
   * (default 0.6) and its average log-probability below logProbThreshold (default −1). null turns
   * the check (or its log-probability half) off.
   */
  noSpeechThreshold?: number | null;
  logProbThreshold?: number | null;
  /**
   * Only transcribe these stretches: [start, end, start, end, ...] in seconds (an odd count leaves
   * the last one open to the end); as a string, comma-separated. Default: all of the audio.
   */
  clipTimestamps?: number[] | string;
  /** Called with each segment as soon as it is final, in order. */
  onSegment?: (segment: TranscriptionSegment) => void;
  signal?: AbortSignal;
}

const FRAMES_PER_SECOND = SAMPLE_RATE / HOP_LENGTH;
/** Above this temperature the window's text is not fed to the next window. */
const PROMPT_RESET_TEMPERATURE = 0.5;

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError('transcription');
}

/** [startFrame, endFrame) pairs from clip timestamps, as OpenAI reads them. */
export function clipRanges(clipTimestamps: number[] | string | undefined, contentFrames: number): [number, number][] {
  const seconds =
    typeof clipTimestamps === 'string'
      ? clipTimestamps.split(',').filter((part) => part.trim() !== '').map((part) => Number(part))
      : clipTimestamps ?? [];
  seconds.forEach((value, i) => {
    if (!Number.isFinite(value) || value < 0) throw new AudioError(`clip timestamp ${i} is ${value}, not a number of seconds ≥ 0`);
  });
  const points = seconds.map((value) => Math.min(Math.round(value * FRAMES_PER_SECOND), contentFrames));
  if (points.length === 0) points.push(0);
  if (points.length % 2 === 1) points.push(contentFrames);
  const ranges: [number, number][] = [];
  for (let i = 0; i < points.length; i += 2) ranges.push([points[i]!, points[i + 1]!]);
  return ranges;
}

/** Holds a window encoded for language detection so the first decode can use it too. */
interface PendingWindow {
  seek: number;
  window: EncodedWindow;
}

export async function transcribeLongForm(audio: Float32Array, engine: TranscriptionEngine, options: LongFormOptions = {}): Promise<TranscriptionResult> {
  const { tokenizer, nTextCtx } = engine;
  const { signal, onSegment } = options;
  const conditionOnPreviousText = options.conditionOnPreviousText ?? true;
  const noSpeechThreshold = options.noSpeechThreshold === undefined ? 0.6 : options.noSpeechThreshold;
  const logProbThreshold = options.logProbThreshold === undefined ? -1 : options.logProbThreshold;
  const { hallucinationSilenceThreshold } = options;
  if (hallucinationSilenceThreshold !== undefined && !options.wordTimestamps) {
    throw new MurmurError('DECODING_OPTIONS', 'hallucinationSilenceThreshold needs wordTimestamps: the silences are found from the words');
  }
  if (N_FRAMES % engine.nAudioCtx !== 0) throw new MurmurError('DECODER', `${N_FRAMES} mel frames do not divide into ${engine.nAudioCtx} audio positions`);
  const inputStride = N_FRAMES / engine.nAudioCtx;
  const frameSeconds = HOP_LENGTH / SAMPLE_RATE;
  const duration = audio.length / SAMPLE_RATE;
  const contentFrames = Math.floor(audio.length / HOP_LENGTH);
  const clips = clipRanges(options.clipTimestamps, contentFrames);
  const melOptions = { nMels: engine.nMels, ...(engine.melFilters ? { filters: engine.melFilters } : {}) };
  // The decoder reads at most this many prompt tokens (the latest ones); keeping more would only grow.
  const promptLimit = Math.max(0, Math.floor(nTextCtx / 2) - 1);

  checkAborted(signal);
  let pending: PendingWindow | undefined;
  let language = options.language;
  try {
    if (language === undefined) {
      if (!engine.multilingual) language = 'en';
      else {
        // OpenAI detects from the first 30 s of the recording, whatever the clips.
        const window = await engine.encodeWindow(windowLogMel(audio, 0, melOptions), { seek: 0, frames: Math.min(N_FRAMES, contentFrames) }, signal);
        pending = { seek: 0, window };
        checkAborted(signal);
        language = (await window.detectLanguage(signal)).language;
      }
    }

    const initialPrompt = options.initialPrompt === undefined ? [] : tokenizer.encode(' ' + options.initialPrompt.trim());
    let prompt = initialPrompt.slice(-promptLimit);
    const segments: TranscriptionSegment[] = [];
    let previousEnd = 0;
    let previousWordEnd = 0;
    let lastSpeechTimestamp = 0;

    let clipIndex = 0;
    let seek = clips[0]![0];
    while (clipIndex < clips.length) {
      const [clipStart, clipEnd] = clips[clipIndex]!;
      if (seek < clipStart) seek = clipStart;
      if (seek >= clipEnd) {
        clipIndex++;
        if (clipIndex < clips.length) seek = clips[clipIndex]![0];
        continue;
      }
      checkAborted(signal);
      const timeOffset = seek * frameSeconds;
      const frames = Math.min(N_FRAMES, contentFrames - seek, clipEnd - seek);
      const endSample = clipEnd >= contentFrames ? audio.length : clipEnd * HOP_LENGTH;

      let window: EncodedWindow;
      if (pending && pending.seek === seek && endSample === audio.length) {
        window = pending.window;
      } else {
        pending?.window.dispose();
        window = await engine.encodeWindow(windowLogMel(audio, seek, { ...melOptions, endSample }), { seek, frames }, signal);
      }
      pending = undefined;

      let result: WindowDecoding;
      let split: ReturnType<typeof splitWindowTokens>;
      let alignments: WordAlignment[] | undefined;
      let keep = 0;
      const windowSeek = seek;
      try {
        checkAborted(signal);
        result = await window.decode({ prompt: prompt.slice(), language }, signal);
        checkAborted(signal);
        if (noSpeechThreshold !== null && result.noSpeechProb > noSpeechThreshold && !(logProbThreshold !== null && result.avgLogProb > logProbThreshold)) {
          seek += frames;
          continue;
        }
        split = splitWindowTokens(result.tokens, tokenizer, { timeOffset, frames, inputStride, frameSeconds });
        seek += split.advance;
        keep = split.segments.length;
        if (options.wordTimestamps) {
          if (!window.alignWords) throw new MurmurError('UNSUPPORTED', 'word timestamps are not available with this engine');
          alignments = await window.alignWords({ segments: split.segments, seek: windowSeek, timeOffset, language, frames, lastSpeechTimestamp }, signal);
          checkAborted(signal);
          if (alignments.length !== split.segments.length) {
            throw new MurmurError('DECODER', `word alignment gave ${alignments.length} segments for ${split.segments.length}`);
          }
          const timed = split.segments.map((segment, i) => ({ start: alignments![i]!.start ?? segment.start, end: alignments![i]!.end ?? segment.end, words: alignments![i]!.words }));
          const lastWordEnd = (upTo: number) => timed.slice(0, upTo).flatMap((segment) => segment.words).at(-1)?.end;
          // As OpenAI: with words known, the next window starts after the last word rather than at the last timestamp.
          const wordsEnd = lastWordEnd(timed.length);
          if (wordsEnd !== undefined && !split.singleTimestampEnding) {
            const shift = Math.round((wordsEnd - timeOffset) * FRAMES_PER_SECOND);
            if (shift > 0) seek = windowSeek + shift;
          }
          if (hallucinationSilenceThreshold !== undefined) {
            const decision = skipHallucinatedSilence({
              segments: timed,
              threshold: hallucinationSilenceThreshold,
              previousSeek: windowSeek,
              seek,
              segmentSize: frames,
              singleTimestampEnding: split.singleTimestampEnding,
              lastSpeechTimestamp,
              contentFrames,
            });
            seek = decision.seek > windowSeek ? decision.seek : windowSeek + frames;
            // The window opened with an invented segment after silence: decode again from where the speech starts.
            if (decision.retry) continue;
            keep = decision.keep;
          }
          lastSpeechTimestamp = lastWordEnd(keep) ?? lastSpeechTimestamp;
        }
      } finally {
        window.dispose();
      }

      const emitted: TranscriptionSegment[] = [];
      split.segments.slice(0, keep).forEach((raw: WindowSegment, i) => {
        const alignment = alignments?.[i];
        const text = tokenizer.decode(textTokens(raw.tokens, tokenizer));
        if (text.trim() === '') return;
        const span = clampSpan(alignment?.start ?? raw.start, alignment?.end ?? raw.end, previousEnd, duration);
        if (!span) return;
        const segment: TranscriptionSegment = {
          id: segments.length,
          seek: windowSeek,
          start: span.start,
          end: span.end,
          text,
          tokens: raw.tokens,
          temperature: result.temperature,
          avg_logprob: result.avgLogProb,
          compression_ratio: result.compressionRatio,
          no_speech_prob: result.noSpeechProb,
        };
        if (alignment) {
          segment.words = monotonicWords(alignment.words, Math.max(span.start, previousWordEnd), span.end);
          previousWordEnd = segment.words.at(-1)?.end ?? previousWordEnd;
        }
        previousEnd = span.end;
        segments.push(segment);
        emitted.push(segment);
        onSegment?.(segment);
      });

      if (!conditionOnPreviousText || result.temperature > PROMPT_RESET_TEMPERATURE) prompt = [];
      else prompt = [...prompt, ...emitted.flatMap((segment) => segment.tokens)].slice(-promptLimit);
    }

    const text = tokenizer.decode(segments.flatMap((segment) => textTokens(segment.tokens, tokenizer)));
    return { text, language, segments };
  } finally {
    pending?.window.dispose();
  }
}

/** Words moved into [from, to] and made non-decreasing: a word never starts before the previous one ends. */
function monotonicWords(words: readonly TranscriptionWord[], from: number, to: number): TranscriptionWord[] {
  let previous = from;
  return words.map((word) => {
    const start = roundTime(Math.min(Math.max(word.start, previous), to));
    const end = roundTime(Math.min(Math.max(word.end, start), to));
    previous = end;
    return { ...word, start, end };
  });
}
