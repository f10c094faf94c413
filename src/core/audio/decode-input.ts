/**
 * Every kind of audio the public API accepts, turned into 16 kHz mono samples in two halves:
 *
 *   - `toPortableAudio` runs where the call is made (the page's main thread). It does as little
 *     as it can: WAV bytes, Blobs and sample arrays pass through untouched (buffers are moved, not
 *     copied); only formats that nothing but the browser's decoder reads (mp3, ogg/opus, m4a, webm)
 *     are decoded here, with decodeAudioData at 16 kHz, because that decoder exists only on the
 *     main thread. WAV never takes that path, so the common case costs the page nothing.
 *   - `portableToSamples` runs where the engine runs (the worker, or the same thread in Node):
 *     WAV parsing, downmixing and resampling.
 */
import { AudioError } from '../errors.ts';
import { SAMPLE_RATE } from './mel.ts';
import { toWhisperInput } from './prepare.ts';
import { parseWav } from './wav.ts';

/**
 * What `transcribe` and `detectLanguage` accept. A Float32Array is 16 kHz mono samples; a string
 * or URL is fetched; a Blob/File or ArrayBuffer holds an encoded file (WAV, or any format the
 * browser decodes).
 */
export type AudioInput = Float32Array | AudioBuffer | Blob | ArrayBuffer | URL | string;

/** Audio in a form that crosses a worker boundary by transfer (no copy of the samples). */
export type PortableAudio =
  | { kind: 'samples'; samples: Float32Array }
  | { kind: 'channels'; channels: Float32Array[]; sampleRate: number }
  | { kind: 'wav'; bytes: ArrayBuffer; name: string }
  | { kind: 'blob'; blob: Blob; name: string };

export interface PortableAudioMessage {
  audio: PortableAudio;
  /** The buffers to transfer with the message. */
  transfer: Transferable[];
}

export function isWavBytes(bytes: ArrayBuffer | Uint8Array): boolean {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (view.length < 12) return false;
  const tag = String.fromCharCode(...view.subarray(0, 4));
  const form = String.fromCharCode(...view.subarray(8, 12));
  return (tag === 'RIFF' || tag === 'RIFX' || tag === 'RF64') && form === 'WAVE';
}

function blobName(blob: Blob): string {
  const name = (blob as Partial<File>).name;
  return typeof name === 'string' && name !== '' ? name : 'Blob';
}

function isAudioBuffer(value: unknown): value is AudioBuffer {
  return typeof AudioBuffer !== 'undefined' && value instanceof AudioBuffer;
}

/** A Float32Array's own buffer when it spans all of it (so it can be moved), else a copy. */
function movable(samples: Float32Array): Float32Array {
  const whole = samples.byteOffset === 0 && samples.byteLength === samples.buffer.byteLength && samples.buffer instanceof ArrayBuffer;
  return whole ? samples : samples.slice();
}

/**
 * Prepares `input` for the engine. Float32Array and ArrayBuffer inputs are transferred: after the
 * call the caller's buffer is detached (pass a copy to keep it).
 */
export async function toPortableAudio(input: AudioInput, signal?: AbortSignal): Promise<PortableAudioMessage> {
  if (input instanceof Float32Array) {
    const samples = movable(input);
    return { audio: { kind: 'samples', samples }, transfer: [samples.buffer as ArrayBuffer] };
  }
  if (isAudioBuffer(input)) {
    // An AudioBuffer owns its memory; its channels are copied out once to be moved on.
    const channels = Array.from({ length: input.numberOfChannels }, (_, c) => input.getChannelData(c).slice());
    return { audio: { kind: 'channels', channels, sampleRate: input.sampleRate }, transfer: channels.map((c) => c.buffer as ArrayBuffer) };
  }
  if (typeof Blob !== 'undefined' && input instanceof Blob) {
    const name = blobName(input);
    const head = new Uint8Array(await input.slice(0, 12).arrayBuffer());
    // A Blob is a handle: it crosses to the worker without its bytes, which are read there.
    if (isWavBytes(head)) return { audio: { kind: 'blob', blob: input, name }, transfer: [] };
    return decodeWithBrowser(await input.arrayBuffer(), name);
  }
  if (input instanceof ArrayBuffer) return fromBytes(input, 'ArrayBuffer');
  if (isLocalFile(input)) {
    // Node: a plain path or a file: URL names a local file.
    const path = input instanceof URL ? (await import('node:url')).fileURLToPath(input) : input;
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(path).catch((error: unknown) => {
      throw new AudioError(`${path}: could not be read (${(error as Error).message})`, { cause: error });
    });
    return fromBytes(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, path);
  }
  if (typeof input === 'string' || input instanceof URL) {
    const url = typeof input === 'string' && typeof location !== 'undefined' ? new URL(input, location.href) : input;
    const bytes = await fetchAudio(url, signal);
    return fromBytes(bytes, String(url));
  }
  throw new AudioError(`audio input is ${describe(input)}; expected a Float32Array of 16 kHz mono samples, an AudioBuffer, a Blob or File, an ArrayBuffer or a URL`);
}

function isLocalFile(input: AudioInput): input is string | URL {
  if (typeof location !== 'undefined' || typeof process === 'undefined') return false;
  if (input instanceof URL) return input.protocol === 'file:';
  return typeof input === 'string' && !/^[a-z][a-z\d+.-]*:/i.test(input);
}

function fromBytes(bytes: ArrayBuffer, name: string): Promise<PortableAudioMessage> | PortableAudioMessage {
  if (isWavBytes(bytes)) return { audio: { kind: 'wav', bytes, name }, transfer: [bytes] };
  return decodeWithBrowser(bytes, name);
}

async function fetchAudio(url: URL | string, signal: AbortSignal | undefined): Promise<ArrayBuffer> {
  let response: Response;
  try {
    response = await fetch(url, signal ? { signal } : {});
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new AudioError(`${url}: could not be fetched (${(error as Error).message})`, { cause: error });
  }
  if (!response.ok) throw new AudioError(`${url}: HTTP ${response.status} ${response.statusText}`.trim());
  return response.arrayBuffer();
}

/**
 * The browser's decoder, for every format but WAV. An OfflineAudioContext at 16 kHz decodes and
 * resamples in one go; the channels are then moved to the engine, which downmixes them.
 */
async function decodeWithBrowser(bytes: ArrayBuffer, name: string): Promise<PortableAudioMessage> {
  if (typeof OfflineAudioContext === 'undefined') {
    throw new AudioError(`${name}: not a WAV file, and this environment has no audio decoder (decodeAudioData) for other formats`);
  }
  let buffer: AudioBuffer;
  try {
    buffer = await new OfflineAudioContext(1, 1, SAMPLE_RATE).decodeAudioData(bytes);
  } catch (error) {
    throw new AudioError(`${name}: the browser could not decode it as audio (${(error as Error)?.message ?? error})`, { cause: error });
  }
  const channels = Array.from({ length: buffer.numberOfChannels }, (_, c) => buffer.getChannelData(c).slice());
  return { audio: { kind: 'channels', channels, sampleRate: buffer.sampleRate }, transfer: channels.map((c) => c.buffer as ArrayBuffer) };
}

/** The engine's half: 16 kHz mono samples from portable audio. */
export async function portableToSamples(audio: PortableAudio): Promise<Float32Array> {
  switch (audio.kind) {
    case 'samples':
      return audio.samples;
    case 'channels':
      return toWhisperInput(audio.channels, audio.sampleRate);
    case 'wav': {
      const { channels, sampleRate } = parseWav(audio.bytes, audio.name);
      return toWhisperInput(channels, sampleRate);
    }
    case 'blob': {
      const { channels, sampleRate } = parseWav(await audio.blob.arrayBuffer(), audio.name);
      return toWhisperInput(channels, sampleRate);
    }
    default:
      throw new AudioError(`unknown audio message kind ${JSON.stringify((audio as { kind: unknown }).kind)}`);
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return `a ${typeof value}`;
  return `a ${(value as object).constructor?.name ?? 'object'}`;
}
