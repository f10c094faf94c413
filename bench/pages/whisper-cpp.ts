// Runs whisper.cpp's WebAssembly builds from npm on a ggml model and 30 s of audio, and hands
// back what they print. Two builds, two interfaces:
//  - @timur00kh/whisper.wasm: whisper.cpp's own wasm example (`init`, `full_default`), which
//    prints whisper_print_timings after each run;
//  - @transcribe/shout: no timings, but a streaming mode with a token cap and no temperature
//    fallback (`startStream`), which prints the wall time of each whisper_full call.
// Both run whisper_full on an Emscripten pthread and report back through print/handlers.
import { exposePageApi } from '../../test/browser/pages/page-api.ts';
import { parseWav } from '../../src/core/audio/wav.ts';

// Emscripten modules, as far as this page uses them.
interface EmscriptenModule {
  FS_createDataFile(parent: string, name: string, data: Uint8Array, canRead: boolean, canWrite: boolean, canOwn: boolean): void;
  FS_unlink(path: string): void;
}
interface WhisperWasmModule extends EmscriptenModule {
  init(path: string): number;
  full_default(instance: number, audio: Float32Array, language: string, threads: number, translate: boolean): number;
  free(): void;
}
interface ShoutModule extends EmscriptenModule {
  startStream(model: string, language: string, threads: number, translate: boolean, maxTokens: number, audioCtx: number, suppressNonSpeech: boolean): void;
  setStreamAudio(audio: Float32Array): void;
  stopStream(): void;
}
type Factory<M> = (options: Record<string, unknown>) => Promise<M>;

/** Printed lines, and waiters for a line that matches. */
class Output {
  readonly lines: string[] = [];
  private waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];

  add = (text: unknown): void => {
    for (const line of String(text).split('\n')) {
      this.lines.push(line);
      this.waiters = this.waiters.filter((waiter) => {
        if (!waiter.pattern.test(line)) return true;
        waiter.resolve(line);
        return false;
      });
    }
  };

  next(pattern: RegExp, timeoutMs: number, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: nothing matched ${pattern} within ${timeoutMs / 1000} s; last output:\n${this.lines.slice(-15).join('\n')}`)), timeoutMs);
      this.waiters.push({ pattern, resolve: (line) => { clearTimeout(timer); resolve(line); } });
    });
  }
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`fetching ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

const audioCache = new Map<string, Float32Array>();

/** The benchmark speech (16 kHz mono WAV) at `url`, as samples. */
async function loadAudio(url: string): Promise<Float32Array> {
  let samples = audioCache.get(url);
  if (!samples) {
    samples = parseWav(await fetchBytes(url), url).channels[0]!;
    audioCache.set(url, samples);
  }
  return samples;
}

let whisperWasm: { module: WhisperWasmModule; output: Output; instance: number } | undefined;

/** Loads the whisper.wasm build (its module script at `moduleUrl`) and the model. */
async function whisperWasmLoad(moduleUrl: string, modelUrl: string): Promise<string[]> {
  const output = new Output();
  const factory = ((await import(/* @vite-ignore */ moduleUrl)) as { default: Factory<WhisperWasmModule> }).default;
  const module = await factory({ print: output.add, printErr: output.add, mainScriptUrlOrBlob: moduleUrl });
  module.FS_createDataFile('/', 'model.bin', await fetchBytes(modelUrl), true, true, true);
  const instance = module.init('model.bin');
  if (!instance) throw new Error(`whisper.wasm could not load ${modelUrl}:\n${output.lines.slice(-20).join('\n')}`);
  module.FS_unlink('/model.bin');
  whisperWasm = { module, output, instance };
  return output.lines.splice(0);
}

/** One whisper_full over the audio; resolves with everything printed, timings last. */
async function whisperWasmTranscribe(audioUrl: string, threads: number, timeoutMs: number): Promise<string[]> {
  if (!whisperWasm) throw new Error('call whisperWasmLoad first');
  const { module, output, instance } = whisperWasm;
  const audio = await loadAudio(audioUrl);
  output.lines.length = 0;
  const done = output.next(/whisper_print_timings:\s+total time/, timeoutMs, 'whisper.wasm full_default');
  module.full_default(instance, audio, 'en', threads, false);
  await done;
  return output.lines.splice(0);
}

let shout: { module: ShoutModule; output: Output; transcripts: string[] } | undefined;

async function shoutLoad(modelUrl: string): Promise<void> {
  const output = new Output();
  const transcripts: string[] = [];
  const factory = (await import('@transcribe/shout')).default as unknown as Factory<ShoutModule>;
  const module = await factory({
    print: output.add,
    printErr: output.add,
    onStreamTranscription: (json: unknown) => {
      transcripts.push(typeof json === 'string' ? json : JSON.stringify(json));
      output.add('[stream transcription]');
    },
    onStreamStatus: (status: unknown) => output.add(`[stream status] ${String(status)}`),
  });
  module.FS_createDataFile('/', 'model.bin', await fetchBytes(modelUrl), true, true, true);
  shout = { module, output, transcripts };
}

export interface ShoutStreamRun {
  /** whisper_full's wall time as shout printed it, per repeat. */
  seconds: number[];
  /** Tokens in each repeat's result. */
  tokens: number[];
  lines: string[];
}

/**
 * Streams the audio through one stream capped at `maxTokens` tokens: `warmUps` untimed runs
 * (the first whisper_full in a page also starts its worker threads), then `repeats` timed ones.
 */
async function shoutStream(audioUrl: string, threads: number, maxTokens: number, warmUps: number, repeats: number, timeoutMs: number): Promise<ShoutStreamRun> {
  if (!shout) throw new Error('call shoutLoad first');
  const { module, output, transcripts } = shout;
  const audio = await loadAudio(audioUrl);
  output.lines.length = 0;
  transcripts.length = 0;
  const waiting = output.next(/\[stream status\] waiting/, timeoutMs, 'shout startStream');
  module.startStream('model.bin', 'en', threads, false, maxTokens, 0, false);
  await waiting;
  const run: ShoutStreamRun = { seconds: [], tokens: [], lines: [] };
  for (let i = 0; i < warmUps + repeats; i++) {
    const timed = output.next(/stream: whisper_full\(\) returned/, timeoutMs, 'shout stream whisper_full');
    const answered = output.next(/\[stream transcription\]/, timeoutMs, 'shout stream result');
    module.setStreamAudio(audio);
    const line = await timed;
    await answered;
    const match = /returned (-?\d+) in ([\d.]+) seconds/.exec(line);
    if (!match || match[1] !== '0') throw new Error(`shout: whisper_full failed: ${line}`);
    if (i < warmUps) continue;
    run.seconds.push(Number(match[2]));
    // The result is JSON built by string concatenation (token texts may break it): count ids.
    run.tokens.push((transcripts.at(-1)?.match(/"id":\s*\d+/g) ?? []).length);
  }
  const stopped = output.next(/\[stream status\] stopped/, timeoutMs, 'shout stopStream');
  module.stopStream();
  await stopped;
  run.lines = output.lines.splice(0);
  return run;
}

export const whisperCppPageApi = { whisperWasmLoad, whisperWasmTranscribe, shoutLoad, shoutStream };

exposePageApi(whisperCppPageApi);
