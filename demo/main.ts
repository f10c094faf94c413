import * as Comlink from 'comlink';
import type { Engine, EngineProgress } from '../src/workers/engine.worker.ts';

/** Whisper tiny.en from the Hugging Face hub: the smallest good download. `?model=` overrides it. */
const DEFAULT_MODEL = 'openai/whisper-tiny.en';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const modelInput = $<HTMLInputElement>('model-source');
const modelForm = $<HTMLFormElement>('model-form');
const modelProgress = $<HTMLProgressElement>('model-progress');
const modelStatus = $<HTMLParagraphElement>('model-status');
const audioInput = $<HTMLInputElement>('audio-file');
const transcribeStatus = $<HTMLParagraphElement>('transcribe-status');
const segmentList = $<HTMLOListElement>('segments');

const worker = new Worker(new URL('../src/workers/engine.worker.ts', import.meta.url), { type: 'module' });
const engine = Comlink.wrap<Engine>(worker);

modelInput.value = new URLSearchParams(location.search).get('model') ?? DEFAULT_MODEL;

function resolveSource(text: string): string {
  // Relative paths (e.g. a synthetic model served beside the page) become absolute URLs for the worker.
  return /^(\.{0,2}\/)/.test(text) ? new URL(text, location.href).href : text;
}

async function loadModel(): Promise<void> {
  audioInput.disabled = true;
  modelProgress.value = 0;
  modelStatus.textContent = 'Loading…';
  const perFile = new Map<string, EngineProgress>();
  const onProgress = (event: EngineProgress) => {
    perFile.set(event.file, event);
    let loaded = 0;
    let total = 0;
    for (const e of perFile.values()) {
      loaded += e.loaded;
      total += e.total ?? e.loaded;
    }
    modelProgress.value = total > 0 ? loaded / total : 0;
  };
  try {
    const info = await engine.load(resolveSource(modelInput.value.trim()), Comlink.proxy(onProgress));
    modelProgress.value = 1;
    modelStatus.textContent = `Loaded ${info.source}`;
    audioInput.disabled = false;
  } catch (error) {
    modelStatus.textContent = `Could not load the model: ${(error as Error).message}`;
  }
}

function isWav(bytes: ArrayBuffer): boolean {
  const tag = new TextDecoder().decode(new Uint8Array(bytes, 0, Math.min(12, bytes.byteLength)));
  return /^(RIFF|RIFX|RF64)....WAVE/s.test(tag);
}

/**
 * WAV goes to the worker as bytes and is parsed there exactly. Other formats need the browser's
 * decoder, which only exists on the main thread; decoding at 16 kHz lets it resample too.
 */
async function transcribeBytes(bytes: ArrayBuffer, name: string) {
  if (isWav(bytes)) return engine.transcribeWav(Comlink.transfer(bytes, [bytes]), name);
  const context = new OfflineAudioContext(1, 1, 16000);
  const buffer = await context.decodeAudioData(bytes);
  const channels = Array.from({ length: buffer.numberOfChannels }, (_, c) => buffer.getChannelData(c).slice());
  return engine.transcribeChannels(Comlink.transfer(channels, channels.map((c) => c.buffer)), buffer.sampleRate);
}

function formatTime(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = (seconds % 60).toFixed(2).padStart(5, '0');
  return `${m}:${s}`;
}

async function transcribeFile(file: File): Promise<void> {
  segmentList.replaceChildren();
  transcribeStatus.textContent = `Transcribing ${file.name}…`;
  const started = performance.now();
  try {
    const result = await transcribeBytes(await file.arrayBuffer(), file.name);
    for (const segment of result.segments) {
      const item = document.createElement('li');
      const time = document.createElement('span');
      time.className = 'time';
      time.textContent = `${formatTime(segment.start)} → ${formatTime(segment.end)}`;
      item.append(time, segment.text.trim());
      segmentList.append(item);
    }
    transcribeStatus.textContent = `Done in ${((performance.now() - started) / 1000).toFixed(1)} s`;
  } catch (error) {
    transcribeStatus.textContent = `Could not transcribe ${file.name}: ${(error as Error).message}`;
  }
}

modelForm.addEventListener('submit', (event) => {
  event.preventDefault();
  void loadModel();
});
audioInput.addEventListener('change', () => {
  const file = audioInput.files?.[0];
  if (file) void transcribeFile(file);
});

void loadModel();
