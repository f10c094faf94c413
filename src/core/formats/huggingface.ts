/**
 * A Hugging Face Transformers Whisper folder (WhisperForConditionalGeneration, as the
 * openai/whisper-* repositories ship it): config.json fixes the dims, generation_config.json the
 * decoding settings, tokenizer.json (or vocab.json + merges.txt + added_tokens.json) the
 * vocabulary, and model.safetensors (or an index and its shards) the weights.
 *
 * Files are read in that order, smallest first, so a wrong config or tokenizer fails before the
 * weights are downloaded; only the files named here are ever requested.
 */
import { ModelFormatError } from '../errors.ts';
import type { WhisperDims } from '../model/dims.ts';
import { isMultilingual } from '../model/dims.ts';
import type { GenerationConfig, WhisperModel } from '../model/model.ts';
import type { WeightTensor } from '../model/weights.ts';
import { assembleWeights, huggingFaceName, weightSlots } from '../model/weights.ts';
import { WhisperTokenizer } from '../tokenizer/tokenizer.ts';
import { checkedTensor, defaultAlignmentHeads, defaultGenerationConfig } from './ggml.ts';
import { parseSafetensors } from './safetensors.ts';
import { checkFileName } from './sources.ts';
import type { ModelFiles } from './sources.ts';

export type { ModelFiles } from './sources.ts';

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJson(bytes: Uint8Array, file: string): Json {
  let value: unknown;
  try {
    // A UTF-8 byte-order mark is legal in files saved by some editors; JSON.parse rejects it.
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch (cause) {
    throw new ModelFormatError(file, `is not valid JSON (${(cause as Error).message})`, { cause });
  }
  if (!isObject(value)) throw new ModelFormatError(file, 'is not a JSON object');
  return value;
}

function positiveInteger(config: Json, key: string, file: string): number {
  const value = config[key];
  if (value === undefined) throw new ModelFormatError(file, `has no "${key}"`);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ModelFormatError(file, `"${key}" is ${JSON.stringify(value)}, not a positive integer`);
  }
  return value;
}

/** config.json → the model's dims; every field a Whisper model needs, with the checks our model relies on. */
export function dimsFromConfig(config: Json, file: string): WhisperDims {
  if (config.model_type !== undefined && config.model_type !== 'whisper') {
    throw new ModelFormatError(file, `model_type is ${JSON.stringify(config.model_type)}, not "whisper"`);
  }
  const dModel = positiveInteger(config, 'd_model', file);
  const dims: WhisperDims = {
    nMels: positiveInteger(config, 'num_mel_bins', file),
    nAudioCtx: positiveInteger(config, 'max_source_positions', file),
    nAudioState: dModel,
    nAudioHead: positiveInteger(config, 'encoder_attention_heads', file),
    nAudioLayer: positiveInteger(config, 'encoder_layers', file),
    nTextCtx: positiveInteger(config, 'max_target_positions', file),
    nTextState: dModel,
    nTextHead: positiveInteger(config, 'decoder_attention_heads', file),
    nTextLayer: positiveInteger(config, 'decoder_layers', file),
    nVocab: positiveInteger(config, 'vocab_size', file),
  };
  for (const key of ['encoder_attention_heads', 'decoder_attention_heads']) {
    const heads = config[key] as number;
    if (dModel % heads !== 0) throw new ModelFormatError(file, `d_model ${dModel} is not divisible by ${key} ${heads}`);
  }
  // Whisper's MLP is always 4 × d_model wide; the weight schema assumes it.
  for (const key of ['encoder_ffn_dim', 'decoder_ffn_dim']) {
    if (config[key] === undefined) continue;
    const width = positiveInteger(config, key, file);
    if (width !== 4 * dModel) throw new ModelFormatError(file, `${key} is ${width}, but Whisper's MLP is 4 × d_model = ${4 * dModel}`);
  }
  if (config.activation_function !== undefined && config.activation_function !== 'gelu') {
    throw new ModelFormatError(file, `activation_function is ${JSON.stringify(config.activation_function)}; Murmur implements Whisper's "gelu"`);
  }
  if (config.scale_embedding === true) {
    throw new ModelFormatError(file, 'scale_embedding is true; Whisper does not scale its embeddings and Murmur does not implement it');
  }
  return dims;
}

async function readTokenizer(files: ModelFiles, dims: WhisperDims): Promise<WhisperTokenizer> {
  const tokenizerJson = await files.get('tokenizer.json');
  if (tokenizerJson) {
    const file = files.locate('tokenizer.json');
    return WhisperTokenizer.fromHuggingFace(parseJson(tokenizerJson, file), { source: file, nVocab: dims.nVocab });
  }
  const vocab = await files.get('vocab.json');
  if (!vocab) {
    throw new ModelFormatError(files.folder, 'has no tokenizer: expected tokenizer.json, or vocab.json + merges.txt (+ added_tokens.json)');
  }
  const merges = await files.get('merges.txt');
  if (!merges) throw files.missing('merges.txt');
  const source = files.locate('vocab.json');
  let addedTokens: Json | undefined;
  const addedTokensBytes = await files.get('added_tokens.json');
  if (addedTokensBytes) {
    addedTokens = parseJson(addedTokensBytes, files.locate('added_tokens.json'));
  } else {
    // Newer exports drop added_tokens.json and list the specials in tokenizer_config.json's
    // added_tokens_decoder ({ "50257": { "content": "<|endoftext|>", ... } }).
    const configBytes = await files.get('tokenizer_config.json');
    if (configBytes) {
      const file = files.locate('tokenizer_config.json');
      const decoder = parseJson(configBytes, file).added_tokens_decoder;
      if (isObject(decoder)) {
        addedTokens = {};
        for (const [id, token] of Object.entries(decoder)) {
          if (!isObject(token) || typeof token.content !== 'string' || !/^\d+$/.test(id)) {
            throw new ModelFormatError(file, `added_tokens_decoder entry ${JSON.stringify(id)} has no string "content"`);
          }
          addedTokens[token.content] = Number(id);
        }
      }
    }
  }
  return WhisperTokenizer.fromHuggingFaceFiles(parseJson(vocab, source), new TextDecoder().decode(merges), addedTokens, { source, nVocab: dims.nVocab });
}

/** Where a tensor was found: the safetensors file that holds it. */
interface FoundTensor {
  tensor: WeightTensor;
  file: string;
}

/** Exports of the bare WhisperModel (not ...ForConditionalGeneration) name tensors without `model.`. */
function canonicalName(name: string): string {
  return name.startsWith('model.') || name === 'proj_out.weight' ? name : `model.${name}`;
}

function addTensors(into: Map<string, FoundTensor>, tensors: Map<string, WeightTensor>, file: string): void {
  for (const [name, tensor] of tensors) {
    const canonical = canonicalName(name);
    const earlier = into.get(canonical);
    if (earlier) {
      throw new ModelFormatError(file, `appears twice (also in ${earlier.file}${canonical !== name ? `, as ${canonical}` : ''})`, { tensor: name });
    }
    into.set(canonical, { tensor, file });
  }
}

async function readWeights(files: ModelFiles): Promise<{ tensors: Map<string, FoundTensor>; file: string }> {
  const tensors = new Map<string, FoundTensor>();
  const single = await files.get('model.safetensors');
  if (single) {
    const file = files.locate('model.safetensors');
    addTensors(tensors, parseSafetensors(single, file), file);
    return { tensors, file };
  }
  const indexBytes = await files.get('model.safetensors.index.json');
  if (!indexBytes) {
    if (files.names?.includes('pytorch_model.bin')) {
      throw new ModelFormatError(files.folder, 'has only pytorch_model.bin (a pickled PyTorch checkpoint); Murmur reads model.safetensors');
    }
    throw files.missing('model.safetensors');
  }
  const indexFile = files.locate('model.safetensors.index.json');
  const weightMap = parseJson(indexBytes, indexFile).weight_map;
  if (!isObject(weightMap)) throw new ModelFormatError(indexFile, 'has no "weight_map" object');
  const shardOf = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string') throw new ModelFormatError(indexFile, `maps to ${JSON.stringify(shard)}, not a file name`, { tensor: name });
    checkFileName(shard, indexFile);
    shardOf.set(name, shard);
  }
  for (const shard of new Set(shardOf.values())) {
    const bytes = await files.get(shard);
    if (!bytes) throw files.missing(shard);
    const file = files.locate(shard);
    const shardTensors = parseSafetensors(bytes, file);
    for (const name of shardTensors.keys()) {
      if (shardOf.get(name) !== shard) {
        const listed = shardOf.get(name);
        throw new ModelFormatError(file, listed ? `is also here, but ${indexFile} places it in ${listed}` : `is not listed in ${indexFile}`, { tensor: name });
      }
    }
    for (const [name, listedShard] of shardOf) {
      if (listedShard === shard && !shardTensors.has(name)) throw new ModelFormatError(file, `is missing, though ${indexFile} places it here`, { tensor: name });
    }
    addTensors(tensors, shardTensors, file);
  }
  return { tensors, file: indexFile };
}

/** The number of layers each stack has in the weights, to say "config says 6, weights have 4" rather than "tensor X missing". */
function layerCounts(tensors: Map<string, FoundTensor>): { encoder: number; decoder: number } {
  const counts = { encoder: 0, decoder: 0 };
  for (const name of tensors.keys()) {
    const match = /^model\.(encoder|decoder)\.layers\.(\d+)\./.exec(name);
    if (match) {
      const side = match[1] as 'encoder' | 'decoder';
      counts[side] = Math.max(counts[side], Number(match[2]) + 1);
    }
  }
  return counts;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function assembleHuggingFaceWeights(dims: WhisperDims, found: { tensors: Map<string, FoundTensor>; file: string }, configFile: string) {
  const { tensors, file: weightsFile } = found;
  const counts = layerCounts(tensors);
  for (const [side, configured, key] of [
    ['encoder', dims.nAudioLayer, 'encoder_layers'],
    ['decoder', dims.nTextLayer, 'decoder_layers'],
  ] as const) {
    if (counts[side] !== configured) {
      throw new ModelFormatError(configFile, `${key} is ${configured}, but ${weightsFile} has ${counts[side]} ${side} layers`, {
        tensor: `model.${side}.layers.${Math.min(counts[side], configured)}`,
      });
    }
  }

  const expected = new Set<string>();
  const weights = assembleWeights(dims, (slot) => {
    const name = huggingFaceName(slot.name);
    expected.add(name);
    const entry = tensors.get(name);
    if (!entry) throw new ModelFormatError(weightsFile, 'is missing', { tensor: name });
    try {
      return checkedTensor(entry.file, slot, entry.tensor);
    } catch (error) {
      if (!(error instanceof ModelFormatError)) throw error;
      throw new ModelFormatError(entry.file, `has shape [${entry.tensor.shape}] but ${configFile} implies [${slot.shape}]`, { tensor: name });
    }
  });

  // Whisper ties the output projection to the token embedding and Murmur computes logits from
  // the embedding, so a stored proj_out.weight must be that same matrix; an untied one (a
  // fine-tune that broke the tie) would silently give different logits, so it is refused.
  const projOut = tensors.get('proj_out.weight');
  if (projOut) {
    const embedding = tensors.get('model.decoder.embed_tokens.weight')!.tensor;
    const tied = projOut.tensor.dtype === embedding.dtype && projOut.tensor.shape.join() === embedding.shape.join() && sameBytes(projOut.tensor.bytes, embedding.bytes);
    if (!tied) {
      throw new ModelFormatError(projOut.file, 'differs from model.decoder.embed_tokens.weight; Murmur supports only the tied output projection Whisper uses', { tensor: 'proj_out.weight' });
    }
    expected.add('proj_out.weight');
  }

  const unknown = [...tensors.keys()].filter((name) => !expected.has(name));
  if (unknown.length > 0) {
    const first = tensors.get(unknown[0]!)!;
    const more = unknown.length > 1 ? ` (and ${unknown.length - 1} more: ${unknown.slice(1, 6).join(', ')}${unknown.length > 6 ? ', ...' : ''})` : '';
    throw new ModelFormatError(first.file, `is not a weight of a Whisper model${more}`, { tensor: unknown[0] });
  }
  return weights;
}

function tokenIds(value: unknown, key: string, file: string, nVocab: number): number[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((id) => Number.isInteger(id) && (id === -1 || (id >= 0 && id < nVocab)))) {
    throw new ModelFormatError(file, `"${key}" must be a list of token ids below vocab_size ${nVocab} (or -1)`);
  }
  return value as number[];
}

/**
 * generation_config.json (falling back to the same fields in config.json, then to OpenAI's
 * defaults), with every token id it names checked against the tokenizer.
 */
function generationConfig(dims: WhisperDims, tokenizer: WhisperTokenizer, config: Json, configFile: string, generation: Json | undefined, generationFile: string): GenerationConfig {
  const defaults = defaultGenerationConfig(dims, tokenizer);
  const pick = (key: string): { value: unknown; file: string } =>
    generation?.[key] !== undefined ? { value: generation[key], file: generationFile } : { value: config[key], file: configFile };

  const expandIds = (key: string): number[] | undefined => {
    const { value, file } = pick(key);
    const ids = tokenIds(value, key, file, dims.nVocab);
    if (!ids) return undefined;
    // OpenAI's "-1" stands for its non-speech symbol list; Hugging Face files spell it out.
    const expanded = new Set(ids.flatMap((id) => (id === -1 ? tokenizer.nonSpeechTokens() : [id])));
    return [...expanded].sort((a, b) => a - b);
  };

  // Every id a config states about a special token must be the tokenizer's id for it.
  const checkId = (file: string, what: string, stated: unknown, actual: number | undefined) => {
    if (stated === undefined || stated === null) return;
    if (stated !== actual) {
      throw new ModelFormatError(file, `${what} is ${JSON.stringify(stated)} but the tokenizer has ${actual === undefined ? 'no such token' : `it at ${actual}`}`);
    }
  };
  for (const [json, file] of [
    [config, configFile],
    [generation, generationFile],
  ] as const) {
    if (!json) continue;
    checkId(file, 'decoder_start_token_id (<|startoftranscript|>)', json.decoder_start_token_id, tokenizer.sot);
    checkId(file, 'eos_token_id (<|endoftext|>)', json.eos_token_id, tokenizer.eot);
  }
  if (generation) {
    const file = generationFile;
    checkId(file, 'no_timestamps_token_id', generation.no_timestamps_token_id, tokenizer.noTimestamps);
    checkId(file, 'prev_sot_token_id', generation.prev_sot_token_id, tokenizer.startOfPrev);
    if (generation.is_multilingual !== undefined && generation.is_multilingual !== isMultilingual(dims)) {
      throw new ModelFormatError(file, `is_multilingual is ${generation.is_multilingual} but vocab_size ${dims.nVocab} is ${isMultilingual(dims) ? 'a multilingual' : 'an English-only'} vocabulary`);
    }
    if (generation.task_to_id !== undefined) {
      if (!isObject(generation.task_to_id)) throw new ModelFormatError(file, '"task_to_id" is not an object');
      checkId(file, 'task_to_id.transcribe', generation.task_to_id.transcribe, tokenizer.transcribe);
      checkId(file, 'task_to_id.translate', generation.task_to_id.translate, tokenizer.translate);
    }
    if (generation.lang_to_id !== undefined) {
      if (!isObject(generation.lang_to_id)) throw new ModelFormatError(file, '"lang_to_id" is not an object');
      for (const [token, id] of Object.entries(generation.lang_to_id)) {
        checkId(file, `lang_to_id["${token}"]`, id, languageTokenId(tokenizer, token));
      }
    }
  }

  const maxInitial = pick('max_initial_timestamp_index');
  if (maxInitial.value !== undefined && maxInitial.value !== null && !(Number.isSafeInteger(maxInitial.value) && (maxInitial.value as number) >= 0)) {
    throw new ModelFormatError(maxInitial.file, `max_initial_timestamp_index is ${JSON.stringify(maxInitial.value)}, not a non-negative integer`);
  }

  return {
    suppressTokens: expandIds('suppress_tokens') ?? defaults.suppressTokens,
    beginSuppressTokens: expandIds('begin_suppress_tokens') ?? defaults.beginSuppressTokens,
    alignmentHeads: alignmentHeads(dims, generation?.alignment_heads, generationFile),
    maxInitialTimestampIndex: (maxInitial.value as number | undefined | null) ?? defaults.maxInitialTimestampIndex,
  };
}

/** The tokenizer's id for a language token name such as `<|de|>`, or undefined if it has none. */
function languageTokenId(tokenizer: WhisperTokenizer, name: string): number | undefined {
  let id: number;
  try {
    id = tokenizer.specialTokenId(name);
  } catch {
    return undefined;
  }
  return tokenizer.languageOf(id) === undefined ? undefined : id;
}

function alignmentHeads(dims: WhisperDims, value: unknown, file: string): [number, number][] | undefined {
  if (value === undefined || value === null) return defaultAlignmentHeads(dims);
  const pairs = Array.isArray(value) && value.every((p) => Array.isArray(p) && p.length === 2 && p.every((n) => Number.isSafeInteger(n) && n >= 0));
  if (!pairs) throw new ModelFormatError(file, '"alignment_heads" must be a list of [layer, head] pairs of non-negative integers');
  const heads = value as [number, number][];
  // Distilled checkpoints copy their teacher's heads (e.g. layer 31 of a 2-layer decoder); such a
  // list describes another model, so word timing treats the model as having none.
  if (heads.some(([layer, head]) => layer >= dims.nTextLayer || head >= dims.nTextHead)) return undefined;
  return heads.map(([layer, head]) => [layer, head]);
}

/** Load a Whisper model from a Hugging Face Transformers folder; `source` names it in the model. */
export async function loadHuggingFaceModel(files: ModelFiles, source: string): Promise<WhisperModel> {
  const configBytes = await files.get('config.json');
  if (!configBytes) {
    const hasWeights = files.names?.some((name) => name.endsWith('.safetensors') || name === 'model.safetensors.index.json');
    if (hasWeights) {
      throw new ModelFormatError(files.folder, 'has safetensors weights but no config.json; the model dims (layers, heads, vocabulary) come from config.json, so add it beside the weights');
    }
    throw files.missing('config.json');
  }
  const configFile = files.locate('config.json');
  const config = parseJson(configBytes, configFile);
  const dims = dimsFromConfig(config, configFile);

  const generationBytes = await files.get('generation_config.json');
  const generationFile = files.locate('generation_config.json');
  const generationJson = generationBytes ? parseJson(generationBytes, generationFile) : undefined;

  const tokenizer = await readTokenizer(files, dims);
  const generation = generationConfig(dims, tokenizer, config, configFile, generationJson, generationFile);

  const weights = assembleHuggingFaceWeights(dims, await readWeights(files), configFile);
  return { source, format: 'huggingface', dims, weights, tokenizer, generation };
}
