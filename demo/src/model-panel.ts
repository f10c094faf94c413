/**
 * The model manager's loading half: presets from the hub, a custom id or URL (also `?model=`), a
 * local folder or files, the backend choice; per-file download progress and one overall bar.
 */
import { createTranscriber, type MurmurTranscriber, type ProgressEvent, type TranscriberBackend } from '../../src/client/transcriber.ts';
import type { ModelSource } from '../../src/core/formats/load-model.ts';
import { isMultilingual } from '../../src/core/model/dims.ts';
import { elements } from './elements.ts';
import { megabytes, messageOf } from './format.ts';
import { fetchModelFiles, locateModel, type FileProgress } from './model-cache.ts';
import { weightFacts, type WeightFacts } from './model-facts.ts';
import { DEFAULT_MODEL, MODEL_PRESETS } from './presets.ts';

export interface LoadedModel {
  transcriber: MurmurTranscriber;
  /** What the transcriber was created from (the benchmark builds more transcribers from it). */
  source: ModelSource;
  weights: WeightFacts;
}

export interface ModelPanelEvents {
  /** A load starts: the previous transcriber is about to be disposed. */
  onUnload(): void;
  onLoaded(model: LoadedModel): void;
  /** Files were downloaded into the cache. */
  onCacheChanged(): void;
}

const BACKENDS: TranscriberBackend[] = ['auto', 'webgpu', 'wasm'];
const ui = elements.model;

export function setUpModelPanel(events: ModelPanelEvents): { loadRequested(): Promise<void> } {
  let current: LoadedModel | undefined;
  let loading = 0;

  for (const preset of MODEL_PRESETS) ui.preset.add(new Option(`${preset.label} — ${preset.megabytes} MB${preset.englishOnly ? ', English only' : ''}`, preset.source));
  ui.preset.add(new Option('Custom (below)', ''));
  const params = new URLSearchParams(location.search);
  const requested = params.get('model') ?? DEFAULT_MODEL;
  const backend = params.get('backend') as TranscriberBackend | null;
  ui.backend.value = backend && BACKENDS.includes(backend) ? backend : 'auto';
  ui.source.value = requested;
  ui.preset.value = MODEL_PRESETS.some((preset) => preset.source === requested) ? requested : '';
  ui.preset.addEventListener('change', () => {
    if (ui.preset.value) ui.source.value = ui.preset.value;
  });

  async function load(source: string | File[], label: string): Promise<void> {
    const attempt = ++loading;
    events.onUnload();
    const previous = current;
    current = undefined;
    await previous?.transcriber.dispose();
    ui.progress.value = 0;
    ui.fileProgress.replaceChildren();
    ui.status.textContent = `Loading ${label}…`;
    try {
      const files = typeof source === 'string' ? await download(source) : source;
      const onProgress = (event: ProgressEvent) => {
        if (event.stage === 'compile') ui.progress.value = 0.9 + 0.1 * (event.progress ?? 0);
        else if (event.stage === 'load') ui.progress.value = Math.max(ui.progress.value, 0.85);
      };
      const [transcriber, weights] = await Promise.all([createTranscriber({ model: files, backend: ui.backend.value as TranscriberBackend, onProgress }), weightFacts(files)]);
      if (attempt !== loading) {
        // A newer load started meanwhile; this one is stale.
        await transcriber.dispose();
        return;
      }
      current = { transcriber, source: files, weights };
      ui.progress.value = 1;
      const { dims, backend: used } = transcriber.model;
      ui.status.textContent = `Loaded ${label} on the ${backendName(used)} backend (${isMultilingual(dims) ? 'multilingual' : 'English-only'}).`;
      events.onLoaded(current);
    } catch (error) {
      if (attempt === loading) ui.status.textContent = `Could not load the model: ${messageOf(error)}`;
    }
  }

  /** Downloads take most of the bar; reading the files and compiling take the rest. */
  async function download(source: string): Promise<Record<string, Blob>> {
    const perFile = new Map<string, FileProgress>();
    const files = await fetchModelFiles(locateModel(source, location.href), (event) => {
      perFile.set(event.file, event);
      const all = [...perFile.values()];
      const total = all.reduce((sum, file) => sum + (file.total ?? file.loaded), 0);
      ui.progress.value = total > 0 ? (0.8 * all.reduce((sum, file) => sum + file.loaded, 0)) / total : 0;
      showFileProgress(perFile);
    });
    events.onCacheChanged();
    return files;
  }

  ui.form.addEventListener('submit', (event) => {
    event.preventDefault();
    const source = ui.source.value.trim();
    const url = new URL(location.href);
    url.searchParams.set('model', source);
    if (ui.backend.value === 'auto') url.searchParams.delete('backend');
    else url.searchParams.set('backend', ui.backend.value);
    history.replaceState(null, '', url);
    void load(source, source);
  });
  for (const input of [ui.folder, ui.files]) {
    input.addEventListener('change', () => {
      const files = [...(input.files ?? [])];
      if (files.length === 0) return;
      const folder = files[0]!.webkitRelativePath.split('/')[0];
      void load(files, files.length === 1 ? files[0]!.name : folder || `${files.length} files`);
    });
  }

  return { loadRequested: () => load(requested, requested) };
}

export function backendName(backend: string): string {
  return backend === 'webgpu' ? 'WebGPU' : backend === 'wasm' ? 'WASM' : backend === 'webnn' ? 'WebNN' : backend;
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
