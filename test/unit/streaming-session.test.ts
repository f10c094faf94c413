// The live session with a scripted transcriber: event order, LocalAgreement-2 confirmation,
// confirmed text never rewritten and equal to the offline transcription of each utterance, no
// decoding during silence, abort and errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveSession, wordsOf, type LiveEvent, type LiveTextEvent, type StreamingTranscriber } from '../../src/core/streaming/session.ts';
import type { TranscribeOptions, TranscriptionResult } from '../../src/core/transcriber.ts';
import { MurmurError } from '../../src/core/errors.ts';

const RATE = 16000;

/** A vowel-like burst: harmonics of 150 Hz, loud and far from flat. */
function voiced(seconds: number): Float32Array {
  const out = new Float32Array(Math.round(seconds * RATE));
  for (let i = 0; i < out.length; i++) {
    const t = i / RATE;
    out[i] = 0.1 * (Math.sin(2 * Math.PI * 150 * t) + 0.5 * Math.sin(2 * Math.PI * 300 * t) + 0.3 * Math.sin(2 * Math.PI * 600 * t) + 0.2 * Math.sin(2 * Math.PI * 1200 * t));
  }
  return out;
}

function concat(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

interface ScriptWord { word: string; start: number; end: number }

/**
 * Hears the words whose end lies inside the audio it is given (times relative to the audio's
 * start, which is the utterance's start), and mishears the word being spoken.
 */
class ScriptedTranscriber implements StreamingTranscriber {
  calls: Array<{ seconds: number; options: TranscribeOptions | undefined }> = [];
  constructor(private readonly words: ScriptWord[], private readonly failAt = -1) {}
  async transcribe(audio: Float32Array, options?: TranscribeOptions): Promise<TranscriptionResult> {
    const seconds = audio.length / RATE;
    this.calls.push({ seconds, options });
    if (this.calls.length === this.failAt) throw new MurmurError('TEST', 'scripted failure');
    await new Promise((resolve) => setTimeout(resolve, 1));
    const heard = this.words.filter((w) => w.end <= seconds);
    const partial = this.words.find((w) => w.start < seconds && w.end > seconds);
    if (partial) heard.push({ ...partial, word: `${partial.word.slice(0, 3)}-`, end: seconds });
    const words = heard.map((w) => ({ ...w, probability: 0.9 }));
    const text = words.map((w) => w.word).join('');
    return { text, language: 'en', segments: [{ id: 0, seek: 0, start: 0, end: seconds, text, tokens: [], temperature: 0, avg_logprob: -0.1, compression_ratio: 1, no_speech_prob: 0, words }] };
  }
}

const WORDS: ScriptWord[] = [
  { word: ' Hello', start: 0.3, end: 0.7 },
  { word: ' there,', start: 0.75, end: 1.1 },
  { word: ' how', start: 1.2, end: 1.4 },
  { word: ' are', start: 1.45, end: 1.6 },
  { word: ' you', start: 1.65, end: 1.9 },
  { word: ' today?', start: 1.95, end: 2.25 },
];

async function run(session: LiveSession, audio: Float32Array, chunk = 1600): Promise<void> {
  for (let i = 0; i < audio.length; i += chunk) {
    session.push(audio.subarray(i, i + chunk));
    await session.idle();
  }
  await session.stop();
}

test('tentative text comes first, confirmations only append, and the utterance ends as the offline transcription', async () => {
  const transcriber = new ScriptedTranscriber(WORDS);
  const events: LiveEvent[] = [];
  const session = new LiveSession(transcriber, { onEvent: (e) => events.push(e), language: 'en', wordTimestamps: true });
  await run(session, concat(new Float32Array(RATE), voiced(2.5), new Float32Array(2 * RATE)));

  const types = events.map((e) => e.type);
  assert.equal(types[0], 'speech-start');
  assert.equal(types.at(-1), 'speech-end');
  assert.ok(types.indexOf('tentative') < types.indexOf('confirmed'), `a tentative before any confirmed: ${types.join(',')}`);
  const start = events[0] as Extract<LiveEvent, { type: 'speech-start' }>;
  assert.ok(Math.abs(start.time - 1) < 0.1, `onset at ${start.time}`);

  const confirmed = events.filter((e): e is LiveTextEvent => e.type === 'confirmed');
  assert.ok(confirmed.length >= 3, 'words are confirmed while speaking, not only at the end');
  for (let i = 1; i < confirmed.length; i++) assert.ok(confirmed[i]!.start >= confirmed[i - 1]!.end, 'each confirmation follows the previous one');
  const confirmedText = confirmed.map((e) => e.text).join('');
  const end = events.at(-1) as Extract<LiveEvent, { type: 'speech-end' }>;
  assert.equal(confirmedText, end.text);

  const offline = await new ScriptedTranscriber(WORDS).transcribe(new Float32Array(Math.round((end.audioEnd - end.audioStart) * RATE)));
  assert.equal(confirmedText, offline.text);
  assert.equal(confirmedText, ' Hello there, how are you today?');
  assert.ok(!confirmedText.includes('-'), 'a misheard partial word is never confirmed');
  assert.ok(events.some((e) => e.type === 'tentative' && e.text.includes('-')), 'partial words show up as tentative');
  assert.ok(transcriber.calls.every((c) => c.options?.language === 'en' && c.options.temperature === 0));
  assert.equal(transcriber.calls.at(-1)!.options?.wordTimestamps, true, 'the final pass asks for word timestamps');
  assert.ok(transcriber.calls.slice(0, -1).every((c) => c.options?.wordTimestamps === false), 'interim decodes do not (one encoder pass each)');
  // Interim decodes about every 0.5 s of speech, then one final pass.
  assert.ok(transcriber.calls.length >= 5 && transcriber.calls.length <= 9, `${transcriber.calls.length} decodes`);
  assert.ok(Math.abs(transcriber.calls.at(-1)!.seconds - (end.audioEnd - end.audioStart)) < 1e-6, 'the final pass hears the whole utterance');
});

test('silence costs nothing: no decode before, between or after utterances', async () => {
  const transcriber = new ScriptedTranscriber(WORDS);
  const events: LiveEvent[] = [];
  const session = new LiveSession(transcriber, { onEvent: (e) => events.push(e) });
  await run(session, new Float32Array(5 * RATE));
  assert.equal(session.decodes, 0);
  assert.equal(events.length, 0);

  const two = new LiveSession(transcriber, { onEvent: (e) => events.push(e) });
  await run(two, concat(new Float32Array(RATE), voiced(1.2), new Float32Array(3 * RATE), voiced(1.2), new Float32Array(4 * RATE)));
  const decodesAfterSpeech = two.decodes;
  const ends = events.filter((e) => e.type === 'speech-end');
  assert.equal(ends.length, 2);
  assert.deepEqual(events.filter((e) => e.type === 'speech-start').map((e) => e.utterance), [0, 1]);
  // 2 utterances × (≈2 interim + 1 final): far fewer than one per step of the 10 s stream.
  assert.ok(decodesAfterSpeech <= 8, `${decodesAfterSpeech} decodes`);
});

test('when the final pass disagrees with what was confirmed, the confirmed words stay and only later words are added', async () => {
  let call = 0;
  const transcriber: StreamingTranscriber = {
    async transcribe(audio) {
      call++;
      const seconds = audio.length / RATE;
      // The final pass (and only late interim passes) end in silence.
      const final = audio.subarray(audio.length - 1600).every((x) => x === 0);
      const words = final
        ? [{ word: ' Jello', start: 0.3, end: 0.7 }, { word: ' world', start: 0.8, end: 1.2 }, { word: ' again', start: 1.3, end: 1.7 }]
        : [{ word: ' Hello', start: 0.3, end: 0.7 }, { word: ` w${call}-`, start: 0.8, end: seconds }];
      const withP = words.map((w) => ({ ...w, probability: 1 }));
      return { text: '', language: 'en', segments: [{ id: 0, seek: 0, start: 0, end: seconds, text: '', tokens: [], temperature: 0, avg_logprob: 0, compression_ratio: 1, no_speech_prob: 0, words: withP }] };
    },
  };
  const events: LiveEvent[] = [];
  const session = new LiveSession(transcriber, { onEvent: (e) => events.push(e) });
  await run(session, concat(new Float32Array(RATE), voiced(1.5), new Float32Array(RATE)));
  assert.ok(call >= 3);
  const confirmed = events.filter((e): e is LiveTextEvent => e.type === 'confirmed').map((e) => e.text);
  assert.deepEqual(confirmed, [' Hello', ' world again']);
});

test('abort stops events at once; a failing decode reports the error and stop() rejects with it', async () => {
  const events: LiveEvent[] = [];
  const session = new LiveSession(new ScriptedTranscriber(WORDS), { onEvent: (e) => events.push(e) });
  const audio = concat(new Float32Array(RATE), voiced(2.5), new Float32Array(RATE));
  for (let i = 0; i < 2 * RATE; i += 1600) session.push(audio.subarray(i, i + 1600));
  session.abort();
  const count = events.length;
  await session.idle();
  assert.equal(events.length, count, 'nothing after abort');
  assert.throws(() => session.push(audio), /pushed after stop/);

  const errors: unknown[] = [];
  const failing = new LiveSession(new ScriptedTranscriber(WORDS, 2), { onEvent: () => {}, onError: (e) => errors.push(e) });
  await assert.rejects(() => run(failing, audio), /scripted failure/);
  assert.equal(errors.length, 1);

  const bad = new LiveSession(new ScriptedTranscriber(WORDS), { onEvent: () => {} });
  assert.throws(() => bad.push(new Float32Array([0, Number.POSITIVE_INFINITY])), /sample 1 is Infinity/);
  assert.throws(() => new LiveSession(new ScriptedTranscriber(WORDS), { onEvent: () => {}, stepSeconds: 0 }), /stepSeconds must be positive/);
});

test('an interim decode still running when the utterance ends is cancelled, so the final pass starts at once', async () => {
  let cancelled = 0;
  const calls: number[] = [];
  const slow: StreamingTranscriber = {
    transcribe(audio, options) {
      calls.push(audio.length / RATE);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => resolve(new ScriptedTranscriber(WORDS).transcribe(audio)), 200);
        options?.signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          cancelled++;
          reject(new MurmurError('ABORTED', 'transcription was aborted'));
        });
      });
    },
  };
  const events: LiveEvent[] = [];
  const errors: unknown[] = [];
  const session = new LiveSession(slow, { onEvent: (e) => events.push(e), onError: (e) => errors.push(e) });
  const audio = concat(new Float32Array(RATE), voiced(2.5), new Float32Array(RATE));
  const speechOver = Math.round(3.5 * RATE);
  for (let i = 0; i < speechOver; i += 1600) session.push(audio.subarray(i, i + 1600));
  await new Promise((resolve) => setTimeout(resolve, 20));
  // The first interim decode is in flight; the rest of the audio ends the utterance.
  for (let i = speechOver; i < audio.length; i += 1600) session.push(audio.subarray(i, i + 1600));
  await session.stop();
  assert.equal(cancelled, 1, `decodes: ${calls.map((s) => s.toFixed(2)).join(', ')}`);
  assert.deepEqual(errors, []);
  assert.equal(events.filter((e) => e.type === 'speech-end').length, 1);
  assert.equal(events.filter((e): e is LiveTextEvent => e.type === 'confirmed').map((e) => e.text).join(''), ' Hello there, how are you today?');
});

test('interim decodes are capped at interimTokensPerSecond; the final pass is not', async () => {
  const transcriber = new ScriptedTranscriber(WORDS);
  const session = new LiveSession(transcriber, { onEvent: () => {}, transcribe: { maxTokens: 100 } });
  await run(session, concat(new Float32Array(RATE), voiced(2.5), new Float32Array(2 * RATE)));
  const [final, ...interims] = [transcriber.calls.at(-1)!, ...transcriber.calls.slice(0, -1)];
  assert.ok(interims.length >= 3);
  for (const { seconds, options } of interims) assert.equal(options?.maxTokens, Math.min(100, Math.ceil(8 * seconds) + 8), `${seconds.toFixed(2)} s interim`);
  assert.equal(final.options?.maxTokens, 100, 'the final pass keeps the caller\'s options, as an offline run would');
  const { signal: _signal, ...finalOptions } = final.options!;
  assert.deepEqual(finalOptions, session.finalOptions());
});

test('no interim decode starts during a pause in speech (it may be the end); one does once speech resumes', async () => {
  const transcriber = new ScriptedTranscriber(WORDS);
  const session = new LiveSession(transcriber, { onEvent: () => {} });
  // 0.3 s pauses inside the utterance (shorter than the VAD's 0.36 s hangover): the utterance goes on.
  const audio = concat(new Float32Array(RATE), voiced(0.8), new Float32Array(0.3 * RATE), voiced(0.8), new Float32Array(2 * RATE));
  const startedAt: number[] = [];
  for (let i = 0; i < audio.length; i += 800) {
    const before = transcriber.calls.length;
    session.push(audio.subarray(i, i + 800));
    await session.idle();
    if (transcriber.calls.length > before) startedAt.push((i + 800) / RATE);
  }
  await session.stop();
  const inPause = startedAt.slice(0, -1).filter((t) => (t > 1.8 + 0.12 + 0.05 && t <= 2.1) || t > 2.9 + 0.12 + 0.05);
  assert.deepEqual(inPause, [], `interim decodes started at ${startedAt.map((t) => t.toFixed(2)).join(', ')} s`);
  assert.ok(startedAt.some((t) => t > 2.1 && t <= 2.9), 'interim decodes resume with the speech');

  const ungated = new ScriptedTranscriber(WORDS);
  const always = new LiveSession(ungated, { onEvent: () => {}, pauseSeconds: Infinity });
  await run(always, audio, 800);
  assert.ok(ungated.calls.length > transcriber.calls.length, `without the gate: ${ungated.calls.length} decodes, with it: ${transcriber.calls.length}`);
});

test('audio queued while a decode runs is taken in before the next decode starts', async () => {
  const transcriber = new ScriptedTranscriber(WORDS);
  const session = new LiveSession(transcriber, { onEvent: () => {} });
  const audio = concat(new Float32Array(RATE), voiced(2.5));
  // Everything arrives in one burst of chunk messages (as after a long decode in the worker).
  const port = new MessageChannel();
  port.port2.onmessage = (event: MessageEvent<Float32Array>) => session.push(event.data);
  for (let i = 0; i < audio.length; i += 1600) port.port1.postMessage(audio.slice(i, i + 1600));
  await new Promise((resolve) => setTimeout(resolve, 200));
  await session.idle();
  port.port1.close();
  port.port2.close();
  assert.ok(transcriber.calls.length >= 1);
  assert.ok(transcriber.calls[0]!.seconds > 2, `the first decode heard ${transcriber.calls[0]!.seconds.toFixed(2)} s: all the queued audio`);
  await session.stop();
});

test('by default no pass asks for word timestamps (one encoder pass each); spread words carry the segment probability', async () => {
  const transcriber = new ScriptedTranscriber(WORDS);
  const events: LiveEvent[] = [];
  const session = new LiveSession(transcriber, { onEvent: (e) => events.push(e), language: 'en' });
  await run(session, concat(new Float32Array(RATE), voiced(2.5), new Float32Array(2 * RATE)));
  assert.ok(transcriber.calls.length >= 2, `${transcriber.calls.length} decodes`);
  assert.ok(transcriber.calls.every((c) => c.options?.wordTimestamps === false), 'no decode asks for word timestamps');
  assert.ok(events.some((e) => e.type === 'confirmed'), 'text is still confirmed');

  const result = await transcriber.transcribe(new Float32Array(2 * RATE));
  const { words: _, ...withoutWords } = result.segments[0]!;
  const spread = wordsOf({ ...result, segments: [withoutWords] }, 10);
  assert.deepEqual(spread.map((w) => w.word), [' Hello', ' there,', ' how', ' are', ' you', ' to-']);
  for (const word of spread) assert.ok(Math.abs(word.probability! - Math.exp(-0.1)) < 1e-12, `probability ${word.probability}`);
  assert.equal(spread[0]!.start, 10);
  assert.ok(Math.abs(spread.at(-1)!.end - 12) < 1e-9, `last word ends at ${spread.at(-1)!.end}`);
});
