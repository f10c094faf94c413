/**
 * The module worker that hosts the engine: model I/O, audio preparation and inference all run
 * here, so the page's main thread only posts messages. src/client/transcriber.ts spawns it and
 * talks to the EngineHost (engine-host.ts) through comlink; errors keep their class on the way
 * back (error-transfer.ts).
 *
 * `load`, `transcribeWav` and `transcribeChannels` are the demo's older calls (demo/main.ts),
 * kept working on the same engine until the demo moves to the public client.
 */
import * as Comlink from 'comlink';
import { createEngineHost, type EngineHost, type EngineProgressEvent } from './engine-host.ts';
import { registerErrorTransfer } from './error-transfer.ts';
import type { ModelSource } from '../core/formats/load-model.ts';

registerErrorTransfer();

/** The demo's progress event: one model file's download. */
export interface EngineProgress {
  file: string;
  loaded: number;
  total: number | undefined;
}

export interface EngineTranscript {
  text: string;
  segments: { start: number; end: number; text: string }[];
}

let host: EngineHost = createEngineHost();
let demoRequests = 0;

async function demoTranscript(audio: Parameters<EngineHost['transcribe']>[0]['audio']): Promise<EngineTranscript> {
  const result = await host.transcribe({ id: -++demoRequests, audio });
  return { text: result.text, segments: result.segments.map(({ start, end, text }) => ({ start, end, text })) };
}

const engine = {
  init: (...args: Parameters<EngineHost['init']>) => host.init(...args),
  transcribe: (...args: Parameters<EngineHost['transcribe']>) => host.transcribe(...args),
  detectLanguage: (...args: Parameters<EngineHost['detectLanguage']>) => host.detectLanguage(...args),
  abort: (id: number) => host.abort(id),
  dispose: () => host.dispose(),

  async load(source: ModelSource, onProgress?: (event: EngineProgress) => void): Promise<{ source: string; nVocab: number }> {
    await host.dispose();
    host = createEngineHost();
    const progress = onProgress
      ? (event: EngineProgressEvent) => {
          if (event.stage === 'download' && event.file !== undefined) onProgress({ file: event.file, loaded: event.loaded ?? 0, total: event.total });
        }
      : undefined;
    const info = await host.init({ model: source, backend: 'wasm' }, progress);
    return { source: info.source, nVocab: info.dims.nVocab };
  },

  /** WAV bytes (transferred): parsed here, exactly, without the browser's resampling. */
  transcribeWav(bytes: ArrayBuffer, name: string): Promise<EngineTranscript> {
    return demoTranscript({ kind: 'wav', bytes, name });
  },

  /** Decoded channels (transferred) from formats only the browser can decode. */
  transcribeChannels(channels: Float32Array[], sampleRate: number): Promise<EngineTranscript> {
    return demoTranscript({ kind: 'channels', channels, sampleRate });
  },
};

export type Engine = typeof engine;
Comlink.expose(engine);
