// createTranscriber({ backend: 'wasm' }): the same transcript as the reference backend on the
// synthetic 'mini' model, thread options, and option errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { comparableTranscript } from './transcriber-comparable.ts';
import { readFile } from 'node:fs/promises';
import { createTranscriber } from '../../src/core/transcriber.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { parseWav } from '../../src/core/audio/wav.ts';
import { MurmurError } from '../../src/core/errors.ts';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { SHARED_DATA, skipWithoutSharedData } from '../shared-data.ts';

const JFK = `${SHARED_DATA}/audio/jfk.wav`;
const skip = skipWithoutSharedData('audio/jfk.wav');

test('the wasm backend transcribes jfk.wav to the reference backend\'s transcript, on 1 and 2 threads', { skip }, async (t) => {
  const { path } = await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'f16' });
  const model = await loadModel(path);
  const audio = parseWav(await readFile(JFK), JFK).channels[0]!;
  const reference = await createTranscriber({ model });
  const expected = await reference.transcribe(audio, { maxTokens: 24 });
  reference.dispose();
  for (const threads of [1, 2]) {
    const transcriber = await createTranscriber({ model, backend: 'wasm', threads });
    const start = performance.now();
    const result = await transcriber.transcribe(audio, { maxTokens: 24 });
    t.diagnostic(`wasm, ${threads} thread(s): ${(performance.now() - start).toFixed(0)} ms for ${result.segments.flatMap((s) => s.tokens).length} tokens`);
    assert.deepEqual(comparableTranscript(result), comparableTranscript(expected));
    transcriber.dispose();
    await assert.rejects(() => transcriber.transcribe(audio), (e: unknown) => e instanceof MurmurError && /disposed/.test(e.message));
  }
});

test('backend options are checked before the model loads', async () => {
  await assert.rejects(() => createTranscriber({ model: 'nowhere.bin', backend: 'webgl' as never }), (e: unknown) => e instanceof MurmurError && /unknown backend "webgl" \(available: "reference", "wasm"/.test(e.message));
  await assert.rejects(() => createTranscriber({ model: 'nowhere.bin', threads: 2 }), (e: unknown) => e instanceof MurmurError && /threads apply to the "wasm" backend/.test(e.message));
});
