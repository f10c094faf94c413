/** The three ways to hand the page audio: the file chooser, a drop on the drop zone, a URL. */
import { elements } from './elements.ts';
import { messageOf } from './format.ts';

const ui = elements.input;

export type AudioHandler = (audio: Blob, name: string) => void;

export function setUpAudioInputs(onAudio: AudioHandler): { setEnabled(enabled: boolean): void } {
  let enabled = false;

  ui.file.addEventListener('change', () => {
    const file = ui.file.files?.[0];
    if (file) onAudio(file, file.name);
    // Choosing the same file again should transcribe it again.
    ui.file.value = '';
  });

  ui.dropZone.addEventListener('dragover', (event) => {
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = enabled ? 'copy' : 'none';
    ui.dropZone.classList.add('over');
  });
  ui.dropZone.addEventListener('dragleave', () => ui.dropZone.classList.remove('over'));
  ui.dropZone.addEventListener('drop', (event) => {
    event.preventDefault();
    ui.dropZone.classList.remove('over');
    const file = event.dataTransfer?.files[0];
    if (!file) return;
    if (enabled) onAudio(file, file.name);
    else ui.status.textContent = `Load a model before dropping ${file.name}.`;
  });

  ui.urlForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const url = ui.url.value.trim();
    if (!url) return;
    ui.status.textContent = `Fetching ${url}…`;
    try {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      onAudio(await response.blob(), decodeURIComponent(new URL(url, location.href).pathname.split('/').pop() || 'audio'));
    } catch (error) {
      ui.status.textContent = `Could not fetch ${url}: ${messageOf(error)} (a page on another site must allow it with CORS headers)`;
    }
  });

  return {
    setEnabled(next) {
      enabled = next;
      ui.file.disabled = !next;
      ui.url.disabled = !next;
      ui.urlButton.disabled = !next;
    },
  };
}
