/**
 * The safetensors container: an 8-byte little-endian header length, a JSON header naming every
 * tensor's dtype, shape and byte range, then the raw data. Parsing returns views into the file's
 * bytes (no copy); everything the header claims is checked before it is trusted.
 *
 * The writer lives here too, so the dtype names and the header layout exist in one place; the
 * synthetic-model scripts and the tests write through it, and the library could use it to cache
 * a converted model.
 */
import { ModelFormatError } from '../errors.ts';
import { tensorByteLength } from '../model/dtype.ts';
import type { WeightDType, WeightTensor } from '../model/weights.ts';

/** A header larger than this is not a Whisper checkpoint (large-v3's is about 100 kB). */
export const MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024;

const DTYPE_FROM_FILE: Record<string, WeightDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };
const DTYPE_TO_FILE: Partial<Record<WeightDType, string>> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };
/** Dtypes the format defines that Whisper weights never use; named so the error can say "unsupported" rather than "unknown". */
const OTHER_FILE_DTYPES = new Set(['F64', 'F8_E4M3', 'F8_E5M2', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL', 'C64']);

export interface SafetensorsHeader {
  /** Byte offset of the data section in the file. */
  dataStart: number;
  entries: { name: string; dtype: string; shape: number[]; begin: number; end: number }[];
  metadata: Record<string, string> | undefined;
}

/** True when the bytes start like a safetensors file: a plausible header length followed by `{`. */
export function looksLikeSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 9) return false;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const high = dv.getUint32(4, true);
  const length = dv.getUint32(0, true);
  return high === 0 && length >= 2 && length <= MAX_SAFETENSORS_HEADER_BYTES && bytes[8] === 0x7b;
}

/** Read and check the header only; `file` names the file in error messages. */
export function readSafetensorsHeader(bytes: Uint8Array, file: string): SafetensorsHeader {
  if (bytes.length < 8) throw new ModelFormatError(file, `truncated: ${bytes.length} bytes, too short for the 8-byte safetensors header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = dv.getUint32(4, true) * 2 ** 32 + dv.getUint32(0, true);
  if (headerLength > MAX_SAFETENSORS_HEADER_BYTES) {
    throw new ModelFormatError(file, `safetensors header length ${headerLength} is implausibly large (limit ${MAX_SAFETENSORS_HEADER_BYTES}); not a safetensors file?`);
  }
  if (8 + headerLength > bytes.length) {
    throw new ModelFormatError(file, `truncated: the safetensors header claims ${headerLength} bytes but the file has only ${bytes.length - 8} after the length field`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (cause) {
    throw new ModelFormatError(file, `the safetensors header is not valid UTF-8 JSON (${(cause as Error).message})`, { cause });
  }
  if (!isPlainObject(header)) throw new ModelFormatError(file, 'the safetensors header is not a JSON object');

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  let metadata: Record<string, string> | undefined;
  const entries: SafetensorsHeader['entries'] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isPlainObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
        throw new ModelFormatError(file, '__metadata__ must be an object of strings');
      }
      metadata = value as Record<string, string>;
      continue;
    }
    const bad = (problem: string) => new ModelFormatError(file, problem, { tensor: name });
    if (!isPlainObject(value)) throw bad('header entry is not an object');
    const { dtype, shape, data_offsets: offsets } = value;
    if (typeof dtype !== 'string') throw bad('dtype is missing');
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw bad(`data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) throw bad(`data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLength) throw bad(`data_offsets [${begin}, ${end}] run past the end of the data (${dataLength} bytes); the file is truncated or corrupt`);
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }

  // Sorting by start makes any overlap show up between neighbours.
  const byStart = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < byStart.length; i++) {
    const previous = byStart[i - 1]!;
    const current = byStart[i]!;
    if (current.begin < previous.end) {
      throw new ModelFormatError(file, `data_offsets [${current.begin}, ${current.end}] overlap tensor "${previous.name}" [${previous.begin}, ${previous.end}]`, { tensor: current.name });
    }
  }
  return { dataStart, entries, metadata };
}

/** Every tensor of a safetensors file as a view into `bytes`. F32, F16 and BF16 only. */
export function parseSafetensors(bytes: Uint8Array, file: string): Map<string, WeightTensor> {
  const header = readSafetensorsHeader(bytes, file);
  const tensors = new Map<string, WeightTensor>();
  for (const entry of header.entries) {
    const dtype = DTYPE_FROM_FILE[entry.dtype];
    if (!dtype) {
      const kind = OTHER_FILE_DTYPES.has(entry.dtype) ? 'unsupported' : 'unknown';
      throw new ModelFormatError(file, `${kind} dtype ${entry.dtype} (Murmur reads F32, F16 and BF16 weights)`, { tensor: entry.name });
    }
    const expected = safeByteLength(dtype, entry.shape);
    const actual = entry.end - entry.begin;
    if (expected !== actual) {
      throw new ModelFormatError(file, `data_offsets [${entry.begin}, ${entry.end}] hold ${actual} bytes but ${entry.dtype} shape [${entry.shape}] needs ${expected ?? 'more than 2^53'}`, { tensor: entry.name });
    }
    const start = header.dataStart + entry.begin;
    tensors.set(entry.name, { dtype, shape: entry.shape, bytes: bytes.subarray(start, start + actual) });
  }
  return tensors;
}

function safeByteLength(dtype: WeightDType, shape: number[]): number | undefined {
  let n = tensorByteLength(dtype, []);
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

/** Serialize tensors (F32/F16/BF16) in the given order, header padded with spaces to 8 bytes as the format recommends. */
export function writeSafetensors(tensors: { name: string; tensor: WeightTensor }[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const { name, tensor } of tensors) {
    const dtype = DTYPE_TO_FILE[tensor.dtype];
    if (!dtype) throw new RangeError(`safetensors cannot hold ${tensor.dtype} tensor ${name}`);
    if (name in header) throw new RangeError(`duplicate tensor name ${name}`);
    const length = tensorByteLength(tensor.dtype, tensor.shape);
    if (tensor.bytes.length !== length) throw new RangeError(`tensor ${name} has ${tensor.bytes.length} bytes, shape needs ${length}`);
    header[name] = { dtype, shape: tensor.shape, data_offsets: [offset, offset + length] };
    offset += length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const withSpaces = new Uint8Array(padded).fill(0x20);
    withSpaces.set(json);
    json = withSpaces;
  }
  const out = new Uint8Array(8 + json.length + offset);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, json.length, true);
  dv.setUint32(4, 0, true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const { tensor } of tensors) {
    out.set(tensor.bytes, at);
    at += tensor.bytes.length;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
