/**
 * The Whisper model, written once against WhisperOps and lowered by every backend.
 * It follows OpenAI's model.py top to bottom:
 *
 *   encoder:  x = gelu(conv1(mel)); x = gelu(conv2(x)) (stride 2); x += positional embedding;
 *             each block: x = x + attn(ln(x)); x = x + mlp(ln(x)); then ln_post.
 *   decoder:  x = token_embedding[tokens] + positional_embedding[positions];
 *             each block: x = x + self_attn(ln(x)) (causal, KV cache);
 *                         x = x + cross_attn(ln(x), audio); x = x + mlp(ln(x));
 *             logits = ln(x) · token_embeddingᵀ.
 *
 * Decoding is incremental: a DecoderState holds each layer's self-attention K/V cache (capacity
 * nTextCtx per sequence, written in place at the current offset) and the cross-attention K/V,
 * computed once from the audio features. Several sequences (beams) run side by side as stacked
 * rows sharing one audio; `reorderDecoderState` permutes them for beam search.
 */
import type { WhisperDims } from './dims.ts';
import type { AttentionWeights, EncoderBlockWeights, WhisperWeights } from './weights.ts';
import type { AttentionKeyValues, WhisperOps } from './ops.ts';
import type { LogitsSource } from '../decoding/greedy.ts';
import { AudioError, MurmurError } from '../errors.ts';

/** What the model definition needs from a loaded model: its shapes and its weights. */
export interface ModelParameters<W> {
  dims: WhisperDims;
  weights: WhisperWeights<W>;
}

/** A log-mel spectrogram, channels-first [nMels, nFrames] (src/core/audio/mel.ts). */
export interface MelInput {
  data: Float32Array;
  nMels: number;
  nFrames: number;
}

/** x + self-attention(x') + out projection, where x' is the already-normalized input. */
function selfAttention<T, W>(ops: WhisperOps<T, W>, attn: AttentionWeights<W>, normalized: T, residual: T, heads: number): T {
  const q = ops.linear(normalized, attn.query);
  const k = ops.linear(normalized, attn.key);
  const v = ops.linear(normalized, attn.value);
  const [rows] = ops.shape(normalized);
  const { output } = ops.attention(q, { key: k, value: v, capacity: rows, length: rows, shared: true }, { heads, sequences: 1 });
  for (const t of [q, k, v]) ops.release(t);
  const x = ops.linear(output, attn.out, { residual });
  ops.release(output);
  return x;
}

/** x + mlp(ln(x)): fc1 with GELU, fc2 with the residual fused in. */
function mlpResidual<T, W>(ops: WhisperOps<T, W>, block: EncoderBlockWeights<W>, x: T): T {
  const normalized = ops.layerNorm(x, block.mlpLn);
  const hidden = ops.linear(normalized, block.mlp.fc1, { gelu: true });
  ops.release(normalized);
  const out = ops.linear(hidden, block.mlp.fc2, { residual: x });
  ops.release(hidden);
  return out;
}

/** Audio features [nAudioCtx, nAudioState] from a log-mel spectrogram of exactly 2·nAudioCtx frames. */
export function encode<T, W>(ops: WhisperOps<T, W>, model: ModelParameters<W>, mel: MelInput): T {
  const { dims, weights } = model;
  if (mel.nMels !== dims.nMels) throw new AudioError(`the model expects ${dims.nMels} mel bins, the spectrogram has ${mel.nMels}`);
  if (mel.nFrames !== 2 * dims.nAudioCtx) {
    throw new AudioError(`the encoder takes exactly ${2 * dims.nAudioCtx} mel frames (30 s), the spectrogram has ${mel.nFrames}`);
  }
  if (mel.data.length !== mel.nMels * mel.nFrames) throw new AudioError(`a [${mel.nMels}, ${mel.nFrames}] spectrogram needs ${mel.nMels * mel.nFrames} values, got ${mel.data.length}`);
  const encoder = weights.encoder;

  const input = ops.upload(mel.data, mel.nMels, mel.nFrames);
  const conv1 = ops.conv1d(input, encoder.conv1, { stride: 1, inputLayout: 'channels-first', gelu: true });
  ops.release(input);
  const conv2 = ops.conv1d(conv1, encoder.conv2, { stride: 2, inputLayout: 'time-major', gelu: true });
  ops.release(conv1);
  let x = ops.addPositionalEmbedding(conv2, encoder.positionalEmbedding);
  ops.release(conv2);

  for (const block of encoder.blocks) {
    const normalized = ops.layerNorm(x, block.attnLn);
    const attended = selfAttention(ops, block.attn, normalized, x, dims.nAudioHead);
    ops.release(normalized);
    ops.release(x);
    x = mlpResidual(ops, block, attended);
    ops.release(attended);
  }

  const features = ops.layerNorm(x, encoder.lnPost);
  ops.release(x);
  return features;
}

interface LayerCache<T> {
  key: T;
  value: T;
}

export interface DecoderState<T> {
  /** Sequences decoded side by side (1 for greedy, the beam width for beam search). */
  readonly sequences: number;
  /** Positions already in the self-attention caches (the same for every sequence). */
  offset: number;
  /** Per layer: [sequences × nTextCtx, nTextState], written in place. */
  readonly selfAttention: LayerCache<T>[];
  /** Per layer: [nAudioCtx, nTextState], from the audio features, shared by every sequence. */
  readonly crossAttention: LayerCache<T>[];
  readonly audioRows: number;
}

/**
 * Empty caches for `sequences` sequences over these audio features, with each layer's
 * cross-attention keys and values computed now, once, rather than at every token.
 */
export function createDecoderState<T, W>(
  ops: WhisperOps<T, W>,
  model: ModelParameters<W>,
  audioFeatures: T,
  options: { sequences?: number } = {},
): DecoderState<T> {
  const { dims, weights } = model;
  const sequences = options.sequences ?? 1;
  if (!Number.isInteger(sequences) || sequences < 1) throw new MurmurError('DECODER', `cannot decode ${sequences} sequences`);
  const [audioRows, audioCols] = ops.shape(audioFeatures);
  if (audioCols !== dims.nTextState) {
    throw new MurmurError('DECODER', `audio features of width ${audioCols} do not match the decoder width ${dims.nTextState}`);
  }
  return {
    sequences,
    offset: 0,
    audioRows,
    selfAttention: weights.decoder.blocks.map(() => ({
      key: ops.zeros(sequences * dims.nTextCtx, dims.nTextState),
      value: ops.zeros(sequences * dims.nTextCtx, dims.nTextState),
    })),
    crossAttention: weights.decoder.blocks.map((block) => ({
      key: ops.linear(audioFeatures, block.crossAttn.key),
      value: ops.linear(audioFeatures, block.crossAttn.value),
    })),
  };
}

export function releaseDecoderState<T, W>(ops: WhisperOps<T, W>, state: DecoderState<T>): void {
  for (const cache of [...state.selfAttention, ...state.crossAttention]) {
    ops.release(cache.key);
    ops.release(cache.value);
  }
}

/** Beam search: sequence s continues old sequence order[s]. */
export function reorderDecoderState<T, W>(ops: WhisperOps<T, W>, model: ModelParameters<W>, state: DecoderState<T>, order: readonly number[]): void {
  if (order.length !== state.sequences) throw new MurmurError('DECODER', `a reorder of ${order.length} sequences for a state of ${state.sequences}`);
  const options = { capacity: model.dims.nTextCtx, length: state.offset };
  for (const cache of state.selfAttention) {
    ops.reorderCache(cache.key, order, options);
    ops.reorderCache(cache.value, order, options);
  }
}

export interface DecodeStepOptions {
  /** Logits for every new token instead of only each sequence's last one (default false). */
  allLogits?: boolean;
  /** Also return every layer's cross-attention weights (word timestamps). */
  crossAttentionWeights?: boolean;
}

export interface DecodeStepResult<T> {
  /** [sequences × (1 or new tokens), nVocab], sequence-major. */
  logits: T;
  /**
   * Per decoder layer: [sequences × heads × newTokens, audioRows] softmax weights
   * (sequence, then head, then token), when asked for.
   */
  crossAttention?: T[];
}

/**
 * Feed the new tokens of every sequence (the same count for each) at the state's offset, advance
 * the offset, and return the next-token logits.
 */
export function decodeStep<T, W>(
  ops: WhisperOps<T, W>,
  model: ModelParameters<W>,
  state: DecoderState<T>,
  tokens: readonly (readonly number[])[],
  options: DecodeStepOptions = {},
): DecodeStepResult<T> {
  const { dims, weights } = model;
  const decoder = weights.decoder;
  const { sequences, offset } = state;
  if (tokens.length !== sequences) throw new MurmurError('DECODER', `tokens for ${tokens.length} sequences, the state decodes ${sequences}`);
  const count = tokens[0]!.length;
  if (count === 0 || tokens.some((row) => row.length !== count)) {
    throw new MurmurError('DECODER', `every sequence needs the same, non-zero number of new tokens (got ${tokens.map((r) => r.length).join(', ')})`);
  }
  if (offset + count > dims.nTextCtx) {
    throw new MurmurError('DECODER', `${offset + count} tokens exceed the decoder context of ${dims.nTextCtx}`);
  }
  for (const row of tokens) {
    for (const token of row) {
      if (!Number.isInteger(token) || token < 0 || token >= dims.nVocab) throw new MurmurError('DECODER', `token id ${token} is outside the vocabulary of ${dims.nVocab}`);
    }
  }

  const flatTokens = tokens.flat();
  const positions = tokens.flatMap((row) => row.map((_, i) => offset + i));
  let x = ops.embed(flatTokens, positions, decoder.tokenEmbedding, decoder.positionalEmbedding);
  const crossWeights: T[] = [];

  decoder.blocks.forEach((block, layer) => {
    // Causal self-attention through the cache: the new rows go in first, then attend to all so far.
    const normalized = ops.layerNorm(x, block.attnLn);
    const q = ops.linear(normalized, block.attn.query);
    const k = ops.linear(normalized, block.attn.key);
    const v = ops.linear(normalized, block.attn.value);
    ops.release(normalized);
    const cache = state.selfAttention[layer]!;
    const placement = { sequences, capacity: dims.nTextCtx, offset };
    ops.writeCache(cache.key, k, placement);
    ops.writeCache(cache.value, v, placement);
    ops.release(k);
    ops.release(v);
    const selfKv: AttentionKeyValues<T> = { ...cache, capacity: dims.nTextCtx, length: offset + count, shared: false };
    const self = ops.attention(q, selfKv, { heads: dims.nTextHead, sequences, causal: { queryOffset: offset } });
    ops.release(q);
    const afterSelf = ops.linear(self.output, block.attn.out, { residual: x });
    ops.release(self.output);
    ops.release(x);

    // Cross-attention over the audio, keys and values precomputed in the state.
    const crossNormalized = ops.layerNorm(afterSelf, block.crossAttnLn);
    const crossQ = ops.linear(crossNormalized, block.crossAttn.query);
    ops.release(crossNormalized);
    const cross = state.crossAttention[layer]!;
    const crossKv: AttentionKeyValues<T> = { ...cross, capacity: state.audioRows, length: state.audioRows, shared: true };
    const attended = ops.attention(crossQ, crossKv, { heads: dims.nTextHead, sequences, returnWeights: options.crossAttentionWeights });
    ops.release(crossQ);
    if (attended.weights) crossWeights.push(attended.weights);
    const afterCross = ops.linear(attended.output, block.crossAttn.out, { residual: afterSelf });
    ops.release(attended.output);
    ops.release(afterSelf);

    x = mlpResidual(ops, block, afterCross);
    ops.release(afterCross);
  });
  state.offset = offset + count;

  let normalized = ops.layerNorm(x, decoder.ln);
  ops.release(x);
  if (!options.allLogits && count > 1) {
    const last = ops.gatherRows(normalized, Array.from({ length: sequences }, (_, s) => s * count + count - 1));
    ops.release(normalized);
    normalized = last;
  }
  // Whisper ties the output projection to the token embedding.
  const logits = ops.linear(normalized, { weight: decoder.tokenEmbedding });
  ops.release(normalized);
  return { logits, ...(options.crossAttentionWeights ? { crossAttention: crossWeights } : {}) };
}

/**
 * A LogitsSource over one audio's features: it remembers what it has fed into the KV cache and
 * feeds only the new suffix of each sequence it is asked about; a sequence that does not extend
 * the previous one starts over from an empty cache.
 */
export function createLogitsSource<T, W>(ops: WhisperOps<T, W>, model: ModelParameters<W>, audioFeatures: T): LogitsSource & { dispose(): void } {
  let state = createDecoderState(ops, model, audioFeatures);
  let fed: number[] = [];
  return {
    async next(tokens) {
      const extendsFed = fed.length < tokens.length && fed.every((token, i) => tokens[i] === token);
      if (!extendsFed) {
        releaseDecoderState(ops, state);
        state = createDecoderState(ops, model, audioFeatures);
        fed = [];
      }
      const fresh = tokens.slice(fed.length);
      const { logits } = decodeStep(ops, model, state, [fresh]);
      fed = [...tokens];
      try {
        return await ops.read(logits);
      } finally {
        ops.release(logits);
      }
    },
    dispose() {
      releaseDecoderState(ops, state);
    },
  };
}
