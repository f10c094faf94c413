// The live session on a real (synthetic 'mini') model on the WASM backend, fed espeak-ng speech:
// each utterance's confirmed text equals the offline transcription of the audio the session says
// the utterance spans, and nothing is decoded in the silence around it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { createTranscriber } from '../../src/core/transcriber.ts';
import { LiveSession, type LiveEvent, type LiveTextEvent } from '../../src/core/streaming/session.ts';
import { layout, RATE, skipWithoutSpeechTools, speak } from './streaming-fixture.ts';
import { skipWithoutSharedData } from '../shared-data.ts';

const skip = skipWithoutSpeechTools || skipWithoutSharedData('whisper-assets/gpt2.tiktoken');

test('live dictation with the mini model ends each utterance on its offline transcription', { skip, timeout: 120_000 }, async (t) => {
  const model = await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' });
  const transcriber = await createTranscriber({ model: model.dir, backend: 'wasm' });
  t.after(() => transcriber.dispose());
  const recording = layout([speak('Hello world, this is a test.'), speak('Seven silver foxes.')], { lead: 1.5, gap: 2 });
  const events: LiveEvent[] = [];
  const session = new LiveSession(transcriber, { onEvent: (e) => events.push(e) });
  let decodesInSilence = 0;
  for (let i = 0; i < recording.samples.length; i += 1600) {
    const before = session.decodes;
    const silent = !session.speaking && recording.spans.every(([start, end]) => (i + 1600) / RATE < start - 0.05 || i / RATE > end + 1);
    session.push(recording.samples.subarray(i, i + 1600));
    await session.idle();
    if (silent) decodesInSilence += session.decodes - before;
  }
  await session.stop();
  assert.equal(decodesInSilence, 0, 'no decoding in silence');

  const ends = events.filter((e): e is Extract<LiveEvent, { type: 'speech-end' }> => e.type === 'speech-end');
  assert.equal(ends.length, 2, events.map((e) => e.type).join(','));
  for (const end of ends) {
    const confirmed = events.filter((e): e is LiveTextEvent => e.type === 'confirmed' && e.utterance === end.utterance).map((e) => e.text).join('');
    assert.equal(confirmed, end.text);
    const audio = recording.samples.slice(Math.round(end.audioStart * RATE), Math.round(end.audioEnd * RATE));
    const offline = await transcriber.transcribe(audio, session.finalOptions());
    assert.equal(confirmed.trim(), offline.text.trim(), `utterance ${end.utterance}`);
    t.diagnostic(`utterance ${end.utterance} (${end.audioStart.toFixed(2)}–${end.audioEnd.toFixed(2)} s): ${JSON.stringify(confirmed)}`);
  }
  assert.ok(events.some((e) => e.type === 'tentative' && e.text.length > 0), 'some tentative text while speaking');
  t.diagnostic(`${session.decodes} decodes for ${(recording.samples.length / RATE).toFixed(1)} s of audio`);
});
