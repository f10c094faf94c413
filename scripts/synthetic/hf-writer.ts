/**
 * Writes a Hugging Face Transformers Whisper folder (what `save_pretrained` produces for
 * WhisperForConditionalGeneration) from weights under their OpenAI names: config.json,
 * generation_config.json, preprocessor_config.json, tokenizer.json and model.safetensors, or
 * shards plus model.safetensors.index.json. The JSON files carry the same fields the openai/whisper-*
 * repositories ship, so the loader is tested against the real layout.
 */
import type { WhisperDims } from '../../src/core/model/dims.ts';
import { isMultilingual } from '../../src/core/model/dims.ts';
import { encodeTensor } from '../../src/core/model/dtype.ts';
import { huggingFaceName } from '../../src/core/model/weights.ts';
import type { WeightTensor } from '../../src/core/model/weights.ts';
import { writeSafetensors } from '../../src/core/formats/safetensors.ts';

export interface HuggingFaceGenerationOptions {
  /** [decoder layer, head] pairs; omitted from generation_config.json when absent. */
  alignmentHeads?: [number, number][];
  /** Default: the punctuation ids OpenAI's non-speech list starts with, plus the control tokens (as Hugging Face lists them). */
  suppressTokens?: number[];
  /** Default: [220 (a lone space), <|endoftext|>]. */
  beginSuppressTokens?: number[];
  /** Default 50 (1.0 s). */
  maxInitialTimestampIndex?: number;
}

export interface HuggingFaceFolderOptions {
  dims: WhisperDims;
  /** Every weight under its OpenAI name (`encoder.blocks.0.attn.query.weight`). */
  tensors: { name: string; shape: number[]; values: Float32Array }[];
  /** A tokenizer.json object; its added_tokens give the special-token ids the configs refer to. */
  tokenizerJson: object;
  dtype: 'f32' | 'f16' | 'bf16';
  /** When set, split the weights into model-0000i-of-0000n.safetensors of at most this many bytes (one tensor may exceed it) plus model.safetensors.index.json. */
  shardBytes?: number;
  generation?: HuggingFaceGenerationOptions;
  /** Also store `proj_out.weight` (a copy of the token embedding), as some exports do. */
  includeProjOut?: boolean;
  /** `_name_or_path` in config.json. */
  nameOrPath?: string;
}

const TORCH_DTYPE = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' } as const;

/** The GPT-2 ids of `"#()*+/:;<=>@[\]^_`{|}~`, which head OpenAI's non-speech suppression list in both vocabularies. */
const PUNCTUATION_IDS = [1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93];

/** Ids of the special tokens a folder's configs mention, read from the tokenizer's added tokens. */
function specialIds(tokenizerJson: object) {
  const added = (tokenizerJson as { added_tokens?: { id: number; content: string }[] }).added_tokens;
  if (!Array.isArray(added)) throw new Error('tokenizerJson has no added_tokens list');
  const byContent = new Map(added.map((t) => [t.content, t.id]));
  const id = (...names: string[]) => {
    for (const name of names) {
      const found = byContent.get(name);
      if (found !== undefined) return found;
    }
    throw new Error(`tokenizerJson has no ${names.join(' / ')} token`);
  };
  const sot = id('<|startoftranscript|>');
  const translate = id('<|translate|>');
  const languages = added.filter((t) => t.id > sot && t.id < translate).sort((a, b) => a.id - b.id);
  return {
    eot: id('<|endoftext|>'),
    sot,
    translate,
    transcribe: id('<|transcribe|>'),
    startOfLm: id('<|startoflm|>'),
    startOfPrev: id('<|startofprev|>'),
    noSpeech: id('<|nospeech|>', '<|nocaptions|>'),
    noTimestamps: id('<|notimestamps|>'),
    languages,
  };
}

function jsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
}

export function writeHuggingFaceFolder(options: HuggingFaceFolderOptions): Record<string, Uint8Array> {
  const { dims, dtype } = options;
  const ids = specialIds(options.tokenizerJson);
  const multilingual = isMultilingual(dims);
  const generation = options.generation ?? {};
  const suppressTokens = generation.suppressTokens ?? [
    ...PUNCTUATION_IDS,
    ids.sot,
    ids.translate,
    ids.transcribe,
    ids.startOfLm,
    ids.startOfPrev,
    ids.noSpeech,
  ];
  const beginSuppressTokens = generation.beginSuppressTokens ?? [220, ids.eot];
  const forcedDecoderIds = multilingual ? [[1, null], [2, ids.transcribe]] : [[1, ids.noTimestamps]];

  const config = {
    _name_or_path: options.nameOrPath ?? 'murmur/synthetic-whisper',
    activation_dropout: 0.0,
    activation_function: 'gelu',
    apply_spec_augment: false,
    architectures: ['WhisperForConditionalGeneration'],
    attention_dropout: 0.0,
    begin_suppress_tokens: beginSuppressTokens,
    bos_token_id: ids.eot,
    classifier_proj_size: 256,
    d_model: dims.nAudioState,
    decoder_attention_heads: dims.nTextHead,
    decoder_ffn_dim: 4 * dims.nTextState,
    decoder_layerdrop: 0.0,
    decoder_layers: dims.nTextLayer,
    decoder_start_token_id: ids.sot,
    dropout: 0.0,
    encoder_attention_heads: dims.nAudioHead,
    encoder_ffn_dim: 4 * dims.nAudioState,
    encoder_layerdrop: 0.0,
    encoder_layers: dims.nAudioLayer,
    eos_token_id: ids.eot,
    forced_decoder_ids: forcedDecoderIds,
    init_std: 0.02,
    is_encoder_decoder: true,
    mask_feature_length: 10,
    mask_feature_min_masks: 0,
    mask_feature_prob: 0.0,
    mask_time_length: 10,
    mask_time_min_masks: 2,
    mask_time_prob: 0.05,
    max_length: dims.nTextCtx,
    max_source_positions: dims.nAudioCtx,
    max_target_positions: dims.nTextCtx,
    median_filter_width: 7,
    model_type: 'whisper',
    num_hidden_layers: dims.nAudioLayer,
    num_mel_bins: dims.nMels,
    pad_token_id: ids.eot,
    scale_embedding: false,
    suppress_tokens: suppressTokens,
    torch_dtype: TORCH_DTYPE[dtype],
    transformers_version: '4.44.0',
    use_cache: true,
    use_weighted_layer_sum: false,
    vocab_size: dims.nVocab,
  };

  const generationConfig: Record<string, unknown> = {};
  if (generation.alignmentHeads) generationConfig.alignment_heads = generation.alignmentHeads;
  Object.assign(generationConfig, {
    begin_suppress_tokens: beginSuppressTokens,
    bos_token_id: ids.eot,
    decoder_start_token_id: ids.sot,
    eos_token_id: ids.eot,
    forced_decoder_ids: forcedDecoderIds,
    is_multilingual: multilingual,
  });
  if (multilingual) generationConfig.lang_to_id = Object.fromEntries(ids.languages.map((t) => [t.content, t.id]));
  Object.assign(generationConfig, {
    max_initial_timestamp_index: generation.maxInitialTimestampIndex ?? 50,
    max_length: dims.nTextCtx,
    no_timestamps_token_id: ids.noTimestamps,
    pad_token_id: ids.eot,
    prev_sot_token_id: ids.startOfPrev,
    return_timestamps: false,
    suppress_tokens: suppressTokens,
  });
  if (multilingual) generationConfig.task_to_id = { transcribe: ids.transcribe, translate: ids.translate };
  generationConfig.transformers_version = '4.44.0';

  const preprocessorConfig = {
    chunk_length: 30,
    feature_extractor_type: 'WhisperFeatureExtractor',
    feature_size: dims.nMels,
    hop_length: 160,
    n_fft: 400,
    n_samples: 480000,
    nb_max_frames: 3000,
    padding_side: 'right',
    padding_value: 0.0,
    processor_class: 'WhisperProcessor',
    return_attention_mask: false,
    sampling_rate: 16000,
  };

  const weights: { name: string; tensor: WeightTensor }[] = options.tensors.map((t) => ({
    name: huggingFaceName(t.name),
    tensor: encodeTensor(t.values, t.shape, dtype),
  }));
  if (options.includeProjOut) {
    const embedding = weights.find((w) => w.name === 'model.decoder.embed_tokens.weight');
    if (!embedding) throw new Error('includeProjOut needs decoder.token_embedding.weight among the tensors');
    weights.push({ name: 'proj_out.weight', tensor: embedding.tensor });
  }

  const folder: Record<string, Uint8Array> = {
    'config.json': jsonBytes(config),
    'generation_config.json': jsonBytes(generationConfig),
    'preprocessor_config.json': jsonBytes(preprocessorConfig),
    'tokenizer.json': jsonBytes(options.tokenizerJson),
  };
  const metadata = { format: 'pt' };
  if (options.shardBytes === undefined) {
    folder['model.safetensors'] = writeSafetensors(weights, metadata);
    return folder;
  }

  const shards: { name: string; tensor: WeightTensor }[][] = [[]];
  let shardSize = 0;
  for (const weight of weights) {
    const size = weight.tensor.bytes.length;
    if (shardSize > 0 && shardSize + size > options.shardBytes) {
      shards.push([]);
      shardSize = 0;
    }
    shards[shards.length - 1]!.push(weight);
    shardSize += size;
  }
  const pad = (n: number) => String(n).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  shards.forEach((shard, i) => {
    const file = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
    folder[file] = writeSafetensors(shard, metadata);
    for (const { name, tensor } of shard) {
      weightMap[name] = file;
      totalSize += tensor.bytes.length;
    }
  });
  const sortedMap = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)));
  folder['model.safetensors.index.json'] = jsonBytes({ metadata: { total_size: totalSize }, weight_map: sortedMap });
  return folder;
}
