/**
 * The decoder as the decoding strategies see it: one 30 s window's audio, any backend, any number
 * of sequences decoded side by side. Greedy, sampling (best-of) and beam search all run as stacked
 * sequences in one BatchDecoder, so a beam reorder is a KV-cache permutation, not a recompute.
 */
import type { TokenSelection, TokenSelectionRequest, WhisperOps } from '../model/ops.ts';
import type { ModelParameters } from '../model/whisper.ts';
import { createDecoderState, decodeStep, releaseDecoderState, reorderDecoderState } from '../model/whisper.ts';
import { MurmurError } from '../errors.ts';

/** One 30 s window's audio, ready to decode on any backend. */
export interface DecoderSession {
  readonly nVocab: number;
  readonly nTextCtx: number;
  /** Empty KV caches for `sequences` sequences. */
  begin(sequences: number): BatchDecoder;
}

export interface StepOptions {
  /** Also return the logits of every new position, not only the last (no-speech probability at SOT). */
  allPositions?: boolean;
  /** Also return every decoder layer's cross-attention weights (word timestamps). */
  crossAttention?: boolean;
}

export interface BatchDecoder {
  readonly sequences: number;
  /** Feed the same number (≥1) of new tokens to every sequence; logits for each sequence's last new position. */
  step(tokens: number[][], options?: StepOptions): Promise<StepOutput>;
  /**
   * Present when the backend selects tokens where the logits are (WhisperOps.selectTokens): like
   * step, but returns each sequence's TokenSelection for its last new position instead of logits.
   */
  select?(tokens: number[][], request: TokenSelectionRequest): Promise<TokenSelection[]>;
  /** Beam search: sequence s continues old sequence order[s]. */
  reorder(order: number[]): void;
  dispose(): void;
}

export interface StepOutput {
  /** [sequence] → nVocab: the logits after each sequence's last new token. */
  logits: Float32Array[];
  /** [sequence][position] → nVocab, for every new position, when allPositions. */
  allLogits?: Float32Array[][];
  /** Per decoder layer: [sequences × heads × newTokens, audioRows], sequence, then head, then token. */
  crossAttention?: Float32Array[];
}

/**
 * A DecoderSession over audio features from `encode`. The session does not own the features:
 * the caller releases them after the last BatchDecoder is disposed.
 */
export function createDecoderSession<T, W>(ops: WhisperOps<T, W>, model: ModelParameters<W>, audioFeatures: T): DecoderSession {
  const { nVocab, nTextCtx } = model.dims;
  return {
    nVocab,
    nTextCtx,
    begin(sequences) {
      let state: ReturnType<typeof createDecoderState<T, W>> | undefined = createDecoderState(ops, model, audioFeatures, { sequences });
      const live = () => {
        if (!state) throw new MurmurError('DISPOSED', 'the batch decoder was disposed');
        return state;
      };
      return {
        sequences,
        async step(tokens, options = {}) {
          const count = tokens[0]?.length ?? 0;
          const result = decodeStep(ops, model, live(), tokens, { allLogits: options.allPositions, crossAttentionWeights: options.crossAttention });
          let flat: Float32Array;
          let layers: Float32Array[] | undefined;
          try {
            flat = await ops.read(result.logits);
            if (result.crossAttention) layers = await Promise.all(result.crossAttention.map((weights) => ops.read(weights)));
          } finally {
            ops.release(result.logits);
            for (const weights of result.crossAttention ?? []) ops.release(weights);
          }
          const rowsPerSequence = options.allPositions ? count : 1;
          if (flat.length !== sequences * rowsPerSequence * nVocab) {
            throw new MurmurError('DECODER', `the backend returned ${flat.length} logits, expected ${sequences * rowsPerSequence * nVocab}`);
          }
          const row = (s: number, position: number) => flat.subarray((s * rowsPerSequence + position) * nVocab, (s * rowsPerSequence + position + 1) * nVocab);
          const output: StepOutput = { logits: Array.from({ length: sequences }, (_, s) => row(s, rowsPerSequence - 1)) };
          if (options.allPositions) output.allLogits = Array.from({ length: sequences }, (_, s) => Array.from({ length: count }, (_, p) => row(s, p)));
          if (layers) output.crossAttention = layers;
          return output;
        },
        ...(ops.selectTokens
          ? {
              async select(tokens: number[][], request: TokenSelectionRequest) {
                const result = decodeStep(ops, model, live(), tokens, {});
                let rows: TokenSelection[];
                try {
                  rows = await ops.selectTokens!(result.logits, request);
                } finally {
                  ops.release(result.logits);
                }
                if (rows.length !== sequences) throw new MurmurError('DECODER', `the backend selected tokens for ${rows.length} sequences, expected ${sequences}`);
                return rows;
              },
            }
          : {}),
        reorder(order) {
          for (const source of order) {
            if (!Number.isInteger(source) || source < 0 || source >= sequences) throw new MurmurError('DECODER', `reorder names sequence ${source}, the batch has ${sequences}`);
          }
          reorderDecoderState(ops, model, live(), order);
        },
        dispose() {
          if (state) releaseDecoderState(ops, state);
          state = undefined;
        },
      };
    },
  };
}
