// Word timestamps end to end on the reference backend with the synthetic 'mini' model: real audio,
// one alignment pass through the model, words monotonic and inside the audio.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { referenceOps as ops } from '../../src/core/reference/backend.ts';
import { encode } from '../../src/core/model/whisper.ts';
import { loadModel } from '../../src/core/formats/load-model.ts';
import { parseWav } from '../../src/core/audio/wav.ts';
import { logMelWindow } from '../../src/core/audio/mel.ts';
import { modelAlignmentSession } from '../../src/core/timing/model-session.ts';
import { findAlignment } from '../../src/core/timing/alignment.ts';
import { addWordTimestamps, type SegmentForWords } from '../../src/core/timing/words.ts';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { SHARED_DATA, skipWithoutSharedData } from '../shared-data.ts';

const skip = skipWithoutSharedData('audio/jfk.wav', 'whisper-assets/gpt2.tiktoken');

test('word timestamps for jfk.wav with the mini model: every token placed, times monotonic and within the 11 s', { skip }, async (t) => {
  const { path } = await cachedSyntheticModel({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'f16' });
  const model = await loadModel(path);
  // 'mini' is no published shape, so no default heads: name two of its last layer explicitly.
  assert.equal(model.generation.alignmentHeads, undefined);
  const alignmentHeads: [number, number][] = [[1, 0], [1, 1]];
  const { tokenizer, dims } = model;

  const file = join(SHARED_DATA, 'audio/jfk.wav');
  const samples = parseWav(await readFile(file), file).channels[0]!;
  const numFrames = Math.floor(samples.length / 160); // 1100 mel frames of real audio
  const features = encode(ops, model, logMelWindow(samples, dims.nMels));
  const session = modelAlignmentSession(ops, model, features);
  const setup = { tokenizer, alignmentHeads, nTextCtx: dims.nTextCtx, nTextHead: dims.nTextHead };

  const text = tokenizer.encode(' And so, my fellow Americans: ask not what your country can do for you, ask what you can do for your country.');
  const started = performance.now();
  const alignment = await findAlignment(session, setup, tokenizer.sotSequence(), text, numFrames);
  t.diagnostic(`alignment of ${text.length} tokens: ${(performance.now() - started).toFixed(0)} ms`);
  assert.equal(alignment.startTimes.length, text.length + 1);
  for (let i = 1; i < alignment.startTimes.length; i++) assert.ok(alignment.startTimes[i]! >= alignment.startTimes[i - 1]!, `token ${i} starts before token ${i - 1}`);
  assert.ok(alignment.startTimes.at(-1)! <= (numFrames / 2 - 1) * 0.02 + 1e-9);
  assert.ok(alignment.probabilities.every((p) => p > 0 && p <= 1));

  const ts = (s: number) => tokenizer.timestampToken(s);
  const split = 7; // ' And so, my fellow Americans:' | ' ask not ...'
  const segments: SegmentForWords[] = [
    { seek: 0, start: 0, end: 4, tokens: [ts(0), ...text.slice(0, split), ts(4)] },
    { seek: 0, start: 4, end: 11, tokens: [ts(4), ...text.slice(split), ts(11)] },
  ];
  assert.equal(tokenizer.decode(text.slice(0, split)), ' And so, my fellow Americans:');
  const lastSpeech = await addWordTimestamps(segments, session, setup, { sotSequence: tokenizer.sotSequence(), numFrames, lastSpeechTimestamp: 0 });
  session.dispose();
  ops.release(features);

  const words = segments.flatMap((s) => s.words!);
  t.diagnostic(words.map((w) => `${w.word.trim()} ${w.start}–${w.end}`).join(', '));
  assert.deepEqual(words.flatMap((w) => w.tokens), text);
  assert.equal(words.map((w) => w.word).join(''), tokenizer.decode(text));
  let previousStart = 0;
  for (const w of words) {
    assert.ok(w.start >= previousStart - 1e-9 && w.start <= w.end && w.end <= 11, `${JSON.stringify(w.word)} at ${w.start}–${w.end}`);
    assert.ok(w.probability > 0 && w.probability <= 1);
    previousStart = w.start;
  }
  for (const s of segments) assert.ok(0 <= s.start && s.start <= s.end && s.end <= 11, `segment ${s.start}–${s.end}`);
  assert.equal(lastSpeech, segments[1]!.end);
});
