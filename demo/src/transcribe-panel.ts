/**
 * One transcription at a time: detect the language when asked to, stream segments into the
 * transcript, report progress and the outcome, cancel on request or when a newer one starts.
 */
import type { MurmurTranscriber } from '../../src/client/transcriber.ts';
import { isMultilingual } from '../../src/core/model/dims.ts';
import type { TranscriptionResult } from '../../src/core/transcriber.ts';
import { elements } from './elements.ts';
import { messageOf } from './format.ts';
import { chosenOptions, languageNames } from './transcribe-options.ts';
import { TranscriptView } from './transcript-view.ts';

const ui = elements.input;

export interface TranscribePanel {
  setTranscriber(transcriber: MurmurTranscriber | undefined): void;
  transcribe(audio: Blob, name: string): Promise<void>;
}

export function setUpTranscribePanel(onResult: (result: TranscriptionResult | undefined, name: string) => void): TranscribePanel {
  const view = new TranscriptView(elements.transcript.segments, ui.player);
  let transcriber: MurmurTranscriber | undefined;
  let running: AbortController | undefined;
  let playing: string | undefined;

  ui.cancel.addEventListener('click', () => running?.abort());

  async function transcribe(audio: Blob, name: string): Promise<void> {
    if (!transcriber) return;
    const engine = transcriber;
    running?.abort();
    const controller = new AbortController();
    running = controller;
    view.clear();
    onResult(undefined, name);
    if (playing) URL.revokeObjectURL(playing);
    playing = ui.player.src = URL.createObjectURL(audio);
    ui.player.hidden = false;
    ui.cancel.disabled = false;
    ui.detected.textContent = '';
    const started = performance.now();
    try {
      const options = chosenOptions();
      if (!options.language && isMultilingual(engine.model.dims)) {
        ui.status.textContent = `Detecting the language of ${name}…`;
        const detection = await engine.detectLanguage(audio, { signal: controller.signal });
        const probability = detection.probabilities[detection.language] ?? 0;
        ui.detected.textContent = `Detected language: ${languageNames[detection.language] ?? detection.language} (${(probability * 100).toFixed(0)}%)`;
        options.language = detection.language;
      }
      ui.status.textContent = `${options.task === 'translate' ? 'Translating' : 'Transcribing'} ${name}…`;
      const result = await engine.transcribe(audio, { ...options, signal: controller.signal, onSegment: (segment) => view.add(segment) });
      onResult(result, name);
      const count = result.segments.length;
      ui.status.textContent = `Done in ${((performance.now() - started) / 1000).toFixed(1)} s: ${count} segment${count === 1 ? '' : 's'}.`;
    } catch (error) {
      ui.status.textContent = controller.signal.aborted ? 'Cancelled.' : `Could not transcribe ${name}: ${messageOf(error)}`;
    } finally {
      if (running === controller) {
        running = undefined;
        ui.cancel.disabled = true;
      }
    }
  }

  return {
    setTranscriber(next) {
      running?.abort();
      transcriber = next;
    },
    transcribe,
  };
}
