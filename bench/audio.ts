// The benchmark's input: 30 s of synthetic English speech (espeak-ng, resampled by sox to 16 kHz
// mono 16-bit PCM), generated once and cached under the OS temp dir, so every engine hears the
// same audio without the repository shipping a recording.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseWav } from '../src/core/audio/wav.ts';

export const BENCH_SAMPLE_RATE = 16_000;
export const BENCH_SECONDS = 30;

// Plain prose long enough to fill 30 s at espeak-ng's default rate; sox pads or cuts to exactly 30 s.
const SCRIPT = [
  'The quick brown fox jumps over the lazy dog, and the dog does not seem to mind at all.',
  'Every morning the small bakery on the corner opens its doors at six, and the smell of fresh bread fills the street.',
  'Scientists measured the temperature of the lake for twelve years and found that it rose by almost two degrees.',
  'If you want to travel by train tomorrow, please buy your ticket before nine o\'clock in the evening.',
  'The museum will be closed on Monday while the workers repair the roof and paint the long hallway.',
  'She played the piano for an hour, then walked to the library to return three books about ancient ships.',
].join(' ');

export interface BenchSpeech {
  /** The cached 16 kHz mono 16-bit WAV file. */
  path: string;
  /** Exactly BENCH_SECONDS × BENCH_SAMPLE_RATE samples in [-1, 1). */
  samples: Float32Array;
}

/** Directory of the benchmark's generated inputs: $MURMUR_BENCH_CACHE, else murmur-bench in the OS temp dir. */
export function benchCacheDir(): string {
  return process.env.MURMUR_BENCH_CACHE ?? join(tmpdir(), 'murmur-bench');
}

function requireTool(name: string, probe: string[]): void {
  const result = spawnSync(name, probe, { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new Error(`the benchmark makes its speech with espeak-ng and sox, but \`${name}\` is not usable here (${result.error?.message ?? result.stderr.trim()}): install it (Debian: apt-get install espeak-ng sox)`);
  }
}

function run(name: string, args: string[]): void {
  const result = spawnSync(name, args, { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new Error(`${name} ${args.join(' ')} failed: ${result.error?.message ?? result.stderr.trim()}`);
  }
}

/** The benchmark speech, made on first use and read from the cache afterwards. */
export async function benchSpeech(cacheDir = benchCacheDir()): Promise<BenchSpeech> {
  const key = createHash('sha256').update(JSON.stringify({ SCRIPT, BENCH_SECONDS, BENCH_SAMPLE_RATE })).digest('hex').slice(0, 16);
  const path = join(cacheDir, `speech-${BENCH_SECONDS}s-${key}.wav`);
  if (!existsSync(path)) {
    requireTool('espeak-ng', ['--version']);
    requireTool('sox', ['--version']);
    await mkdir(cacheDir, { recursive: true });
    const raw = `${path}.espeak-${process.pid}.wav`;
    const staged = `${path}.tmp-${process.pid}.wav`;
    try {
      run('espeak-ng', ['-v', 'en-us', '-w', raw, SCRIPT]);
      run('sox', [raw, '-r', String(BENCH_SAMPLE_RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', staged, 'pad', '0', String(BENCH_SECONDS), 'trim', '0', String(BENCH_SECONDS)]);
      await rename(staged, path);
    } finally {
      await rm(raw, { force: true });
      await rm(staged, { force: true });
    }
  }
  const audio = parseWav(await readFile(path), path);
  const samples = audio.channels[0];
  const expected = BENCH_SECONDS * BENCH_SAMPLE_RATE;
  if (audio.sampleRate !== BENCH_SAMPLE_RATE || audio.channels.length !== 1 || !samples || samples.length !== expected) {
    throw new Error(`${path} is not ${BENCH_SECONDS} s of 16 kHz mono audio (${audio.sampleRate} Hz, ${audio.channels.length} channels, ${samples?.length ?? 0} samples): delete it to regenerate`);
  }
  return { path, samples };
}
