/** Writes WAV files in every layout the reader claims to handle, for round-trip tests. */

export type WavEncoding = 'pcm8' | 'pcm16' | 'pcm24' | 'pcm32' | 'float32' | 'float64';

export interface WavWriteOptions {
  encoding: WavEncoding;
  sampleRate: number;
  /** Wrap the format in WAVE_FORMAT_EXTENSIBLE. */
  extensible?: boolean;
  /** Extra chunks written between "fmt " and "data" (odd sizes get the pad byte). */
  extraChunks?: { id: string; body: Uint8Array }[];
  /** Value for the data chunk's size field instead of the true size (e.g. 0xFFFFFFFF). */
  dataSizeField?: number;
  bigEndian?: boolean;
}

const BYTES: Record<WavEncoding, number> = { pcm8: 1, pcm16: 2, pcm24: 3, pcm32: 4, float32: 4, float64: 8 };

/**
 * `channels` hold the raw stored values: integers in the encoding's range for PCM
 * (0..255 for pcm8), floats for float encodings.
 */
export function writeWav(channels: number[][], options: WavWriteOptions): Uint8Array {
  const { encoding, sampleRate } = options;
  const little = !options.bigEndian;
  const bytes = BYTES[encoding];
  const isFloat = encoding.startsWith('float');
  const frames = channels[0]?.length ?? 0;
  const dataSize = frames * channels.length * bytes;
  const fmtSize = options.extensible ? 40 : 16;
  const extras = options.extraChunks ?? [];
  const extraSize = extras.reduce((s, c) => s + 8 + c.body.length + (c.body.length & 1), 0);
  const total = 12 + 8 + fmtSize + extraSize + 8 + dataSize;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  const text = (at: number, s: string) => { for (let i = 0; i < 4; i++) out[at + i] = s.charCodeAt(i); };
  text(0, options.bigEndian ? 'RIFX' : 'RIFF');
  view.setUint32(4, total - 8, little);
  text(8, 'WAVE');
  let at = 12;
  text(at, 'fmt ');
  view.setUint32(at + 4, fmtSize, little);
  const code = isFloat ? 3 : 1;
  view.setUint16(at + 8, options.extensible ? 0xfffe : code, little);
  view.setUint16(at + 10, channels.length, little);
  view.setUint32(at + 12, sampleRate, little);
  view.setUint32(at + 16, sampleRate * channels.length * bytes, little);
  view.setUint16(at + 20, channels.length * bytes, little);
  view.setUint16(at + 22, bytes * 8, little);
  if (options.extensible) {
    view.setUint16(at + 24, 22, little);
    view.setUint16(at + 26, bytes * 8, little);
    view.setUint32(at + 28, (1 << channels.length) - 1, little);
    view.setUint16(at + 32, code, little); // sub-format GUID 0000000X-0000-0010-8000-00aa00389b71
    out.set([0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71], at + 34);
  }
  at += 8 + fmtSize;
  for (const chunk of extras) {
    text(at, chunk.id);
    view.setUint32(at + 4, chunk.body.length, little);
    out.set(chunk.body, at + 8);
    at += 8 + chunk.body.length + (chunk.body.length & 1);
  }
  text(at, 'data');
  view.setUint32(at + 4, options.dataSizeField ?? dataSize, little);
  at += 8;
  for (let i = 0; i < frames; i++) {
    for (const channel of channels) {
      const v = channel[i];
      switch (encoding) {
        case 'pcm8': view.setUint8(at, v); break;
        case 'pcm16': view.setInt16(at, v, little); break;
        case 'pcm24':
          if (little) { view.setUint8(at, v & 0xff); view.setUint8(at + 1, (v >> 8) & 0xff); view.setInt8(at + 2, v >> 16); }
          else { view.setInt8(at, v >> 16); view.setUint8(at + 1, (v >> 8) & 0xff); view.setUint8(at + 2, v & 0xff); }
          break;
        case 'pcm32': view.setInt32(at, v, little); break;
        case 'float32': view.setFloat32(at, v, little); break;
        case 'float64': view.setFloat64(at, v, little); break;
      }
      at += bytes;
    }
  }
  return out;
}
