/**
 * The worker that hosts the engine: model I/O, audio preparation and inference all run here,
 * so the page's main thread never does more than post messages. The main thread talks to it
 * through comlink (see demo/main.ts; the public worker client arrives with the runtime issue).
 */
import * as Comlink from 'comlink';
import { createTranscriber, type Transcriber } from '../core/transcriber.ts';
import { toWhisperInput } from '../core/audio/prepare.ts';
import type { ModelSource } from '../core/formats/load-model.ts';

export interface EngineProgress {
  file: string;
  loaded: number;
  total: number | undefined;
}

let transcriber: Transcriber | undefined;

const engine = {
  async load(source: ModelSource, onProgress?: (event: EngineProgress) => void): Promise<{ source: string; nVocab: number }> {
    await transcriber?.dispose();
    transcriber = undefined;
    const created = await createTranscriber({
      model: source,
      backend: 'reference',
      onProgress: onProgress ? (e) => onProgress({ file: e.file, loaded: e.loaded, total: e.total }) : undefined,
    });
    transcriber = created;
    return { source: created.model.source, nVocab: created.model.dims.nVocab };
  },

  /** `channels` arrive as transferables; the worker downmixes and resamples to 16 kHz. */
  async transcribe(channels: Float32Array[], sampleRate: number): Promise<{ text: string; segments: { start: number; end: number; text: string }[] }> {
    if (!transcriber) throw new Error('load a model first');
    const samples = toWhisperInput(channels, sampleRate);
    const result = await transcriber.transcribe(samples);
    return { text: result.text, segments: result.segments.map(({ start, end, text }) => ({ start, end, text })) };
  },
};

export type Engine = typeof engine;
Comlink.expose(engine);
