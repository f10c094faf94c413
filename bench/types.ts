// What every benchmark entry (a peer engine, or one of Murmur's own backends) gets and returns.
import type { BrowserSession } from '../test/browser/harness.ts';
import type { BenchSpeech } from './audio.ts';
import type { LiveTimings } from './live-sim.ts';

export interface MatmulTiming {
  /** Encoder shape name, e.g. 'tiny.en mlp.0' */
  label: string;
  /** [m, k, n]: an m×k activation times a k×n weight. */
  shape: [number, number, number];
  ms: number;
  gflops: number;
}

/** One measured configuration of one engine. Times are per run of the stage they name. */
export interface BenchResult {
  /** Engine, e.g. 'whisper.cpp (@timur00kh/whisper.wasm)' or 'Murmur'. */
  peer: string;
  /** 'wasm' (CPU) or 'webgpu'. */
  backend: 'wasm' | 'webgpu';
  /** e.g. 'tiny.en f16 (synthetic)'; absent for kernel-only entries. */
  model?: string;
  threads: number;
  /** One encoder pass over a 30 s window. */
  encoderMs?: number;
  /** One decoder step for one token (one sequence). */
  decodeMsPerToken?: number;
  matmul?: MatmulTiming[];
  /** Live dictation latencies (the 'live' entry). */
  live?: LiveTimings;
  /** How the numbers were obtained, and their caveats. */
  notes?: string[];
  /** Set when the entry could not be measured: why, exactly. */
  error?: string;
}

export interface BenchContext {
  /** Threads every CPU engine is given (default: the machine's cores). */
  threads: number;
  /** Smaller models and fewer repeats. */
  quick: boolean;
  /** The shared headless Chromium and its server, started on first use. */
  session(): Promise<BrowserSession>;
  speech(): Promise<BenchSpeech>;
  log(message: string): void;
}

/**
 * A benchmark entry. bench/run.ts runs the list in bench/entries.ts; Murmur's own backends are
 * added there as entries like the peers.
 */
export interface BenchEntry {
  /** Short id for --only, e.g. 'whisper.cpp', 'ort-wasm'. */
  name: string;
  /** Peers set the baseline ratios are computed against; Murmur's entries are compared to them. */
  kind: 'peer' | 'murmur';
  run(context: BenchContext): Promise<BenchResult[]>;
}
