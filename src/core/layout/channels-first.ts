/**
 * The channels-first layout, the Neural Engine recipe: activations as (B, C, 1, S) instead of
 * (B, S, C), the sequence axis last and padded to 64 bytes (16 f32 or 32 f16 values) so every
 * channel row starts aligned and a kernel reads it in whole vectors with no tail. Linear layers
 * become 1×1 convolutions over that layout: a PyTorch linear weight [N, K] already is the
 * (N, K, 1, 1) convolution weight, byte for byte, so weights need no repacking here.
 * Attention is split per head: head h owns channels [h·d, (h+1)·d), a contiguous band of rows.
 *
 * Invariant: the padding positions (s ≥ sequence) hold zeros, in inputs and in every output the
 * functions here produce, so a padded tensor can feed the next op unchanged.
 */
import { gelu } from '../reference/math.ts';
import { f32ToF16 } from '../model/dtype.ts';
import { checkDims, checkLength, layoutError, roundUp } from './shape.ts';

const LAYOUT = 'channels-first';

export type ChannelsFirstDType = 'f32' | 'f16';

/** Every channel row starts on a 64-byte boundary. */
export const CHANNELS_FIRST_ALIGNMENT_BYTES = 64;

/** The sequence axis is padded to a multiple of this many values: 16 for f32, 32 for f16. */
export function channelsFirstSequenceMultiple(dtype: ChannelsFirstDType = 'f32'): number {
  return CHANNELS_FIRST_ALIGNMENT_BYTES / (dtype === 'f16' ? 2 : 4);
}

/** (batch, channels, 1, paddedSequence), f32 values; the singleton axis is implied. */
export interface ChannelsFirstTensor {
  readonly data: Float32Array;
  readonly batch: number;
  readonly channels: number;
  /** Valid positions along the sequence axis. */
  readonly sequence: number;
  /** The stored length of every channel row, a multiple of channelsFirstSequenceMultiple(dtype). */
  readonly paddedSequence: number;
}

/** A zero tensor, ready to be filled. */
export function emptyChannelsFirst(batch: number, channels: number, sequence: number, dtype: ChannelsFirstDType = 'f32'): ChannelsFirstTensor {
  checkDims(LAYOUT, { batch, channels, sequence });
  const paddedSequence = roundUp(sequence, channelsFirstSequenceMultiple(dtype));
  return { data: new Float32Array(batch * channels * paddedSequence), batch, channels, sequence, paddedSequence };
}

/** (B, S, C) row-major → (B, C, 1, S padded); `dtype` is the storage type the padding is sized for. */
export function packChannelsFirst(
  x: Float32Array,
  batch: number,
  sequence: number,
  channels: number,
  options: { dtype?: ChannelsFirstDType } = {},
): ChannelsFirstTensor {
  const out = emptyChannelsFirst(batch, channels, sequence, options.dtype);
  checkLength(LAYOUT, 'the input', x.length, batch * sequence * channels, `(B ${batch}, S ${sequence}, C ${channels})`);
  const { data, paddedSequence } = out;
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < sequence; s++) {
      const from = (b * sequence + s) * channels;
      for (let c = 0; c < channels; c++) data[(b * channels + c) * paddedSequence + s] = x[from + c]!;
    }
  }
  return out;
}

/** (B, C, 1, S padded) → (B, S, C) row-major, dropping the padding. */
export function unpackChannelsFirst(t: ChannelsFirstTensor): Float32Array {
  const { batch, channels, sequence, paddedSequence, data } = t;
  const out = new Float32Array(batch * sequence * channels);
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < channels; c++) {
      const from = (b * channels + c) * paddedSequence;
      for (let s = 0; s < sequence; s++) out[(b * sequence + s) * channels + c] = data[from + s]!;
    }
  }
  return out;
}

/** The same tensor stored as f16 bits; its rows must be padded for f16 (packChannelsFirst with dtype 'f16'). */
export function channelsFirstToF16(t: ChannelsFirstTensor): Uint16Array {
  if (t.paddedSequence % channelsFirstSequenceMultiple('f16') !== 0) {
    throw layoutError(LAYOUT, `a sequence padded to ${t.paddedSequence} leaves f16 rows off the 64-byte boundary; pack with dtype 'f16'`);
  }
  return Uint16Array.from(t.data, f32ToF16);
}

export interface Conv1x1Options {
  /** [outChannels] values, added before GELU. */
  bias?: Float32Array;
  gelu?: boolean;
  /** Channels-first too, shaped like the output; added last. */
  residual?: ChannelsFirstTensor;
}

/**
 * The linear layer as a 1×1 convolution: y[b, n, s] = gelu?(Σ_k W[n, k] · x[b, k, s] + bias[n]) +
 * residual[b, n, s], with W [outChannels, x.channels] as the weight schema stores a linear.
 * The output is channels-first with x's padding, zero in the padded positions.
 */
export function conv1x1ChannelsFirst(x: ChannelsFirstTensor, weight: Float32Array, outChannels: number, options: Conv1x1Options = {}): ChannelsFirstTensor {
  const { batch, channels, sequence, paddedSequence } = x;
  checkDims(LAYOUT, { outChannels });
  checkLength(LAYOUT, 'the 1×1 convolution weight', weight.length, outChannels * channels, `[${outChannels}, ${channels}]`);
  if (options.bias) checkLength(LAYOUT, 'the bias', options.bias.length, outChannels, `${outChannels} output channels`);
  const residual = options.residual;
  if (residual && (residual.batch !== batch || residual.channels !== outChannels || residual.sequence !== sequence || residual.paddedSequence !== paddedSequence)) {
    throw layoutError(LAYOUT, `a residual (${residual.batch}, ${residual.channels}, 1, ${residual.paddedSequence}) does not match the output (${batch}, ${outChannels}, 1, ${paddedSequence})`);
  }
  const y: ChannelsFirstTensor = { data: new Float32Array(batch * outChannels * paddedSequence), batch, channels: outChannels, sequence, paddedSequence };
  const sums = new Float64Array(sequence);
  for (let b = 0; b < batch; b++) {
    for (let n = 0; n < outChannels; n++) {
      sums.fill(0);
      for (let k = 0; k < channels; k++) {
        const w = weight[n * channels + k]!;
        const row = (b * channels + k) * paddedSequence;
        for (let s = 0; s < sequence; s++) sums[s]! += w * x.data[row + s]!;
      }
      const out = (b * outChannels + n) * paddedSequence;
      for (let s = 0; s < sequence; s++) {
        let value = sums[s]! + (options.bias?.[n] ?? 0);
        if (options.gelu) value = gelu(value);
        if (residual) value += residual.data[out + s]!;
        y.data[out + s] = value;
      }
    }
  }
  return y;
}

/** Head h of a channels-first tensor: its channels [h·d, (h+1)·d) as a (B, d, 1, S) tensor of its own. */
export function channelsFirstHead(t: ChannelsFirstTensor, heads: number, head: number): ChannelsFirstTensor {
  checkDims(LAYOUT, { heads });
  if (t.channels % heads !== 0) throw layoutError(LAYOUT, `${t.channels} channels do not split into ${heads} heads`);
  if (!Number.isInteger(head) || head < 0 || head >= heads) throw layoutError(LAYOUT, `head ${head} is not one of ${heads}`);
  const d = t.channels / heads;
  const band = d * t.paddedSequence;
  const data = new Float32Array(t.batch * band);
  for (let b = 0; b < t.batch; b++) {
    const from = (b * t.channels + head * d) * t.paddedSequence;
    data.set(t.data.subarray(from, from + band), b * band);
  }
  return { data, batch: t.batch, channels: d, sequence: t.sequence, paddedSequence: t.paddedSequence };
}

/**
 * Multi-head attention split per head, all in channels-first: for every head, scores
 * [sq, sk] = Σ_c q[c, sq]·k[c, sk] / √d (plus a causal mask), softmax over the valid keys, and
 * out[c, sq] = Σ_sk p[sq, sk]·v[c, sk]; the heads' outputs are the output's channel bands.
 * Queries and keys may have different sequence lengths (cross-attention).
 */
export function splitHeadAttentionChannelsFirst(
  q: ChannelsFirstTensor,
  k: ChannelsFirstTensor,
  v: ChannelsFirstTensor,
  heads: number,
  options: { causal?: boolean } = {},
): ChannelsFirstTensor {
  checkDims(LAYOUT, { heads });
  if (k.channels !== q.channels || v.channels !== q.channels || k.batch !== q.batch || v.batch !== q.batch) {
    throw layoutError(LAYOUT, `attention needs q, k, v with the same batch and channels, got (${q.batch}, ${q.channels}), (${k.batch}, ${k.channels}), (${v.batch}, ${v.channels})`);
  }
  if (v.sequence !== k.sequence || v.paddedSequence !== k.paddedSequence) throw layoutError(LAYOUT, `keys cover ${k.sequence} positions, values ${v.sequence}`);
  const out: ChannelsFirstTensor = { ...q, data: new Float32Array(q.data.length) };
  const d = q.channels / heads;
  const scale = 1 / Math.sqrt(d);
  const scores = new Float64Array(k.sequence);
  for (let h = 0; h < heads; h++) {
    const [qh, kh, vh] = [q, k, v].map((t) => channelsFirstHead(t, heads, h)) as [ChannelsFirstTensor, ChannelsFirstTensor, ChannelsFirstTensor];
    for (let b = 0; b < q.batch; b++) {
      const qBase = b * d * q.paddedSequence;
      const kvBase = b * d * k.paddedSequence;
      for (let sq = 0; sq < q.sequence; sq++) {
        const visible = options.causal ? Math.min(k.sequence, sq + 1 + (k.sequence - q.sequence)) : k.sequence;
        let max = -Infinity;
        for (let sk = 0; sk < visible; sk++) {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += qh.data[qBase + c * q.paddedSequence + sq]! * kh.data[kvBase + c * k.paddedSequence + sk]!;
          scores[sk] = dot * scale;
          max = Math.max(max, scores[sk]!);
        }
        let total = 0;
        for (let sk = 0; sk < visible; sk++) total += scores[sk] = Math.exp(scores[sk]! - max);
        for (let c = 0; c < d; c++) {
          let mixed = 0;
          for (let sk = 0; sk < visible; sk++) mixed += scores[sk]! * vh.data[kvBase + c * k.paddedSequence + sk]!;
          out.data[(b * q.channels + h * d + c) * q.paddedSequence + sq] = mixed / total;
        }
      }
    }
  }
  return out;
}
