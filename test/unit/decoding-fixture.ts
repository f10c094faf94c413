// A scripted DecoderSession for decoding tests: no model, the logits of each sequence are a
// function of the tokens it has been fed, and every call is recorded.
import type { BatchDecoder, DecoderSession } from '../../src/core/decoding/session.ts';
import type { TokenSelectionRequest } from '../../src/core/model/ops.ts';
import type { DecodingSetupInput } from '../../src/core/decoding/options.ts';
import type { WhisperTokenizer } from '../../src/core/tokenizer/tokenizer.ts';
import { selectTokensOnHost } from '../../src/core/decoding/select-tokens.ts';

export type Script = (history: readonly number[]) => Float32Array;

export interface SessionLog {
  /** Sequences of each begin(). */
  begins: number[];
  /** Tokens fed per step (sequence 0), per batch. */
  steps: number[][];
  /** Every history the script was asked about. */
  histories: number[][];
  /** Steps that returned full logits, and steps answered with a token selection. */
  logitSteps: number;
  selectSteps: number;
}

let offerSelect = false;
/**
 * Whether sessions made from now on offer `select` (a backend with WhisperOps.selectTokens),
 * answered on the host by the reference implementation of the op over the scripted logits.
 */
export function offerTokenSelection(on: boolean): void {
  offerSelect = on;
}

export function fakeSession(nVocab: number, script: Script, nTextCtx = 448, select = offerSelect): { session: DecoderSession; log: SessionLog } {
  const log: SessionLog = { begins: [], steps: [], histories: [], logitSteps: 0, selectSteps: 0 };
  const session: DecoderSession = {
    nVocab,
    nTextCtx,
    begin(sequences): BatchDecoder {
      log.begins.push(sequences);
      let histories = Array.from({ length: sequences }, () => [] as number[]);
      const feed = (tokens: number[][]): Float32Array[] => {
        if (tokens.length !== sequences) throw new Error(`step with ${tokens.length} sequences in a batch of ${sequences}`);
        tokens.forEach((row, s) => histories[s]!.push(...row));
        if (histories[0]!.length > nTextCtx) throw new Error('past the context');
        log.steps.push([...tokens[0]!]);
        return histories.map((h) => {
          log.histories.push([...h]);
          return script(h);
        });
      };
      return {
        sequences,
        async step(tokens) {
          log.logitSteps++;
          return { logits: feed(tokens) };
        },
        ...(select
          ? {
              async select(tokens: number[][], request: TokenSelectionRequest) {
                log.selectSteps++;
                const rows = feed(tokens);
                const flat = new Float32Array(sequences * nVocab);
                rows.forEach((row, s) => flat.set(row, s * nVocab));
                return selectTokensOnHost(flat, sequences, nVocab, request);
              },
            }
          : {}),
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
