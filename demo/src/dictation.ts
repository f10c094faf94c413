/**
 * Dictate: the microphone through listenLocal (src/capture) into a live session on the loaded
 * transcriber. Tentative text is shown greyed and replaced as it changes; confirmed text is appended.
 */
import type { MurmurTranscriber } from '../../src/client/transcriber.ts';
import { listenLocal, type LocalListening } from '../../src/capture/listen.ts';
import type { StreamingTranscriber } from '../../src/core/streaming/session.ts';
import { elements } from './elements.ts';
import { messageOf } from './format.ts';

export interface Dictation {
  setTranscriber(transcriber: MurmurTranscriber | undefined): void;
}

export function setUpDictation(): Dictation {
  const { button, copy, clear, status, confirmed, tentative } = elements.dictation;
  let transcriber: MurmurTranscriber | undefined;
  let listening: LocalListening | undefined;

  const setListening = (on: boolean) => {
    button.setAttribute('aria-pressed', String(on));
    button.textContent = on ? 'Stop dictation' : 'Start dictation';
  };

  async function start(): Promise<void> {
    if (!transcriber) return;
    const engine = transcriber;
    // The client transfers Float32Array inputs to its worker; the live session keeps its buffers.
    const streaming: StreamingTranscriber = { transcribe: (audio, options) => engine.transcribe(audio.slice(), options) };
    button.disabled = true;
    status.textContent = 'Opening the microphone…';
    try {
      listening = await listenLocal(streaming, {}, {
        onEvent(event) {
          if (event.type === 'confirmed') {
            confirmed.textContent += event.text;
            tentative.textContent = '';
          } else if (event.type === 'tentative') {
            tentative.textContent = event.text;
          } else if (event.type === 'speech-start') {
            status.textContent = 'Listening — speech detected';
          } else {
            status.textContent = 'Listening';
          }
        },
        onError(error) {
          status.textContent = `Dictation stopped: ${messageOf(error)}`;
          void stop();
        },
      });
      setListening(true);
      status.textContent = 'Listening';
    } catch (error) {
      status.textContent = error instanceof DOMException && error.name === 'NotAllowedError' ? 'Microphone permission was refused.' : `Could not start dictation: ${messageOf(error)}`;
    } finally {
      button.disabled = !transcriber;
    }
  }

  async function stop(): Promise<void> {
    const current = listening;
    listening = undefined;
    setListening(false);
    if (!current) return;
    status.textContent = 'Finishing…';
    await current.stop().catch(() => {});
    status.textContent = 'Stopped.';
  }

  button.addEventListener('click', () => void (listening ? stop() : start()));
  copy.addEventListener('click', () => void navigator.clipboard?.writeText(confirmed.textContent ?? '').then(() => (status.textContent = 'Copied.'), () => (status.textContent = 'Copying was not allowed.')));
  clear.addEventListener('click', () => {
    confirmed.textContent = '';
    tentative.textContent = '';
  });

  return {
    setTranscriber(next) {
      if (listening) void stop();
      transcriber = next;
      button.disabled = !next;
    },
  };
}
