/**
 * What the long-form loop needs from a model, and nothing more: encode a 30 s window, then decode
 * it (with temperature fallback), detect its language, or align its words. The transcriber builds
 * one over a backend and the decoding stack; tests build scripted ones, so the seek rules can be
 * checked on hours of audio without running a network.
 */
import type { LogMel } from '../audio/mel.ts';
import type { DecodingResult } from '../decoding/options.ts';
import type { TranscriptionWord } from './result.ts';
import type { SegmentTokenizer } from './segments.ts';

export interface EngineTokenizer extends SegmentTokenizer {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
}

/** What the loop reads of a decoding result. */
export type WindowDecoding = Pick<DecodingResult, 'tokens' | 'temperature' | 'avgLogProb' | 'compressionRatio' | 'noSpeechProb'>;

export interface WindowDecodeRequest {
  /** Tokens to condition on (previous text, or the initial prompt); the decoder adds <|startofprev|>. */
  prompt: number[];
  /** Language code, known by the time any window is decoded. */
  language: string;
}

/** For the word-timestamp hook (src/core/timing): one window's segments, as OpenAI's add_word_timestamps takes them. */
export interface WordAlignmentRequest {
  /** The window's segments in order; `tokens` includes the timestamp tokens. Times in seconds from the audio's start. */
  segments: readonly { start: number; end: number; tokens: readonly number[] }[];
  /** The window's first mel frame, and the same in seconds. */
  seek: number;
  timeOffset: number;
  language: string;
  /** Frames of real audio in the window. */
  frames: number;
  /** End of the last word of the previous windows (seconds), 0 at first. */
  lastSpeechTimestamp: number;
}

/** Per segment of the request: its words, and optionally the segment's span refined from them. */
export interface WordAlignment {
  words: TranscriptionWord[];
  start?: number;
  end?: number;
}

export interface WindowPlacement {
  /** The window's first mel frame in the audio. */
  seek: number;
  /** Frames of real audio in it (N_FRAMES, or fewer at the end of the audio or of a clip). */
  frames: number;
}

/** One encoded 30 s window. Disposed by the loop as soon as it is done with it. */
export interface EncodedWindow {
  decode(request: WindowDecodeRequest, signal?: AbortSignal): Promise<WindowDecoding>;
  detectLanguage(signal?: AbortSignal): Promise<{ language: string; probabilities: Record<string, number> }>;
  /** Absent when the engine cannot give word timestamps. */
  alignWords?(request: WordAlignmentRequest, signal?: AbortSignal): Promise<WordAlignment[]>;
  dispose(): void;
}

export interface TranscriptionEngine {
  readonly tokenizer: EngineTokenizer;
  /** Whether the model has language tokens (else the language is 'en'). */
  readonly multilingual: boolean;
  readonly nMels: number;
  /** The model file's own mel filters ([nMels, 201]), when it ships them. */
  readonly melFilters?: Float32Array;
  /** Decoder context, which bounds the prompt carried between windows to nTextCtx / 2 − 1 tokens. */
  readonly nTextCtx: number;
  /** Encoder output positions per window (1500): one timestamp step is N_FRAMES / nAudioCtx frames. */
  readonly nAudioCtx: number;
  /** `mel` has exactly N_FRAMES frames; `window` says where it lies in the audio. */
  encodeWindow(mel: LogMel, window: WindowPlacement, signal?: AbortSignal): Promise<EncodedWindow>;
}
