/**
 * The worker that hosts the engine: model I/O, audio preparation and inference all run here,
 * so the page's main thread never does more than post messages. The main thread talks to it
 * through comlink (see demo/main.ts; the public worker client arrives with the runtime issue).
 */
import * as Comlink from 'comlink';
import { createTranscriber, type Transcriber } from '../core/transcriber.ts';
import { toWhisperInput } from '../core/audio/prepare.ts';
import { parseWav } from '../core/audio/wav.ts';
import type { ModelSource } from '../core/formats/load-model.ts';

export interface EngineProgress {
  file: string;
  loaded: number;
  total: number | undefined;
}

export interface EngineTranscript {
  text: string;
  segments: { start: number; end: number; text: string }[];
}

let transcriber: Transcriber | undefined;

async function run(samples: Float32Array): Promise<EngineTranscript> {
  if (!transcriber) throw new Error('load a model first');
  const result = await transcriber.transcribe(samples);
  return { text: result.text, segments: result.segments.map(({ start, end, text }) => ({ start, end, text })) };
}

const engine = {
  async load(source: ModelSource, onProgress?: (event: EngineProgress) => void): Promise<{ source: string; nVocab: number }> {
    await transcriber?.dispose();
    transcriber = undefined;
    const created = await createTranscriber({
      model: source,
      backend: 'wasm',
      onProgress: onProgress ? (e) => onProgress({ file: e.file, loaded: e.loaded, total: e.total }) : undefined,
    });
    transcriber = created;
    return { source: created.model.source, nVocab: created.model.dims.nVocab };
  },

  /** WAV bytes (transferred): parsed here, exactly, without the browser's resampling. */
  async transcribeWav(bytes: ArrayBuffer, name: string): Promise<EngineTranscript> {
    const { channels, sampleRate } = parseWav(bytes, name);
    return run(toWhisperInput(channels, sampleRate));
  },

  /** Decoded channels (transferred) from formats only the browser can decode. */
  async transcribeChannels(channels: Float32Array[], sampleRate: number): Promise<EngineTranscript> {
    return run(toWhisperInput(channels, sampleRate));
  },
};

export type Engine = typeof engine;
Comlink.expose(engine);
