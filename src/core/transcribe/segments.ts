/**
 * Turning one window's decoded tokens into timed segments, and deciding where the next window
 * starts — the rules of OpenAI's transcribe:
 *
 * - A segment is the tokens between a timestamp pair: `<|t0|> text <|t1|>` followed directly by the
 *   next segment's `<|t1'|>`. Two timestamps in a row mark where one segment ends and the next begins.
 * - If the output ends with a lone timestamp after text, there is no speech after it: the last
 *   segment is complete and the next window starts after this one.
 * - Otherwise the text after the last timestamp pair is unfinished (cut by the window's end): it is
 *   dropped, and the next window starts at the last complete timestamp, so it is decoded again whole.
 * - Output with no timestamp pair (or no timestamps at all) is one segment for the whole window,
 *   ending at its last timestamp when there is one.
 */

/** What this module needs to know of the tokenizer. */
export interface SegmentTokenizer {
  /** `<|endoftext|>`; ids below it are text. */
  readonly eot: number;
  /** `<|0.00|>`; ids from here on are timestamps, 20 ms apart. */
  readonly timestampBegin: number;
}

export interface WindowSegment {
  /** Seconds from the start of the audio, before any clamping. */
  start: number;
  end: number;
  /** The segment's tokens, timestamps included. */
  tokens: number[];
}

export interface WindowSplit {
  segments: WindowSegment[];
  /** Frames to advance `seek` by. Always ≥ 1. */
  advance: number;
  /** True when the output ended with a lone timestamp (no speech after the last segment). */
  singleTimestampEnding: boolean;
}

export interface WindowGeometry {
  /** Seconds at the window's first frame. */
  timeOffset: number;
  /** Frames of real audio in the window (N_FRAMES, or fewer at the end of the audio or a clip). */
  frames: number;
  /** Mel frames per timestamp step: N_FRAMES / nAudioCtx, 2 for every Whisper. */
  inputStride: number;
  /** Seconds per mel frame: HOP_LENGTH / SAMPLE_RATE. */
  frameSeconds: number;
}

export function splitWindowTokens(tokens: readonly number[], tokenizer: SegmentTokenizer, window: WindowGeometry): WindowSplit {
  const { timestampBegin } = tokenizer;
  const { timeOffset, frames, inputStride, frameSeconds } = window;
  const timePrecision = inputStride * frameSeconds;
  const isTimestamp = (token: number): boolean => token >= timestampBegin;
  const position = (token: number): number => token - timestampBegin;
  const n = tokens.length;
  const singleTimestampEnding = n >= 2 && !isTimestamp(tokens[n - 2]!) && isTimestamp(tokens[n - 1]!);

  // Index after each pair of consecutive timestamps: where a new segment begins.
  const cuts: number[] = [];
  for (let i = 1; i < n; i++) if (isTimestamp(tokens[i - 1]!) && isTimestamp(tokens[i]!)) cuts.push(i);

  if (cuts.length > 0) {
    if (singleTimestampEnding) cuts.push(n);
    const segments: WindowSegment[] = [];
    let from = 0;
    for (const to of cuts) {
      const slice = tokens.slice(from, to);
      segments.push({
        start: timeOffset + position(slice[0]!) * timePrecision,
        end: timeOffset + position(slice[slice.length - 1]!) * timePrecision,
        tokens: slice,
      });
      from = to;
    }
    // Seeking to the last complete timestamp; a model that never moves forward (a pair at <|0.00|>)
    // would otherwise decode the same window for ever, so such a window is consumed whole.
    const lastComplete = singleTimestampEnding ? frames : position(tokens[from - 1]!) * inputStride;
    return { segments, advance: lastComplete > 0 ? lastComplete : frames, singleTimestampEnding };
  }

  let duration = frames * frameSeconds;
  let last: number | undefined;
  for (const token of tokens) if (isTimestamp(token)) last = token;
  if (last !== undefined && last !== timestampBegin) duration = position(last) * timePrecision;
  return { segments: [{ start: timeOffset, end: timeOffset + duration, tokens: [...tokens] }], advance: frames, singleTimestampEnding };
}

/** Text tokens only (timestamps and other specials left out). */
export function textTokens(tokens: readonly number[], tokenizer: SegmentTokenizer): number[] {
  return tokens.filter((token) => token < tokenizer.eot);
}

/** Rounds to the millisecond, which is finer than any timestamp Whisper gives, to keep float noise out of the output. */
export function roundTime(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

/**
 * Makes a time span follow the previous one and stay inside the audio: starts are moved up to the
 * previous end, ends clamped to [start, duration]. Returns undefined when nothing is left (the span
 * lies entirely before `previousEnd` or after `duration`, or is instantaneous).
 */
export function clampSpan(start: number, end: number, previousEnd: number, duration: number): { start: number; end: number } | undefined {
  const clampedStart = roundTime(Math.min(Math.max(start, previousEnd, 0), duration));
  const clampedEnd = roundTime(Math.min(Math.max(end, clampedStart), duration));
  return clampedEnd > clampedStart ? { start: clampedStart, end: clampedEnd } : undefined;
}
