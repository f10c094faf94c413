#!/usr/bin/env node
// `npm run bench [-- --quick] [--only NAME[,NAME]] [--threads N]`: runs bench/run.ts (through tsx)
// with WebAssembly relaxed SIMD enabled where Node 20 still keeps it behind a flag.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function wasmFlags() {
  const v8 = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
  return v8.status === 0 && v8.stdout.includes('--experimental-wasm-relaxed-simd') ? ['--experimental-wasm-relaxed-simd'] : [];
}

const result = spawnSync(process.execPath, [...wasmFlags(), '--import', 'tsx', 'bench/run.ts', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
if (result.error) console.error(`could not run the benchmark: ${result.error.message}`);
process.exit(result.status ?? 1);
