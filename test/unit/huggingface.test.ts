import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadHuggingFaceModel } from '../../src/core/formats/huggingface.ts';
import { memoryFolder } from '../../src/core/formats/sources.ts';
import { parseSafetensors, writeSafetensors } from '../../src/core/formats/safetensors.ts';
import { encodeTensor } from '../../src/core/model/dtype.ts';
import type { WeightTensor } from '../../src/core/model/weights.ts';
import { weightSlots } from '../../src/core/model/weights.ts';
import { MurmurError, ModelFormatError } from '../../src/core/errors.ts';
import {
  ASSETS_MISSING,
  SMALL_EN,
  SMALL_MULTI,
  SMALL_V3_DISTIL,
  assertWeightsMatch,
  folderFor,
  json,
  jsonBytes,
  tokenizerFor,
  tokenizerJsonFor,
} from './huggingface-fixture.ts';
import { writeHuggingFaceVocabFiles } from '../../scripts/synthetic/tokenizer-json.ts';

const skip = ASSETS_MISSING;

function load(folder: Record<string, Uint8Array>) {
  return loadHuggingFaceModel(memoryFolder(new Map(Object.entries(folder)), 'folder', {}), 'test-folder');
}

/** Rewrite model.safetensors through `edit` (the tensors as a list of name/tensor pairs). */
function editWeights(folder: Record<string, Uint8Array>, edit: (tensors: { name: string; tensor: WeightTensor }[]) => { name: string; tensor: WeightTensor }[]) {
  const parsed = parseSafetensors(folder['model.safetensors']!, 'model.safetensors');
  const list = [...parsed].map(([name, tensor]) => ({ name, tensor }));
  return { ...folder, 'model.safetensors': writeSafetensors(edit(list)) };
}

function editJson(folder: Record<string, Uint8Array>, file: string, edit: (value: Record<string, unknown>) => void) {
  const value = json(folder[file]);
  edit(value);
  return { ...folder, [file]: jsonBytes(value) };
}

async function expectError(promise: Promise<unknown>, pattern: RegExp, details: { file?: string; tensor?: string; type?: Function } = {}) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof (details.type ?? ModelFormatError), `wrong error type: ${error}`);
    assert.match((error as Error).message, pattern);
    if (details.file) assert.ok((error as Error).message.includes(details.file), `message names ${details.file}: ${(error as Error).message}`);
    if (details.tensor) {
      assert.equal((error as ModelFormatError).tensor, details.tensor);
      assert.ok((error as Error).message.includes(details.tensor));
    }
    return true;
  });
}

for (const dtype of ['f32', 'f16', 'bf16'] as const) {
  test(`an English-only ${dtype} folder loads with every weight intact`, { skip }, async () => {
    const model = await load(folderFor(SMALL_EN, { dtype }));
    assert.equal(model.format, 'huggingface');
    assert.equal(model.source, 'test-folder');
    assert.deepEqual(model.dims, SMALL_EN);
    assert.equal(model.tokenizer.eot, 50256);
    assert.equal(model.tokenizer.isMultilingual, false);
    assertWeightsMatch(model, SMALL_EN, dtype);
    // The writer's default suppress list: punctuation, then the control tokens.
    assert.ok(model.generation.suppressTokens.includes(1));
    assert.ok(model.generation.suppressTokens.includes(model.tokenizer.sot));
    assert.deepEqual(model.generation.beginSuppressTokens, [220, 50256]);
    assert.equal(model.generation.maxInitialTimestampIndex, 50);
  });
}

test('a multilingual folder: generation config settings come through, ids cross-checked', { skip }, async () => {
  const heads: [number, number][] = [[0, 1], [1, 0]];
  const folder = folderFor(SMALL_MULTI, { generation: { alignmentHeads: heads, suppressTokens: [1, 2, 50258], maxInitialTimestampIndex: 1 } });
  const generation = json(folder['generation_config.json']);
  assert.equal((generation.lang_to_id as Record<string, number>)['<|de|>'], 50261);
  assert.deepEqual(generation.task_to_id, { transcribe: 50359, translate: 50358 });
  const model = await load(folder);
  assert.equal(model.tokenizer.eot, 50257);
  assert.deepEqual(model.generation.alignmentHeads, heads);
  assert.deepEqual(model.generation.suppressTokens, [1, 2, 50258]);
  assert.deepEqual(model.generation.beginSuppressTokens, [220, 50257]);
  assert.equal(model.generation.maxInitialTimestampIndex, 1);
  assertWeightsMatch(model, SMALL_MULTI);
});

test('large-v3 vocabulary, 128 mels and a distilled decoder come from config.json alone', { skip }, async () => {
  const model = await load(folderFor(SMALL_V3_DISTIL, { dtype: 'f16' }));
  assert.deepEqual(model.dims, SMALL_V3_DISTIL);
  assert.equal(model.tokenizer.languages.length, 100);
  assert.equal(model.tokenizer.noTimestamps, 50364);
  assertWeightsMatch(model, SMALL_V3_DISTIL, 'f16');
});

test('alignment heads copied from a deeper teacher model are dropped, not trusted', { skip }, async () => {
  const folder = folderFor(SMALL_V3_DISTIL, { generation: { alignmentHeads: [[0, 1], [31, 0]] } });
  assert.equal((await load(folder)).generation.alignmentHeads, undefined);
});

test('suppress_tokens -1 expands to the non-speech tokens; absent lists fall back to defaults', { skip }, async () => {
  let folder = editJson(folderFor(SMALL_EN), 'generation_config.json', (g) => (g.suppress_tokens = [-1]));
  folder = editJson(folder, 'config.json', (c) => (c.suppress_tokens = [-1]));
  const model = await load(folder);
  assert.deepEqual(model.generation.suppressTokens, model.tokenizer.nonSpeechTokens());

  const { ['generation_config.json']: _, ...withoutGeneration } = folderFor(SMALL_EN);
  const bare = editJson(withoutGeneration, 'config.json', (c) => {
    delete c.suppress_tokens;
    delete c.begin_suppress_tokens;
  });
  const defaults = await load(bare);
  assert.ok(defaults.generation.suppressTokens.length > 80);
  assert.ok(defaults.generation.suppressTokens.includes(defaults.tokenizer.startOfPrev));
  assert.deepEqual(defaults.generation.beginSuppressTokens, [220, 50256]);
});

test('sharded weights: index plus shards load the same model', { skip }, async () => {
  const folder = folderFor(SMALL_EN, { shardBytes: 40_000 });
  assert.equal(folder['model.safetensors'], undefined);
  const shards = Object.keys(folder).filter((n) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(n));
  assert.ok(shards.length >= 3, `several shards (${shards})`);
  const index = json(folder['model.safetensors.index.json']);
  assert.equal(Object.keys(index.weight_map as object).length, weightSlots(SMALL_EN).length);
  assertWeightsMatch(await load(folder), SMALL_EN);
});

test('sharded weights: a missing shard, an unlisted tensor and a shard outside the folder are errors', { skip }, async () => {
  const folder = folderFor(SMALL_EN, { shardBytes: 40_000 });
  const { ['model-00002-of-00004.safetensors']: _, ...missingShard } = folder;
  assert.ok(folder['model-00002-of-00004.safetensors'], 'the fixture has 4 shards');
  await expectError(load(missingShard), /has no model-00002-of-00004\.safetensors/);

  const unlisted = editJson(folder, 'model.safetensors.index.json', (index) => {
    delete (index.weight_map as Record<string, string>)['model.decoder.layer_norm.bias'];
  });
  await expectError(load(unlisted), /is not listed in/, { tensor: 'model.decoder.layer_norm.bias' });

  const escaping = editJson(folder, 'model.safetensors.index.json', (index) => {
    (index.weight_map as Record<string, string>)['model.decoder.layer_norm.bias'] = '../secret.safetensors';
  });
  await expectError(load(escaping), /not a plain file name/, { file: 'model.safetensors.index.json' });
});

test('a tied proj_out.weight is accepted; an untied one is refused', { skip }, async () => {
  assertWeightsMatch(await load(folderFor(SMALL_EN, { includeProjOut: true })), SMALL_EN);
  const untied = editWeights(folderFor(SMALL_EN, { includeProjOut: true }), (list) =>
    list.map((entry) => {
      if (entry.name !== 'proj_out.weight') return entry;
      const bytes = entry.tensor.bytes.slice();
      bytes[100] ^= 1;
      return { name: entry.name, tensor: { ...entry.tensor, bytes } };
    }),
  );
  await expectError(load(untied), /differs from model\.decoder\.embed_tokens\.weight/, { tensor: 'proj_out.weight', file: 'model.safetensors' });
});

test('tensor names without the "model." prefix load too', { skip }, async () => {
  const folder = editWeights(folderFor(SMALL_EN), (list) => list.map(({ name, tensor }) => ({ name: name.replace(/^model\./, ''), tensor })));
  assertWeightsMatch(await load(folder), SMALL_EN);
});

test('the same tensor under both spellings is an error', { skip }, async () => {
  const folder = editWeights(folderFor(SMALL_EN), (list) => [...list, { name: 'decoder.layer_norm.bias', tensor: list.find((t) => t.name === 'model.decoder.layer_norm.bias')!.tensor }]);
  await expectError(load(folder), /appears twice/, { tensor: 'decoder.layer_norm.bias' });
});

test('vocab.json + merges.txt + added_tokens.json instead of tokenizer.json', { skip }, async () => {
  const { vocabJson, mergesText, addedTokensJson } = writeHuggingFaceVocabFiles(tokenizerFor(SMALL_MULTI.nVocab));
  const { ['tokenizer.json']: _, ...folder } = folderFor(SMALL_MULTI);
  const files = { ...folder, 'vocab.json': jsonBytes(vocabJson), 'merges.txt': new TextEncoder().encode(mergesText), 'added_tokens.json': jsonBytes(addedTokensJson) };
  const model = await load(files);
  assert.equal(model.tokenizer.eot, 50257);
  assert.equal(model.tokenizer.source, 'folder/vocab.json');
  assert.deepEqual(model.tokenizer.encode(' hello world'), tokenizerFor(SMALL_MULTI.nVocab).encode(' hello world'));

  // Newer exports: no added_tokens.json, the specials in tokenizer_config.json.
  const { ['added_tokens.json']: __, ...noAdded } = files;
  const decoderEntries = Object.fromEntries(Object.entries(addedTokensJson).map(([content, id]) => [String(id), { content, special: true }]));
  const withConfig = { ...noAdded, 'tokenizer_config.json': jsonBytes({ added_tokens_decoder: decoderEntries }) };
  assert.equal((await load(withConfig)).tokenizer.noTimestamps, 50363);
});

test('no tokenizer at all', { skip }, async () => {
  const { ['tokenizer.json']: _, ...folder } = folderFor(SMALL_EN);
  await expectError(load(folder), /has no tokenizer: expected tokenizer\.json/, { file: 'folder' });
});

test('config.json missing while the weights are there', { skip }, async () => {
  const { ['config.json']: _, ...folder } = folderFor(SMALL_EN);
  await expectError(load(folder), /has safetensors weights but no config\.json/);
  const { ['model.safetensors']: __, ...neither } = folder;
  await expectError(load(neither), /has no config\.json/);
});

test('config.json with more layers than the weights have', { skip }, async () => {
  const folder = editJson(folderFor(SMALL_EN), 'config.json', (c) => (c.encoder_layers = 3));
  await expectError(load(folder), /encoder_layers is 3, but folder\/model\.safetensors has 2 encoder layers/, { file: 'config.json', tensor: 'model.encoder.layers.2' });
  const fewer = editJson(folderFor(SMALL_EN), 'config.json', (c) => (c.decoder_layers = 1));
  await expectError(load(fewer), /decoder_layers is 1, but .* has 2 decoder layers/, { file: 'config.json' });
});

test('config.json values that Whisper cannot have', { skip }, async () => {
  const cases: [(c: Record<string, unknown>) => void, RegExp][] = [
    [(c) => (c.encoder_ffn_dim = 48), /encoder_ffn_dim is 48, but Whisper's MLP is 4 × d_model = 64/],
    [(c) => (c.decoder_ffn_dim = 32), /decoder_ffn_dim is 32/],
    [(c) => (c.encoder_attention_heads = 3), /d_model 16 is not divisible by encoder_attention_heads 3/],
    [(c) => delete c.vocab_size, /has no "vocab_size"/],
    [(c) => (c.num_mel_bins = 80.5), /"num_mel_bins" is 80\.5, not a positive integer/],
    [(c) => (c.model_type = 'wav2vec2'), /model_type is "wav2vec2"/],
    [(c) => (c.activation_function = 'relu'), /activation_function is "relu"/],
  ];
  for (const [edit, pattern] of cases) await expectError(load(editJson(folderFor(SMALL_EN), 'config.json', edit)), pattern, { file: 'config.json' });
  await expectError(load({ ...folderFor(SMALL_EN), 'config.json': new TextEncoder().encode('{"d_model": ') }), /config\.json: is not valid JSON/);
});

test('d_model in config.json disagreeing with the tensor shapes', { skip }, async () => {
  const folder = editJson(folderFor(SMALL_EN), 'config.json', (c) => {
    c.d_model = 32;
    c.encoder_ffn_dim = 128;
    c.decoder_ffn_dim = 128;
  });
  await expectError(load(folder), /has shape \[6,16\] but folder\/config\.json implies \[6,32\]/, { file: 'model.safetensors', tensor: 'model.encoder.embed_positions.weight' });
});

test('missing, misshapen, unknown and unsupported tensors name the file and the tensor', { skip }, async () => {
  const missing = editWeights(folderFor(SMALL_EN), (list) => list.filter((t) => t.name !== 'model.decoder.layers.1.fc2.bias'));
  await expectError(load(missing), /is missing/, { file: 'model.safetensors', tensor: 'model.decoder.layers.1.fc2.bias' });

  const misshapen = editWeights(folderFor(SMALL_EN), (list) =>
    list.map((t) => (t.name === 'model.encoder.layers.0.fc1.weight' ? { name: t.name, tensor: encodeTensor(new Float32Array(64 * 15), [64, 15], 'f32') } : t)),
  );
  await expectError(load(misshapen), /has shape \[64,15\] but .* implies \[64,16\]/, { file: 'model.safetensors', tensor: 'model.encoder.layers.0.fc1.weight' });

  const extra = editWeights(folderFor(SMALL_EN), (list) => [...list, { name: 'model.encoder.extra.weight', tensor: encodeTensor(new Float32Array(2), [2], 'f32') }]);
  await expectError(load(extra), /is not a weight of a Whisper model/, { file: 'model.safetensors', tensor: 'model.encoder.extra.weight' });

  const weights = folderFor(SMALL_EN)['model.safetensors']!;
  const headerLength = new DataView(weights.buffer, weights.byteOffset).getUint32(0, true);
  const header = new TextDecoder().decode(weights.subarray(8, 8 + headerLength)).replace('"model.decoder.layer_norm.bias":{"dtype":"F32"', '"model.decoder.layer_norm.bias":{"dtype":"I32"');
  const patched = weights.slice();
  patched.set(new TextEncoder().encode(header), 8);
  await expectError(load({ ...folderFor(SMALL_EN), 'model.safetensors': patched }), /unsupported dtype I32/, { file: 'model.safetensors', tensor: 'model.decoder.layer_norm.bias' });

  const truncated = { ...folderFor(SMALL_EN), 'model.safetensors': weights.subarray(0, weights.length - 10) };
  await expectError(load(truncated), /run past the end of the data/, { file: 'model.safetensors' });
});

test('generation_config.json ids that disagree with the tokenizer', { skip }, async () => {
  const cases: [(g: Record<string, unknown>) => void, RegExp][] = [
    [(g) => (g.no_timestamps_token_id = 50362), /no_timestamps_token_id is 50362 but the tokenizer has it at 50363/],
    [(g) => ((g.lang_to_id as Record<string, number>)['<|de|>'] = 50262), /lang_to_id\["<\|de\|>"\] is 50262 but the tokenizer has it at 50261/],
    [(g) => ((g.lang_to_id as Record<string, number>)['<|xx|>'] = 50300), /lang_to_id\["<\|xx\|>"\] is 50300 but the tokenizer has no such token/],
    [(g) => ((g.task_to_id as Record<string, number>).translate = 50359), /task_to_id\.translate is 50359 but the tokenizer has it at 50358/],
    [(g) => (g.decoder_start_token_id = 50257), /decoder_start_token_id .* is 50257 but the tokenizer has it at 50258/],
    [(g) => (g.is_multilingual = false), /is_multilingual is false but vocab_size 51865 is a multilingual vocabulary/],
    [(g) => (g.alignment_heads = [[1, 2, 3]]), /"alignment_heads" must be a list of \[layer, head\] pairs/],
    [(g) => (g.suppress_tokens = [1, 60000]), /"suppress_tokens" must be a list of token ids below vocab_size 51865/],
    [(g) => (g.max_initial_timestamp_index = -5), /max_initial_timestamp_index is -5/],
  ];
  for (const [edit, pattern] of cases) {
    await expectError(load(editJson(folderFor(SMALL_MULTI), 'generation_config.json', edit)), pattern, { file: 'generation_config.json' });
  }
  // Old files spell Hebrew <|iw|>; that is the same token.
  const alias = editJson(folderFor(SMALL_MULTI), 'generation_config.json', (g) => {
    const langs = g.lang_to_id as Record<string, number>;
    langs['<|iw|>'] = langs['<|he|>']!;
    delete langs['<|he|>'];
  });
  assert.equal((await load(alias)).tokenizer.eot, 50257);
});

test('config.json eos_token_id disagreeing with the tokenizer', { skip }, async () => {
  await expectError(load(editJson(folderFor(SMALL_EN), 'config.json', (c) => (c.eos_token_id = 50257))), /eos_token_id .* is 50257 but the tokenizer has it at 50256/, { file: 'config.json' });
});

test('vocab_size that does not match the tokenizer', { skip }, async () => {
  // An English-only tokenizer under a multilingual config.
  const folder = { ...folderFor(SMALL_MULTI), 'tokenizer.json': jsonBytes(tokenizerJsonFor(51864)) };
  await assert.rejects(load(folder), (error: unknown) => {
    assert.ok(error instanceof MurmurError);
    assert.match((error as Error).message, /tokenizer\.json/);
    assert.match((error as Error).message, /51865/);
    return true;
  });
});

test('pytorch_model.bin alone gets a clear message', { skip }, async () => {
  const { ['model.safetensors']: _, ...folder } = folderFor(SMALL_EN);
  await expectError(load({ ...folder, 'pytorch_model.bin': new Uint8Array([0x50, 0x4b, 3, 4]) }), /only pytorch_model\.bin/);
});
