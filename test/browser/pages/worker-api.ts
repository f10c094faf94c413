// The public createTranscriber in the page: the engine runs in its module worker. Each call
// reports what crossed back (results, segments, error classes and fields) as plain values, and
// the long tasks the page's main thread had while the worker worked.
import { createTranscriber, type MurmurTranscriber } from '../../../src/client/transcriber.ts';
import { AbortError, ModelFormatError, ModelLoadError, MurmurError } from '../../../src/core/errors.ts';
import { parseWav } from '../../../src/core/audio/wav.ts';
import { toWhisperInput } from '../../../src/core/audio/prepare.ts';
import type { AudioInput } from '../../../src/core/audio/decode-input.ts';
import type { TranscriptionSegment } from '../../../src/core/transcriber.ts';
import { exposePageApi } from './page-api.ts';

type InputKind = 'file' | 'arraybuffer' | 'float32' | 'url';

let transcriber: MurmurTranscriber | undefined;

function current(): MurmurTranscriber {
  if (!transcriber) throw new Error('call load() first');
  return transcriber;
}

async function makeInput(kind: InputKind, audioUrl: string): Promise<AudioInput> {
  if (kind === 'url') return audioUrl;
  const bytes = await (await fetch(audioUrl)).arrayBuffer();
  if (kind === 'arraybuffer') return bytes;
  if (kind === 'file') return new File([bytes], 'jfk.wav', { type: 'audio/wav' });
  const wav = parseWav(bytes, audioUrl);
  return toWhisperInput(wav.channels, wav.sampleRate);
}

/** Errors as plain values: which classes the instance belongs to, and its fields. */
function describeError(error: unknown) {
  const e = error as Record<string, unknown> & Error;
  return {
    name: e?.name,
    message: e?.message,
    code: e?.code,
    file: e?.file,
    tensor: e?.tensor,
    status: e?.status,
    isMurmurError: error instanceof MurmurError,
    isAbortError: error instanceof AbortError,
    isModelLoadError: error instanceof ModelLoadError,
    isModelFormatError: error instanceof ModelFormatError,
    hasCause: e?.cause !== undefined,
  };
}

/** Long tasks (> 50 ms) on this thread while `work` runs. */
async function watchLongTasks<T>(work: () => Promise<T>): Promise<{ value: T; longTasks: number[] }> {
  const longTasks: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) longTasks.push(entry.duration);
  });
  observer.observe({ type: 'longtask', buffered: false });
  try {
    const value = await work();
    // Entries are delivered asynchronously: give the observer a frame to report the last ones.
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const entry of observer.takeRecords()) longTasks.push(entry.duration);
    return { value, longTasks };
  } finally {
    observer.disconnect();
  }
}

export const workerPageApi = {
  async load(modelUrl: string, backend: 'wasm' | 'auto' = 'wasm') {
    await transcriber?.dispose();
    const stages: string[] = [];
    transcriber = await createTranscriber({
      model: modelUrl,
      backend,
      onProgress: (event) => {
        if (stages.at(-1) !== event.stage) stages.push(event.stage);
      },
    });
    const { profile: _profile, ...plan } = transcriber.plan;
    return { model: transcriber.model, stages, plan };
  },

  async transcribe(kind: InputKind, audioUrl: string, maxTokens: number) {
    const input = await makeInput(kind, audioUrl);
    const segments: TranscriptionSegment[] = [];
    const started = performance.now();
    const { value: result, longTasks } = await watchLongTasks(() => current().transcribe(input, { maxTokens, onSegment: (segment) => segments.push(segment) }));
    const detached = input instanceof Float32Array ? input.length === 0 : input instanceof ArrayBuffer ? input.byteLength === 0 : undefined;
    return { result, segments, longTasks, ms: performance.now() - started, detached };
  },

  /**
   * A compressed file (FLAC, Ogg Vorbis, ...) as a Blob: the client decodes it with the browser's
   * decoder on this thread, the worker transcribes. Also reports how many 16 kHz samples the
   * browser decodes the file to, and the long tasks meanwhile.
   */
  async transcribeEncoded(audioUrl: string, type: string, maxTokens: number) {
    const bytes = await (await fetch(audioUrl)).arrayBuffer();
    const decoded = await new OfflineAudioContext(1, 1, 16000).decodeAudioData(bytes.slice(0));
    const blob = new Blob([bytes], { type });
    const { value: result, longTasks } = await watchLongTasks(() => current().transcribe(blob, { maxTokens }));
    return { result, samples: decoded.length, sampleRate: decoded.sampleRate, longTasks };
  },

  async detectLanguage(audioUrl: string) {
    return current().detectLanguage(audioUrl);
  },

  /** Aborts `afterMs` into a transcription; then transcribes again. */
  async abortThenTranscribe(audioUrl: string, maxTokens: number, afterMs: number) {
    const controller = new AbortController();
    const call = current().transcribe(audioUrl, { maxTokens, signal: controller.signal });
    setTimeout(() => controller.abort(), afterMs);
    const aborted = await call.then(() => undefined, (error) => describeError(error));
    const next = await current().transcribe(audioUrl, { maxTokens });
    return { aborted, next };
  },

  async loadError(modelUrl: string) {
    try {
      const created = await createTranscriber({ model: modelUrl, backend: 'wasm' });
      await created.dispose();
      return undefined;
    } catch (error) {
      return describeError(error);
    }
  },

  async disposeThenTranscribe(audioUrl: string) {
    const disposed = current();
    transcriber = undefined;
    await disposed.dispose();
    return disposed.transcribe(audioUrl).then(() => undefined, (error) => describeError(error));
  },
};

exposePageApi(workerPageApi);
