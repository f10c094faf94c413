/**
 * How the next token of each stacked sequence is chosen from its (filtered) logits: greedy or
 * sampled (one sequence per best-of candidate), or beam search with patience. A strategy never
 * touches the model: it says which tokens to feed next and, for beams, how to reorder the caches.
 */
import type { TokenSelection } from '../model/ops.ts';
import { argmax, logSumExp, sampleToken, topK } from './math.ts';
import { MurmurError } from '../errors.ts';

export interface Candidate {
  /** Sampled tokens, without the final end-of-text. */
  tokens: number[];
  /** Log-probabilities of the sampled tokens and the end-of-text, summed. */
  sumLogProb: number;
}

export interface SearchUpdate {
  /** The token to feed each sequence next. */
  next: number[];
  /** Beam search: the caches must be reordered so sequence s continues old sequence order[s]. */
  order?: number[];
  /** Every sequence is done (or, for beams, enough have finished). */
  completed: boolean;
}

export interface SearchStrategy {
  /** The tokens each sequence has sampled so far (what the filters look at). */
  sampled(sequence: number): readonly number[];
  update(logits: Float32Array[]): SearchUpdate;
  /**
   * Strategies that need only each row's best few tokens: how many (TokenSelectionRequest.topK),
   * and the update from those (the same decisions update makes from the full logits).
   */
  readonly selectionSize?: number;
  updateSelected?(rows: readonly TokenSelection[]): SearchUpdate;
  /** The finished candidates, also when the token limit cut decoding short. */
  finish(): Candidate[];
}

function noTokenLeft(): MurmurError {
  return new MurmurError('NUMERIC', 'every token is suppressed or has a logit of -Infinity');
}

/** The log-softmax normaliser of a filtered row; throws when no token is left. */
function normalizerOf(row: Float32Array): number {
  const normalizer = logSumExp(row);
  if (normalizer === -Infinity) throw noTokenLeft();
  return normalizer;
}

/** A selected row's best tokens as (index, log-probability); throws when no token is left. */
function bestOfSelection(row: TokenSelection): { index: number; value: number }[] {
  if (row.logSumExp === -Infinity) throw noTokenLeft();
  return row.ids.map((index, j) => ({ index, value: row.logProbs[j]! }));
}

/** Temperature 0: the most likely token; above: a draw from softmax(logits / temperature). One candidate per sequence. */
export function sampling(sequences: number, eot: number, temperature: number, random: () => number): SearchStrategy {
  const tokens = Array.from({ length: sequences }, () => [] as number[]);
  const sums = new Array<number>(sequences).fill(0);
  const done = new Array<boolean>(sequences).fill(false);
  const accept = (s: number, token: number, logProb: number): number => {
    // The log-probability is of the filtered distribution at temperature 1, as OpenAI scores it.
    sums[s]! += logProb;
    if (token === eot) done[s] = true;
    else tokens[s]!.push(token);
    return token;
  };
  const greedy = temperature === 0;
  return {
    sampled: (s) => tokens[s]!,
    update(logits) {
      const next = logits.map((row, s) => {
        if (done[s]) return eot;
        const token = greedy ? argmax(row) : sampleToken(row, temperature, random);
        return accept(s, token, row[token]! - normalizerOf(row));
      });
      return { next, completed: done.every(Boolean) };
    },
    ...(greedy
      ? {
          selectionSize: 1,
          updateSelected(rows: readonly TokenSelection[]) {
            const next = rows.map((row, s) => {
              if (done[s]) return eot;
              const [best] = bestOfSelection(row);
              return accept(s, best!.index, best!.value);
            });
            return { next, completed: done.every(Boolean) };
          },
        }
      : {}),
    finish: () => tokens.map((t, s) => ({ tokens: t.slice(), sumLogProb: sums[s]! })),
  };
}

/**
 * Beam search over `beamSize` stacked sequences: every beam proposes its beamSize + 1 best
 * continuations, the best beamSize unfinished ones continue, the finished ones are kept until
 * round(beamSize · patience) of them exist.
 */
export function beamSearch(beamSize: number, patience: number, eot: number): SearchStrategy {
  let beams = Array.from({ length: beamSize }, () => ({ tokens: [] as number[], sumLogProb: 0 }));
  const maxCandidates = Math.max(1, Math.round(beamSize * patience));
  const finished = new Map<string, Candidate>();
  const advance = (continuations: { index: number; value: number }[][]): SearchUpdate => {
    const proposals = new Map<string, Candidate & { source: number }>();
    continuations.forEach((best, s) => {
      const beam = beams[s]!;
      for (const { index, value } of best) {
        const tokens = [...beam.tokens, index];
        // Beams that share a prefix (all of them at the first step) propose the same sequence once.
        proposals.set(tokens.join(','), { tokens, sumLogProb: beam.sumLogProb + value, source: s });
      }
    });
    const ranked = [...proposals.values()].sort((a, b) => b.sumLogProb - a.sumLogProb);
    const survivors: (Candidate & { source: number })[] = [];
    const newlyFinished: Candidate[] = [];
    for (const proposal of ranked) {
      if (proposal.tokens[proposal.tokens.length - 1] === eot) {
        newlyFinished.push({ tokens: proposal.tokens.slice(0, -1), sumLogProb: proposal.sumLogProb });
      } else {
        survivors.push(proposal);
        if (survivors.length === beamSize) break;
      }
    }
    for (const candidate of newlyFinished) {
      if (finished.size >= maxCandidates) break;
      finished.set(candidate.tokens.join(','), candidate);
    }
    beams = survivors.map(({ tokens, sumLogProb }) => ({ tokens, sumLogProb }));
    return {
      next: survivors.map((s) => s.tokens[s.tokens.length - 1]!),
      order: survivors.map((s) => s.source),
      completed: finished.size >= maxCandidates,
    };
  };
  return {
    sampled: (s) => beams[s]!.tokens,
    update(logits) {
      return advance(
        logits.map((row) => {
          const normalizer = normalizerOf(row);
          // Ranked by logit (the normalizer is shared), scored by log-probability.
          return topK(row, beamSize + 1).map(({ index, value }) => ({ index, value: value - normalizer }));
        }),
      );
    },
    selectionSize: beamSize + 1,
    updateSelected: (rows) => advance(rows.map(bestOfSelection)),
    finish() {
      const candidates = [...finished.values()];
      // Cut short by the token limit: the best unfinished beams count as ending here.
      for (const beam of [...beams].sort((a, b) => b.sumLogProb - a.sumLogProb)) {
        if (candidates.length >= beamSize) break;
        candidates.push({ tokens: beam.tokens.slice(), sumLogProb: beam.sumLogProb });
      }
      return candidates;
    },
  };
}

/**
 * The index of the best candidate by summed log-probability over a length penalty: the length
 * itself (null/undefined), or ((5 + length) / 6)^α. An empty candidate counts as length 1.
 */
export function rankCandidates(candidates: readonly Candidate[], lengthPenalty: number | null | undefined): number {
  const scores = candidates.map(({ tokens, sumLogProb }) => {
    const length = tokens.length;
    const penalty = lengthPenalty === null || lengthPenalty === undefined ? Math.max(length, 1) : ((5 + length) / 6) ** lengthPenalty;
    return sumLogProb / penalty;
  });
  return argmax(scores);
}
