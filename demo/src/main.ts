/// <reference types="vite/client" />
/**
 * The demo's start-up: wires the panels together. Each panel owns its part of index.html; a loaded
 * model is the one thing they share.
 */
import { setUpAudioInputs } from './audio-inputs.ts';
import { refreshCachePanel, requestPersistentStorage } from './cache-panel.ts';
import { setUpDevicePanel } from './device-panel.ts';
import { setUpDictation } from './dictation.ts';
import { elements } from './elements.ts';
import { setUpExport } from './export-panel.ts';
import { setUpModelPanel } from './model-panel.ts';
import { adaptOptionsToModel, setUpOptions } from './transcribe-options.ts';
import { setUpTranscribePanel } from './transcribe-panel.ts';

setUpOptions();
const exporter = setUpExport();
const transcribePanel = setUpTranscribePanel((result, name) => exporter.setResult(result, name));
const inputs = setUpAudioInputs((audio, name) => void transcribePanel.transcribe(audio, name));
const dictation = setUpDictation();
const device = setUpDevicePanel();

const models = setUpModelPanel({
  onUnload() {
    inputs.setEnabled(false);
    transcribePanel.setTranscriber(undefined);
    dictation.setTranscriber(undefined);
    void device.setModel(undefined, elements.model.backend.value);
  },
  onLoaded(model) {
    adaptOptionsToModel(model.transcriber.model.dims);
    transcribePanel.setTranscriber(model.transcriber);
    dictation.setTranscriber(model.transcriber);
    inputs.setEnabled(true);
    void device.setModel(model, elements.model.backend.value);
  },
  onCacheChanged: () => void refreshCachePanel(),
});

if (import.meta.env.PROD && 'serviceWorker' in navigator) {
  // Built pages only: vite-plugin-pwa writes sw.js beside index.html at build time.
  void navigator.serviceWorker.register('./sw.js').catch((error: unknown) => console.warn('service worker registration failed', error));
}

void requestPersistentStorage().finally(() => void refreshCachePanel());
void models.loadRequested();
