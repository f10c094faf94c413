/**
 * Logit filters, applied in OpenAI's order before each token is chosen: suppress blank at the
 * start, suppress tokens, timestamp rules. Each masks one sequence's logits in place (-Infinity)
 * given the tokens that sequence has sampled so far (after the prompt).
 */
import type { GenerationConfig } from '../model/model.ts';
import type { WhisperTokenizer } from '../tokenizer/tokenizer.ts';
import { logSumExp } from './math.ts';
import { MurmurError } from '../errors.ts';

export interface LogitFilter {
  apply(logits: Float32Array, sampled: readonly number[]): void;
}

function mask(logits: Float32Array, from: number, to: number): void {
  logits.fill(-Infinity, from, Math.min(to, logits.length));
}

/** No blank (" ") and no end-of-text as the first sampled token: an empty or space-led transcript is never the answer. */
export function suppressBlank(tokenizer: WhisperTokenizer): LogitFilter {
  const ids = [...tokenizer.encode(' '), tokenizer.eot];
  return {
    apply(logits, sampled) {
      if (sampled.length === 0) for (const id of ids) logits[id] = -Infinity;
    },
  };
}

export function suppressTokens(ids: readonly number[]): LogitFilter {
  return {
    apply(logits) {
      for (const id of ids) logits[id] = -Infinity;
    },
  };
}

function parseTokenList(value: number[] | string): number[] {
  if (typeof value !== 'string') return value;
  if (value.trim() === '') return [];
  return value.split(',').map((part) => {
    const id = Number(part.trim());
    if (part.trim() === '' || !Number.isInteger(id)) throw new MurmurError('DECODING_OPTIONS', `suppressTokens: ${JSON.stringify(part.trim())} is not a token id`);
    return id;
  });
}

/**
 * The ids never sampled. `-1` in the list stands for the default set: the model's suppress list
 * and the tokenizer's non-speech tokens (OpenAI's `-1`). Control tokens (start of transcript,
 * languages, tasks, start of previous/LM, no-speech, no-timestamps) are always added — they have
 * no place inside a transcript — and without timestamps so are the timestamp tokens.
 */
export function resolveSuppressTokens(
  value: number[] | string | undefined,
  tokenizer: WhisperTokenizer,
  generation: GenerationConfig,
  options: { withoutTimestamps: boolean; nVocab: number },
): number[] {
  const listed = parseTokenList(value ?? '-1');
  const ids = new Set<number>();
  for (const id of listed) {
    if (id === -1) {
      for (const d of generation.suppressTokens) if (d >= 0 && d < options.nVocab) ids.add(d);
      for (const d of tokenizer.nonSpeechTokens()) ids.add(d);
    } else if (!Number.isInteger(id) || id < 0 || id >= options.nVocab) {
      throw new MurmurError('DECODING_OPTIONS', `suppressTokens: ${id} is not a token id of this ${options.nVocab}-token vocabulary (-1 stands for the default set)`);
    } else {
      ids.add(id);
    }
  }
  for (let id = tokenizer.sot; id <= tokenizer.noTimestamps; id++) ids.add(id);
  if (options.withoutTimestamps) for (let id = tokenizer.timestampBegin; id < options.nVocab; id++) ids.add(id);
  return [...ids].sort((a, b) => a - b);
}

/**
 * Whisper's timestamp grammar: timestamps come in pairs (a segment's end, the next one's start)
 * except right before end-of-text; they never go back, and a segment has non-zero length; the
 * first token is a timestamp no later than maxInitialIndex; and when the timestamps together are
 * more likely than the best text token, a timestamp it is.
 */
export function timestampRules(tokenizer: WhisperTokenizer, maxInitialIndex: number | undefined): LogitFilter {
  const { timestampBegin, eot, noTimestamps } = tokenizer;
  const isTimestamp = (id: number) => id >= timestampBegin;
  return {
    apply(logits, sampled) {
      const n = logits.length;
      logits[noTimestamps] = -Infinity;
      const count = sampled.length;
      const lastWasTimestamp = count >= 1 && isTimestamp(sampled[count - 1]!);
      const penultimateWasTimestamp = count < 2 || isTimestamp(sampled[count - 2]!);
      if (lastWasTimestamp) {
        if (penultimateWasTimestamp) mask(logits, timestampBegin, n); // a pair just closed: text next
        else mask(logits, 0, eot); // a pair is open: its second timestamp, or end-of-text
      }
      let lastTimestamp = -1;
      for (let i = count - 1; i >= 0; i--) {
        if (isTimestamp(sampled[i]!)) {
          lastTimestamp = sampled[i]!;
          break;
        }
      }
      if (lastTimestamp >= 0) {
        // Closing a pair may repeat the last time; anything else must move forward.
        const earliest = lastWasTimestamp && !penultimateWasTimestamp ? lastTimestamp : lastTimestamp + 1;
        mask(logits, timestampBegin, earliest);
      }
      if (count === 0) {
        mask(logits, 0, timestampBegin);
        if (maxInitialIndex !== undefined) mask(logits, timestampBegin + maxInitialIndex + 1, n);
      }
      // Log-probabilities share one normalizer, so comparing them is comparing raw log-sum-exps.
      const timestampMass = logSumExp(logits, timestampBegin, n);
      let bestText = -Infinity;
      for (let id = 0; id < timestampBegin; id++) if (logits[id]! > bestText) bestText = logits[id]!;
      if (timestampMass > bestText) mask(logits, 0, timestampBegin);
    },
  };
}
