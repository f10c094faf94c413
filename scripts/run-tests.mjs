#!/usr/bin/env node
// Runs every test file under test/ with Node's test runner (TypeScript through tsx).
// `npm test -- <words>` runs only the files whose path contains one of the words.
// The package is built first (into a clean dist/), because test/unit/package-exports.test.ts
// imports 'murmur' from dist/, and a full run type-checks everything (src, tests, scripts, demo).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { delimiter, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filters = process.argv.slice(2);
// Debian's Chromium ships SwiftShader (a CPU Vulkan driver) and a Vulkan loader.
const chromiumLibs = '/usr/lib/chromium';

function findTests(dir) {
  const found = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (entry.endsWith('.test.ts')) found.push(relative(root, path));
  }
  return found.sort();
}

function hasSystemVulkanLoader() {
  const cache = spawnSync('ldconfig', ['-p'], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/sbin:/usr/sbin` } });
  return cache.status === 0 && cache.stdout.includes('libvulkan.so.1');
}

function gpuEnvironment() {
  const env = {
    // Dawn (the `webgpu` package) finds SwiftShader through Chromium's Vulkan ICD.
    VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? join(chromiumLibs, 'vk_swiftshader_icd.json'),
    XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
  };
  // Dawn loads libvulkan.so.1 (Debian: libvulkan1, which .ci/run installs); without it, use the
  // copy beside Chromium. The loader reads LD_LIBRARY_PATH at start-up, so it is set for the child.
  if (!hasSystemVulkanLoader() && existsSync(join(chromiumLibs, 'libvulkan.so.1'))) {
    env.LD_LIBRARY_PATH = [process.env.LD_LIBRARY_PATH, chromiumLibs].filter(Boolean).join(delimiter);
  }
  return env;
}

// Node 20 has WebAssembly relaxed SIMD behind a V8 flag (later versions ship it; the flag stays
// harmless while V8 still lists it): enable it so the relaxed-SIMD kernels are tested too.
function wasmFlags() {
  const v8 = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
  return v8.status === 0 && v8.stdout.includes('--experimental-wasm-relaxed-simd') ? ['--experimental-wasm-relaxed-simd'] : [];
}

const files = findTests(join(root, 'test')).filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

const env = { ...process.env, ...gpuEnvironment() };

rmSync(join(root, 'dist'), { recursive: true, force: true });
const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit', env });
if (build.status !== 0) {
  console.error('build failed (npm run build): no tests were run');
  process.exit(build.status ?? 1);
}

// Type errors in tests or scripts would otherwise go unnoticed: tsx strips types without checking.
if (filters.length === 0) {
  const typecheck = spawnSync('npm', ['run', '--silent', 'typecheck'], { cwd: root, stdio: 'inherit', env });
  if (typecheck.status !== 0) {
    console.error('type check failed (npm run typecheck): no tests were run');
    process.exit(typecheck.status ?? 1);
  }
}

const started = Date.now();
const result = spawnSync(
  process.execPath,
  [...wasmFlags(), '--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit', env },
);
console.log(`\n${files.length} test files in ${((Date.now() - started) / 1000).toFixed(1)} s`);
if (result.error) console.error(`could not run the tests: ${result.error.message}`);
process.exit(result.status ?? 1);
