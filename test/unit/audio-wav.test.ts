import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseWav } from '../../src/core/audio/wav.ts';
import { AudioError } from '../../src/core/errors.ts';
import { writeWav, type WavEncoding } from '../reference/wav-writer.ts';

const JFK = fileURLToPath(new URL('../../../shared/data/audio/jfk.wav', import.meta.url));

/** Stored values covering each encoding's extremes, and what the reader must turn them into. */
const CASES: Record<WavEncoding, { stored: number[]; decoded: number[] }> = {
  pcm8: { stored: [0, 1, 127, 128, 129, 255], decoded: [-1, -127 / 128, -1 / 128, 0, 1 / 128, 127 / 128] },
  pcm16: { stored: [-32768, -1, 0, 1, 12345, 32767], decoded: [-1, -1 / 32768, 0, 1 / 32768, 12345 / 32768, 32767 / 32768] },
  pcm24: {
    stored: [-8388608, -65536, -1, 0, 1, 8388607],
    decoded: [-1, -65536 / 8388608, -1 / 8388608, 0, 1 / 8388608, 8388607 / 8388608],
  },
  pcm32: {
    stored: [-2147483648, -1, 0, 1, 65536, 2147483647],
    decoded: [-1, -1 / 2147483648, 0, 1 / 2147483648, 65536 / 2147483648, 2147483647 / 2147483648],
  },
  float32: { stored: [-1, -0.5, 0, 0.25, 1.5, -3.75], decoded: [-1, -0.5, 0, 0.25, 1.5, -3.75] },
  float64: { stored: [-1, -0.5, 0, 0.125, 2, 1e-3], decoded: [-1, -0.5, 0, 0.125, 2, Math.fround(1e-3)] },
};

function assertDecoded(actual: Float32Array, expected: number[], label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  // The reader returns float32, so compare with the float32-rounded exact value.
  expected.forEach((v, i) => assert.equal(actual[i], Math.fround(v), `${label}: sample ${i}`));
}

for (const [encoding, { stored, decoded }] of Object.entries(CASES) as [WavEncoding, (typeof CASES)[WavEncoding]][]) {
  for (const extensible of [false, true]) {
    test(`${encoding}${extensible ? ' (WAVE_FORMAT_EXTENSIBLE)' : ''} mono and stereo parse back exactly`, () => {
      const mono = parseWav(writeWav([stored], { encoding, sampleRate: 22050, extensible }), 'mono.wav');
      assert.equal(mono.sampleRate, 22050);
      assert.equal(mono.channels.length, 1);
      assertDecoded(mono.channels[0], decoded, 'mono');

      const reversed = [...stored].reverse();
      const stereo = parseWav(writeWav([stored, reversed], { encoding, sampleRate: 44100, extensible }), 'stereo.wav');
      assert.equal(stereo.sampleRate, 44100);
      assert.equal(stereo.channels.length, 2);
      assertDecoded(stereo.channels[0], decoded, 'left');
      assertDecoded(stereo.channels[1], [...decoded].reverse(), 'right');
    });
  }
}

test('six channels, big-endian RIFX, and a Uint8Array view at an offset', () => {
  const channels = Array.from({ length: 6 }, (_, c) => [c * 1000 + 1, -(c * 1000) - 1, c]);
  const six = parseWav(writeWav(channels, { encoding: 'pcm16', sampleRate: 48000 }));
  assert.equal(six.channels.length, 6);
  six.channels.forEach((ch, c) => assertDecoded(ch, channels[c].map((v) => v / 32768), `channel ${c}`));

  for (const encoding of ['pcm16', 'pcm24', 'pcm32', 'float32', 'float64'] as const) {
    const { stored, decoded } = CASES[encoding];
    const rifx = parseWav(writeWav([stored], { encoding, sampleRate: 8000, bigEndian: true }), 'rifx.wav');
    assertDecoded(rifx.channels[0], decoded, `RIFX ${encoding}`);
  }

  const file = writeWav([[1, 2, 3]], { encoding: 'pcm16', sampleRate: 16000 });
  const padded = new Uint8Array(file.length + 7);
  padded.set(file, 5);
  const fromView = parseWav(padded.subarray(5, 5 + file.length));
  assertDecoded(fromView.channels[0], [1 / 32768, 2 / 32768, 3 / 32768], 'view');
  const fromBuffer = parseWav(file.slice().buffer as ArrayBuffer);
  assertDecoded(fromBuffer.channels[0], [1 / 32768, 2 / 32768, 3 / 32768], 'ArrayBuffer');
});

test('LIST and other chunks are skipped, odd-sized chunks padded', () => {
  const extraChunks = [
    { id: 'LIST', body: new TextEncoder().encode('INFOISFT\x05\x00\x00\x00Lavf\x00') }, // 17 bytes: odd
    { id: 'fact', body: new Uint8Array([3, 0, 0, 0]) },
    { id: 'junk', body: new Uint8Array(3) },
  ];
  const wav = parseWav(writeWav([[100, -200, 300]], { encoding: 'pcm16', sampleRate: 16000, extraChunks }));
  assertDecoded(wav.channels[0], [100 / 32768, -200 / 32768, 300 / 32768], 'after chunks');
});

test('streamed WAVs: data size 0xFFFFFFFF or overlong is clamped to the file, whole frames only', () => {
  const stored = [1, 2, 3, 4];
  const streamed = parseWav(writeWav([stored], { encoding: 'pcm16', sampleRate: 16000, dataSizeField: 0xffffffff }));
  assertDecoded(streamed.channels[0], stored.map((v) => v / 32768), 'streamed');

  const overlong = parseWav(writeWav([stored, stored], { encoding: 'pcm24', sampleRate: 16000, dataSizeField: 1000 }));
  assertDecoded(overlong.channels[1], stored.map((v) => v / 8388608), 'overlong');

  // Cut mid-frame: the partial frame is dropped.
  const full = writeWav([stored, stored], { encoding: 'pcm16', sampleRate: 16000 });
  const cut = parseWav(full.subarray(0, full.length - 3));
  assert.equal(cut.channels[0].length, 3);
  assertDecoded(cut.channels[1], [1, 2, 3].map((v) => v / 32768), 'cut');
});

test('an empty data chunk gives empty channels (prepare reports it as empty audio)', () => {
  const wav = parseWav(writeWav([[]], { encoding: 'pcm16', sampleRate: 16000 }));
  assert.equal(wav.channels.length, 1);
  assert.equal(wav.channels[0].length, 0);
});

test('jfk.wav parses to 176000 samples at 16 kHz', (t) => {
  if (!existsSync(JFK)) return t.skip(`reference data absent: ${JFK}`);
  const wav = parseWav(readFileSync(JFK), JFK);
  assert.equal(wav.sampleRate, 16000);
  assert.equal(wav.channels.length, 1);
  assert.equal(wav.channels[0].length, 176000);
  const peak = wav.channels[0].reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.ok(peak > 0.1 && peak <= 1, `peak ${peak}`);
});

function assertAudioError(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => parseWav(bytes, 'clip.wav'),
    (e: unknown) => e instanceof AudioError && e.message.startsWith('clip.wav: ') && pattern.test(e.message),
    `expected AudioError matching ${pattern}`,
  );
}

test('malformed files give an AudioError naming the source and the problem', () => {
  const good = writeWav([[1, 2, 3]], { encoding: 'pcm16', sampleRate: 16000 });
  const edit = (f: (b: Uint8Array, v: DataView) => void) => {
    const b = good.slice();
    f(b, new DataView(b.buffer));
    return b;
  };
  const ascii = (s: string) => new TextEncoder().encode(s);

  assertAudioError(new Uint8Array(0), /truncated/);
  assertAudioError(good.subarray(0, 8), /truncated/);
  assertAudioError(ascii('OggS\0\0\0\0\0\0\0\0\0\0\0\0'), /not a WAV file.*RIFF/);
  assertAudioError(edit((b) => b.set(ascii('AVI '), 8)), /not a WAV file.*WAVE/);
  assertAudioError(good.subarray(0, 12), /no "fmt " chunk/);
  assertAudioError(good.subarray(0, 20 + 10), /truncated "fmt " chunk/);
  assertAudioError(edit((_, v) => v.setUint32(16, 12, true)), /truncated "fmt " chunk/);
  assertAudioError(good.subarray(0, 36), /no "data" chunk/);
  assertAudioError(edit((b) => b.set(ascii('dat4'), 36)), /no "data" chunk/);
  assertAudioError(edit((_, v) => v.setUint16(20, 2, true)), /unsupported format code 0x0002 \(Microsoft ADPCM\)/);
  assertAudioError(edit((_, v) => v.setUint16(20, 0x55, true)), /unsupported format code 0x0055 \(MP3\)/);
  assertAudioError(edit((_, v) => v.setUint16(20, 0x1234, true)), /unsupported format code 0x1234/);
  assertAudioError(edit((_, v) => v.setUint16(22, 0, true)), /0 channels/);
  assertAudioError(edit((_, v) => v.setUint32(24, 0, true)), /sample rate of 0/);
  assertAudioError(edit((_, v) => v.setUint16(34, 40, true)), /PCM sample size of 40 bits/);

  const float = writeWav([[0.5]], { encoding: 'float32', sampleRate: 16000 });
  const float16 = float.slice();
  new DataView(float16.buffer).setUint16(34, 16, true);
  assertAudioError(float16, /IEEE float sample size of 16 bits/);

  const ext = writeWav([[1]], { encoding: 'pcm16', sampleRate: 16000, extensible: true });
  const extAdpcm = ext.slice();
  new DataView(extAdpcm.buffer).setUint16(20 + 24, 2, true);
  assertAudioError(extAdpcm, /unsupported format code 0x0002/);
  const extShort = ext.slice();
  new DataView(extShort.buffer).setUint32(16, 18, true);
  assertAudioError(extShort, /EXTENSIBLE needs 40 bytes/);
});

test('without a source name the message still says what was wrong', () => {
  assert.throws(() => parseWav(new Uint8Array(4)), (e: unknown) => e instanceof AudioError && /WAV data: truncated/.test(e.message));
});
