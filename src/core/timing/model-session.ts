/**
 * An AlignmentSession straight over the model definition and a backend's ops, for callers that
 * hold audio features but no decoding session (and for tests on the reference backend).
 */
import type { WhisperOps } from '../model/ops.ts';
import { createDecoderState, decodeStep, releaseDecoderState, type DecoderState, type ModelParameters } from '../model/whisper.ts';
import type { AlignmentSession, AlignmentStepResult } from './alignment.ts';

export function modelAlignmentSession<T, W>(ops: WhisperOps<T, W>, model: ModelParameters<W>, audioFeatures: T): AlignmentSession & { dispose(): void } {
  let state: DecoderState<T> | undefined;
  const read = async (tensor: T): Promise<Float32Array> => {
    try {
      return await ops.read(tensor);
    } finally {
      ops.release(tensor);
    }
  };
  return {
    begin(sequences) {
      if (state) releaseDecoderState(ops, state);
      state = createDecoderState(ops, model, audioFeatures, { sequences });
    },
    async step(tokens, options) {
      state ??= createDecoderState(ops, model, audioFeatures, { sequences: tokens.length });
      const wantAll = options.allPositions === true;
      const stepped = decodeStep(ops, model, state, tokens, { allLogits: wantAll, crossAttentionWeights: options.crossAttention === true });
      const result: AlignmentStepResult = { logits: new Float32Array(0) };
      const logits = await read(stepped.logits);
      if (wantAll) {
        // Each sequence's last row is the next-token logits.
        const count = tokens[0]!.length;
        const width = logits.length / (tokens.length * count);
        result.allLogits = logits;
        result.logits = new Float32Array(tokens.length * width);
        tokens.forEach((_, s) => result.logits.set(logits.subarray((s * count + count - 1) * width, (s * count + count) * width), s * width));
      } else {
        result.logits = logits;
      }
      if (stepped.crossAttention) result.crossAttention = await Promise.all(stepped.crossAttention.map(read));
      return result;
    },
    dispose() {
      if (state) releaseDecoderState(ops, state);
      state = undefined;
    },
  };
}
