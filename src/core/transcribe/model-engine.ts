/**
 * The long-form loop's engine over a real model: encode a window on a backend, then decode it with
 * the decoding stack (src/core/decoding) and align its words with src/core/timing.
 */
import type { LogMel } from '../audio/mel.ts';
import { createDecoderSession, decodeWithFallback, detectLanguage } from '../decoding/index.ts';
import type { FallbackOptions } from '../decoding/index.ts';
import { MurmurError } from '../errors.ts';
import type { WhisperModel } from '../model/model.ts';
import type { WhisperOps } from '../model/ops.ts';
import { encode, type ModelParameters } from '../model/whisper.ts';
import { modelAlignmentSession } from '../timing/model-session.ts';
import { addWordTimestamps, type SegmentForWords, type WordTimestampOptions } from '../timing/words.ts';
import type { EncodedWindow, TranscriptionEngine, WordAlignment, WordAlignmentRequest } from './engine.ts';

export interface ModelEngineOptions {
  /** Applied to every window (the loop adds the prompt and the language). */
  decoding: Omit<FallbackOptions, 'prompt' | 'language'>;
  /** Word-timestamp tuning (median filter, punctuation); the loop decides when words are wanted. */
  words?: Omit<WordTimestampOptions, 'sotSequence' | 'numFrames' | 'lastSpeechTimestamp' | 'language'>;
}

export function createModelEngine<T, W>(
  ops: WhisperOps<T, W>,
  parameters: () => ModelParameters<W>,
  model: WhisperModel,
  options: ModelEngineOptions,
): TranscriptionEngine {
  const { tokenizer, dims, generation } = model;
  const setup = { tokenizer, generation, dims };

  async function alignWords(features: T, request: WordAlignmentRequest): Promise<WordAlignment[]> {
    if (!generation.alignmentHeads || generation.alignmentHeads.length === 0) {
      throw new MurmurError('UNSUPPORTED', `word timestamps need the model's alignment heads, and ${model.source} has none`);
    }
    const segments: SegmentForWords[] = request.segments.map((segment) => ({ seek: request.seek, start: segment.start, end: segment.end, tokens: segment.tokens }));
    const session = modelAlignmentSession(ops, parameters(), features);
    try {
      await addWordTimestamps(
        segments,
        session,
        { tokenizer, alignmentHeads: generation.alignmentHeads, nTextCtx: dims.nTextCtx, nTextHead: dims.nTextHead },
        {
          ...options.words,
          language: request.language,
          sotSequence: tokenizer.sotSequence({ language: request.language, task: options.decoding.task }),
          numFrames: request.frames,
          lastSpeechTimestamp: request.lastSpeechTimestamp,
        },
      );
    } finally {
      session.dispose();
    }
    return segments.map((segment) => ({
      start: segment.start,
      end: segment.end,
      words: (segment.words ?? []).map(({ word, start, end, probability }) => ({ word, start, end, probability })),
    }));
  }

  return {
    tokenizer,
    multilingual: tokenizer.isMultilingual,
    nMels: dims.nMels,
    ...(model.melFilters ? { melFilters: model.melFilters } : {}),
    nTextCtx: dims.nTextCtx,
    nAudioCtx: dims.nAudioCtx,
    async encodeWindow(mel: LogMel): Promise<EncodedWindow> {
      const features = encode(ops, parameters(), mel);
      const session = createDecoderSession(ops, parameters(), features);
      let released = false;
      return {
        decode: ({ prompt, language }, signal) => decodeWithFallback(session, setup, { ...options.decoding, prompt, language }, signal),
        detectLanguage: () => detectLanguage(session, tokenizer),
        alignWords: (request) => alignWords(features, request),
        dispose() {
          if (!released) ops.release(features);
          released = true;
        },
      };
    },
  };
}
