/**
 * Logit filters, applied in OpenAI's order before each token is chosen: suppress blank at the
 * start, suppress tokens, timestamp rules. Each filter describes what it suppresses as token
 * ranges given the tokens a sequence has sampled so far (after the prompt), so the same rules can
 * run on the host (`apply`, masking logits in place with -Infinity) or be handed to a backend's
 * selectTokens op, which applies them where the logits are.
 */
import type { TokenRange } from '../model/ops.ts';
import type { GenerationConfig } from '../model/model.ts';
import type { WhisperTokenizer } from '../tokenizer/tokenizer.ts';
import { logSumExp } from './math.ts';
import { MurmurError } from '../errors.ts';

export interface LogitFilter {
  /** The token ranges suppressed for a sequence that has sampled `sampled`. */
  suppressed(sampled: readonly number[]): TokenRange[];
  /** The ranges never depend on `sampled` (the suppress list): worked out once per window. */
  readonly fixed?: boolean;
  /**
   * The timestamp rules' last step, after every filter's ranges: text is suppressed when the
   * timestamps [timestampBegin, nVocab) together are more likely than the best text token.
   */
  readonly timestampBegin?: number;
  /** Masks one sequence's logits in place. */
  apply(logits: Float32Array, sampled: readonly number[]): void;
}

function mask(logits: Float32Array, from: number, to: number): void {
  if (from < to) logits.fill(-Infinity, from, Math.min(to, logits.length));
}

function single(id: number): TokenRange {
  return [id, id + 1];
}

/** Sorted ids as the fewest ranges covering exactly them. */
export function idRanges(ids: readonly number[]): TokenRange[] {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const id of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && last[1] === id) last[1] = id + 1;
    else ranges.push([id, id + 1]);
  }
  return ranges;
}

/**
 * When log Σ exp over the timestamp tokens exceeds the best text logit, suppress the text tokens.
 * Log-probabilities share one normalizer, so comparing them is comparing raw log-sum-exps.
 */
export function suppressTextWhenTimestampsWin(logits: Float32Array, timestampBegin: number): { timestampLogSumExp: number; maxTextLogit: number; timestampsWin: boolean } {
  const timestampLogSumExp = logSumExp(logits, timestampBegin, logits.length);
  let maxTextLogit = -Infinity;
  for (let id = 0; id < timestampBegin; id++) if (logits[id]! > maxTextLogit) maxTextLogit = logits[id]!;
  const timestampsWin = timestampLogSumExp > maxTextLogit;
  if (timestampsWin) mask(logits, 0, timestampBegin);
  return { timestampLogSumExp, maxTextLogit, timestampsWin };
}

function rangeFilter(suppressed: (sampled: readonly number[]) => TokenRange[], extra: { fixed?: boolean; timestampBegin?: number } = {}): LogitFilter {
  return {
    suppressed,
    ...extra,
    apply(logits, sampled) {
      for (const [from, to] of suppressed(sampled)) mask(logits, from, to);
      if (extra.timestampBegin !== undefined) suppressTextWhenTimestampsWin(logits, extra.timestampBegin);
    },
  };
}

/** No blank (" ") and no end-of-text as the first sampled token: an empty or space-led transcript is never the answer. */
export function suppressBlank(tokenizer: WhisperTokenizer): LogitFilter {
  const ranges = idRanges([...tokenizer.encode(' '), tokenizer.eot]);
  return rangeFilter((sampled) => (sampled.length === 0 ? ranges : []));
}

export function suppressTokens(ids: readonly number[]): LogitFilter {
  const ranges = idRanges(ids);
  return rangeFilter(() => ranges, { fixed: true });
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
  const { timestampBegin, eot, noTimestamps, nVocab } = tokenizer;
  const isTimestamp = (id: number) => id >= timestampBegin;
  const suppressed = (sampled: readonly number[]): TokenRange[] => {
    const ranges: TokenRange[] = [single(noTimestamps)];
    const count = sampled.length;
    const lastWasTimestamp = count >= 1 && isTimestamp(sampled[count - 1]!);
    const penultimateWasTimestamp = count < 2 || isTimestamp(sampled[count - 2]!);
    if (lastWasTimestamp) {
      if (penultimateWasTimestamp) ranges.push([timestampBegin, nVocab]); // a pair just closed: text next
      else ranges.push([0, eot]); // a pair is open: its second timestamp, or end-of-text
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
      if (earliest > timestampBegin) ranges.push([timestampBegin, earliest]);
    }
    if (count === 0) {
      ranges.push([0, timestampBegin]);
      if (maxInitialIndex !== undefined && timestampBegin + maxInitialIndex + 1 < nVocab) ranges.push([timestampBegin + maxInitialIndex + 1, nVocab]);
    }
    return ranges;
  };
  return rangeFilter(suppressed, { timestampBegin });
}
