/**
 * The one internal weight schema. Both file formats (Hugging Face safetensors, whisper.cpp ggml)
 * load into it and every backend reads from it, so nothing past the loaders knows file formats.
 *
 * Shapes are PyTorch's, row-major with the last axis contiguous: linear weights are
 * [out, in], conv weights [out, in, kernel], embeddings [rows, width]. Quantized tensors keep
 * their ggml blocks along the last axis, one row after another.
 *
 * The schema is generic over the tensor handle `W`, so a backend maps it once at load time
 * (`mapWeights`) into its own handles (GPU buffers, packed WASM panels) and the model definition
 * reads the same structure on every backend.
 */
import type { WhisperDims } from './dims.ts';

export type WeightDType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1';

/** A weight as loaded: raw little-endian bytes in the file's dtype, never widened at load. */
export interface WeightTensor {
  dtype: WeightDType;
  shape: number[];
  bytes: Uint8Array;
}

export interface LinearWeights<W = WeightTensor> {
  weight: W;
  bias?: W;
}
export interface LayerNormWeights<W = WeightTensor> {
  weight: W;
  bias: W;
}
export interface AttentionWeights<W = WeightTensor> {
  query: LinearWeights<W>;
  /** Whisper's key projection has no bias. */
  key: LinearWeights<W>;
  value: LinearWeights<W>;
  out: LinearWeights<W>;
}
export interface MlpWeights<W = WeightTensor> {
  fc1: LinearWeights<W>;
  fc2: LinearWeights<W>;
}
export interface EncoderBlockWeights<W = WeightTensor> {
  attnLn: LayerNormWeights<W>;
  attn: AttentionWeights<W>;
  mlpLn: LayerNormWeights<W>;
  mlp: MlpWeights<W>;
}
export interface DecoderBlockWeights<W = WeightTensor> extends EncoderBlockWeights<W> {
  crossAttnLn: LayerNormWeights<W>;
  crossAttn: AttentionWeights<W>;
}
export interface WhisperWeights<W = WeightTensor> {
  encoder: {
    conv1: LinearWeights<W>;
    conv2: LinearWeights<W>;
    positionalEmbedding: W;
    blocks: EncoderBlockWeights<W>[];
    lnPost: LayerNormWeights<W>;
  };
  decoder: {
    /** Also the output projection: Whisper ties logits to the token embedding. */
    tokenEmbedding: W;
    positionalEmbedding: W;
    blocks: DecoderBlockWeights<W>[];
    ln: LayerNormWeights<W>;
  };
}

/** One entry of the schema: its OpenAI/whisper.cpp name, its expected shape, where it lives. */
export interface WeightSlot {
  /** OpenAI checkpoint name, also used verbatim by whisper.cpp ggml files. */
  name: string;
  shape: number[];
  /** True for the bias tensors a checkpoint may legitimately omit (none in Whisper today). */
  optional?: boolean;
  get<W>(w: WhisperWeights<W>): W;
  set<W>(w: WhisperWeights<W>, value: W): void;
}

/** Every weight of a Whisper model of these dims, in checkpoint order, with its expected shape. */
export function weightSlots(dims: WhisperDims): WeightSlot[] {
  const slots: WeightSlot[] = [];
  // A slot addresses its tensor through a path of keys from the root of the schema.
  const add = (name: string, shape: number[], path: (string | number)[]) => {
    const parentPath = path.slice(0, -1);
    const key = path[path.length - 1]!;
    const parent = (w: unknown): Record<string | number, unknown> => {
      let node = w as Record<string | number, unknown>;
      for (const step of parentPath) {
        if (node[step] === undefined) node[step] = {};
        node = node[step] as Record<string | number, unknown>;
      }
      return node;
    };
    slots.push({
      name,
      shape,
      get: <W>(w: WhisperWeights<W>) => parent(w)[key] as W,
      set: <W>(w: WhisperWeights<W>, value: W) => {
        parent(w)[key] = value;
      },
    });
  };
  const linear = (prefix: string, path: (string | number)[], out: number, inp: number, bias = true) => {
    add(`${prefix}.weight`, [out, inp], [...path, 'weight']);
    if (bias) add(`${prefix}.bias`, [out], [...path, 'bias']);
  };
  const layerNorm = (prefix: string, path: (string | number)[], n: number) => {
    add(`${prefix}.weight`, [n], [...path, 'weight']);
    add(`${prefix}.bias`, [n], [...path, 'bias']);
  };
  const attention = (prefix: string, path: (string | number)[], n: number) => {
    linear(`${prefix}.query`, [...path, 'query'], n, n);
    linear(`${prefix}.key`, [...path, 'key'], n, n, false);
    linear(`${prefix}.value`, [...path, 'value'], n, n);
    linear(`${prefix}.out`, [...path, 'out'], n, n);
  };
  const block = (prefix: string, path: (string | number)[], n: number, cross: boolean) => {
    attention(`${prefix}.attn`, [...path, 'attn'], n);
    layerNorm(`${prefix}.attn_ln`, [...path, 'attnLn'], n);
    if (cross) {
      attention(`${prefix}.cross_attn`, [...path, 'crossAttn'], n);
      layerNorm(`${prefix}.cross_attn_ln`, [...path, 'crossAttnLn'], n);
    }
    linear(`${prefix}.mlp.0`, [...path, 'mlp', 'fc1'], 4 * n, n);
    linear(`${prefix}.mlp.2`, [...path, 'mlp', 'fc2'], n, 4 * n);
    layerNorm(`${prefix}.mlp_ln`, [...path, 'mlpLn'], n);
  };

  const a = dims.nAudioState;
  add('encoder.positional_embedding', [dims.nAudioCtx, a], ['encoder', 'positionalEmbedding']);
  add('encoder.conv1.weight', [a, dims.nMels, 3], ['encoder', 'conv1', 'weight']);
  add('encoder.conv1.bias', [a], ['encoder', 'conv1', 'bias']);
  add('encoder.conv2.weight', [a, a, 3], ['encoder', 'conv2', 'weight']);
  add('encoder.conv2.bias', [a], ['encoder', 'conv2', 'bias']);
  for (let i = 0; i < dims.nAudioLayer; i++) block(`encoder.blocks.${i}`, ['encoder', 'blocks', i], a, false);
  layerNorm('encoder.ln_post', ['encoder', 'lnPost'], a);

  const t = dims.nTextState;
  add('decoder.positional_embedding', [dims.nTextCtx, t], ['decoder', 'positionalEmbedding']);
  add('decoder.token_embedding.weight', [dims.nVocab, t], ['decoder', 'tokenEmbedding']);
  for (let i = 0; i < dims.nTextLayer; i++) block(`decoder.blocks.${i}`, ['decoder', 'blocks', i], t, true);
  layerNorm('decoder.ln', ['decoder', 'ln'], t);
  return slots;
}

/** An empty schema object whose arrays have the right lengths, ready for `slot.set`. */
export function emptyWeights<W>(dims: WhisperDims): WhisperWeights<W> {
  return {
    encoder: { blocks: Array.from({ length: dims.nAudioLayer }, () => ({})) },
    decoder: { blocks: Array.from({ length: dims.nTextLayer }, () => ({})) },
  } as unknown as WhisperWeights<W>;
}

/** Build the schema by looking every slot up by name; `lookup` throws for a missing tensor. */
export function assembleWeights<W>(dims: WhisperDims, lookup: (slot: WeightSlot) => W): WhisperWeights<W> {
  const weights = emptyWeights<W>(dims);
  for (const slot of weightSlots(dims)) slot.set(weights, lookup(slot));
  return weights;
}

/** Map every tensor of the schema into another handle type (e.g. upload to the GPU). */
export function mapWeights<A, B>(dims: WhisperDims, weights: WhisperWeights<A>, fn: (tensor: A, slot: WeightSlot) => B): WhisperWeights<B> {
  return assembleWeights<B>(dims, (slot) => fn(slot.get(weights), slot));
}

/**
 * The Hugging Face Transformers name of a schema slot (WhisperForConditionalGeneration).
 * OpenAI: encoder.blocks.0.attn.query.weight -> HF: model.encoder.layers.0.self_attn.q_proj.weight
 */
export function huggingFaceName(openaiName: string): string {
  const rules: [RegExp, string][] = [
    [/^encoder\.positional_embedding$/, 'model.encoder.embed_positions.weight'],
    [/^decoder\.positional_embedding$/, 'model.decoder.embed_positions.weight'],
    [/^decoder\.token_embedding\.weight$/, 'model.decoder.embed_tokens.weight'],
    [/^encoder\.conv(\d)\.(weight|bias)$/, 'model.encoder.conv$1.$2'],
    [/^encoder\.ln_post\.(weight|bias)$/, 'model.encoder.layer_norm.$1'],
    [/^decoder\.ln\.(weight|bias)$/, 'model.decoder.layer_norm.$1'],
  ];
  for (const [pattern, replacement] of rules) if (pattern.test(openaiName)) return openaiName.replace(pattern, replacement);
  const block = /^(encoder|decoder)\.blocks\.(\d+)\.(.+)$/.exec(openaiName);
  if (!block) throw new Error(`no Hugging Face name for ${openaiName}`);
  const [, side, index, rest] = block;
  const parts: [RegExp, string][] = [
    [/^attn\.(query|key|value|out)\.(weight|bias)$/, 'self_attn.$1.$2'],
    [/^cross_attn\.(query|key|value|out)\.(weight|bias)$/, 'encoder_attn.$1.$2'],
    [/^attn_ln\.(weight|bias)$/, 'self_attn_layer_norm.$1'],
    [/^cross_attn_ln\.(weight|bias)$/, 'encoder_attn_layer_norm.$1'],
    [/^mlp\.0\.(weight|bias)$/, 'fc1.$1'],
    [/^mlp\.2\.(weight|bias)$/, 'fc2.$1'],
    [/^mlp_ln\.(weight|bias)$/, 'final_layer_norm.$1'],
  ];
  const projections: Record<string, string> = { query: 'q_proj', key: 'k_proj', value: 'v_proj', out: 'out_proj' };
  for (const [pattern, replacement] of parts) {
    if (pattern.test(rest!)) {
      const mapped = rest!.replace(pattern, replacement).replace(/\b(query|key|value|out)\b/, (p) => projections[p]!);
      return `model.${side}.layers.${index}.${mapped}`;
    }
  }
  throw new Error(`no Hugging Face name for ${openaiName}`);
}

/** Number of elements of a shape. */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
