/** The numerics decoding needs over one row of logits, in float64 and safe with -Infinity entries. */
import { MurmurError } from '../errors.ts';

/** Throws on NaN: a NaN logit is a backend bug and must not turn into a silently wrong token. */
export function checkLogits(logits: ArrayLike<number>, what: string): void {
  for (let i = 0; i < logits.length; i++) {
    if (Number.isNaN(logits[i]!)) throw new MurmurError('NUMERIC', `the model produced a NaN logit for token ${i} (${what})`);
  }
}

export function logSumExp(values: ArrayLike<number>, from = 0, to = values.length): number {
  let max = -Infinity;
  for (let i = from; i < to; i++) if (values[i]! > max) max = values[i]!;
  if (max === -Infinity) return -Infinity;
  let total = 0;
  for (let i = from; i < to; i++) total += Math.exp(values[i]! - max);
  return max + Math.log(total);
}

/** log-softmax of one row, float64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  const normalizer = logSumExp(logits);
  if (normalizer === -Infinity) throw new MurmurError('NUMERIC', 'every token is suppressed or has a logit of -Infinity');
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - normalizer;
  return out;
}

/** Index of the largest value, the first one on ties (as argmax). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** The k largest entries, largest first (lower index first on ties). */
export function topK(values: ArrayLike<number>, k: number): { index: number; value: number }[] {
  const top: { index: number; value: number }[] = [];
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (top.length === k && !(value > top[k - 1]!.value)) continue;
    let at = top.length;
    while (at > 0 && value > top[at - 1]!.value) at--;
    top.splice(at, 0, { index: i, value });
    if (top.length > k) top.pop();
  }
  return top;
}

/** Uniform numbers in [0, 1): a seeded generator (mulberry32) or Math.random. */
export function createRandom(seed?: number): () => number {
  if (seed === undefined) return Math.random;
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A token drawn from softmax(logits / temperature). */
export function sampleToken(logits: ArrayLike<number>, temperature: number, random: () => number): number {
  const scaled = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) scaled[i] = logits[i]! / temperature;
  const normalizer = logSumExp(scaled);
  if (normalizer === -Infinity) throw new MurmurError('NUMERIC', 'every token is suppressed or has a logit of -Infinity');
  let target = random();
  let last = -1;
  for (let i = 0; i < scaled.length; i++) {
    const p = Math.exp(scaled[i]! - normalizer);
    if (p === 0) continue;
    last = i;
    target -= p;
    if (target < 0) return i;
  }
  // Rounding left a sliver of probability unassigned: it belongs to the last possible token.
  return last;
}

/** Throws on a NaN logit reported by a backend's token selection (as checkLogits does on full logits). */
export function checkSelection(selection: { nanToken: number }, what: string): void {
  if (selection.nanToken >= 0) throw new MurmurError('NUMERIC', `the model produced a NaN logit for token ${selection.nanToken} (${what})`);
}
