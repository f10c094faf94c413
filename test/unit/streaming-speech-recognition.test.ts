// MurmurSpeechRecognition against the Web Speech API's documented behaviour, driven by a fake live
// session: event order, result lists and indices, isFinal, continuous vs single-shot, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MurmurSpeechRecognition, type RecognitionBackend } from '../../src/speech-recognition/recognition.ts';
import type { MurmurSpeechRecognitionErrorEvent, MurmurSpeechRecognitionEvent } from '../../src/speech-recognition/results.ts';
import type { LiveEvent } from '../../src/core/streaming/session.ts';

class FakeBackend implements RecognitionBackend {
  emit: (event: LiveEvent) => void = () => {};
  fail: (error: unknown) => void = () => {};
  language: string | undefined = 'unset';
  aborted = false;
  stopped = false;
  /** Events the session still emits when stopped (finalizing the utterance in progress). */
  onStop: LiveEvent[] = [];
  constructor(private readonly refuse?: unknown) {}
  async start(request: Parameters<RecognitionBackend['start']>[0]) {
    if (this.refuse) throw this.refuse;
    this.language = request.language;
    this.emit = (event) => {
      if (!this.aborted) request.onEvent(event);
    };
    this.fail = request.onError;
    return {
      stop: async () => {
        this.stopped = true;
        for (const event of this.onStop) this.emit(event);
      },
      abort: () => {
        this.aborted = true;
      },
    };
  }
}

const word = (text: string, start: number, probability = 0.8) => ({ word: text, start, end: start + 0.3, probability });
const tentative = (text: string, utterance = 0): LiveEvent => ({ type: 'tentative', text, start: 0, end: 0, words: [], utterance });
const confirmed = (text: string, start: number, utterance = 0): LiveEvent => ({ type: 'confirmed', text, start, end: start + 0.3, words: [word(text, start)], utterance });
const speechStart = (utterance = 0): LiveEvent => ({ type: 'speech-start', time: 1, utterance });
const speechEnd = (text: string, utterance = 0): LiveEvent => ({ type: 'speech-end', time: 3, utterance, text, audioStart: 0.7, audioEnd: 3 });

/** Records every event as a line: type, and for results "resultIndex:[transcript(final?)...]". */
function record(recognition: MurmurSpeechRecognition): string[] {
  const log: string[] = [];
  for (const type of ['start', 'end', 'audiostart', 'audioend', 'soundstart', 'soundend', 'speechstart', 'speechend', 'result', 'nomatch', 'error']) {
    recognition.addEventListener(type, (event) => {
      if (type === 'result' || type === 'nomatch') {
        const e = event as MurmurSpeechRecognitionEvent;
        const results = [...e.results].map((r) => `${r[0]!.transcript}${r.isFinal ? '!' : '?'}`);
        log.push(`${type} ${e.resultIndex}:[${results.join('|')}]`);
      } else if (type === 'error') {
        log.push(`error ${(event as MurmurSpeechRecognitionErrorEvent).error}`);
      } else {
        log.push(type);
      }
    });
  }
  return log;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
async function untilEnd(recognition: MurmurSpeechRecognition): Promise<void> {
  await new Promise((resolve) => recognition.addEventListener('end', resolve, { once: true }));
}

test('continuous with interim results: finals accumulate, the interim follows them, stop() finalizes then ends', async () => {
  const backend = new FakeBackend();
  const recognition = new MurmurSpeechRecognition(backend);
  recognition.continuous = true;
  recognition.interimResults = true;
  recognition.lang = 'en-US';
  const log = record(recognition);
  let handlerCalls = 0;
  recognition.onresult = function (event) {
    assert.equal(this, recognition);
    assert.ok(event.results.length > 0);
    handlerCalls++;
  };
  recognition.start();
  assert.throws(() => recognition.start(), (e: unknown) => e instanceof DOMException && e.name === 'InvalidStateError');
  await tick();
  assert.equal(backend.language, 'en');
  backend.emit(speechStart());
  backend.emit(tentative(' Hello wor-'));
  backend.emit(confirmed(' Hello', 1.1));
  backend.emit(tentative(' world how'));
  backend.emit(confirmed(' world', 1.5));
  backend.emit(tentative(' how are'));
  backend.onStop = [confirmed(' how are you', 1.9), tentative(''), speechEnd(' Hello world how are you')];
  recognition.stop();
  await untilEnd(recognition);
  assert.deepEqual(log, [
    'start',
    'audiostart',
    'soundstart',
    'speechstart',
    'result 0:[Hello wor-?]',
    'result 0:[Hello!]',
    'result 1:[Hello!| world how?]',
    'result 1:[Hello!| world!]',
    'result 2:[Hello!| world!| how are?]',
    'result 2:[Hello!| world!| how are you!]',
    'speechend',
    'soundend',
    'audioend',
    'end',
  ]);
  assert.equal(handlerCalls, 6, 'onresult sees every result event, as listeners do');
  assert.ok(backend.stopped);
});

test('single-shot: interim results show the whole utterance so far; one final result, then it ends by itself', async () => {
  const backend = new FakeBackend();
  const recognition = new MurmurSpeechRecognition(backend);
  recognition.interimResults = true;
  const log = record(recognition);
  const ended = untilEnd(recognition);
  recognition.start();
  await tick();
  assert.equal(backend.language, undefined, 'no lang: the model detects the language');
  backend.emit(speechStart());
  backend.emit(tentative(' Hello wor-'));
  backend.emit(confirmed(' Hello', 1.1));
  backend.emit(tentative(' world'));
  backend.emit(confirmed(' world.', 1.5));
  backend.emit(speechEnd(' Hello world.'));
  backend.emit(speechStart(1));
  backend.emit(confirmed(' ignored', 4, 1));
  await ended;
  assert.deepEqual(log, [
    'start', 'audiostart', 'soundstart', 'speechstart',
    'result 0:[Hello wor-?]',
    'result 0:[Hello world?]',
    'result 0:[Hello world.!]',
    'speechend', 'soundend', 'audioend', 'end',
  ]);
  assert.ok(backend.aborted, 'the session stops after the first final result');
  // A new start() after 'end' is allowed.
  recognition.start();
  recognition.abort();
  await tick();
});

test('without interim results only finals arrive; an utterance without words is a nomatch', async () => {
  const backend = new FakeBackend();
  const recognition = new MurmurSpeechRecognition(backend);
  recognition.continuous = true;
  const log = record(recognition);
  recognition.start();
  await tick();
  backend.emit(speechStart());
  backend.emit(tentative(' um'));
  backend.emit(speechEnd(''));
  backend.emit(speechStart(1));
  backend.emit(tentative(' yes'));
  backend.emit(confirmed(' Yes.', 5, 1));
  backend.emit(speechEnd(' Yes.', 1));
  recognition.stop();
  await untilEnd(recognition);
  assert.deepEqual(log, ['start', 'audiostart', 'soundstart', 'speechstart', 'nomatch 0:[]', 'result 0:[Yes.!]', 'speechend', 'soundend', 'audioend', 'end']);
});

test('errors: refused microphone, missing device, no speech, abort, and decode failures map to Web Speech codes', async () => {
  const cases: Array<[unknown, string]> = [
    [new DOMException('Permission denied', 'NotAllowedError'), 'not-allowed'],
    [new DOMException('Requested device not found', 'NotFoundError'), 'audio-capture'],
  ];
  for (const [refusal, code] of cases) {
    const recognition = new MurmurSpeechRecognition(new FakeBackend(refusal));
    const log = record(recognition);
    recognition.start();
    await untilEnd(recognition);
    assert.deepEqual(log, [`error ${code}`, 'end'], `${String(refusal)}`);
  }

  const quiet = new MurmurSpeechRecognition(new FakeBackend());
  quiet.noSpeechTimeout = 30;
  const quietLog = record(quiet);
  quiet.start();
  await untilEnd(quiet);
  assert.deepEqual(quietLog, ['start', 'audiostart', 'error no-speech', 'audioend', 'end']);

  const backend = new FakeBackend();
  const aborted = new MurmurSpeechRecognition(backend);
  const abortedLog = record(aborted);
  let errorMessage = '';
  aborted.onerror = (event) => {
    errorMessage = event.message;
  };
  aborted.start();
  await tick();
  backend.emit(speechStart());
  aborted.abort();
  backend.emit(confirmed(' late', 2));
  await tick();
  assert.deepEqual(abortedLog, ['start', 'audiostart', 'soundstart', 'speechstart', 'error aborted', 'speechend', 'soundend', 'audioend', 'end']);
  assert.match(errorMessage, /aborted/);
  assert.ok(backend.aborted);

  const failing = new FakeBackend();
  const broken = new MurmurSpeechRecognition(failing);
  const brokenLog = record(broken);
  broken.start();
  await tick();
  failing.fail(new Error('the decoder ran out of memory'));
  assert.deepEqual(brokenLog, ['start', 'audiostart', 'error aborted', 'audioend', 'end']);

  const nowhere = new MurmurSpeechRecognition();
  const nowhereLog = record(nowhere);
  nowhere.start();
  await untilEnd(nowhere);
  assert.deepEqual(nowhereLog, ['error service-not-allowed', 'end']);
});

test('stop() before the microphone opens still starts, then ends cleanly; abort() before it opens never starts', async () => {
  const backend = new FakeBackend();
  const recognition = new MurmurSpeechRecognition(backend);
  const log = record(recognition);
  recognition.start();
  recognition.stop();
  await untilEnd(recognition);
  assert.deepEqual(log, ['start', 'audiostart', 'audioend', 'end']);

  const early = new FakeBackend();
  const abortedEarly = new MurmurSpeechRecognition(early);
  const earlyLog = record(abortedEarly);
  abortedEarly.start();
  abortedEarly.abort();
  await tick();
  await tick();
  assert.deepEqual(earlyLog, ['error aborted', 'end']);
  assert.ok(early.aborted, 'the stream that opened late is closed');
});
