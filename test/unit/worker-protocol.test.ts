// The worker protocol without a browser: errors keep their class and fields through comlink, and
// the engine host (what the worker exposes) queues requests in order, aborts the call in flight
// through the shared flag, and works through comlink over a MessageChannel with proxied callbacks.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as Comlink from 'comlink';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { createEngineHost, type EngineHost, type EngineProgressEvent } from '../../src/workers/engine-host.ts';
import { deserializeError, registerErrorTransfer, serializeError } from '../../src/workers/error-transfer.ts';
import { AbortError, AudioError, ModelFormatError, ModelLoadError, MurmurError } from '../../src/core/errors.ts';
import { parseWav } from '../../src/core/audio/wav.ts';
import { toWhisperInput } from '../../src/core/audio/prepare.ts';
import type { TranscriptionSegment } from '../../src/core/transcriber.ts';

const JFK = resolve('../shared/data/audio/jfk.wav');

/** Exposes `value` on one end of a MessageChannel and returns the comlink proxy of the other end. */
function overChannel<T extends object>(value: T): { remote: Comlink.Remote<T>; close: () => void } {
  const { port1, port2 } = new MessageChannel();
  Comlink.expose(value, port1 as unknown as Comlink.Endpoint);
  const remote = Comlink.wrap<T>(port2 as unknown as Comlink.Endpoint);
  return { remote, close: () => (port1.close(), port2.close()) };
}

describe('errors across the boundary', () => {
  registerErrorTransfer();

  test('a ModelFormatError arrives as one, with file, tensor, code and its cause', async () => {
    const { remote, close } = overChannel({
      fail() {
        throw new ModelFormatError('model.safetensors', 'shape [3] where [4] was expected', { tensor: 'encoder.conv1.weight', cause: new AudioError('inner problem') });
      },
    });
    try {
      await assert.rejects(remote.fail(), (error: unknown) => {
        assert.ok(error instanceof ModelFormatError, 'a ModelFormatError instance');
        assert.equal(error.name, 'ModelFormatError');
        assert.equal(error.code, 'MODEL_FORMAT');
        assert.equal(error.file, 'model.safetensors');
        assert.equal(error.tensor, 'encoder.conv1.weight');
        assert.match(error.message, /model\.safetensors: tensor "encoder\.conv1\.weight": shape \[3\]/);
        assert.ok(error.cause instanceof AudioError, 'the cause keeps its class too');
        assert.equal((error.cause as AudioError).message, 'inner problem');
        return true;
      });
    } finally {
      close();
    }
  });

  test('every core class round-trips; unknown subclasses become MurmurError with their name and code; plain errors stay Errors', () => {
    for (const original of [new AbortError('transcription'), new ModelLoadError('a.bin', 'HTTP 404', { status: 404 }), new AudioError('empty')]) {
      const copy = deserializeError(structuredClone(serializeError(original)));
      assert.equal(Object.getPrototypeOf(copy), Object.getPrototypeOf(original), original.name);
      assert.deepEqual({ ...copy, message: copy.message }, { ...original, message: original.message });
    }
    class GpuThing extends MurmurError {
      constructor() {
        super('GPU_THING', 'the device went away');
      }
    }
    const gpu = deserializeError(serializeError(new GpuThing()));
    assert.ok(gpu instanceof MurmurError);
    assert.equal(gpu.name, 'GpuThing');
    assert.equal((gpu as MurmurError).code, 'GPU_THING');
    const plain = deserializeError(serializeError(new TypeError('x is not a function')));
    assert.ok(!(plain instanceof MurmurError));
    assert.equal(plain.message, 'x is not a function');
  });
});

describe('the engine host', { skip: existsSync(JFK) ? false : `${JFK} is absent (the shared reference data is not checked out beside the repo)` }, () => {
  const jfk = () => {
    const wav = parseWav(readFileSync(JFK), JFK);
    return toWhisperInput(wav.channels, wav.sampleRate);
  };
  /** 33 s: two 30 s windows, so there is work left after the first segments. */
  const longAudio = () => {
    const one = jfk();
    const three = new Float32Array(one.length * 3);
    for (let i = 0; i < 3; i++) three.set(one, i * one.length);
    return three;
  };
  const modelDir = async () => (await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' })).dir;

  test('runs requests one at a time in arrival order; the shared flag aborts the call in flight', { timeout: 120_000 }, async () => {
    const host = createEngineHost();
    await host.init({ model: await modelDir(), backend: 'wasm' });
    try {
      const finished: string[] = [];
      const abortFlag = new Int32Array(new SharedArrayBuffer(4));
      const seen: TranscriptionSegment[] = [];
      const first = host.transcribe({ id: 1, audio: { kind: 'samples', samples: longAudio() }, abortFlag }, { maxTokens: 24 }, (segment) => {
        seen.push(segment);
        Atomics.store(abortFlag, 0, 1);
      });
      const second = host.transcribe({ id: 2, audio: { kind: 'samples', samples: jfk() } }, { maxTokens: 24 });
      const settled = await Promise.allSettled([
        first.finally(() => finished.push('first')),
        second.finally(() => finished.push('second')),
      ]);
      assert.deepEqual(finished, ['first', 'second'], 'FIFO');
      assert.equal(settled[0].status, 'rejected');
      assert.ok((settled[0] as PromiseRejectedResult).reason instanceof AbortError, 'the host aborted the call in flight');
      assert.ok(seen.length > 0, 'the abort came mid-transcription, after the first segment');
      assert.equal(settled[1].status, 'fulfilled', 'the next request ran normally');
    } finally {
      await host.dispose();
    }
  });

  test('through comlink over a MessageChannel: transferred audio, proxied onSegment, typed errors, dispose', { timeout: 120_000 }, async () => {
    registerErrorTransfer();
    const { remote, close } = overChannel<EngineHost>(createEngineHost());
    try {
      await assert.rejects(remote.transcribe({ id: 1, audio: { kind: 'samples', samples: jfk() } }), (error: unknown) => error instanceof MurmurError && error.code === 'NOT_READY');
      const stages: string[] = [];
      const info = await remote.init({ model: await modelDir(), backend: 'wasm' }, Comlink.proxy((event: EngineProgressEvent) => void stages.push(event.stage)));
      assert.equal(info.backend, 'wasm');
      assert.ok(stages.includes('compile'));
      const samples = jfk();
      const segments: TranscriptionSegment[] = [];
      const result = await remote.transcribe(Comlink.transfer({ id: 2, audio: { kind: 'samples', samples } }, [samples.buffer]), { maxTokens: 24 }, Comlink.proxy((segment: TranscriptionSegment) => void segments.push(segment)));
      assert.equal(samples.length, 0, 'the samples were transferred, not copied');
      await new Promise((resolve) => setTimeout(resolve, 50)); // proxied callbacks arrive as messages
      assert.deepEqual(segments, result.segments);
      await assert.rejects(remote.transcribe({ id: 3, audio: { kind: 'wav', bytes: new ArrayBuffer(8), name: 'tiny.wav' } }), (error: unknown) => error instanceof AudioError && /tiny\.wav/.test(error.message));
      await remote.dispose();
      await assert.rejects(remote.transcribe({ id: 4, audio: { kind: 'samples', samples: jfk() } }), (error: unknown) => error instanceof MurmurError && error.code === 'DISPOSED');
    } finally {
      close();
    }
  });
});
