import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeGgml, type GgmlFileDType } from '../../scripts/synthetic/ggml-writer.ts';
import { defaultAlignmentHeads, loadGgmlModel, parseGgml } from '../../src/core/formats/ggml.ts';
import { KNOWN_DIMS } from '../../src/core/model/dims.ts';
import { decodeTensor, encodeTensor, f16ToF32, f32ToF16 } from '../../src/core/model/dtype.ts';
import { weightSlots } from '../../src/core/model/weights.ts';
import { ModelFormatError } from '../../src/core/errors.ts';
import { hasGpt2Vocab, locateTensor, readI32, TEST_DIMS, testMelFilters, testTensors, testVocab, vocabOffset } from './ggml-fixture.ts';

const vocab = testVocab();
const tensors = testTensors();
const melFilters = testMelFilters();
const DTYPES: GgmlFileDType[] = ['f32', 'f16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1'];
const files = new Map<GgmlFileDType, Uint8Array>();
function fileOf(dtype: GgmlFileDType): Uint8Array {
  let file = files.get(dtype);
  if (!file) files.set(dtype, (file = writeGgml({ dims: TEST_DIMS, tensors, vocab, melFilters, dtype })));
  return file;
}

/** The hparams ftype field whisper.cpp writes: ggml_ftype, plus 1000 × GGML_QNT_VERSION (2) when quantized. */
const STORED_FTYPE: Record<GgmlFileDType, number> = { f32: 0, f16: 1, q4_0: 2002, q4_1: 2003, q8_0: 2007, q5_0: 2008, q5_1: 2009 };

/**
 * The element type whisper.cpp gives each tensor, written out by hand from convert-pt-to-ggml.py
 * (vectors, conv biases and positional embeddings f32, the rest f16) and the quantize tool
 * (2-D tensors except conv biases and positional embeddings get quantized; 3-D conv weights stay f16).
 */
function expectedType(name: string, dtype: GgmlFileDType): string {
  if (dtype === 'f32') return 'f32';
  if (/positional_embedding$|conv[12]\.bias$|_ln\.(weight|bias)$|ln_post\.|^decoder\.ln\.|\.bias$/.test(name)) return 'f32';
  if (/conv[12]\.weight$/.test(name)) return 'f16';
  return dtype; // linear weights and the token embedding
}

const halfRound = (v: number) => f16ToF32(f32ToF16(v));

test('the file header is laid out as whisper.cpp writes it', () => {
  for (const dtype of DTYPES) {
    const file = fileOf(dtype);
    assert.equal(Buffer.from(file.subarray(0, 4)).toString('latin1'), 'lmgg', 'magic 0x67676d6c little-endian');
    const hparams = Array.from({ length: 11 }, (_, i) => readI32(file, 4 + 4 * i));
    const d = TEST_DIMS;
    assert.deepEqual(hparams, [d.nVocab, d.nAudioCtx, d.nAudioState, d.nAudioHead, d.nAudioLayer, d.nTextCtx, d.nTextState, d.nTextHead, d.nTextLayer, d.nMels, STORED_FTYPE[dtype]]);
    assert.deepEqual([readI32(file, 48), readI32(file, 52)], [80, 201]);
    assert.equal(readI32(file, vocabOffset(file)), 50256);
    assert.equal(readI32(file, vocabOffset(file) + 4), vocab[0]!.length);
  }
});

test('conv biases are stored as ne [1, n] f32 and tensor data follows the name unpadded', () => {
  for (const dtype of ['f16', 'q4_0'] as const) {
    const file = fileOf(dtype);
    const bias = locateTensor(file, 'encoder.conv1.bias');
    assert.equal(bias.nDims, 2);
    assert.deepEqual(bias.ne, [1, 64]);
    assert.equal(bias.type, 0);
    const conv = locateTensor(file, 'encoder.conv1.weight');
    assert.deepEqual(conv.ne, [3, 80, 64], 'ne is the PyTorch shape reversed');
    assert.equal(conv.type, 1);
    // The next header starts right after conv1.weight's f16 data: no alignment padding.
    const bias1 = locateTensor(file, 'encoder.conv1.bias');
    assert.equal(bias1.header, conv.data + 64 * 80 * 3 * 2);
  }
});

for (const dtype of DTYPES) {
  test(`${dtype}: writer → parser round trip keeps dims, filters, vocab, types and values`, () => {
    const file = fileOf(dtype);
    const parsed = parseGgml(file, `model-${dtype}.bin`);
    assert.deepEqual(parsed.dims, TEST_DIMS);
    assert.equal(parsed.ftype, STORED_FTYPE[dtype] % 1000);
    assert.equal(parsed.quantizationVersion, dtype.startsWith('q') ? 2 : 0);
    assert.deepEqual([parsed.nMelFilters, parsed.nFft], [80, 201]);
    assert.deepEqual(parsed.melFilters, melFilters);
    assert.equal(parsed.vocab.length, vocab.length);
    assert.ok(parsed.vocab.every((token, i) => Buffer.compare(token, vocab[i]!) === 0));
    assert.equal(parsed.tensors.size, tensors.length);

    for (const { name, shape, values } of tensors) {
      const tensor = parsed.tensors.get(name)!;
      assert.ok(tensor, name);
      assert.equal(tensor.dtype, expectedType(name, dtype), `${name} in a ${dtype} file`);
      assert.deepEqual(tensor.shape, shape, name);
      assert.equal(tensor.bytes.buffer, file.buffer, `${name} is a view into the file`);
      const decoded = decodeTensor(tensor);
      if (tensor.dtype === 'f32') {
        assert.deepEqual(decoded, values, name);
      } else if (tensor.dtype === 'f16') {
        assert.deepEqual(decoded, values.map(halfRound), name);
      } else {
        // The quantize tool quantizes the f16 file's values.
        const expected = encodeTensor(values.map(halfRound), shape, tensor.dtype).bytes;
        assert.deepEqual(tensor.bytes, expected, name);
        let worst = 0;
        for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(decoded[i]! - values[i]!));
        assert.ok(worst < (dtype === 'q8_0' ? 0.001 : 0.02), `${name}: worst error ${worst}`);
      }
    }
  });
}

test('a ggml model loads into the schema with the file tokenizer and Whisper defaults', () => {
  const file = fileOf('q5_1');
  const model = loadGgmlModel(file, 'ggml-test-q5_1.bin');
  assert.equal(model.format, 'ggml');
  assert.equal(model.source, 'ggml-test-q5_1.bin');
  assert.deepEqual(model.dims, TEST_DIMS);
  assert.deepEqual(model.melFilters, melFilters);
  const parsed = parseGgml(file, 'x');
  for (const slot of weightSlots(TEST_DIMS)) {
    const tensor = slot.get(model.weights);
    assert.deepEqual(tensor.shape, slot.shape, slot.name);
    assert.deepEqual(tensor.bytes, parsed.tensors.get(slot.name)!.bytes, slot.name);
  }
  assert.equal(model.weights.decoder.tokenEmbedding.dtype, 'q5_1');
  assert.equal(model.weights.encoder.conv1.bias!.dtype, 'f32');

  const { tokenizer, generation } = model;
  assert.equal(tokenizer.nVocab, 51864);
  assert.equal(tokenizer.eot, 50256);
  assert.deepEqual(generation.beginSuppressTokens, [tokenizer.encode(' ')[0], 50256]);
  assert.equal(generation.maxInitialTimestampIndex, 50);
  assert.equal(generation.alignmentHeads, undefined, 'no published checkpoint has these dims');
  const suppress = generation.suppressTokens;
  assert.deepEqual(suppress, [...new Set(suppress)].sort((a, b) => a - b), 'sorted and unique');
  for (const id of [tokenizer.translate, tokenizer.transcribe, tokenizer.sot, tokenizer.startOfPrev, tokenizer.startOfLm, tokenizer.noSpeech]) {
    assert.ok(suppress.includes(id), `suppresses ${id}`);
  }
  assert.ok(!suppress.includes(tokenizer.eot) && !suppress.includes(tokenizer.noTimestamps));
  if (hasGpt2Vocab) {
    assert.equal(generation.beginSuppressTokens[0], 220);
    // suppress_tokens of openai/whisper-tiny.en's generation_config.json (OpenAI's "-1" expanded).
    assert.deepEqual(suppress, [
      1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93, 357, 366, 438, 532, 685, 705, 796, 930, 1058, 1220,
      1267, 1279, 1303, 1343, 1377, 1391, 1635, 1782, 1875, 2162, 2361, 2488, 3467, 4008, 4211, 4600, 4808, 5299, 5855, 6329, 7203, 9609, 9959,
      10563, 10786, 11420, 11709, 11907, 13163, 13697, 13700, 14808, 15306, 16410, 16791, 17992, 19203, 19510, 20724, 22305, 22935, 27007, 30109,
      30420, 33409, 34949, 40283, 40493, 40549, 47282, 49146, 50257, 50357, 50358, 50359, 50360, 50361,
    ]);
  }
});

test('tensors may come in any order', () => {
  const shuffled = [...tensors].reverse();
  const file = writeGgml({ dims: TEST_DIMS, tensors: shuffled, vocab, melFilters, dtype: 'f16' });
  const parsed = parseGgml(file, 'reversed.bin');
  assert.equal(parsed.tensors.size, tensors.length);
  assert.deepEqual(decodeTensor(parsed.tensors.get('decoder.ln.bias')!), tensors.find((t) => t.name === 'decoder.ln.bias')!.values);
});

test('vocabularies that list special-token names after the ranks (vocab.json conversions) load', () => {
  const names = ['<|endoftext|>', '<|startoftranscript|>'].map((s) => new Uint8Array(Buffer.from(s)));
  const file = writeGgml({ dims: TEST_DIMS, tensors, vocab: [...vocab, ...names], melFilters, dtype: 'f16' });
  const model = loadGgmlModel(file, 'h5-converted.bin');
  assert.equal(model.tokenizer.eot, 50256);
  const bogus = writeGgml({ dims: TEST_DIMS, tensors, vocab: [...vocab, new Uint8Array(Buffer.from('zzz'))], melFilters, dtype: 'f16' });
  assert.throws(() => loadGgmlModel(bogus, 'bogus-vocab.bin'), (e: unknown) => e instanceof ModelFormatError && /bogus-vocab\.bin: bad vocabulary/.test(e.message));
});

test('alignment heads are whisper.cpp\'s per-size defaults, keyed by the exact dims', () => {
  assert.deepEqual(defaultAlignmentHeads(KNOWN_DIMS.tiny), [[2, 2], [3, 0], [3, 2], [3, 3], [3, 4], [3, 5]]);
  assert.deepEqual(defaultAlignmentHeads(KNOWN_DIMS['base.en']), [[3, 3], [4, 7], [5, 1], [5, 5], [5, 7]]);
  assert.deepEqual(defaultAlignmentHeads(KNOWN_DIMS['large-v3-turbo']), [[2, 4], [2, 11], [3, 3], [3, 6], [3, 11], [3, 14]]);
  assert.equal(defaultAlignmentHeads(KNOWN_DIMS['large-v2'])!.length, 23);
  assert.equal(defaultAlignmentHeads(KNOWN_DIMS['large-v3'])!.length, 10);
  for (const dims of Object.values(KNOWN_DIMS)) {
    for (const [layer, head] of defaultAlignmentHeads(dims)!) assert.ok(layer < dims.nTextLayer && head < dims.nTextHead);
  }
  // distil-large-v3: large-v3's encoder with two decoder layers; no published heads.
  assert.equal(defaultAlignmentHeads({ ...KNOWN_DIMS['large-v3'], nTextLayer: 2 }), undefined);
});
