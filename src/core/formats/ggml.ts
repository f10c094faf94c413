/**
 * whisper.cpp's ggml model files (`ggml-*.bin`), as its convert-pt-to-ggml.py and quantize tool write them:
 *
 *   u32 magic 0x67676d6c
 *   i32 × 11 hparams: n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
 *                     n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels,
 *                     ftype (+ 1000 × quantization version in quantized files)
 *   mel filters: i32 n_mel, i32 n_fft, f32[n_mel × n_fft]
 *   vocab: i32 count, then per token i32 length + bytes (the BPE ranks in rank order)
 *   tensors until the end of the file: i32 n_dims, i32 name length, i32 ggml type,
 *                     i32 ne[n_dims] (innermost first), name, data (no alignment padding)
 *
 * Tensors keep OpenAI's names and, with ne reversed, PyTorch's shapes, except the conv biases,
 * which are stored as [n, 1]. Weight bytes stay views into the file, quantized ones still quantized.
 * Every count and size is checked against the bytes that are left before anything is allocated,
 * so a damaged file is a ModelFormatError that says what was wrong, never a crash or a huge allocation.
 */
import { ModelFormatError, TokenizerError } from '../errors.ts';
import type { WhisperDims } from '../model/dims.ts';
import { KNOWN_DIMS, languageCount } from '../model/dims.ts';
import { DTYPE_LAYOUT, isQuantized } from '../model/dtype.ts';
import type { GenerationConfig, WhisperModel } from '../model/model.ts';
import type { WeightDType, WeightSlot, WeightTensor } from '../model/weights.ts';
import { assembleWeights, elementCount, weightSlots } from '../model/weights.ts';
import { LANGUAGES } from '../tokenizer/languages.ts';
import { specialTokenCount } from '../tokenizer/specials.ts';
import { WhisperTokenizer } from '../tokenizer/tokenizer.ts';

export const GGML_MAGIC = 0x67676d6c;
/** Quantized files store ftype + GGML_QNT_VERSION_FACTOR × the block layout version (2 since May 2023). */
export const GGML_QNT_VERSION = 2;
export const GGML_QNT_VERSION_FACTOR = 1000;

/** ggml_type ids of the element types Murmur reads. */
export const GGML_TYPE_ID: Record<WeightDType, number> = { f32: 0, f16: 1, q4_0: 2, q4_1: 3, q5_0: 6, q5_1: 7, q8_0: 8, bf16: 30 };

/** ggml_ftype of a file whose large matrices are of this dtype (the hparams' ftype field, before the version factor). */
export const GGML_FTYPE: Record<WeightDType, number> = { f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7, q5_0: 8, q5_1: 9, bf16: 24 };

const DTYPE_OF_TYPE_ID = new Map<number, WeightDType>(Object.entries(GGML_TYPE_ID).map(([dtype, id]) => [id, dtype as WeightDType]));

/** Names of the ggml types we cannot read, so the error says which one the file uses. */
const UNSUPPORTED_TYPE_NAMES: Record<number, string> = {
  4: 'q4_2 (removed from ggml)',
  5: 'q4_3 (removed from ggml)',
  9: 'q8_1',
  10: 'q2_K',
  11: 'q3_K',
  12: 'q4_K',
  13: 'q5_K',
  14: 'q6_K',
  15: 'q8_K',
  16: 'iq2_xxs',
  17: 'iq2_xs',
  18: 'iq3_xxs',
  19: 'iq1_s',
  20: 'iq4_nl',
  21: 'iq3_s',
  22: 'iq2_s',
  23: 'iq4_xs',
  24: 'i8',
  25: 'i16',
  26: 'i32',
  27: 'i64',
  28: 'f64',
  29: 'iq1_m',
};

/** Bounds far above any Whisper checkpoint, so a corrupted header fails here rather than in an allocation. */
const MAX = {
  vocab: 1 << 20,
  ctx: 1 << 16,
  state: 1 << 15,
  heads: 1 << 10,
  layers: 1 << 10,
  mels: 1 << 10,
  fft: 1 << 16,
  tokenBytes: 1 << 10,
  nameBytes: 256,
  dims: 4,
};

export interface ParsedGgml {
  dims: WhisperDims;
  /** ggml_ftype of the file (0 f32, 1 f16, 2 q4_0, 3 q4_1, 7 q8_0, 8 q5_0, 9 q5_1), without the version factor. */
  ftype: number;
  /** The quantization layout version stored with ftype (0 in unquantized files). */
  quantizationVersion: number;
  /** [nMelFilters, nFft] row-major. */
  melFilters: Float32Array;
  nMelFilters: number;
  nFft: number;
  /**
   * Token bytes as the file lists them: the BPE ranks in rank order, and in files converted from
   * Hugging Face's vocab.json some special-token names after them (the tokenizer checks and drops those).
   */
  vocab: Uint8Array[];
  /** By OpenAI name, with the schema's shapes; bytes are views into the file. */
  tensors: Map<string, WeightTensor>;
}

class Cursor {
  pos = 0;
  private readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly file: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get remaining(): number {
    return this.bytes.length - this.pos;
  }
  fail(problem: string, tensor?: string): ModelFormatError {
    return new ModelFormatError(this.file, problem, tensor === undefined ? undefined : { tensor });
  }
  need(count: number, what: string, tensor?: string): void {
    if (count > this.remaining) {
      throw this.fail(
        `file is truncated: ${what} needs ${count} bytes at offset ${this.pos}, but only ${this.remaining} remain (${count - this.remaining} missing)`,
        tensor,
      );
    }
  }
  i32(what: string, tensor?: string): number {
    this.need(4, what, tensor);
    const value = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return value;
  }
  take(count: number, what: string, tensor?: string): Uint8Array {
    this.need(count, what, tensor);
    const slice = this.bytes.subarray(this.pos, this.pos + count);
    this.pos += count;
    return slice;
  }
  f32s(count: number): Float32Array {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = this.view.getFloat32(this.pos + i * 4, true);
    this.pos += count * 4;
    return out;
  }
}

/** What a file that is not a ggml model most likely is, from its first bytes. */
function describeWrongMagic(bytes: Uint8Array): string {
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  const head = ascii(0, 4);
  const magic = (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
  const found = `magic 0x${magic.toString(16).padStart(8, '0')}`;
  const expected = `expected 0x${GGML_MAGIC.toString(16)} ("lmgg" on disk)`;
  if (head === 'GGUF') return `this is a GGUF file (${found}), not a whisper.cpp ggml .bin model; ${expected}`;
  if (head === 'PK\x03\x04') return `this looks like a zip archive such as a PyTorch .pt checkpoint (${found}); convert it with whisper.cpp's convert-pt-to-ggml.py; ${expected}`;
  if (['tjgg', 'fmgg', 'algg'].includes(head)) return `this is a llama.cpp-era ggml variant ("${head}" on disk), not a whisper.cpp model; ${expected}`;
  if (bytes.length >= 9) {
    const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
    if (bytes[8] === 0x7b && headerLength > 1n && headerLength <= BigInt(bytes.length - 8)) {
      return `this looks like a safetensors file (${found}); load it as a Hugging Face model folder; ${expected}`;
    }
  }
  const text = ascii(0, Math.min(bytes.length, 64)).trimStart().toLowerCase();
  if (text.startsWith('<!doctype') || text.startsWith('<html') || text.startsWith('{') || text.startsWith('<?xml')) {
    return `this looks like a text/HTML/JSON document, not a model (did the download fail?) (${found}); ${expected}`;
  }
  return `wrong ${found}, ${expected}: not a whisper.cpp ggml model`;
}

const HPARAM_NAMES = [
  'n_vocab',
  'n_audio_ctx',
  'n_audio_state',
  'n_audio_head',
  'n_audio_layer',
  'n_text_ctx',
  'n_text_state',
  'n_text_head',
  'n_text_layer',
  'n_mels',
] as const;
const HPARAM_MAX = [MAX.vocab, MAX.ctx, MAX.state, MAX.heads, MAX.layers, MAX.ctx, MAX.state, MAX.heads, MAX.layers, MAX.mels];

function readDims(cursor: Cursor): WhisperDims {
  cursor.need(44, 'the hparams header (11 int32)');
  const v = HPARAM_NAMES.map((name, i) => {
    const value = cursor.i32(name);
    if (value < 1 || value > HPARAM_MAX[i]!) throw cursor.fail(`hparam ${name} is ${value}, outside 1..${HPARAM_MAX[i]}`);
    return value;
  });
  const dims: WhisperDims = {
    nVocab: v[0]!,
    nAudioCtx: v[1]!,
    nAudioState: v[2]!,
    nAudioHead: v[3]!,
    nAudioLayer: v[4]!,
    nTextCtx: v[5]!,
    nTextState: v[6]!,
    nTextHead: v[7]!,
    nTextLayer: v[8]!,
    nMels: v[9]!,
  };
  if (dims.nAudioState % dims.nAudioHead !== 0) throw cursor.fail(`n_audio_state ${dims.nAudioState} is not divisible by n_audio_head ${dims.nAudioHead}`);
  if (dims.nTextState % dims.nTextHead !== 0) throw cursor.fail(`n_text_state ${dims.nTextState} is not divisible by n_text_head ${dims.nTextHead}`);
  return dims;
}

/** How many BPE ranks precede the special tokens in a Whisper vocabulary of this size. */
export function whisperRankCount(dims: Pick<WhisperDims, 'nVocab'>): number {
  return dims.nVocab - specialTokenCount(languageCount(dims));
}

function readVocab(cursor: Cursor, dims: WhisperDims): Uint8Array[] {
  const ranks = whisperRankCount(dims);
  const languages = languageCount(dims);
  if (languages < 1 || languages > LANGUAGES.length || ranks < 1) {
    throw cursor.fail(`n_vocab ${dims.nVocab} does not fit Whisper's vocabulary (BPE ranks, then 1..${LANGUAGES.length} language tokens, task and timestamp tokens)`);
  }
  const count = cursor.i32('the vocabulary size');
  if (count < 0 || count > dims.nVocab) throw cursor.fail(`vocabulary has ${count} tokens, outside 0..n_vocab (${dims.nVocab})`);
  if (count < ranks) throw cursor.fail(`vocabulary has ${count} tokens, but n_vocab ${dims.nVocab} implies ${ranks} BPE ranks before the special tokens`);
  cursor.need(count * 4, `the vocabulary (${count} tokens of at least 4 bytes)`);
  const vocab: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const length = cursor.i32(`the length of token ${i}`);
    if (length < 0 || length > MAX.tokenBytes) throw cursor.fail(`token ${i} has length ${length}, outside 0..${MAX.tokenBytes}`);
    const token = cursor.take(length, `token ${i}`);
    vocab.push(token);
  }
  return vocab;
}

/** The file stores the conv biases as [n, 1] (ne = [1, n]); the schema has [n]. */
function schemaShape(name: string, fileShape: number[]): number[] {
  if (/^encoder\.conv[12]\.bias$/.test(name) && fileShape.length === 2 && fileShape[1] === 1) return [fileShape[0]!];
  return fileShape;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkShape(file: string, slot: WeightSlot, shape: readonly number[]): void {
  if (!sameShape(shape, slot.shape)) {
    throw new ModelFormatError(file, `has shape [${shape}] but these hparams need [${slot.shape}]`, { tensor: slot.name });
  }
}

/** A tensor from the file checked against its schema slot; the one check both parse and load rely on. */
export function checkedTensor(file: string, slot: WeightSlot, tensor: WeightTensor | undefined): WeightTensor {
  if (!tensor) throw new ModelFormatError(file, 'tensor is missing from the file', { tensor: slot.name });
  checkShape(file, slot, tensor.shape);
  return tensor;
}

function readTensors(cursor: Cursor, dims: WhisperDims, quantizationVersion: number): Map<string, WeightTensor> {
  const slots = new Map(weightSlots(dims).map((slot) => [slot.name, slot]));
  const tensors = new Map<string, WeightTensor>();
  const decoder = new TextDecoder();
  let previous = 'the vocabulary';
  while (cursor.remaining > 0) {
    const after = `the tensor header after ${previous}`;
    cursor.need(12, after);
    const nDims = cursor.i32(after);
    const nameLength = cursor.i32(after);
    const typeId = cursor.i32(after);
    if (nDims < 1 || nDims > MAX.dims) throw cursor.fail(`${after} has n_dims ${nDims}, outside 1..${MAX.dims}`);
    if (nameLength < 1 || nameLength > MAX.nameBytes) throw cursor.fail(`${after} has a name length of ${nameLength}, outside 1..${MAX.nameBytes}`);
    cursor.need(nDims * 4 + nameLength, after);
    const ne: number[] = [];
    for (let i = 0; i < nDims; i++) ne.push(cursor.i32(after));
    const name = decoder.decode(cursor.take(nameLength, after));
    previous = `"${name}"`;
    for (const extent of ne) if (extent < 1) throw cursor.fail(`has extent ${extent} in ne [${ne}]`, name);

    const dtype = DTYPE_OF_TYPE_ID.get(typeId);
    if (!dtype) {
      const known = UNSUPPORTED_TYPE_NAMES[typeId];
      throw cursor.fail(known ? `uses ggml type ${known} (${typeId}), which Murmur does not read` : `has unknown ggml type ${typeId}`, name);
    }
    const slot = slots.get(name);
    if (!slot) throw cursor.fail('is not a weight of a Whisper model with these hparams', name);
    if (tensors.has(name)) throw cursor.fail('appears twice in the file', name);

    const shape = schemaShape(name, [...ne].reverse());
    const { blockValues, blockBytes } = DTYPE_LAYOUT[dtype];
    if (isQuantized(dtype)) {
      if (quantizationVersion < GGML_QNT_VERSION) {
        throw cursor.fail(`is ${dtype}, but the file's quantization version is ${quantizationVersion}: blocks of versions before ${GGML_QNT_VERSION} are laid out differently; re-quantize the model with a current whisper.cpp`, name);
      }
      if (ne[0]! % blockValues !== 0) throw cursor.fail(`is ${dtype} but its rows of ${ne[0]} values are not whole blocks of ${blockValues}`, name);
    }
    checkShape(cursor.file, slot, shape);
    const byteLength = (elementCount(shape) / blockValues) * blockBytes;
    const bytes = cursor.take(byteLength, `the ${dtype} data of [${shape}]`, name);
    tensors.set(name, { dtype, shape, bytes });
  }
  for (const slot of slots.values()) checkedTensor(cursor.file, slot, tensors.get(slot.name));
  return tensors;
}

/** Read a whisper.cpp ggml model file; `file` names it in error messages. */
export function parseGgml(bytes: Uint8Array, file: string): ParsedGgml {
  const cursor = new Cursor(bytes, file);
  if (bytes.length < 4) throw cursor.fail(`file is truncated: ${bytes.length} bytes is too short to hold a ggml magic number`);
  const magic = (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
  if (magic !== GGML_MAGIC) throw cursor.fail(describeWrongMagic(bytes));
  cursor.pos = 4;

  const dims = readDims(cursor);
  const storedFtype = cursor.i32('the ftype hparam');
  if (storedFtype < 0) throw cursor.fail(`hparam ftype is ${storedFtype}, which is negative`);
  const ftype = storedFtype % GGML_QNT_VERSION_FACTOR;
  const quantizationVersion = Math.floor(storedFtype / GGML_QNT_VERSION_FACTOR);

  const nMelFilters = cursor.i32('the mel filter bank size');
  const nFft = cursor.i32('the mel filter bank size');
  if (nMelFilters < 1 || nMelFilters > MAX.mels) throw cursor.fail(`mel filter bank has ${nMelFilters} filters, outside 1..${MAX.mels}`);
  if (nFft < 1 || nFft > MAX.fft) throw cursor.fail(`mel filter bank has ${nFft} frequency bins, outside 1..${MAX.fft}`);
  if (nMelFilters !== dims.nMels) throw cursor.fail(`mel filter bank has ${nMelFilters} filters but n_mels is ${dims.nMels}`);
  cursor.need(nMelFilters * nFft * 4, `the mel filter bank (${nMelFilters} × ${nFft} float32)`);
  const melFilters = cursor.f32s(nMelFilters * nFft);

  const vocab = readVocab(cursor, dims);
  const tensors = readTensors(cursor, dims, quantizationVersion);
  return { dims, ftype, quantizationVersion, melFilters, nMelFilters, nFft, vocab, tensors };
}

/**
 * Word-timestamp alignment heads of the published checkpoints, [decoder layer, head], as whisper.cpp
 * ships them (the same heads as OpenAI's _ALIGNMENT_HEADS). large-v1 and large-v2 share their
 * shapes; the table gives large-v2's, the checkpoint in use.
 */
const ALIGNMENT_HEADS: Partial<Record<keyof typeof KNOWN_DIMS, [number, number][]>> = {
  'tiny.en': [[1, 0], [2, 0], [2, 5], [3, 0], [3, 1], [3, 2], [3, 3], [3, 4]],
  tiny: [[2, 2], [3, 0], [3, 2], [3, 3], [3, 4], [3, 5]],
  'base.en': [[3, 3], [4, 7], [5, 1], [5, 5], [5, 7]],
  base: [[3, 1], [4, 2], [4, 3], [4, 7], [5, 1], [5, 2], [5, 4], [5, 6]],
  'small.en': [[6, 6], [7, 0], [7, 3], [7, 8], [8, 2], [8, 5], [8, 7], [9, 0], [9, 4], [9, 8], [9, 10], [10, 0], [10, 1], [10, 2], [10, 3], [10, 6], [10, 11], [11, 2], [11, 4]],
  small: [[5, 3], [5, 9], [8, 0], [8, 4], [8, 7], [8, 8], [9, 0], [9, 7], [9, 9], [10, 5]],
  'medium.en': [[11, 4], [14, 1], [14, 12], [14, 14], [15, 4], [16, 0], [16, 4], [16, 9], [17, 12], [17, 14], [18, 7], [18, 10], [18, 15], [20, 0], [20, 3], [20, 9], [20, 14], [21, 12]],
  medium: [[13, 15], [15, 4], [15, 15], [16, 1], [20, 0], [23, 4]],
  'large-v2': [[10, 12], [13, 17], [16, 11], [16, 12], [16, 13], [17, 15], [17, 16], [18, 4], [18, 11], [18, 19], [19, 11], [21, 2], [21, 3], [22, 3], [22, 9], [22, 12], [23, 5], [23, 7], [23, 13], [25, 5], [26, 1], [26, 12], [27, 15]],
  'large-v3': [[7, 0], [10, 17], [12, 18], [13, 12], [16, 1], [17, 14], [19, 11], [21, 4], [24, 1], [25, 6]],
  'large-v3-turbo': [[2, 4], [2, 11], [3, 3], [3, 6], [3, 11], [3, 14]],
};

/** The alignment heads of the published checkpoint with exactly these dims; undefined for any other shape. */
export function defaultAlignmentHeads(dims: WhisperDims): [number, number][] | undefined {
  for (const [name, known] of Object.entries(KNOWN_DIMS) as [keyof typeof KNOWN_DIMS, WhisperDims][]) {
    const same = (Object.keys(known) as (keyof WhisperDims)[]).every((key) => known[key] === dims[key]);
    if (same) return ALIGNMENT_HEADS[name]?.map(([layer, head]) => [layer, head]);
  }
  return undefined;
}

/**
 * OpenAI's decoding defaults, for files that carry no generation config: suppress_tokens "-1"
 * (the non-speech symbols plus the task and context tokens) and suppress_blank.
 */
export function defaultGenerationConfig(dims: WhisperDims, tokenizer: WhisperTokenizer): GenerationConfig {
  const suppress = new Set<number>([
    ...tokenizer.nonSpeechTokens(),
    tokenizer.translate,
    tokenizer.transcribe,
    tokenizer.sot,
    tokenizer.startOfPrev,
    tokenizer.startOfLm,
    tokenizer.noSpeech,
  ]);
  return {
    suppressTokens: [...suppress].sort((a, b) => a - b),
    beginSuppressTokens: [tokenizer.encode(' ')[0]!, tokenizer.eot],
    alignmentHeads: defaultAlignmentHeads(dims),
    maxInitialTimestampIndex: 50,
  };
}

/** A whisper.cpp ggml file as a WhisperModel: weights as views into `bytes`, the file's tokenizer and mel filters. */
export function loadGgmlModel(bytes: Uint8Array, file: string): WhisperModel {
  const parsed = parseGgml(bytes, file);
  const { dims } = parsed;
  const weights = assembleWeights(dims, (slot) => checkedTensor(file, slot, parsed.tensors.get(slot.name)));
  let tokenizer: WhisperTokenizer;
  try {
    tokenizer = WhisperTokenizer.fromGgmlVocab(parsed.vocab, { nVocab: dims.nVocab, source: file });
  } catch (error) {
    // A vocabulary the tokenizer rejects is a broken model file.
    if (error instanceof TokenizerError) throw new ModelFormatError(file, `bad vocabulary: ${error.message}`, { cause: error });
    throw error;
  }
  return {
    source: file,
    format: 'ggml',
    dims,
    weights,
    tokenizer,
    generation: defaultGenerationConfig(dims, tokenizer),
    melFilters: parsed.melFilters,
  };
}
