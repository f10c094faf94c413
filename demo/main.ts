/// <reference types="vite/client" />
import { createTranscriber, type MurmurTranscriber, type ProgressEvent, type TranscriberBackend } from '../src/client/transcriber.ts';
import { toJson, toSrt, toTxt, toVtt } from '../src/core/export/index.ts';
import type { ModelSource } from '../src/core/formats/load-model.ts';
import { isMultilingual } from '../src/core/model/dims.ts';
import { LANGUAGE_NAMES } from '../src/core/tokenizer/languages.ts';
import type { TranscribeOptions, TranscriptionResult, TranscriptionSegment } from '../src/core/transcriber.ts';
import { benchmarkDevice } from './bench.ts';
import { barChart } from './chart.ts';
import { setUpDictation } from './dictation.ts';
import { deleteCachedModel, fetchModelFiles, listCachedModels, locateModel, type FileProgress } from './model-cache.ts';
import { DEFAULT_MODEL, MODEL_PRESETS } from './presets.ts';
import { TranscriptView } from './transcript-view.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  preset: $<HTMLSelectElement>('model-preset'),
  source: $<HTMLInputElement>('model-source'),
  backend: $<HTMLSelectElement>('model-backend'),
  modelForm: $<HTMLFormElement>('model-form'),
  folder: $<HTMLInputElement>('model-folder'),
  files: $<HTMLInputElement>('model-files'),
  progress: $<HTMLProgressElement>('model-progress'),
  fileProgress: $<HTMLUListElement>('model-files-progress'),
  modelStatus: $<HTMLParagraphElement>('model-status'),
  storage: $<HTMLParagraphElement>('storage-status'),
  cached: $<HTMLUListElement>('cached-models'),
  audioFile: $<HTMLInputElement>('audio-file'),
  dropZone: $<HTMLDivElement>('drop-zone'),
  urlForm: $<HTMLFormElement>('url-form'),
  audioUrl: $<HTMLInputElement>('audio-url'),
  transcribeUrl: $<HTMLButtonElement>('transcribe-url'),
  language: $<HTMLSelectElement>('opt-language'),
  task: $<HTMLSelectElement>('opt-task'),
  timestamps: $<HTMLSelectElement>('opt-timestamps'),
  beam: $<HTMLInputElement>('opt-beam'),
  prompt: $<HTMLInputElement>('opt-prompt'),
  cancel: $<HTMLButtonElement>('cancel'),
  detected: $<HTMLParagraphElement>('detected-language'),
  status: $<HTMLParagraphElement>('transcribe-status'),
  player: $<HTMLAudioElement>('player'),
  segments: $<HTMLOListElement>('segments'),
  device: $<HTMLDListElement>('device-info'),
  benchmark: $<HTMLButtonElement>('benchmark'),
  benchmarkStatus: $<HTMLParagraphElement>('benchmark-status'),
  chart: $<HTMLElement>('benchmark-chart'),
};
const exportButtons = { txt: $<HTMLButtonElement>('export-txt'), srt: $<HTMLButtonElement>('export-srt'), vtt: $<HTMLButtonElement>('export-vtt'), json: $<HTMLButtonElement>('export-json') };

const view = new TranscriptView(ui.segments, ui.player);
let transcriber: MurmurTranscriber | undefined;
/** What the transcriber was created from, kept for the benchmark's extra backends. */
let modelSource: ModelSource | undefined;
let lastResult: TranscriptionResult | undefined;
let lastName = 'transcript';
let running: AbortController | undefined;

// ---- model ---------------------------------------------------------------------------------

for (const preset of MODEL_PRESETS) ui.preset.add(new Option(`${preset.label} — ${preset.megabytes} MB${preset.englishOnly ? ', English only' : ''}`, preset.source));
ui.preset.add(new Option('Custom (below)', ''));
const params = new URLSearchParams(location.search);
const requested = params.get('model') ?? DEFAULT_MODEL;
ui.backend.value = ['auto', 'webgpu', 'wasm'].includes(params.get('backend') ?? '') ? params.get('backend')! : 'auto';
ui.source.value = requested;
ui.preset.value = MODEL_PRESETS.some((preset) => preset.source === requested) ? requested : '';
ui.preset.addEventListener('change', () => {
  if (ui.preset.value) ui.source.value = ui.preset.value;
});

function setReady(ready: boolean): void {
  ui.audioFile.disabled = !ready;
  ui.audioUrl.disabled = !ready;
  ui.transcribeUrl.disabled = !ready;
  ui.benchmark.disabled = !ready;
}

function showFileProgress(files: Map<string, FileProgress>): void {
  ui.fileProgress.replaceChildren(
    ...[...files.values()].map((file) => {
      const item = document.createElement('li');
      const bar = document.createElement('progress');
      bar.max = 1;
      bar.value = file.total ? file.loaded / file.total : 0;
      bar.setAttribute('aria-label', file.file);
      item.append(`${file.file}: ${megabytes(file.loaded)}${file.total ? ` / ${megabytes(file.total)}` : ''}${file.cached ? ' (cached)' : ''} `, bar);
      return item;
    }),
  );
}

async function loadModel(source: ModelSource, label: string): Promise<void> {
  setReady(false);
  running?.abort();
  const previous = transcriber;
  transcriber = undefined;
  await previous?.dispose();
  ui.progress.value = 0;
  ui.fileProgress.replaceChildren();
  ui.modelStatus.textContent = `Loading ${label}…`;
  try {
    let files = source;
    if (typeof source === 'string') {
      // Downloads take most of the bar; reading the files and compiling the rest.
      const perFile = new Map<string, FileProgress>();
      files = await fetchModelFiles(locateModel(source, location.href), (event) => {
        perFile.set(event.file, event);
        const all = [...perFile.values()];
        const total = all.reduce((sum, f) => sum + (f.total ?? f.loaded), 0);
        ui.progress.value = total > 0 ? (0.8 * all.reduce((sum, f) => sum + f.loaded, 0)) / total : 0;
        showFileProgress(perFile);
      });
      void refreshCache();
    }
    const onProgress = (event: ProgressEvent) => {
      if (event.stage === 'compile') ui.progress.value = 0.9 + 0.1 * (event.progress ?? 0);
      else if (event.stage === 'load') ui.progress.value = Math.max(ui.progress.value, 0.85);
    };
    transcriber = await createTranscriber({ model: files, backend: ui.backend.value as TranscriberBackend, onProgress });
    modelSource = files;
    ui.progress.value = 1;
    const { dims, backend } = transcriber.model;
    const multilingual = isMultilingual(dims);
    ui.modelStatus.textContent = `Loaded ${label} on the ${backend === 'webgpu' ? 'WebGPU' : backend === 'wasm' ? 'WASM' : backend} backend (${multilingual ? 'multilingual' : 'English-only'}).`;
    const translate = ui.task.querySelector<HTMLOptionElement>('option[value="translate"]')!;
    translate.disabled = !multilingual;
    if (!multilingual) ui.task.value = 'transcribe';
    ui.language.disabled = !multilingual;
    setReady(true);
    dictation.setTranscriber(transcriber);
    void describeDevice();
  } catch (error) {
    ui.modelStatus.textContent = `Could not load the model: ${messageOf(error)}`;
  }
}

ui.modelForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const source = ui.source.value.trim();
  const url = new URL(location.href);
  url.searchParams.set('model', source);
  if (ui.backend.value === 'auto') url.searchParams.delete('backend');
  else url.searchParams.set('backend', ui.backend.value);
  history.replaceState(null, '', url);
  void loadModel(source, source);
});
for (const input of [ui.folder, ui.files]) {
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])];
    if (files.length > 0) void loadModel(files, files.length === 1 ? files[0]!.name : (files[0]!.webkitRelativePath.split('/')[0] || `${files.length} files`));
  });
}

// ---- cache and storage ---------------------------------------------------------------------

async function refreshCache(): Promise<void> {
  const models = await listCachedModels();
  ui.cached.replaceChildren(
    ...(models.length === 0
      ? [Object.assign(document.createElement('li'), { textContent: 'No model cached yet.' })]
      : models.map((model) => {
          const item = document.createElement('li');
          const remove = document.createElement('button');
          remove.type = 'button';
          remove.textContent = 'Delete';
          remove.setAttribute('aria-label', `Delete ${model.id} from the cache`);
          remove.addEventListener('click', async () => {
            await deleteCachedModel(model.id);
            await refreshCache();
          });
          item.append(`${model.id} — ${megabytes(model.bytes)}`, remove);
          return item;
        })),
  );
  const estimate = await navigator.storage?.estimate?.();
  const persisted = await navigator.storage?.persisted?.();
  ui.storage.textContent = estimate
    ? `Storage: ${megabytes(estimate.usage ?? 0)} used of ${megabytes(estimate.quota ?? 0)} available; ${persisted ? 'persistent (the browser will not evict it)' : 'not persistent (the browser may evict it under pressure)'}.`
    : 'This browser does not report storage use.';
}

async function requestPersistence(): Promise<void> {
  if (navigator.storage?.persist && !(await navigator.storage.persisted())) await navigator.storage.persist();
}

// ---- transcription -------------------------------------------------------------------------

const languageNames = LANGUAGE_NAMES as Record<string, string>;
for (const [code, name] of Object.entries(languageNames)) ui.language.add(new Option(`${name} (${code})`, code));

function transcribeOptions(): TranscribeOptions {
  const beam = Number(ui.beam.value);
  const prompt = ui.prompt.value.trim();
  return {
    task: ui.task.value === 'translate' ? 'translate' : 'transcribe',
    wordTimestamps: ui.timestamps.value === 'word',
    ...(beam > 1 ? { beamSize: Math.min(10, Math.round(beam)) } : {}),
    ...(prompt ? { initialPrompt: prompt } : {}),
  };
}

async function transcribe(input: Blob, name: string): Promise<void> {
  if (!transcriber) return;
  running?.abort();
  const controller = new AbortController();
  running = controller;
  view.clear();
  lastResult = undefined;
  lastName = name.replace(/\.[^.]+$/, '') || 'transcript';
  setExportable(false);
  ui.player.src = URL.createObjectURL(input);
  ui.player.hidden = false;
  ui.cancel.disabled = false;
  ui.detected.textContent = '';
  const started = performance.now();
  try {
    const options = transcribeOptions();
    if (ui.language.value) {
      options.language = ui.language.value;
    } else if (isMultilingual(transcriber.model.dims)) {
      ui.status.textContent = `Detecting the language of ${name}…`;
      const detection = await transcriber.detectLanguage(input, { signal: controller.signal });
      const probability = detection.probabilities[detection.language] ?? 0;
      ui.detected.textContent = `Detected language: ${languageNames[detection.language] ?? detection.language} (${(probability * 100).toFixed(0)}%)`;
      options.language = detection.language;
    }
    ui.status.textContent = `Transcribing ${name}…`;
    const result = await transcriber.transcribe(input, { ...options, signal: controller.signal, onSegment: (segment: TranscriptionSegment) => view.add(segment) });
    lastResult = result;
    setExportable(true);
    ui.status.textContent = `Done in ${((performance.now() - started) / 1000).toFixed(1)} s: ${result.segments.length} segment${result.segments.length === 1 ? '' : 's'}.`;
  } catch (error) {
    ui.status.textContent = controller.signal.aborted ? 'Cancelled.' : `Could not transcribe ${name}: ${messageOf(error)}`;
  } finally {
    if (running === controller) {
      running = undefined;
      ui.cancel.disabled = true;
    }
  }
}

ui.cancel.addEventListener('click', () => running?.abort());
ui.audioFile.addEventListener('change', () => {
  const file = ui.audioFile.files?.[0];
  if (file) void transcribe(file, file.name);
});
ui.dropZone.addEventListener('dragover', (event) => {
  event.preventDefault();
  ui.dropZone.classList.add('over');
});
ui.dropZone.addEventListener('dragleave', () => ui.dropZone.classList.remove('over'));
ui.dropZone.addEventListener('drop', (event) => {
  event.preventDefault();
  ui.dropZone.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file && transcriber) void transcribe(file, file.name);
});
ui.urlForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const url = ui.audioUrl.value.trim();
  if (!url) return;
  ui.status.textContent = `Fetching ${url}…`;
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    await transcribe(await response.blob(), decodeURIComponent(new URL(url, location.href).pathname.split('/').pop() || 'audio'));
  } catch (error) {
    ui.status.textContent = `Could not fetch ${url}: ${messageOf(error)} (a page on another site must allow it with CORS headers)`;
  }
});

// ---- export --------------------------------------------------------------------------------

function setExportable(ready: boolean): void {
  for (const button of Object.values(exportButtons)) button.disabled = !ready;
}

function download(text: string, extension: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const anchor = Object.assign(document.createElement('a'), { href: url, download: `${lastName}.${extension}` });
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

exportButtons.txt.addEventListener('click', () => lastResult && download(toTxt(lastResult), 'txt', 'text/plain'));
exportButtons.srt.addEventListener('click', () => lastResult && download(toSrt(lastResult), 'srt', 'application/x-subrip'));
exportButtons.vtt.addEventListener('click', () => lastResult && download(toVtt(lastResult, { words: ui.timestamps.value === 'word' }), 'vtt', 'text/vtt'));
exportButtons.json.addEventListener('click', () => lastResult && download(toJson(lastResult, { indent: 2 }), 'json', 'application/json'));

// ---- device --------------------------------------------------------------------------------

async function describeDevice(): Promise<void> {
  const rows: [string, string][] = [
    ['Backend in use', transcriber ? transcriber.model.backend : 'no model loaded'],
    ['Cross-origin isolated', globalThis.crossOriginIsolated ? 'yes (WASM threads available)' : 'no (WASM runs single-threaded)'],
    ['Logical cores', String(navigator.hardwareConcurrency ?? 'unknown')],
  ];
  if (navigator.gpu) {
    const adapter = await navigator.gpu.requestAdapter().catch(() => null);
    if (adapter) {
      const info = adapter.info;
      rows.push(['WebGPU adapter', [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' · ') || 'unnamed']);
      rows.push(['WebGPU features', [...adapter.features].sort().join(', ') || 'none']);
      rows.push(['Max buffer size', megabytes(adapter.limits.maxBufferSize)]);
    } else {
      rows.push(['WebGPU', 'present, but no adapter']);
    }
  } else {
    rows.push(['WebGPU', 'not available in this browser']);
  }
  ui.device.replaceChildren(...rows.flatMap(([term, value]) => [Object.assign(document.createElement('dt'), { textContent: term }), Object.assign(document.createElement('dd'), { textContent: value })]));
}

ui.benchmark.addEventListener('click', async () => {
  if (!transcriber || modelSource === undefined) return;
  ui.benchmark.disabled = true;
  try {
    const timings = await benchmarkDevice(modelSource, transcriber, (message) => (ui.benchmarkStatus.textContent = message));
    const chart = barChart('Benchmark', [
      { label: 'Encoder (ms)', bars: timings.map((t) => ({ label: t.backend, value: t.encoderMs, unit: 'ms' })) },
      { label: 'Decode (ms per token)', bars: timings.map((t) => ({ label: t.backend, value: t.decodeMsPerToken, unit: 'ms/token' })) },
    ]);
    ui.chart.querySelector('svg')?.remove();
    ui.chart.prepend(chart);
    ui.chart.hidden = false;
    ui.benchmarkStatus.textContent = 'Benchmark done.';
  } catch (error) {
    ui.benchmarkStatus.textContent = `Benchmark failed: ${messageOf(error)}`;
  } finally {
    ui.benchmark.disabled = !transcriber;
  }
});

// ---- helpers and start-up ------------------------------------------------------------------

function megabytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  return bytes >= 1e5 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const dictation = setUpDictation();

if (import.meta.env.PROD && 'serviceWorker' in navigator) {
  // Built pages only: vite-plugin-pwa writes sw.js beside index.html at build time.
  void navigator.serviceWorker.register('./sw.js').catch((error: unknown) => console.warn('service worker registration failed', error));
}

void describeDevice();
void requestPersistence().finally(() => void refreshCache());
void loadModel(requested, requested);
