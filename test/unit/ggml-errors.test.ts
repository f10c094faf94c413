import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeGgml } from '../../scripts/synthetic/ggml-writer.ts';
import { parseGgml } from '../../src/core/formats/ggml.ts';
import { ModelFormatError } from '../../src/core/errors.ts';
import { locateTensor, readI32, TEST_DIMS, testMelFilters, testTensors, testVocab, vocabOffset, writeI32 } from './ggml-fixture.ts';

const vocab = testVocab();
const tensors = testTensors();
const melFilters = testMelFilters();
const base = writeGgml({ dims: TEST_DIMS, tensors, vocab, melFilters, dtype: 'f16' });

/** parseGgml must throw a ModelFormatError naming the file, the tensor when given, and matching `problem`. */
function rejects(bytes: Uint8Array, problem: RegExp, tensor?: string): void {
  assert.throws(
    () => parseGgml(bytes, 'bad.bin'),
    (error: unknown) => {
      assert.ok(error instanceof ModelFormatError, `expected ModelFormatError, got ${String(error)}`);
      assert.equal(error.file, 'bad.bin');
      assert.match(error.message, /^bad\.bin: /);
      assert.match(error.message, problem);
      if (tensor !== undefined) assert.equal(error.tensor, tensor);
      return true;
    },
  );
}

function patched(edit: (file: Uint8Array) => void): Uint8Array {
  const file = base.slice();
  edit(file);
  return file;
}

function withTensors(edit: (list: typeof tensors) => typeof tensors, dtype: 'f16' | 'q8_0' = 'f16'): Uint8Array {
  return writeGgml({ dims: TEST_DIMS, tensors: edit([...tensors]), vocab, melFilters, dtype });
}

test('the unmodified file parses', () => {
  assert.equal(parseGgml(base, 'good.bin').tensors.size, tensors.length);
});

test('wrong magic says what the file looks like', () => {
  const ascii = (text: string, length = 64) => {
    const bytes = new Uint8Array(length);
    bytes.set(Buffer.from(text, 'latin1'));
    return bytes;
  };
  rejects(ascii('GGUF\x03\x00\x00\x00'), /GGUF file.*not a whisper\.cpp ggml/);
  rejects(ascii('PK\x03\x04'), /zip archive.*PyTorch/);
  const header = '{"__metadata__":{}}';
  const safetensors = new Uint8Array(8 + header.length + 16);
  new DataView(safetensors.buffer).setBigUint64(0, BigInt(header.length), true);
  safetensors.set(Buffer.from(header), 8);
  rejects(safetensors, /safetensors/);
  rejects(ascii('<!DOCTYPE html><html>'), /HTML/);
  rejects(ascii('tjgg'), /llama\.cpp-era/);
  rejects(ascii('\x01\x02\x03\x04\x05'), /magic 0x04030201.*expected 0x67676d6c/);
  rejects(new Uint8Array([0x6c, 0x6d]), /truncated.*2 bytes/);
});

test('truncation in each section names the section and the missing byte count', () => {
  rejects(base.subarray(0, 30), /truncated: the hparams header .* needs 44 bytes at offset 4, but only 26 remain \(18 missing\)/);
  rejects(base.subarray(0, 1000), /truncated: the mel filter bank \(80 × 201 float32\)/);
  rejects(base.subarray(0, vocabOffset(base) + 1000), /truncated: the vocabulary \(50256 tokens of at least 4 bytes\)/);
  rejects(base.subarray(0, vocabOffset(base) + 250000), /truncated: token \d+ needs \d+ bytes/);
  const conv = locateTensor(base, 'encoder.conv1.weight');
  rejects(base.subarray(0, conv.header + 5), /truncated: the tensor header after .* needs 12 bytes/);
  rejects(base.subarray(0, conv.data + 100), /truncated: the f16 data of \[64,80,3\] needs 30720 bytes .* only 100 remain \(30620 missing\)/, 'encoder.conv1.weight');
  // Cut exactly between two tensors: everything after is missing.
  rejects(base.subarray(0, conv.header), /tensor is missing/, 'encoder.conv1.weight');
});

test('hparams that are zero, negative, absurd or inconsistent are rejected before allocating', () => {
  rejects(patched((f) => writeI32(f, 4, -51864)), /hparam n_vocab is -51864/);
  rejects(patched((f) => writeI32(f, 4 + 4 * 4, 1 << 30)), /hparam n_audio_layer is 1073741824/);
  rejects(patched((f) => writeI32(f, 4 + 2 * 4, 0)), /hparam n_audio_state is 0/);
  rejects(patched((f) => writeI32(f, 4 + 3 * 4, 3)), /n_audio_state 64 is not divisible by n_audio_head 3/);
  rejects(patched((f) => writeI32(f, 4 + 10 * 4, -1)), /ftype is -1/);
  rejects(patched((f) => writeI32(f, 4, 70000)), /n_vocab 70000 does not fit/);
});

test('mel filter bank sizes are checked against the file and n_mels', () => {
  rejects(patched((f) => writeI32(f, 48, -80)), /mel filter bank has -80 filters/);
  rejects(patched((f) => writeI32(f, 52, 1 << 30)), /1073741824 frequency bins/);
  rejects(patched((f) => writeI32(f, 52, 60000)), /truncated: the mel filter bank \(80 × 60000 float32\)/);
  // n_mels 128 with an 80-row filter bank and 80-channel conv1
  rejects(patched((f) => writeI32(f, 4 + 9 * 4, 128)), /mel filter bank has 80 filters but n_mels is 128/);
});

test('n_mels other than 80/128 is fine when filters and conv1 agree, and conv1 must agree', () => {
  const dims = { ...TEST_DIMS, nMels: 40 };
  const list = testTensors(dims);
  const ok = writeGgml({ dims, tensors: list, vocab, melFilters: testMelFilters(dims), dtype: 'f16' });
  assert.equal(parseGgml(ok, 'mels40.bin').dims.nMels, 40);
  const conv80 = list.map((t) => (t.name === 'encoder.conv1.weight' ? tensors.find((u) => u.name === t.name)! : t));
  const bad = writeGgml({ dims, tensors: conv80, vocab, melFilters: testMelFilters(dims), dtype: 'f16' });
  rejects(bad, /has shape \[64,80,3\] but these hparams need \[64,40,3\]/, 'encoder.conv1.weight');
});

test('vocabulary counts and token lengths are checked', () => {
  const at = vocabOffset(base);
  rejects(patched((f) => writeI32(f, at, -1)), /vocabulary has -1 tokens/);
  rejects(patched((f) => writeI32(f, at, 51865)), /vocabulary has 51865 tokens, outside 0\.\.n_vocab \(51864\)/);
  rejects(patched((f) => writeI32(f, at, 50000)), /vocabulary has 50000 tokens, but n_vocab 51864 implies 50256 BPE ranks/);
  rejects(patched((f) => writeI32(f, at + 4, -5)), /token 0 has length -5/);
  rejects(patched((f) => writeI32(f, at + 4, 1 << 28)), /token 0 has length 268435456/);
  // A multilingual n_vocab with the English ranks: 50257 ranks expected.
  rejects(patched((f) => writeI32(f, 4, 51865)), /implies 50257 BPE ranks/);
});

test('tensor headers with bad n_dims, name length, extents or type are rejected naming the tensor', () => {
  const conv = locateTensor(base, 'encoder.conv1.weight');
  rejects(patched((f) => writeI32(f, conv.header, 9)), /n_dims 9, outside 1\.\.4/);
  rejects(patched((f) => writeI32(f, conv.header, -2)), /n_dims -2/);
  rejects(patched((f) => writeI32(f, conv.header + 4, -1)), /name length of -1/);
  rejects(patched((f) => writeI32(f, conv.header + 4, 100000)), /name length of 100000/);
  rejects(patched((f) => writeI32(f, conv.header + 12, -3)), /extent -3/, 'encoder.conv1.weight');
  rejects(patched((f) => writeI32(f, conv.header + 12, 0x7fffffff)), /has shape \[64,80,2147483647\]/, 'encoder.conv1.weight');
  rejects(patched((f) => writeI32(f, conv.header + 8, 99)), /unknown ggml type 99/, 'encoder.conv1.weight');
  rejects(patched((f) => writeI32(f, conv.header + 8, 12)), /ggml type q4_K \(12\), which Murmur does not read/, 'encoder.conv1.weight');
  rejects(patched((f) => writeI32(f, conv.header + 8, 8)), /is q8_0, but the file's quantization version is 0/, 'encoder.conv1.weight');
  // In a quantized file (version 2) a q8_0 conv kernel of 3 is not whole blocks.
  const q8 = writeGgml({ dims: TEST_DIMS, tensors, vocab, melFilters, dtype: 'q8_0' });
  const q8conv = locateTensor(q8, 'encoder.conv1.weight');
  const q8bad = q8.slice();
  writeI32(q8bad, q8conv.header + 8, 8);
  rejects(q8bad, /is q8_0 but its rows of 3 values are not whole blocks of 32/, 'encoder.conv1.weight');
});

test('unknown, duplicate, missing and misshapen tensors are rejected naming the tensor', () => {
  const extra = (name: string) => withTensors((list) => [...list, { name, shape: [64], values: new Float32Array(64) }]);
  rejects(extra('encoder.blocks.2.attn.query.bias'), /not a weight of a Whisper model with these hparams/, 'encoder.blocks.2.attn.query.bias');
  rejects(extra('proj_out.weight'), /not a weight/, 'proj_out.weight');
  rejects(extra('decoder.ln.bias'), /appears twice/, 'decoder.ln.bias');
  rejects(
    withTensors((list) => list.filter((t) => t.name !== 'decoder.blocks.1.cross_attn.key.weight')),
    /tensor is missing from the file/,
    'decoder.blocks.1.cross_attn.key.weight',
  );
  rejects(
    withTensors((list) => list.map((t) => (t.name === 'decoder.token_embedding.weight' ? { ...t, shape: [51865, 64], values: new Float32Array(51865 * 64) } : t))),
    /has shape \[51865,64\] but these hparams need \[51864,64\]/,
    'decoder.token_embedding.weight',
  );
  rejects(
    withTensors((list) => list.map((t) => (t.name === 'encoder.blocks.0.mlp.0.weight' ? { ...t, shape: [64, 256] } : t)), 'q8_0'),
    /has shape \[64,256\] but these hparams need \[256,64\]/,
    'encoder.blocks.0.mlp.0.weight',
  );
  // Trailing bytes after the last tensor are a truncated tensor header.
  const trailing = new Uint8Array(base.length + 3);
  trailing.set(base);
  rejects(trailing, /truncated: the tensor header after "decoder\.ln\.bias"/);
});

test('old quantization layouts (no version factor in ftype) are refused', () => {
  const q4 = writeGgml({ dims: TEST_DIMS, tensors, vocab, melFilters, dtype: 'q4_0' });
  assert.equal(readI32(q4, 44), 2002);
  const old = q4.slice();
  writeI32(old, 44, 2);
  rejects(old, /quantization version is 0: blocks of versions before 2 are laid out differently/);
});
