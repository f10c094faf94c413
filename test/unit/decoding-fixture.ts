// A scripted DecoderSession for decoding tests: no model, the logits of each sequence are a
// function of the tokens it has been fed, and every call is recorded.
import type { BatchDecoder, DecoderSession } from '../../src/core/decoding/session.ts';
import type { DecodingSetupInput } from '../../src/core/decoding/options.ts';
import type { WhisperTokenizer } from '../../src/core/tokenizer/tokenizer.ts';

export type Script = (history: readonly number[]) => Float32Array;

export interface SessionLog {
  /** Sequences of each begin(). */
  begins: number[];
  /** Tokens fed per step (sequence 0), per batch. */
  steps: number[][];
  /** Every history the script was asked about. */
  histories: number[][];
}

export function fakeSession(nVocab: number, script: Script, nTextCtx = 448): { session: DecoderSession; log: SessionLog } {
  const log: SessionLog = { begins: [], steps: [], histories: [] };
  const session: DecoderSession = {
    nVocab,
    nTextCtx,
    begin(sequences): BatchDecoder {
      log.begins.push(sequences);
      let histories = Array.from({ length: sequences }, () => [] as number[]);
      return {
        sequences,
        async step(tokens) {
          if (tokens.length !== sequences) throw new Error(`step with ${tokens.length} sequences in a batch of ${sequences}`);
          tokens.forEach((row, s) => histories[s]!.push(...row));
          if (histories[0]!.length > nTextCtx) throw new Error('past the context');
          log.steps.push([...tokens[0]!]);
          return {
            logits: histories.map((h) => {
              log.histories.push([...h]);
              return script(h);
            }),
          };
        },
        reorder(order) {
          histories = order.map((source) => histories[source]!.slice());
        },
        dispose() {},
      };
    },
  };
  return { session, log };
}

/** Logits with the given probabilities (ln p) and `rest` (default impossible) for every other token. */
export function distribution(nVocab: number, probabilities: Record<number, number>, rest = -Infinity): Float32Array {
  const logits = new Float32Array(nVocab).fill(rest);
  for (const [id, p] of Object.entries(probabilities)) logits[Number(id)] = Math.log(p);
  return logits;
}

/** Logits as given, `rest` elsewhere. */
export function rawLogits(nVocab: number, values: Record<number, number>, rest = -Infinity): Float32Array {
  const logits = new Float32Array(nVocab).fill(rest);
  for (const [id, v] of Object.entries(values)) logits[Number(id)] = v;
  return logits;
}

export function setupFor(tokenizer: WhisperTokenizer, suppressTokens: number[] = []): DecodingSetupInput {
  return {
    tokenizer,
    generation: { suppressTokens, beginSuppressTokens: [220, tokenizer.eot], alignmentHeads: undefined, maxInitialTimestampIndex: 50 },
    dims: { nTextCtx: 448, nVocab: tokenizer.nVocab },
  };
}
