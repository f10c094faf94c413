// The public createTranscriber in Node, where there is no Worker: the same API as in browsers
// (every input kind, onSegment, abort, typed errors, dispose) over the engine on this thread, and
// the same results as the in-process transcriber.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { createTranscriber, type MurmurTranscriber } from '../../src/client/transcriber.ts';
import { createTranscriber as createLocalTranscriber } from '../../src/core/transcriber.ts';
import { parseWav } from '../../src/core/audio/wav.ts';
import { toWhisperInput } from '../../src/core/audio/prepare.ts';
import { AbortError, AudioError, ModelLoadError, MurmurError } from '../../src/core/errors.ts';
import type { TranscriptionResult, TranscriptionSegment } from '../../src/core/transcriber.ts';

const JFK = resolve('../shared/data/audio/jfk.wav');
const MAX_TOKENS = 24;
const absent = `${JFK} is absent (the shared reference data is not checked out beside the repo)`;

describe('createTranscriber in Node', { skip: existsSync(JFK) ? false : absent }, () => {
  let modelDir = '';
  let transcriber: MurmurTranscriber;
  let expected: TranscriptionResult;
  const samples = () => {
    const wav = parseWav(readFileSync(JFK), JFK);
    return toWhisperInput(wav.channels, wav.sampleRate);
  };

  before(async () => {
    modelDir = (await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' })).dir;
    const local = await createLocalTranscriber({ model: modelDir, backend: 'wasm' });
    expected = await local.transcribe(samples(), { maxTokens: MAX_TOKENS });
    local.dispose();
    const stages = new Set<string>();
    transcriber = await createTranscriber({ model: modelDir, backend: 'wasm', onProgress: (event) => stages.add(event.stage) });
    assert.deepEqual([...stages], ['download', 'load', 'plan', 'compile'], 'progress reports every stage in order');
  });
  after(() => transcriber?.dispose());

  test('reports the model and the backend it runs on', () => {
    assert.equal(transcriber.model.backend, 'wasm');
    assert.equal(transcriber.model.dims.nAudioLayer > 0, true);
  });

  test('every input kind gives the in-process result', async () => {
    const bytes = readFileSync(JFK);
    const arrayBuffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const inputs = {
      'Float32Array': samples(),
      'ArrayBuffer': arrayBuffer,
      'Blob': new Blob([bytes], { type: 'audio/wav' }),
      'path': JFK,
      'file URL': pathToFileURL(JFK),
    };
    for (const [kind, input] of Object.entries(inputs)) {
      const result = await transcriber.transcribe(input, { maxTokens: MAX_TOKENS });
      assert.deepEqual(result, expected, `${kind} input`);
    }
    assert.ok(expected.segments.length > 0, 'the synthetic model wrote at least one segment');
  });

  test('detectLanguage gives the in-process answer', async () => {
    const local = await createLocalTranscriber({ model: modelDir, backend: 'wasm' });
    const expectedLanguage = await local.detectLanguage(samples());
    local.dispose();
    assert.deepEqual(await transcriber.detectLanguage(JFK), expectedLanguage);
  });

  test('onSegment gets every segment, in order, before the call resolves', async () => {
    const seen: TranscriptionSegment[] = [];
    const result = await transcriber.transcribe(samples(), { maxTokens: MAX_TOKENS, onSegment: (segment) => seen.push(segment) });
    assert.deepEqual(seen, result.segments);
  });

  test('abort rejects with AbortError, and the next call works', async () => {
    const controller = new AbortController();
    const call = transcriber.transcribe(samples(), { maxTokens: MAX_TOKENS, signal: controller.signal, onSegment: () => controller.abort() });
    controller.abort();
    await assert.rejects(call, (error: unknown) => error instanceof AbortError && (error as AbortError).code === 'ABORTED');
    assert.deepEqual(await transcriber.transcribe(samples(), { maxTokens: MAX_TOKENS }), expected);
  });

  test('bad audio rejects with AudioError naming the input', async () => {
    await assert.rejects(transcriber.transcribe(new ArrayBuffer(64)), AudioError);
    await assert.rejects(transcriber.transcribe(join(modelDir, 'no-such.wav')), (error: unknown) => error instanceof AudioError && /no-such\.wav/.test((error as Error).message));
  });

  test('a missing model rejects with ModelLoadError naming the file', async () => {
    await assert.rejects(createTranscriber({ model: join(modelDir, 'missing-model.bin') }), (error: unknown) => error instanceof ModelLoadError && /missing-model\.bin/.test(error.file));
  });

  test('after dispose, calls reject with code DISPOSED', async () => {
    const other = await createTranscriber({ model: modelDir, backend: 'reference' });
    await other.dispose();
    await assert.rejects(other.transcribe(samples()), (error: unknown) => error instanceof MurmurError && error.code === 'DISPOSED');
  });
});
