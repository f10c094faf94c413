// Long-form on a real backend: 5+ minutes of espeak-ng speech through the seek loop with the
// synthetic 'mini' model on the WASM kernels (about ten times faster than the reference backend
// here). Random weights give random text, so the checks are about the loop: it finishes, segment
// times are ordered and inside the audio, and memory does not grow from window to window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { parseWav } from '../../src/core/audio/wav.ts';
import { SAMPLE_RATE } from '../../src/core/audio/mel.ts';
import { createModelEngine } from '../../src/core/transcribe/model-engine.ts';
import { transcribeLongForm } from '../../src/core/transcribe/longform.ts';
import type { EncodedWindow, TranscriptionEngine } from '../../src/core/transcribe/engine.ts';
import type { LogMel } from '../../src/core/audio/mel.ts';
import { toSrt, toVtt } from '../../src/core/export/index.ts';
import { skipWithoutSharedData } from '../shared-data.ts';

const run = promisify(execFile);

async function haveTools(): Promise<string | false> {
  for (const tool of ['espeak-ng', 'sox']) {
    try {
      await run(tool, ['--version']);
    } catch {
      return `${tool} is not installed (needed to synthesise the speech)`;
    }
  }
  return false;
}

/** ~5.5 minutes of English from espeak-ng, resampled to 16 kHz mono by sox. */
async function speech(): Promise<Float32Array> {
  const words = 'the quick brown fox jumps over a lazy dog while seven bright birds sing about rivers mountains and quiet towns in the early morning light people walk slowly to work'.split(' ');
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const text = Array.from({ length: 1200 }, (_, i) => words[next() % words.length]! + (i % 12 === 11 ? '.' : '')).join(' ');
  const dir = await mkdtemp(join(tmpdir(), 'murmur-speech-'));
  try {
    await writeFile(join(dir, 'text.txt'), text);
    await run('espeak-ng', ['-v', 'en', '-s', '165', '-f', join(dir, 'text.txt'), '-w', join(dir, 'raw.wav')]);
    await run('sox', [join(dir, 'raw.wav'), '-r', '16000', '-c', '1', '-b', '16', join(dir, 'speech.wav')]);
    const wav = parseWav(await readFile(join(dir, 'speech.wav')), 'speech.wav');
    assert.equal(wav.sampleRate, SAMPLE_RATE);
    return wav.channels[0]!;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function collectGarbage(): () => void {
  setFlagsFromString('--expose_gc');
  return runInNewContext('gc') as () => void;
}

/** Live memory after a full collection, in bytes: the JS heap plus array buffers. */
function liveBytes(gc: () => void): number {
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

const MB = 1024 * 1024;
/**
 * Memory is flat when, after the first two windows (warm-up: kernels compiled, caches filled),
 * the floor of live memory (the least of four samples, since a collection can leave a transient
 * buffer alive at any one sample) rises by less than a quarter of a window's spectrogram
 * (80 × 3000 floats, 0.92 MB) per window between the first and the last samples. Holding on to
 * anything window-sized — a spectrogram, the audio features, a decoder state — raises it by at
 * least that much; the control in the test checks that it does.
 */
function assertFlat(samples: number[], what: string): void {
  const steady = samples.slice(2);
  assert.ok(steady.length >= 8, `${what}: only ${steady.length} memory samples`);
  const floor = (part: number[]) => Math.min(...part);
  const perWindow = (floor(steady.slice(-4)) - floor(steady.slice(0, 4))) / (steady.length - 4);
  assert.ok(perWindow < 0.23 * MB, `${what}: live memory grows ${(perWindow / MB).toFixed(2)} MB per window (${steady.map((b) => (b / MB).toFixed(1)).join(', ')} MB)`);
}

/** Samples live memory each time the loop asks for a window. */
function sampling(engine: TranscriptionEngine, gc: () => void, samples: number[], keep?: LogMel[]): TranscriptionEngine {
  return {
    ...engine,
    tokenizer: engine.tokenizer,
    async encodeWindow(mel, placement, signal): Promise<EncodedWindow> {
      keep?.push(mel);
      samples.push(liveBytes(gc));
      return engine.encodeWindow(mel, placement, signal);
    },
  };
}

test('5+ minutes of espeak-ng speech on the WASM backend: completes, ordered segments within the audio, flat memory', { skip: skipWithoutSharedData('whisper-assets/gpt2.tiktoken'), timeout: 120_000 }, async (t) => {
  const missing = await haveTools();
  if (missing) return t.skip(missing);
  const audio = await speech();
  const duration = audio.length / SAMPLE_RATE;
  assert.ok(duration >= 300, `the speech lasts ${duration.toFixed(1)} s, less than 5 minutes`);

  const { path } = await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'f16' });
  const model = await loadModel(path);
  const { createWasmBackend } = await import('../../src/kernels-wasm/backend.ts');
  const backend = await createWasmBackend({});
  const weights = await backend.prepareWeights(model.dims, model.weights);
  const gc = collectGarbage();
  try {
    const engine = createModelEngine(backend.ops, () => ({ dims: model.dims, weights }), model, {
      // Random weights fail every quality threshold: two temperatures and short windows keep the run short.
      decoding: { temperatures: [0, 0.6], sampleLen: 48 },
    });
    const samples: number[] = [];
    const start = performance.now();
    let streamed = 0;
    const result = await transcribeLongForm(audio, sampling(engine, gc, samples), { noSpeechThreshold: null, onSegment: () => streamed++ });
    const seconds = (performance.now() - start) / 1000;
    t.diagnostic(`${duration.toFixed(1)} s of speech in ${seconds.toFixed(1)} s: ${samples.length} windows, ${result.segments.length} segments; live memory per window ${samples.map((b) => (b / MB).toFixed(1)).join(', ')} MB`);

    assert.ok(result.segments.length > 0 && streamed === result.segments.length);
    let previousEnd = 0;
    for (const segment of result.segments) {
      assert.ok(segment.start >= previousEnd && segment.end > segment.start && segment.end <= duration, `segment ${segment.id}: ${segment.start}–${segment.end} after ${previousEnd}`);
      previousEnd = segment.end;
    }
    // The windows cover the audio: the last one starts within 30 s of the end.
    assert.ok(Math.max(...result.segments.map((s) => s.seek)) / 100 > duration - 30);
    assert.ok(toSrt(result).length > 0 && toVtt(result).startsWith('WEBVTT'));
    assertFlat(samples, 'the seek loop');

    // Control: the same check catches a loop that keeps each window's spectrogram.
    const leaked: LogMel[] = [];
    const leakySamples: number[] = [];
    const cheap: TranscriptionEngine = {
      ...engine,
      async encodeWindow() {
        return {
          decode: async () => ({ tokens: [], temperature: 0, avgLogProb: 0, compressionRatio: 1, noSpeechProb: 0 }),
          detectLanguage: async () => ({ language: 'en', probabilities: { en: 1 } }),
          dispose() {},
        };
      },
    };
    await transcribeLongForm(audio, sampling(cheap, gc, leakySamples, leaked), { noSpeechThreshold: null });
    assert.throws(() => assertFlat(leakySamples, 'a leaky loop'), /grows/);
  } finally {
    backend.releaseWeights(weights);
    backend.dispose();
  }
});
