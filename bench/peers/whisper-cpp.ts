// whisper.cpp compiled to WebAssembly (SIMD, pthreads), from npm, on synthetic f16 ggml models
// in the benchmark's Chromium:
//  - @timur00kh/whisper.wasm: whisper.cpp's own wasm example; whisper_print_timings gives the
//    encoder's time per run and the decoder's per single-token run. With random weights the
//    temperature fallback decodes many times over, so only those per-run times are comparable.
//  - @transcribe/shout: prints no timings; its stream mode caps the tokens and turns the fallback
//    off, so whisper_full's wall time (best of the repeats, after a warm-up) at two caps gives the
//    per-token decode time (the difference) and the encoder time (the shorter run less its
//    tokens; it also holds the log-mel and the prompt pass).
// Only f16 models: these builds abort on f32 ones at these shapes (ggml im2col).
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedSyntheticModel, ggmlFileName } from '../../scripts/synthetic/generate.ts';
import { benchCacheDir } from '../audio.ts';
import type { whisperCppPageApi } from '../pages/whisper-cpp.ts';
import type { BenchModel } from '../shapes.ts';
import type { BenchContext, BenchEntry, BenchResult } from '../types.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');
const WHISPER_WASM_DIST = 'node_modules/@timur00kh/whisper.wasm/dist';
const AUDIO_ROUTE = '/@bench-audio/';
/** whisper_full with random weights falls back through every temperature: minutes, on base. */
const RUN_TIMEOUT_MS = 15 * 60_000;

interface Prepared {
  modelUrl: string;
  audioUrl: string;
  label: string;
}

async function prepare(context: BenchContext, model: BenchModel): Promise<Prepared> {
  const speech = await context.speech();
  const ggml = await cachedSyntheticModel({ preset: model, seed: 1, format: 'ggml', dtype: 'f16' });
  const session = await context.session();
  const modelRoute = `/@bench-ggml-${model}/`;
  session.mount(modelRoute, ggml.dir);
  session.mount(AUDIO_ROUTE, benchCacheDir());
  return {
    modelUrl: modelRoute + ggmlFileName(model, 'f16'),
    audioUrl: AUDIO_ROUTE + speech.path.slice(benchCacheDir().length + 1),
    label: `${model} f16 (synthetic)`,
  };
}

/** The build's attention path, from its load log: it decides much of the encoder's time. */
function buildSettings(lines: string[]): string {
  const flash = lines.map((line) => /flash attn\s*=\s*(\d)/.exec(line)).find(Boolean);
  return `flash attention ${flash ? (flash[1] === '1' ? 'on' : 'off') : 'not reported'} (the build's default; the npm API cannot change it)`;
}

function models(context: BenchContext): BenchModel[] {
  return context.quick ? ['tiny.en'] : ['tiny.en', 'base'];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** whisper.cpp's module script: its file name carries a build hash. */
function whisperWasmModuleUrl(): string {
  const file = readdirSync(join(repoRoot, WHISPER_WASM_DIST)).find((name) => /^libmain-.*\.mjs$/.test(name));
  if (!file) throw new Error(`no libmain-*.mjs in ${WHISPER_WASM_DIST}: is @timur00kh/whisper.wasm installed (npm install)?`);
  return `/${WHISPER_WASM_DIST}/${file}`;
}

export interface PrintedTiming {
  ms: number;
  runs?: number;
  msPerRun?: number;
}

/** whisper_print_timings' lines, by stage name ('encode', 'decode', 'batchd', 'total', ...). */
export function parsePrintTimings(lines: string[]): Map<string, PrintedTiming> {
  const timings = new Map<string, PrintedTiming>();
  for (const line of lines) {
    const match = /whisper_print_timings:\s+(\w+) time =\s*([\d.]+) ms(?: \/\s*(\d+) runs \(\s*([\d.]+) ms per run\))?/.exec(line);
    if (!match) continue;
    timings.set(match[1]!, {
      ms: Number(match[2]),
      ...(match[3] === undefined ? {} : { runs: Number(match[3]), msPerRun: Number(match[4]) }),
    });
  }
  return timings;
}

async function runWhisperWasm(context: BenchContext): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const model of models(context)) {
    const result: BenchResult = { peer: 'whisper.cpp (@timur00kh/whisper.wasm)', backend: 'wasm', model, threads: context.threads, notes: [] };
    results.push(result);
    let page;
    try {
      const { modelUrl, audioUrl, label } = await prepare(context, model);
      result.model = label;
      page = await (await context.session()).openPage('/bench/pages/whisper-cpp.html');
      const api = page.api<typeof whisperCppPageApi>({ timeoutMs: RUN_TIMEOUT_MS + 60_000 });
      const loadLines = await api.whisperWasmLoad(whisperWasmModuleUrl(), modelUrl);
      result.notes!.push(buildSettings(loadLines));
      context.log(`  whisper.wasm ${model}: transcribing 30 s (random weights: the fallback makes this slow)`);
      const lines = await api.whisperWasmTranscribe(audioUrl, context.threads, RUN_TIMEOUT_MS);
      const timings = parsePrintTimings(lines);
      const encode = timings.get('encode');
      const decode = timings.get('decode');
      if (!encode?.msPerRun) throw new Error(`no encode timing in whisper.cpp's output:\n${lines.slice(-20).join('\n')}`);
      result.encoderMs = encode.msPerRun;
      if (decode?.msPerRun) result.decodeMsPerToken = decode.msPerRun;
      const summary = ['encode', 'decode', 'batchd', 'prompt', 'total']
        .map((stage) => [stage, timings.get(stage)] as const)
        .filter(([, timing]) => timing)
        .map(([stage, timing]) => `${stage} ${timing!.ms.toFixed(0)} ms${timing!.runs === undefined ? '' : ` / ${timing!.runs} runs`}`);
      result.notes!.push(`one full_default run, the page's first (it also starts the worker threads; a warm-up would cost a whole fallback-laden run): whisper_print_timings: ${summary.join(', ')}`);
      const fallbacks = lines.find((line) => /fallbacks =/.test(line));
      if (fallbacks) result.notes!.push(fallbacks.replace(/^whisper_print_timings:\s*/, '').trim());
      context.log(`  whisper.wasm ${model}: encoder ${result.encoderMs.toFixed(0)} ms, decode ${result.decodeMsPerToken?.toFixed(2) ?? '?'} ms/token`);
    } catch (error) {
      result.error = messageOf(error);
    } finally {
      await page?.close().catch((error) => {
        result.error ??= `closing the page: ${messageOf(error)}`;
      });
    }
  }
  return results;
}

/** Token caps of shout's two stream runs: the difference is timed decoder steps. */
const SHOUT_CAPS = { short: 1, long: 201 };

async function runShout(context: BenchContext): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  // Each run is a whole encoder pass plus up to 200 decoder steps: long, so few repeats.
  const repeats = context.quick ? 1 : 2;
  for (const model of models(context)) {
    const result: BenchResult = { peer: 'whisper.cpp (@transcribe/shout)', backend: 'wasm', model, threads: context.threads, notes: [] };
    results.push(result);
    let page;
    try {
      const { modelUrl, audioUrl, label } = await prepare(context, model);
      result.model = label;
      page = await (await context.session()).openPage('/bench/pages/whisper-cpp.html');
      const api = page.api<typeof whisperCppPageApi>({ timeoutMs: RUN_TIMEOUT_MS + 60_000 });
      await api.shoutLoad(modelUrl);
      const short = await api.shoutStream(audioUrl, context.threads, SHOUT_CAPS.short, 1, repeats, RUN_TIMEOUT_MS);
      const long = await api.shoutStream(audioUrl, context.threads, SHOUT_CAPS.long, 0, repeats, RUN_TIMEOUT_MS);
      result.notes!.push(buildSettings(short.lines));
      // Fastest of the repeats: other processes only ever add time.
      const shortMs = Math.min(...short.seconds) * 1000;
      const longMs = Math.min(...long.seconds) * 1000;
      const shortTokens = Math.min(...short.tokens);
      const extraTokens = Math.min(...long.tokens) - Math.max(...short.tokens);
      const timings = `${shortTokens} tokens in ${shortMs.toFixed(0)} ms, ${Math.min(...long.tokens)} tokens in ${longMs.toFixed(0)} ms`;
      if (extraTokens <= 0) throw new Error(`shout decoded no more tokens with a cap of ${SHOUT_CAPS.long} than with ${SHOUT_CAPS.short} (${timings}): no decoder steps to time`);
      if (longMs <= shortMs) throw new Error(`the run with ${extraTokens} more decoder steps was not slower (${timings}): the machine was too busy to time them; run again`);
      result.decodeMsPerToken = (longMs - shortMs) / extraTokens;
      result.encoderMs = shortMs - shortTokens * result.decodeMsPerToken;
      result.notes!.push(`stream mode (no fallback), one warm-up, best of ${repeats}: ${timings}; encoder time includes log-mel and the prompt pass`);
      context.log(`  shout ${model}: encoder ≈${result.encoderMs.toFixed(0)} ms, decode ${result.decodeMsPerToken.toFixed(2)} ms/token`);
    } catch (error) {
      result.error = messageOf(error);
    } finally {
      await page?.close().catch((error) => {
        result.error ??= `closing the page: ${messageOf(error)}`;
      });
    }
  }
  return results;
}

export const whisperWasmEntry: BenchEntry = { name: 'whisper.wasm', kind: 'peer', run: runWhisperWasm };
export const shoutEntry: BenchEntry = { name: 'shout', kind: 'peer', run: runShout };
