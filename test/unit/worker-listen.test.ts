// transcriber.listen through the engine (in Node the engine runs on this thread behind the same
// message port protocol as the worker): pushed espeak-ng speech gives tentative text before
// confirmed text, confirmed text is only appended, each utterance's confirmed text equals the
// offline transcription of its audio, silence is never decoded, and abort/dispose end the session.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { createTranscriber } from '../../src/client/transcriber.ts';
import type { LiveEvent, LiveTextEvent } from '../../src/core/streaming/session.ts';
import { AudioError } from '../../src/core/errors.ts';
import { layout, RATE, skipWithoutSpeechTools, speak } from './streaming-fixture.ts';
import { skipWithoutSharedData } from '../shared-data.ts';

const skip = skipWithoutSpeechTools || skipWithoutSharedData('whisper-assets/gpt2.tiktoken');
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

test('listen in the engine: tentative then confirmed, never rewritten, ending on the offline transcription', { skip, timeout: 180_000 }, async (t) => {
  const model = await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' });
  const transcriber = await createTranscriber({ model: model.dir, backend: 'wasm' });
  t.after(() => transcriber.dispose());
  const recording = layout([speak('Hello world, this is a test.'), speak('Seven silver foxes.')], { lead: 1.5, gap: 2 });
  const events: LiveEvent[] = [];
  const listening = await transcriber.listen({ capture: false, onEvent: (event) => events.push(event) });
  assert.equal(listening.inputSampleRate, undefined);
  for (let i = 0; i < recording.samples.length; i += 1600) {
    listening.push(recording.samples.slice(i, i + 1600));
    await settle();
  }
  const summary = await listening.stop();
  assert.throws(() => listening.push(new Float32Array(160)), AudioError);

  const ends = events.filter((e): e is Extract<LiveEvent, { type: 'speech-end' }> => e.type === 'speech-end');
  assert.equal(ends.length, 2, events.map((e) => e.type).join(','));
  for (const end of ends) {
    const mine = events.filter((e) => 'utterance' in e && e.utterance === end.utterance);
    const firstTentative = mine.findIndex((e) => e.type === 'tentative');
    const firstConfirmed = mine.findIndex((e) => e.type === 'confirmed');
    assert.ok(firstTentative >= 0, 'tentative text while speaking');
    if (firstConfirmed >= 0) assert.ok(firstTentative < firstConfirmed, 'tentative before confirmed');
    const confirmed = mine.filter((e): e is LiveTextEvent => e.type === 'confirmed').map((e) => e.text).join('');
    assert.equal(confirmed, end.text, 'confirmed text is only appended to');
    const audio = recording.samples.slice(Math.round(end.audioStart * RATE), Math.round(end.audioEnd * RATE));
    const offline = await transcriber.transcribe(audio, summary.finalOptions);
    assert.equal(confirmed.trim(), offline.text.trim(), `utterance ${end.utterance}`);
    for (const [start, stop] of recording.spans) {
      if (end.audioStart < stop && end.audioEnd > start) assert.ok(end.audioStart < start && end.audioEnd > stop - 0.1, 'the utterance covers its phrase');
    }
  }
  // 2 utterances of about 2 s at a decode per 0.5 s, plus their final passes: no decoding in the silence around them.
  assert.ok(summary.decodes <= 2 * 8, `${summary.decodes} decodes`);
  t.diagnostic(`${summary.decodes} decodes; ${ends.map((e) => JSON.stringify(e.text)).join(', ')}`);
});

test('listen: abort ends the session without more events; dispose ends a running one', { skip, timeout: 120_000 }, async (t) => {
  const model = await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' });
  const transcriber = await createTranscriber({ model: model.dir, backend: 'wasm' });
  t.after(() => transcriber.dispose());
  const speech = layout([speak('Hello world, this is a test.')], { lead: 0.5, gap: 1 }).samples;

  const events: LiveEvent[] = [];
  const listening = await transcriber.listen({ capture: false, onEvent: (event) => events.push(event) });
  for (let i = 0; i < RATE * 1.5; i += 1600) listening.push(speech.slice(i, i + 1600));
  listening.abort();
  const seen = events.length;
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(events.length, seen, 'no event after abort');
  await assert.rejects(listening.stop(), (error: unknown) => (error as Error).name === 'AbortError');

  const other = await transcriber.listen({ capture: false });
  for (let i = 0; i < RATE; i += 1600) other.push(speech.slice(i, i + 1600));
  await transcriber.dispose();
  await assert.rejects(other.stop(), (error: unknown) => (error as { code?: string }).code === 'DISPOSED');
  await assert.rejects(transcriber.listen({ capture: false }), (error: unknown) => (error as { code?: string }).code === 'DISPOSED');
});
