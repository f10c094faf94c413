// One greedy decoder step as the engine runs it: on a backend with token selection only the chosen
// id comes back (as in decoding), otherwise the logits are read and the argmax taken on the host.
// Shared by the Node and browser benches, so it imports nothing from Node.
import type { WhisperOps } from '../src/core/model/ops.ts';
import { decodeStep, type DecoderState, type ModelParameters } from '../src/core/model/whisper.ts';
import { argmax } from '../src/core/decoding/math.ts';

export function greedyStep<T, W>(ops: WhisperOps<T, W>, parameters: ModelParameters<W>, state: DecoderState<T>): (tokens: number[]) => Promise<number> {
  return async (tokens) => {
    const { logits } = decodeStep(ops, parameters, state, [tokens]);
    try {
      if (ops.selectTokens) return (await ops.selectTokens(logits, { topK: 1 }))[0]!.ids[0]!;
      return argmax(await ops.read(logits));
    } finally {
      ops.release(logits);
    }
  };
}
