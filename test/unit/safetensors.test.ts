import { test } from 'node:test';
import assert from 'node:assert/strict';
import { looksLikeSafetensors, parseSafetensors, writeSafetensors } from '../../src/core/formats/safetensors.ts';
import { decodeTensor, encodeTensor } from '../../src/core/model/dtype.ts';
import { ModelFormatError } from '../../src/core/errors.ts';

const FILE = 'weights.safetensors';

/** A file built from a literal header object and a data section, for the malformed cases. */
function rawFile(header: unknown, dataBytes: number, options: { headerLength?: number } = {}): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setUint32(0, options.headerLength ?? json.length, true);
  out.set(json, 8);
  return out;
}

function expectFormatError(fn: () => unknown, pattern: RegExp, tensor?: string) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ModelFormatError, `expected ModelFormatError, got ${error}`);
    assert.equal(error.file, FILE);
    assert.match(error.message, pattern);
    assert.ok(error.message.includes(FILE), error.message);
    if (tensor) {
      assert.equal(error.tensor, tensor);
      assert.ok(error.message.includes(tensor), error.message);
    }
    return true;
  });
}

for (const dtype of ['f32', 'f16', 'bf16'] as const) {
  test(`round trip of ${dtype} tensors keeps dtype, shape and values`, () => {
    const a = Float32Array.from({ length: 6 }, (_, i) => (i - 2.5) * 0.75);
    const b = Float32Array.from([1, -2, 0.5]);
    const tensors = [
      { name: 'model.a', tensor: encodeTensor(a, [2, 3], dtype) },
      { name: 'model.b', tensor: encodeTensor(b, [3], dtype) },
    ];
    const bytes = writeSafetensors(tensors, { format: 'pt' });
    assert.ok(looksLikeSafetensors(bytes));
    assert.equal(new DataView(bytes.buffer).getUint32(0, true) % 8, 0, 'header padded to 8 bytes');
    const parsed = parseSafetensors(bytes, FILE);
    assert.deepEqual([...parsed.keys()], ['model.a', 'model.b']);
    const pa = parsed.get('model.a')!;
    assert.equal(pa.dtype, dtype);
    assert.deepEqual(pa.shape, [2, 3]);
    assert.deepEqual(decodeTensor(pa), decodeTensor(tensors[0]!.tensor));
    assert.deepEqual(decodeTensor(parsed.get('model.b')!), b);
    assert.equal(pa.bytes.buffer, bytes.buffer, 'tensor bytes are a view into the file');
  });
}

test('a file inside a larger buffer (non-zero byteOffset) parses', () => {
  const file = writeSafetensors([{ name: 'x', tensor: encodeTensor(Float32Array.from([3, 4]), [2], 'f32') }]);
  const big = new Uint8Array(file.length + 13);
  big.set(file, 5);
  const parsed = parseSafetensors(big.subarray(5, 5 + file.length), FILE);
  assert.deepEqual(decodeTensor(parsed.get('x')!), Float32Array.from([3, 4]));
});

test('zero-size tensors and scalars are accepted', () => {
  const bytes = rawFile({ empty: { dtype: 'F32', shape: [0, 4], data_offsets: [0, 0] }, scalar: { dtype: 'F16', shape: [], data_offsets: [0, 2] } }, 2);
  const parsed = parseSafetensors(bytes, FILE);
  assert.equal(parsed.get('empty')!.bytes.length, 0);
  assert.equal(parsed.get('scalar')!.bytes.length, 2);
});

test('truncated before the header length', () => {
  expectFormatError(() => parseSafetensors(new Uint8Array(5), FILE), /truncated.*5 bytes/);
});

test('header length larger than the file', () => {
  const bytes = rawFile({}, 0, { headerLength: 500 });
  expectFormatError(() => parseSafetensors(bytes, FILE), /header claims 500 bytes/);
});

test('absurd header length is refused before allocating', () => {
  const bytes = new Uint8Array(16);
  new DataView(bytes.buffer).setUint32(4, 7, true); // 7 × 2^32 bytes
  expectFormatError(() => parseSafetensors(bytes, FILE), /implausibly large/);
  assert.equal(looksLikeSafetensors(bytes), false);
});

test('header that is not JSON', () => {
  expectFormatError(() => parseSafetensors(rawFile('{"a": {"dtype": ', 0), FILE), /not valid UTF-8 JSON/);
  expectFormatError(() => parseSafetensors(rawFile('[1,2]', 0), FILE), /not a JSON object/);
});

test('offsets past the end of the data', () => {
  const bytes = rawFile({ 'model.w': { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 12);
  expectFormatError(() => parseSafetensors(bytes, FILE), /run past the end of the data \(12 bytes\)/, 'model.w');
});

test('offsets inconsistent with shape × dtype size', () => {
  const bytes = rawFile({ 'model.w': { dtype: 'F16', shape: [2, 3], data_offsets: [0, 16] } }, 16);
  expectFormatError(() => parseSafetensors(bytes, FILE), /hold 16 bytes but F16 shape \[2,3\] needs 12/, 'model.w');
});

test('overlapping tensors', () => {
  const bytes = rawFile(
    {
      'model.a': { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      'model.b': { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    },
    16,
  );
  expectFormatError(() => parseSafetensors(bytes, FILE), /overlap tensor "model.a"/, 'model.b');
});

test('reversed offsets', () => {
  const bytes = rawFile({ 'model.a': { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, 16);
  expectFormatError(() => parseSafetensors(bytes, FILE), /end before they begin/, 'model.a');
});

test('negative, fractional or non-numeric dims', () => {
  for (const shape of [[-1, 4], [1.5], ['3'], 'abc']) {
    const bytes = rawFile({ 'model.a': { dtype: 'F32', shape, data_offsets: [0, 0] } }, 0);
    expectFormatError(() => parseSafetensors(bytes, FILE), /is not a list of non-negative integers/, 'model.a');
  }
});

test('huge dims do not overflow into a false match', () => {
  const bytes = rawFile({ 'model.a': { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 10], data_offsets: [0, 0] } }, 0);
  expectFormatError(() => parseSafetensors(bytes, FILE), /needs more than 2\^53/, 'model.a');
});

test('unsupported and unknown dtypes name the tensor and the dtype', () => {
  const i64 = rawFile({ 'model.ids': { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, 8);
  expectFormatError(() => parseSafetensors(i64, FILE), /unsupported dtype I64/, 'model.ids');
  const odd = rawFile({ 'model.q': { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, 1);
  expectFormatError(() => parseSafetensors(odd, FILE), /unknown dtype Q4/, 'model.q');
});

test('missing data_offsets or dtype', () => {
  expectFormatError(() => parseSafetensors(rawFile({ 'model.a': { dtype: 'F32', shape: [1] } }, 4), FILE), /data_offsets undefined/, 'model.a');
  expectFormatError(() => parseSafetensors(rawFile({ 'model.a': { shape: [1], data_offsets: [0, 4] } }, 4), FILE), /dtype is missing/, 'model.a');
});

test('the writer refuses quantized tensors and wrong byte counts', () => {
  assert.throws(() => writeSafetensors([{ name: 'q', tensor: { dtype: 'q8_0', shape: [32], bytes: new Uint8Array(34) } }]), /cannot hold q8_0/);
  assert.throws(() => writeSafetensors([{ name: 'w', tensor: { dtype: 'f32', shape: [3], bytes: new Uint8Array(8) } }]), /has 8 bytes, shape needs 12/);
});
