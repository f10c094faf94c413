/**
 * Synthetic Whisper models: seeded random weights with real shapes, written as a Hugging Face
 * folder or a whisper.cpp ggml file by the same writers the format tests use, with the real
 * tokenizer and mel filters, so the whole load → transcribe path runs without downloading a model.
 *
 *   npx tsx scripts/synthetic/generate.ts --preset tiny.en --seed 1 --format ggml --dtype q8_0 --out DIR
 *
 * Tests use `cachedSyntheticModel`, which keeps generated files in a temp-dir cache keyed by the
 * options and the generator's own source, so big models are not regenerated on every run.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WhisperDims } from '../../src/core/model/dims.ts';
import { isMultilingual } from '../../src/core/model/dims.ts';
import type { WeightDType } from '../../src/core/model/weights.ts';
import { WhisperTokenizer } from '../../src/core/tokenizer/tokenizer.ts';
import { melFilterbank } from '../../src/core/audio/filterbank.ts';
import { writeGgml, type GgmlFileDType } from './ggml-writer.ts';
import { writeHuggingFaceFolder } from './hf-writer.ts';
import { writeHuggingFaceTokenizerJson } from './tokenizer-json.ts';
import { isSyntheticPreset, presetDims, SYNTHETIC_PRESETS, type SyntheticPreset } from './presets.ts';
import { syntheticTensors } from './weights.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
/** Where the tokenizer ranks live (reference data outside the repository). */
export const DEFAULT_ASSETS_DIR = resolve(repoRoot, '../shared/data/whisper-assets');

export type SyntheticFormat = 'huggingface' | 'ggml';

export interface SyntheticModelOptions {
  /** A named shape, or `dims` for any other. */
  preset?: SyntheticPreset;
  dims?: WhisperDims;
  seed: number;
  format: SyntheticFormat;
  /** Hugging Face folders: f32, f16, bf16. ggml files: f32, f16 and the quantized types. */
  dtype: WeightDType;
  /** Hugging Face only: shard the weights into files of at most this many bytes. */
  shardBytes?: number;
  /** Directory holding gpt2.tiktoken and multilingual.tiktoken. */
  assetsDir?: string;
}

export interface SyntheticModel {
  dims: WhisperDims;
  /** File name → bytes: a folder's files, or the one ggml file. */
  files: Record<string, Uint8Array>;
}

function resolveDims(options: SyntheticModelOptions): { dims: WhisperDims; label: string } {
  if (options.dims) {
    const d = options.dims;
    const shape = [d.nMels, d.nAudioCtx, d.nAudioState, d.nAudioHead, d.nAudioLayer, d.nTextCtx, d.nTextState, d.nTextHead, d.nTextLayer, d.nVocab];
    const label = options.preset ?? `custom-${shape.join('-')}`;
    return { dims: { ...d }, label };
  }
  if (!options.preset) throw new Error('give a preset or dims');
  if (!isSyntheticPreset(options.preset)) throw new Error(`unknown preset ${options.preset} (known: ${Object.keys(SYNTHETIC_PRESETS).join(', ')})`);
  return { dims: presetDims(options.preset), label: options.preset };
}

/** The tokenizer of the vocabulary size, from the tiktoken ranks OpenAI ships. */
export async function syntheticTokenizer(nVocab: number, assetsDir = DEFAULT_ASSETS_DIR): Promise<WhisperTokenizer> {
  const file = join(assetsDir, isMultilingual({ nVocab }) ? 'multilingual.tiktoken' : 'gpt2.tiktoken');
  return WhisperTokenizer.fromTiktoken(await readFile(file, 'utf8'), { nVocab, source: file });
}

/** The ggml file name whisper.cpp would use, with the dtype always spelled out. */
export function ggmlFileName(label: string, dtype: WeightDType): string {
  return `ggml-${label}-${dtype}.bin`;
}

export async function generateSyntheticModel(options: SyntheticModelOptions): Promise<SyntheticModel> {
  const { dims, label } = resolveDims(options);
  const { seed, format, dtype } = options;
  const tokenizer = await syntheticTokenizer(dims.nVocab, options.assetsDir);
  const tensors = syntheticTensors(dims, seed);
  if (format === 'ggml') {
    if (dtype === 'bf16') throw new Error('whisper.cpp ggml files have no bf16 models; use f32, f16 or a quantized type');
    const vocab = tokenizer.bpeRanks().map((bytes) => bytes ?? new Uint8Array(0));
    const bytes = writeGgml({ dims, tensors, vocab, melFilters: melFilterbank(dims.nMels), dtype: dtype as GgmlFileDType });
    return { dims, files: { [ggmlFileName(label, dtype)]: bytes } };
  }
  if (dtype !== 'f32' && dtype !== 'f16' && dtype !== 'bf16') throw new Error(`Hugging Face folders hold f32, f16 or bf16 weights, not ${dtype}`);
  const files = writeHuggingFaceFolder({
    dims,
    tensors,
    tokenizerJson: writeHuggingFaceTokenizerJson(tokenizer),
    dtype,
    ...(options.shardBytes ? { shardBytes: options.shardBytes } : {}),
    nameOrPath: `synthetic/${label}-seed${seed}`,
  });
  return { dims, files };
}

export async function writeSyntheticModel(options: SyntheticModelOptions, outDir: string): Promise<string[]> {
  const { files } = await generateSyntheticModel(options);
  await mkdir(outDir, { recursive: true });
  const names = Object.keys(files).sort();
  for (const name of names) await writeFile(join(outDir, name), files[name]!);
  return names.map((name) => join(outDir, name));
}

// Everything that decides the bytes of a generated model: a change to any of it must miss the cache.
const GENERATOR_SOURCES = [
  'scripts/synthetic/generate.ts',
  'scripts/synthetic/weights.ts',
  'scripts/synthetic/presets.ts',
  'scripts/synthetic/ggml-writer.ts',
  'scripts/synthetic/hf-writer.ts',
  'scripts/synthetic/tokenizer-json.ts',
  'src/core/model/dtype.ts',
  'src/core/model/quant.ts',
  'src/core/model/weights.ts',
  'src/core/formats/safetensors.ts',
  'src/core/audio/filterbank.ts',
];

async function cacheKey(options: SyntheticModelOptions): Promise<string> {
  const { dims, label } = resolveDims(options);
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ dims, seed: options.seed, format: options.format, dtype: options.dtype, shardBytes: options.shardBytes ?? 0, assets: options.assetsDir ?? DEFAULT_ASSETS_DIR }));
  for (const source of GENERATOR_SOURCES) hash.update(await readFile(join(repoRoot, source)));
  return `${label}-seed${options.seed}-${options.format}-${options.dtype}-${hash.digest('hex').slice(0, 16)}`;
}

/** Default cache: $MURMUR_SYNTHETIC_CACHE, else murmur-synthetic under the OS temp dir. */
export function syntheticCacheDir(): string {
  return process.env.MURMUR_SYNTHETIC_CACHE ?? join(tmpdir(), 'murmur-synthetic');
}

/**
 * A synthetic model on disk, generated once and reused: `path` is the folder (Hugging Face) or
 * the .bin file (ggml), ready for loadModel.
 */
export async function cachedSyntheticModel(options: SyntheticModelOptions, cacheDir = syntheticCacheDir()): Promise<{ dims: WhisperDims; dir: string; path: string }> {
  const { dims } = resolveDims(options);
  const dir = join(cacheDir, await cacheKey(options));
  const pathIn = (names: string[]) => (options.format === 'ggml' ? join(dir, names.find((n) => n.endsWith('.bin'))!) : dir);
  try {
    const names = await readdir(dir);
    if (names.length > 0) return { dims, dir, path: pathIn(names) };
  } catch {
    // Not generated yet.
  }
  // Written beside the final place and renamed in, so a concurrent or interrupted run never sees half a model.
  const staging = `${dir}.tmp-${process.pid}-${Date.now()}`;
  const written = await writeSyntheticModel(options, staging);
  try {
    await rename(staging, dir);
  } catch {
    // Another process got there first; its copy is identical.
    await rm(staging, { recursive: true, force: true });
  }
  await pruneStaleVersions(cacheDir, dir);
  return { dims, dir, path: pathIn(written.map((p) => p.slice(staging.length + 1))) };
}

/** Drop the same model generated by older generator sources, so the cache does not grow without bound. */
async function pruneStaleVersions(cacheDir: string, current: string): Promise<void> {
  const name = current.slice(cacheDir.length + 1);
  const stem = name.slice(0, name.lastIndexOf('-') + 1);
  for (const entry of await readdir(cacheDir)) {
    if (entry.startsWith(stem) && entry !== name && !entry.includes('.tmp-')) await rm(join(cacheDir, entry), { recursive: true, force: true });
  }
}

function parseArguments(argv: string[]): SyntheticModelOptions & { out: string } {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (!flag.startsWith('--') || value === undefined) throw new Error(`expected --flag value pairs, got ${argv.slice(i).join(' ')}`);
    values.set(flag.slice(2), value);
  }
  const known = new Set(['preset', 'seed', 'format', 'dtype', 'out', 'shard-bytes']);
  for (const key of values.keys()) if (!known.has(key)) throw new Error(`unknown option --${key}`);
  const preset = values.get('preset') ?? 'mini';
  if (!isSyntheticPreset(preset)) throw new Error(`unknown preset ${preset} (known: ${Object.keys(SYNTHETIC_PRESETS).join(', ')})`);
  const format = values.get('format') ?? 'ggml';
  if (format !== 'ggml' && format !== 'huggingface') throw new Error(`--format must be ggml or huggingface, got ${format}`);
  const seed = Number(values.get('seed') ?? '1');
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer`);
  const out = values.get('out');
  if (!out) throw new Error('--out DIR is required');
  const shardBytes = values.has('shard-bytes') ? Number(values.get('shard-bytes')) : undefined;
  return { preset, seed, format, dtype: (values.get('dtype') ?? (format === 'ggml' ? 'f16' : 'f32')) as WeightDType, out, ...(shardBytes ? { shardBytes } : {}) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { out, ...options } = parseArguments(process.argv.slice(2));
    const start = performance.now();
    const paths = await writeSyntheticModel(options, resolve(out));
    console.log(`wrote ${paths.join(', ')} in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  } catch (error) {
    console.error(`generate: ${(error as Error).message}`);
    console.error('usage: npx tsx scripts/synthetic/generate.ts --preset tiny.en|tiny|base|mini|mini-multilingual --seed N --format ggml|huggingface --dtype f32|f16|bf16|q8_0|q4_0|... --out DIR [--shard-bytes N]');
    process.exit(1);
  }
}
