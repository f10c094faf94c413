/**
 * Guards against the two ways Whisper invents text: output that loops on a short pattern, and
 * words "heard" in silence. The silence guard is OpenAI's hallucination_silence_threshold logic
 * from transcribe.py: words that are very short, very long or improbable mark a segment as
 * suspect, and a suspect segment with silence around it is skipped.
 */
import { HOP_LENGTH, N_FRAMES, SAMPLE_RATE } from '../audio/mel.ts';
import { MurmurError } from '../errors.ts';
import { APPEND_PUNCTUATIONS, PREPEND_PUNCTUATIONS } from './words.ts';

export interface RepetitionOptions {
  /** Longest pattern looked for, in tokens (default 8). */
  maxPeriod?: number;
  /** Least number of back-to-back repeats of the pattern (default 4). */
  minRepeats?: number;
  /** Least number of tokens the looping stretch covers, so one repeated token needs many repeats (default 10). */
  minLoopTokens?: number;
  /** Least share of the (considered) tokens the looping stretch covers (default 0.3). */
  minCoverage?: number;
  /** Which tokens to consider (e.g. text tokens only, since timestamps change as a loop goes on); default all. */
  consider?: (token: number) => boolean;
}

export interface RepetitionLoop {
  /** Index in the given tokens where the looping stretch begins. */
  start: number;
  /** Pattern length, in considered tokens. */
  period: number;
  /** Whole repeats of the pattern in the stretch. */
  repeats: number;
  /** Share of the considered tokens inside the stretch. */
  coverage: number;
}

/**
 * Whether the tokens end in a loop: a pattern of 1 to maxPeriod tokens repeated back to back up
 * to the end. Of the periods that qualify, the one with the longest stretch wins (the shortest
 * on ties, so ABABAB is period 2, not 4).
 */
export function detectRepetitionLoop(tokens: readonly number[], options: RepetitionOptions = {}): RepetitionLoop | undefined {
  const maxPeriod = options.maxPeriod ?? 8;
  const minRepeats = options.minRepeats ?? 4;
  const minLoopTokens = options.minLoopTokens ?? 10;
  const minCoverage = options.minCoverage ?? 0.3;
  if (!Number.isInteger(maxPeriod) || maxPeriod < 1) throw new MurmurError('DECODER', `maxPeriod must be a whole number ≥ 1, got ${maxPeriod}`);
  if (!(minRepeats >= 2)) throw new MurmurError('DECODER', `minRepeats must be at least 2, got ${minRepeats}`);
  const positions: number[] = [];
  tokens.forEach((token, i) => {
    if (!options.consider || options.consider(token)) positions.push(i);
  });
  const seq = positions.map((i) => tokens[i]!);
  const n = seq.length;
  let best: { length: number; period: number } | undefined;
  for (let period = 1; period <= Math.min(maxPeriod, n >> 1); period++) {
    // The periodic suffix: walk back while each token equals the one a period later.
    let i = n - period - 1;
    while (i >= 0 && seq[i] === seq[i + period]) i--;
    const length = n - 1 - i;
    const repeats = Math.floor(length / period);
    if (repeats < minRepeats || length < minLoopTokens || length / n < minCoverage) continue;
    if (!best || length > best.length) best = { length, period };
  }
  if (!best) return undefined;
  return { start: positions[n - best.length]!, period: best.period, repeats: Math.floor(best.length / best.period), coverage: best.length / n };
}

/** A timed word as transcription results carry it. */
export interface TimedWord {
  word: string;
  start: number;
  end: number;
  probability?: number;
}

export interface TimedSegment {
  start: number;
  end: number;
  words?: readonly TimedWord[];
}

const PUNCTUATION = PREPEND_PUNCTUATIONS + APPEND_PUNCTUATIONS;
const FRAMES_PER_SECOND = SAMPLE_RATE / HOP_LENGTH;

/** How suspect a word is: 1 for probability < 0.15, plus a penalty for < 133 ms and for > 2 s. */
export function wordAnomalyScore(word: TimedWord): number {
  const probability = word.probability ?? 0;
  const duration = word.end - word.start;
  let score = 0;
  if (probability < 0.15) score += 1;
  if (duration < 0.133) score += (0.133 - duration) * 15;
  if (duration > 2) score += duration - 2;
  return score;
}

/** A word as suspect as an improbable one: score of at least 1 (the per-word average a suspect segment reaches). */
export function isAnomalousWord(word: TimedWord): boolean {
  return wordAnomalyScore(word) >= 1;
}

/** The summed anomaly of a segment's first 8 words that are not bare punctuation, and how many were scored. */
export function segmentAnomalyScore(segment: TimedSegment): { score: number; words: number } {
  // Python's `word in punctuation` is a substring test.
  const words = (segment.words ?? []).filter((w) => !PUNCTUATION.includes(w.word)).slice(0, 8);
  return { score: words.reduce((sum, w) => sum + wordAnomalyScore(w), 0), words: words.length };
}

/** Suspect: a total score of 3, or nearly every scored word anomalous. */
export function isSegmentAnomaly(segment: TimedSegment | undefined): boolean {
  if (!segment?.words || segment.words.length === 0) return false;
  const { score, words } = segmentAnomalyScore(segment);
  return score >= 3 || score + 0.01 >= words;
}

export interface SilenceSkipInput {
  /** The window's segments with their words, times absolute. */
  segments: readonly TimedSegment[];
  /** Seconds of silence that make a suspect segment skippable. */
  threshold: number;
  /** Mel frame where this window started, and where the loop would seek to next. */
  previousSeek: number;
  seek: number;
  /** Mel frames of audio in this window. */
  segmentSize: number;
  /** Whether the decoded tokens ended with a single timestamp (no speech after it). */
  singleTimestampEnding: boolean;
  /** End of the last speech before this window, seconds. */
  lastSpeechTimestamp: number;
  /** Length of the whole audio, in mel frames. */
  contentFrames: number;
}

export interface SilenceSkipDecision {
  /** Where the next window starts. */
  seek: number;
  /** How many of the window's segments to keep (the rest are dropped as hallucinated). */
  keep: number;
  /** Drop this window's output altogether and decode again from `seek`. */
  retry: boolean;
}

function lastWordEnd(segments: readonly TimedSegment[]): number | undefined {
  for (let s = segments.length - 1; s >= 0; s--) {
    const words = segments[s]!.words;
    if (words && words.length > 0) return words[words.length - 1]!.end;
  }
  return undefined;
}

/**
 * OpenAI's skip over silence before possible hallucinations, as a decision: seek to the last word
 * when enough silence follows it; when the window opens with a suspect segment after a silent gap,
 * redo the window from that segment; drop a suspect segment with silence (or more suspect
 * segments) on both sides, and everything after it.
 */
export function skipHallucinatedSilence(input: SilenceSkipInput): SilenceSkipDecision {
  const { segments, threshold, previousSeek, segmentSize, singleTimestampEnding, contentFrames } = input;
  if (!(threshold >= 0)) throw new MurmurError('DECODER', `the hallucination silence threshold must be ≥ 0 seconds, got ${threshold}`);
  const timeOffset = (previousSeek * HOP_LENGTH) / SAMPLE_RATE;
  // A full 30 s window, even when the audio ends sooner (as OpenAI's window_end_time).
  const windowEnd = ((previousSeek + N_FRAMES) * HOP_LENGTH) / SAMPLE_RATE;
  const segmentDuration = (segmentSize * HOP_LENGTH) / SAMPLE_RATE;
  const contentDuration = (contentFrames * HOP_LENGTH) / SAMPLE_RATE;
  let seek = input.seek;

  if (!singleTimestampEnding) {
    const end = lastWordEnd(segments);
    if (end !== undefined && end > timeOffset) {
      seek = windowEnd - end > threshold ? Math.round(end * FRAMES_PER_SECOND) : previousSeek + segmentSize;
    }
  }

  const withWords = (from: number) => segments.slice(from).find((s) => s.words && s.words.length > 0);
  const first = withWords(0);
  if (first && isSegmentAnomaly(first)) {
    const gap = first.start - timeOffset;
    if (gap > threshold) return { seek: previousSeek + Math.round(gap * FRAMES_PER_SECOND), keep: 0, retry: true };
  }

  let lastEnd = input.lastSpeechTimestamp;
  for (let s = 0; s < segments.length; s++) {
    const segment = segments[s]!;
    if (!segment.words || segment.words.length === 0) continue;
    if (isSegmentAnomaly(segment)) {
      const next = withWords(s + 1);
      const nextStart = next ? next.words![0]!.start : timeOffset + segmentDuration;
      const silenceBefore = segment.start - lastEnd > threshold || segment.start < threshold || segment.start - timeOffset < 2;
      const silenceAfter = nextStart - segment.end > threshold || isSegmentAnomaly(next) || windowEnd - segment.end < 2;
      if (silenceBefore && silenceAfter) {
        seek = Math.round(Math.max(timeOffset + 1, segment.start) * FRAMES_PER_SECOND);
        if (contentDuration - segment.end < threshold) seek = contentFrames;
        return { seek, keep: s, retry: false };
      }
    }
    lastEnd = segment.end;
  }
  return { seek, keep: segments.length, retry: false };
}
