/**
 * WAV reader: RIFF (little-endian), RIFX (big-endian) and RF64 containers holding integer PCM
 * (1–32 bits, left-justified in 1–4 byte containers) or IEEE float (32/64-bit) samples, plain or
 * wrapped in WAVE_FORMAT_EXTENSIBLE, any number of channels.
 *
 * Tolerated on purpose, because real recorders write them: unknown chunks (LIST, fact, cue, ...),
 * odd chunk sizes (padded to even), a data size of 0xFFFFFFFF or larger than the file (streamed
 * or cut-off recordings; the data is clamped to what the file holds, whole frames only), and a
 * block-align field that disagrees with the channel count and sample size (it is recomputed).
 */
import { AudioError } from '../errors.ts';

export interface DecodedAudio {
  sampleRate: number;
  /** One array per channel, samples scaled to [-1, 1) for integer PCM; float samples as stored. */
  channels: Float32Array[];
}

const FORMAT_PCM = 0x0001;
const FORMAT_FLOAT = 0x0003;
const FORMAT_EXTENSIBLE = 0xfffe;

const FORMAT_NAMES: Record<number, string> = {
  0x0002: 'Microsoft ADPCM',
  0x0006: 'A-law',
  0x0007: 'µ-law',
  0x0011: 'IMA ADPCM',
  0x0031: 'GSM 6.10',
  0x0050: 'MPEG',
  0x0055: 'MP3',
  0x00ff: 'AAC',
};

interface Format {
  code: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
}

export function parseWav(bytes: ArrayBuffer | Uint8Array, source = 'WAV data'): DecodedAudio {
  const view = bytes instanceof Uint8Array
    ? new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    : new DataView(bytes);
  const size = view.byteLength;
  const fail = (problem: string): never => {
    throw new AudioError(`${source}: ${problem}`);
  };

  if (size < 12) fail(`truncated: ${size} bytes, shorter than a 12-byte RIFF header`);
  const magic = fourCC(view, 0);
  if (magic !== 'RIFF' && magic !== 'RIFX' && magic !== 'RF64') {
    fail(`not a WAV file: starts with ${JSON.stringify(magic)}, not "RIFF"`);
  }
  const little = magic !== 'RIFX';
  if (fourCC(view, 8) !== 'WAVE') fail(`not a WAV file: RIFF form type is ${JSON.stringify(fourCC(view, 8))}, not "WAVE"`);

  let format: Format | undefined;
  let dataStart = -1;
  let dataLength = 0;
  let offset = 12;
  while (offset + 8 <= size) {
    const id = fourCC(view, offset);
    const declared = view.getUint32(offset + 4, little);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (body + Math.min(declared, 16) > size || declared < 16) {
        fail(`truncated "fmt " chunk: ${Math.min(declared, size - body)} bytes, needs at least 16`);
      }
      format = readFormat(view, body, Math.min(declared, size - body), little, fail);
    } else if (id === 'data') {
      dataStart = body;
      const available = size - body;
      if (declared > available) {
        // 0xFFFFFFFF (streamed / RF64) or a recording that was cut off: take what is there.
        dataLength = available;
        break;
      }
      dataLength = declared;
    }
    offset = body + declared + (declared & 1);
  }

  if (!format) fail(`no "fmt " chunk in ${size} bytes`);
  if (dataStart < 0) fail(`no "data" chunk in ${size} bytes`);
  return decodeSamples(view, dataStart, dataLength, format!, little);
}

function fourCC(view: DataView, offset: number): string {
  let s = '';
  for (let i = 0; i < 4; i++) s += String.fromCharCode(view.getUint8(offset + i));
  return s;
}

function readFormat(view: DataView, at: number, length: number, little: boolean, fail: (p: string) => never): Format {
  let code = view.getUint16(at, little);
  const channels = view.getUint16(at + 2, little);
  const sampleRate = view.getUint32(at + 4, little);
  const bitsPerSample = view.getUint16(at + 14, little);
  if (code === FORMAT_EXTENSIBLE) {
    // cbSize, validBits, channelMask, then the sub-format GUID whose first field is the format code.
    if (length < 40) fail(`truncated "fmt " chunk: WAVE_FORMAT_EXTENSIBLE needs 40 bytes, has ${length}`);
    code = view.getUint16(at + 24, little);
  }
  if (code !== FORMAT_PCM && code !== FORMAT_FLOAT) {
    const name = FORMAT_NAMES[code] ? ` (${FORMAT_NAMES[code]})` : '';
    fail(`unsupported format code 0x${code.toString(16).padStart(4, '0')}${name}; only PCM (1) and IEEE float (3) are read`);
  }
  if (channels === 0) fail('"fmt " chunk declares 0 channels');
  if (sampleRate === 0) fail('"fmt " chunk declares a sample rate of 0');
  if (code === FORMAT_PCM && (bitsPerSample < 1 || bitsPerSample > 32)) {
    fail(`unsupported PCM sample size of ${bitsPerSample} bits (1–32 are read)`);
  }
  if (code === FORMAT_FLOAT && bitsPerSample !== 32 && bitsPerSample !== 64) {
    fail(`unsupported IEEE float sample size of ${bitsPerSample} bits (32 and 64 are read)`);
  }
  return { code, channels, sampleRate, bitsPerSample };
}

function decodeSamples(view: DataView, start: number, length: number, format: Format, little: boolean): DecodedAudio {
  const { code, channels: channelCount, sampleRate, bitsPerSample } = format;
  const bytesPerSample = Math.ceil(bitsPerSample / 8);
  const frameBytes = bytesPerSample * channelCount;
  const frames = Math.floor(length / frameBytes);
  const channels = Array.from({ length: channelCount }, () => new Float32Array(frames));
  const read = sampleReader(view, code, bytesPerSample, little);
  for (let c = 0; c < channelCount; c++) {
    const out = channels[c];
    let at = start + c * bytesPerSample;
    for (let i = 0; i < frames; i++, at += frameBytes) out[i] = read(at);
  }
  return { sampleRate, channels };
}

/** Integer samples are left-justified in their container, so the container size sets the scale. */
function sampleReader(view: DataView, code: number, bytes: number, little: boolean): (at: number) => number {
  if (code === FORMAT_FLOAT) {
    return bytes === 4 ? (at) => view.getFloat32(at, little) : (at) => view.getFloat64(at, little);
  }
  switch (bytes) {
    case 1: return (at) => (view.getUint8(at) - 128) / 128;
    case 2: return (at) => view.getInt16(at, little) / 32768;
    case 3:
      return little
        ? (at) => ((view.getUint8(at) | (view.getUint8(at + 1) << 8) | (view.getInt8(at + 2) << 16))) / 8388608
        : (at) => ((view.getUint8(at + 2) | (view.getUint8(at + 1) << 8) | (view.getInt8(at) << 16))) / 8388608;
    default: return (at) => view.getInt32(at, little) / 2147483648;
  }
}
