import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeGgml } from '../../scripts/synthetic/ggml-writer.ts';
import { loadGgmlModel } from '../../src/core/formats/ggml.ts';
import { ModelFormatError } from '../../src/core/errors.ts';
import { weightSlots } from '../../src/core/model/weights.ts';
import { locateTensor, readI32, seeded, TEST_DIMS, testMelFilters, testTensors, testVocab, vocabOffset } from './ggml-fixture.ts';

const base = writeGgml({ dims: TEST_DIMS, tensors: testTensors(), vocab: testVocab(), melFilters: testMelFilters(), dtype: 'q4_1' });

type Outcome = 'loaded' | 'ModelFormatError';

/** Load a damaged file: it must load or fail with a ModelFormatError, quickly and without a large allocation. */
function attempt(bytes: Uint8Array, what: string): Outcome {
  const memoryBefore = process.memoryUsage().arrayBuffers;
  const start = performance.now();
  let outcome: Outcome;
  try {
    loadGgmlModel(bytes, 'fuzz.bin');
    outcome = 'loaded';
  } catch (error) {
    assert.ok(error instanceof ModelFormatError, `${what}: threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    assert.match(error.message, /^fuzz\.bin: /);
    outcome = 'ModelFormatError';
  }
  assert.ok(performance.now() - start < 2000, `${what}: took ${(performance.now() - start).toFixed(0)} ms`);
  assert.ok(process.memoryUsage().arrayBuffers - memoryBefore < 256 * 2 ** 20, `${what}: allocated too much`);
  return outcome;
}

test('a file truncated at any of 200 random offsets is a ModelFormatError', () => {
  const random = seeded(2024);
  const offsets = [0, 1, 3, 4, 47, 48, base.length - 1, ...Array.from({ length: 193 }, () => Math.floor(random() * base.length))];
  for (const offset of offsets) {
    assert.equal(attempt(base.subarray(0, offset), `truncated at ${offset}`), 'ModelFormatError', `truncated at ${offset} of ${base.length}`);
  }
});

test('changing random header bytes loads or is a ModelFormatError, and breaking a size or name always errors', () => {
  const random = seeded(77);
  const vocabAt = vocabOffset(base);
  // Byte ranges of header fields; `always` marks the ones whose change can never leave a valid file.
  const fields: { from: number; to: number; always: boolean; what: string }[] = [
    { from: 0, to: 4, always: true, what: 'magic' },
    { from: 4, to: 16, always: true, what: 'n_vocab, n_audio_ctx, n_audio_state' },
    { from: 16, to: 20, always: false, what: 'n_audio_head' }, // 2 → 4 is a valid file
    { from: 20, to: 32, always: true, what: 'n_audio_layer, n_text_ctx, n_text_state' },
    { from: 32, to: 36, always: false, what: 'n_text_head' },
    { from: 36, to: 44, always: true, what: 'n_text_layer, n_mels' },
    { from: 44, to: 48, always: false, what: 'ftype' },
    { from: 48, to: 56, always: true, what: 'n_mel, n_fft' },
    { from: vocabAt, to: vocabAt + 4, always: true, what: 'vocabulary count' },
  ];
  let tokenAt = vocabAt + 4;
  for (let i = 0; i < 2000; i++) {
    if (i % 97 === 0) fields.push({ from: tokenAt, to: tokenAt + 4, always: true, what: `length of token ${i}` });
    tokenAt += 4 + readI32(base, tokenAt);
  }
  for (const slot of weightSlots(TEST_DIMS)) {
    const t = locateTensor(base, slot.name);
    fields.push({ from: t.header, to: t.header + 8, always: true, what: `${slot.name} n_dims, name length` });
    fields.push({ from: t.header + 8, to: t.header + 12, always: false, what: `${slot.name} type` }); // f16 → bf16 keeps the size
    fields.push({ from: t.header + 12, to: t.data, always: true, what: `${slot.name} extents and name` });
  }
  let errors = 0;
  for (let i = 0; i < 200; i++) {
    const field = fields[Math.floor(random() * fields.length)]!;
    const offset = field.from + Math.floor(random() * (field.to - field.from));
    const bytes = base.slice();
    bytes[offset]! ^= 1 + Math.floor(random() * 255);
    const outcome = attempt(bytes, `byte ${offset} (${field.what}) changed to ${bytes[offset]}`);
    if (field.always) assert.equal(outcome, 'ModelFormatError', `byte ${offset} (${field.what}) changed to ${bytes[offset]} still loads`);
    if (outcome === 'ModelFormatError') errors++;
  }
  assert.ok(errors > 150, `only ${errors} of 200 changes were errors`);
});
