// Live dictation in the page: the (fake) microphone through the AudioWorklet capture into a live
// session on the WASM backend. Records every event with the wall-clock time it arrived, every
// captured 16 kHz chunk with its arrival time, and transcribes each utterance's captured audio
// offline at the end, so the test can compare and measure latencies.
import { createTranscriber, type Transcriber } from '../../../src/core/transcriber.ts';
import { listenLocal, type LocalListening } from '../../../src/capture/listen.ts';
import type { LiveEvent } from '../../../src/core/streaming/session.ts';
import { MurmurSpeechRecognition, transcriberBackend } from '../../../src/speech-recognition/recognition.ts';
import type { MurmurSpeechRecognitionErrorEvent, MurmurSpeechRecognitionEvent } from '../../../src/speech-recognition/results.ts';
import { exposePageApi } from './page-api.ts';

let transcriber: Transcriber | undefined;
let listening: LocalListening | undefined;
const events: Array<{ at: number; event: LiveEvent }> = [];
const chunks: Array<{ at: number; samples: Float32Array }> = [];
const errors: string[] = [];

async function ready(modelUrl: string): Promise<Transcriber> {
  transcriber ??= await createTranscriber({ model: new URL(modelUrl, location.href).href, backend: 'wasm' });
  return transcriber;
}

export const dictationPageApi = {
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
    const captured = new Float32Array(chunks.reduce((n, c) => n + c.samples.length, 0));
    const arrivals: Array<{ at: number; endSample: number }> = [];
    let offset = 0;
    for (const chunk of chunks) {
      captured.set(chunk.samples, offset);
      offset += chunk.samples.length;
      arrivals.push({ at: chunk.at, endSample: offset });
    }
    const offline: Record<number, string> = {};
    for (const { event } of events) {
      if (event.type !== 'speech-end') continue;
      const audio = captured.slice(Math.round(event.audioStart * 16000), Math.round(event.audioEnd * 16000));
      offline[event.utterance] = (await transcriber!.transcribe(audio, session.finalOptions())).text;
    }
    return { events, arrivals, offline, capturedSeconds: captured.length / 16000, errors, decodes: session.decodes, peak: captured.reduce((m, x) => Math.max(m, Math.abs(x)), 0) };
  },

  /** MurmurSpeechRecognition, single-shot with interim results, on the same microphone. */
  async recognizeOnce(modelUrl: string) {
    const model = await ready(modelUrl);
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
