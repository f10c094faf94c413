// Backends compute the same transcript with floating-point results that differ in the last bits
// (summation order in the kernels), so comparisons across backends round the per-segment scores.
import type { TranscriptionResult } from '../../src/core/transcriber.ts';

const DIGITS = 1e4;
const round = (value: number) => Math.round(value * DIGITS) / DIGITS;

/** The result with avg_logprob, compression_ratio and no_speech_prob rounded to 4 decimals. */
export function comparableTranscript(result: TranscriptionResult): TranscriptionResult {
  return {
    ...result,
    segments: result.segments.map((segment) => ({
      ...segment,
      avg_logprob: round(segment.avg_logprob),
      compression_ratio: round(segment.compression_ratio),
      no_speech_prob: round(segment.no_speech_prob),
    })),
  };
}
