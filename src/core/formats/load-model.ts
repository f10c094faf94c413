/**
 * `loadModel`: one entry point for every place a Whisper model can come from. It decides what the
 * source is (a single file or a folder, which format), gets the bytes (streaming downloads with
 * progress, abortable) and hands them to the format loaders.
 *
 * String sources:
 *   - `http(s)://…/ggml-tiny.bin`, `./models/ggml-tiny.bin`: a single file (by extension).
 *   - `http(s)://…/whisper-tiny/`, `/models/whisper-tiny`: a Hugging Face folder; in Node a local
 *     path is a folder when it is a directory.
 *   - `owner/name` (exactly two plain segments): a Hugging Face hub repository, files fetched from
 *     `${hubUrl}/${owner/name}/resolve/${revision}/…`. To mean a relative local folder with such a
 *     name, write `./owner/name`.
 *   - other relative paths: read with fs in Node; in a browser resolved against the page's URL.
 * A single file is recognised by its first bytes (ggml magic or a safetensors header).
 */
import { AbortError, ModelFormatError, ModelLoadError } from '../errors.ts';
import type { WhisperModel } from '../model/model.ts';
import { loadGgmlModel } from './ggml.ts';
import { loadHuggingFaceModel } from './huggingface.ts';
import { looksLikeSafetensors } from './safetensors.ts';
import {
  describeValue,
  fetchBytes,
  fileUrlToPath,
  httpFolder,
  inMemoryBytes,
  isNode,
  localFolder,
  localPathKind,
  memoryFolder,
  nodePathLib,
  readBlob,
  readLocalFile,
  type InMemoryFile,
  type ReadOptions,
} from './sources.ts';

export type { DownloadProgress, ModelFiles } from './sources.ts';

export type ModelSource = string | URL | Blob | ArrayBuffer | Uint8Array | File[] | Record<string, Blob | ArrayBuffer | Uint8Array>;

export interface LoadModelOptions extends ReadOptions {
  /** Hub revision (branch, tag or commit); default `main`. */
  revision?: string;
  /** Default `https://huggingface.co`. */
  hubUrl?: string;
  /** A single file inside the source folder or hub repo, e.g. `ggml-tiny.en.bin` in `ggerganov/whisper.cpp`. */
  file?: string;
}

const DEFAULT_HUB_URL = 'https://huggingface.co';
const HUB_REPO = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;
/** Extensions of single model files; anything else names a folder. */
const SINGLE_FILE = /\.(bin|ggml|gguf|safetensors|pt|pth|ckpt|onnx|h5|msgpack)$/i;
/** Files whose presence makes a set of files a Hugging Face folder rather than one model file. */
const FOLDER_MARKERS = /^(config\.json|tokenizer\.json|model\.safetensors(\.index\.json)?|model-\d+-of-\d+\.safetensors)$/;

export async function loadModel(source: ModelSource, options: LoadModelOptions = {}): Promise<WhisperModel> {
  if (options.signal?.aborted) throw new AbortError('loading the model');
  if (typeof source === 'string') return loadFromString(source, options);
  if (source instanceof URL) return loadFromString(source.href, options);
  if (source instanceof Uint8Array) return loadSingleFile(source, 'Uint8Array');
  if (source instanceof ArrayBuffer) return loadSingleFile(new Uint8Array(source), 'ArrayBuffer');
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    const name = fileName(source) ?? 'Blob';
    return loadSingleFile(await readBlob(source, name, options), name);
  }
  if (Array.isArray(source)) return loadFileSet(pickedFolder(source), pickedFolderLabel(source), options);
  if (typeof source === 'object' && source !== null) {
    return loadFileSet(new Map(Object.entries(source)), 'model files', options);
  }
  throw new ModelLoadError('model source', `is a ${describeValue(source)}; expected a URL, path, hub repo id, Blob, File list, ArrayBuffer, Uint8Array or a record of files`);
}

function fileName(blob: Blob): string | undefined {
  const name = (blob as Partial<File>).name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/** The bytes of one file: ggml by magic; a lone safetensors file lacks what a model needs. */
function loadSingleFile(bytes: Uint8Array, file: string): WhisperModel {
  if (looksLikeSafetensors(bytes)) {
    // Dims could be inferred from the tensor shapes, but the tokenizer and the decoding settings
    // cannot, so rather than guess them this asks for the folder that has them.
    throw new ModelFormatError(
      file,
      'is a safetensors file on its own; a Hugging Face model also needs config.json and tokenizer.json, so load the folder (URL, path, hub repo id or the picked files) instead',
    );
  }
  // The ggml loader checks the magic first and, when it is wrong, says what the bytes look like.
  return loadGgmlModel(bytes, file);
}

async function loadFromString(source: string, options: LoadModelOptions): Promise<WhisperModel> {
  if (source.trim() === '') throw new ModelLoadError('model source', 'is an empty string');
  if (/^https?:\/\//i.test(source)) return loadFromUrl(source, options);
  if (/^file:/i.test(source)) {
    if (isNode()) return loadFromPath(await fileUrlToPath(new URL(source)), options);
    return loadFromUrl(source, options);
  }
  if (HUB_REPO.test(source) && !SINGLE_FILE.test(source)) return loadFromHub(source, options);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) throw new ModelLoadError(source, 'uses a URL scheme Murmur cannot fetch (http, https and, in Node, file)');
  if (isNode()) return loadFromPath(source, options);
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  if (!base) throw new ModelLoadError(source, 'is a relative path, and there is no page URL to resolve it against (nor a file system: this is not Node)');
  return loadFromUrl(new URL(source, base).href, options);
}

async function loadFromUrl(url: string, options: LoadModelOptions): Promise<WhisperModel> {
  const path = new URL(url).pathname;
  if (options.file) {
    const folder = url.endsWith('/') ? url : `${url}/`;
    return loadRemoteFile(new URL(encodePath(options.file), folder).href, options.file, options);
  }
  if (SINGLE_FILE.test(path)) return loadRemoteFile(url, decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)), options);
  return loadHuggingFaceModel(httpFolder(url, options), url);
}

async function loadRemoteFile(url: string, name: string, options: LoadModelOptions): Promise<WhisperModel> {
  const bytes = await fetchBytes(url, name, options);
  return loadSingleFile(bytes!, url);
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

async function loadFromHub(repo: string, options: LoadModelOptions): Promise<WhisperModel> {
  const hubUrl = (options.hubUrl ?? DEFAULT_HUB_URL).replace(/\/+$/, '');
  const revision = options.revision ?? 'main';
  const base = `${hubUrl}/${repo}/resolve/${encodeURIComponent(revision)}/`;
  const label = options.revision ? `${repo}@${revision}` : repo;
  if (options.file) {
    const bytes = await fetchBytes(base + encodePath(options.file), options.file, options);
    return loadSingleFile(bytes!, `${label}/${options.file}`);
  }
  return loadHuggingFaceModel(httpFolder(base, options), label);
}

async function loadFromPath(path: string, options: LoadModelOptions): Promise<WhisperModel> {
  const pathLib = await nodePathLib();
  const target = options.file ? pathLib.join(path, options.file) : path;
  const kind = await localPathKind(target);
  if (kind === undefined) throw new ModelLoadError(target, 'no such file or directory');
  if (kind === 'directory') return loadHuggingFaceModel(localFolder(target, options, pathLib), path);
  const bytes = await readLocalFile(target, pathLib.basename(target), options);
  return loadSingleFile(bytes!, target);
}

/** Files of a picked folder by name; nested duplicates (a folder inside the folder) lose to the shallower file. */
function pickedFolder(files: File[]): Map<string, InMemoryFile> {
  const depth = (file: File) => (file.webkitRelativePath ?? '').split('/').length;
  const byName = new Map<string, File>();
  for (const [index, file] of files.entries()) {
    if (typeof Blob === 'undefined' || !(file instanceof Blob)) {
      throw new ModelLoadError('model source', `item ${index} of the file list is a ${describeValue(file)}, not a File`);
    }
    const name = fileName(file) ?? `file ${index}`;
    const earlier = byName.get(name);
    if (!earlier || depth(file) < depth(earlier)) byName.set(name, file);
  }
  return byName;
}

function pickedFolderLabel(files: File[]): string {
  const first = files.find((file) => typeof file?.webkitRelativePath === 'string' && file.webkitRelativePath.includes('/'));
  return first ? first.webkitRelativePath.split('/')[0]! : 'selected files';
}

async function loadFileSet(files: Map<string, InMemoryFile>, label: string, options: LoadModelOptions): Promise<WhisperModel> {
  const names = [...files.keys()];
  if (options.file !== undefined) {
    const entry = files.get(options.file);
    if (entry === undefined) throw new ModelLoadError(options.file, `is not among the given files (${names.join(', ') || 'none'})`);
    return loadSingleFile(await inMemoryBytes(entry, options.file, options), options.file);
  }
  if (names.some((name) => FOLDER_MARKERS.test(name))) return loadHuggingFaceModel(memoryFolder(files, label, options), label);
  const binaries = names.filter((name) => /\.bin$/i.test(name));
  const single = names.length === 1 ? names[0] : binaries.length === 1 ? binaries[0] : undefined;
  if (single !== undefined) return loadSingleFile(await inMemoryBytes(files.get(single)!, single, options), single);
  throw new ModelFormatError(
    label,
    `is neither a Hugging Face model folder (no config.json, tokenizer.json or model.safetensors) nor a single ggml .bin file; files given: ${names.join(', ') || 'none'}`,
  );
}
