/**
 * The result of transcribing a recording: the same shape as the JSON OpenAI's `whisper` writes
 * (`transcribe()`'s return value), field for field, so tools that read that JSON read ours.
 *
 * That is why the fields inside a segment are snake_case (`avg_logprob`, `no_speech_prob`, ...)
 * while the rest of Murmur's API is camelCase: the names are OpenAI's, not ours.
 */

/** One word with its time span, from cross-attention alignment (src/core/timing). */
export interface TranscriptionWord {
  /** The word's text as the tokens spell it, leading space and attached punctuation included. */
  word: string;
  /** Seconds from the start of the audio. */
  start: number;
  end: number;
  /** Mean probability of the word's tokens. */
  probability: number;
}

export interface TranscriptionSegment {
  /** Position in `segments`, from 0. */
  id: number;
  /** The mel frame (10 ms) at which the window that produced this segment started. */
  seek: number;
  /** Seconds from the start of the audio; segments never overlap and never pass the audio's end. */
  start: number;
  end: number;
  text: string;
  /** The tokens of the segment, its timestamp tokens included (as OpenAI lists them). */
  tokens: number[];
  /** Of the decoding that produced this segment's window (after temperature fallback). */
  temperature: number;
  avg_logprob: number;
  compression_ratio: number;
  no_speech_prob: number;
  /** Present when word timestamps were asked for. */
  words?: TranscriptionWord[];
}

export interface TranscriptionResult {
  /** Every segment's text, in order. */
  text: string;
  /** Language code: given, detected from the first window, or 'en' for English-only models. */
  language: string;
  segments: TranscriptionSegment[];
}
