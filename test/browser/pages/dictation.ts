// Live dictation in the page: the (fake) microphone through the AudioWorklet capture into a live
// session, either in the page on the WASM backend (listenLocal) or in the engine's worker
// (createTranscriber(...).listen). Records every event with the wall-clock time it arrived, every
// captured 16 kHz chunk with its arrival time, and the main thread's long tasks, and transcribes
// each utterance's captured audio offline at the end, so the test can compare and measure.
import { createTranscriber, type Transcriber } from '../../../src/core/transcriber.ts';
import { createTranscriber as createWorkerTranscriber, type MurmurTranscriber, type TranscriberListening } from '../../../src/client/transcriber.ts';
import { listenLocal, type LocalListening } from '../../../src/capture/listen.ts';
import type { LiveEvent } from '../../../src/core/streaming/session.ts';
import { MurmurSpeechRecognition, transcriberBackend } from '../../../src/speech-recognition/recognition.ts';
import type { MurmurSpeechRecognitionErrorEvent, MurmurSpeechRecognitionEvent } from '../../../src/speech-recognition/results.ts';
import { exposePageApi } from './page-api.ts';

let transcriber: Transcriber | undefined;
let workerTranscriber: MurmurTranscriber | undefined;
let listening: LocalListening | undefined;
let workerListening: TranscriberListening | undefined;
let longTasks: number[] = [];
let observer: PerformanceObserver | undefined;
const events: Array<{ at: number; event: LiveEvent }> = [];
const chunks: Array<{ at: number; samples: Float32Array }> = [];
const errors: string[] = [];

async function ready(modelUrl: string): Promise<Transcriber> {
  transcriber ??= await createTranscriber({ model: new URL(modelUrl, location.href).href, backend: 'wasm' });
  return transcriber;
}

async function workerReady(modelUrl: string): Promise<MurmurTranscriber> {
  workerTranscriber ??= await createWorkerTranscriber({ model: new URL(modelUrl, location.href).href });
  return workerTranscriber;
}

function watchLongTasks(): void {
  longTasks = [];
  observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) longTasks.push(entry.duration);
  });
  observer.observe({ type: 'longtask', buffered: false });
}

async function stopWatching(): Promise<number[]> {
  // Entries arrive asynchronously: give the observer a moment to report the last ones.
  await new Promise((resolve) => setTimeout(resolve, 100));
  for (const entry of observer?.takeRecords() ?? []) longTasks.push(entry.duration);
  observer?.disconnect();
  return longTasks;
}

function capturedAudio() {
  const captured = new Float32Array(chunks.reduce((n, c) => n + c.samples.length, 0));
  const arrivals: Array<{ at: number; endSample: number }> = [];
  let offset = 0;
  for (const chunk of chunks) {
    captured.set(chunk.samples, offset);
    offset += chunk.samples.length;
    arrivals.push({ at: chunk.at, endSample: offset });
  }
  return { captured, arrivals };
}

export const dictationPageApi = {
  /** The engine in its worker, built from the plan ('auto'): what the plan chose and why. */
  async loadWorker(modelUrl: string) {
    const model = await workerReady(modelUrl);
    const { profile: _profile, ...plan } = model.plan;
    return { crossOriginIsolated, plan, backend: model.model.backend };
  },

  /** transcriber.listen: capture here, VAD and decoding in the worker; long tasks watched meanwhile. */
  async startWorker(modelUrl: string) {
    const model = await workerReady(modelUrl);
    events.length = 0;
    chunks.length = 0;
    errors.length = 0;
    watchLongTasks();
    workerListening = await model.listen({
      onEvent: (event) => events.push({ at: performance.now(), event }),
      onError: (error) => errors.push(String(error)),
      onAudio: (samples) => chunks.push({ at: performance.now(), samples }),
    });
    return { inputSampleRate: workerListening.inputSampleRate };
  },

  async stopWorker() {
    const summary = await workerListening!.stop();
    const tasks = await stopWatching();
    const { captured, arrivals } = capturedAudio();
    const offline: Record<number, string> = {};
    for (const { event } of events) {
      if (event.type !== 'speech-end') continue;
      const audio = captured.slice(Math.round(event.audioStart * 16000), Math.round(event.audioEnd * 16000));
      offline[event.utterance] = (await workerTranscriber!.transcribe(audio, summary.finalOptions)).text;
    }
    return { events, arrivals, offline, capturedSeconds: captured.length / 16000, errors, decodes: summary.decodes, peak: captured.reduce((m, x) => Math.max(m, Math.abs(x)), 0), longTasks: tasks };
  },

  async load(modelUrl: string) {
    await ready(modelUrl);
    return { crossOriginIsolated };
  },

  async start(modelUrl: string) {
    const model = await ready(modelUrl);
    events.length = 0;
    chunks.length = 0;
    listening = await listenLocal(model, {}, {
      onEvent: (event) => events.push({ at: performance.now(), event }),
      onError: (error) => errors.push(String(error)),
      onAudio: (samples) => chunks.push({ at: performance.now(), samples }),
    });
    return { inputSampleRate: listening.capture.inputSampleRate };
  },

  /** Stops, then transcribes each utterance's captured audio offline with the session's options. */
  async stop() {
    const session = listening!.session;
    await listening!.stop();
    const { captured, arrivals } = capturedAudio();
    const offline: Record<number, string> = {};
    for (const { event } of events) {
      if (event.type !== 'speech-end') continue;
      const audio = captured.slice(Math.round(event.audioStart * 16000), Math.round(event.audioEnd * 16000));
      offline[event.utterance] = (await transcriber!.transcribe(audio, session.finalOptions())).text;
    }
    return { events, arrivals, offline, capturedSeconds: captured.length / 16000, errors, decodes: session.decodes, peak: captured.reduce((m, x) => Math.max(m, Math.abs(x)), 0) };
  },

  /** MurmurSpeechRecognition, single-shot with interim results, on the same microphone. */
  async recognizeOnce(modelUrl: string, where: 'page' | 'worker' = 'page') {
    const model = where === 'worker' ? await workerReady(modelUrl) : await ready(modelUrl);
    const recognition = new MurmurSpeechRecognition(transcriberBackend(model));
    recognition.interimResults = true;
    recognition.lang = 'en-US';
    const log: string[] = [];
    for (const type of ['start', 'audiostart', 'soundstart', 'speechstart', 'speechend', 'soundend', 'audioend', 'end', 'result', 'nomatch', 'error']) {
      recognition.addEventListener(type, (event) => {
        if (type === 'result') {
          const e = event as MurmurSpeechRecognitionEvent;
          log.push(`result ${e.resultIndex} ${e.results.length} ${e.results[e.resultIndex]!.isFinal ? 'final' : 'interim'} ${JSON.stringify(e.results[e.resultIndex]![0]!.transcript)}`);
        } else if (type === 'error') {
          log.push(`error ${(event as MurmurSpeechRecognitionErrorEvent).error}`);
        } else {
          log.push(type);
        }
      });
    }
    const ended = new Promise((resolve) => recognition.addEventListener('end', resolve, { once: true }));
    recognition.start();
    await ended;
    return log;
  },
};

exposePageApi(dictationPageApi);
