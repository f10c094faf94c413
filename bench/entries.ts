// Everything `npm run bench` measures besides the machine's peak, in order. Murmur's own
// backends are entries here too (kind 'murmur'): add them to this list, e.g.
//   { name: 'murmur-wasm', kind: 'murmur', run: async (context) => [{ peer: 'Murmur', backend: 'wasm', ... }] }
// and they appear in the same tables, with their ratios to the fastest peer.
import { ortWasmEntry, ortWebGpuEntry } from './peers/ort.ts';
import { shoutEntry, whisperWasmEntry } from './peers/whisper-cpp.ts';
import { murmurWasmEntry } from './murmur-wasm.ts';
import { murmurWebGpuEntry } from './murmur-webgpu.ts';
import { murmurLiveEntry } from './murmur-live.ts';
import type { BenchEntry } from './types.ts';

export const BENCH_ENTRIES: BenchEntry[] = [
  whisperWasmEntry,
  shoutEntry,
  ortWasmEntry,
  ortWebGpuEntry,
  murmurWasmEntry,
  murmurWebGpuEntry,
  murmurLiveEntry,
];
