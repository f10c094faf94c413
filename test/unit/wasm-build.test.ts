// The committed WebAssembly modules (src/kernels-wasm/generated) must be what the AssemblyScript
// sources compile to today: rebuild into a temporary directory and compare byte for byte. And the
// four builds of the one kernels module must differ only where they should.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KERNEL_BUILDS, KERNEL_THREADS_BUILDS, KERNELS_THREADS_MAXIMUM_PAGES } from '../../src/kernels-wasm/kernel-builds.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const committed = join(root, 'src/kernels-wasm/generated');
const VARIANTS = ['relaxed-simd', 'relaxed-simd-threads', 'simd', 'simd-threads'];

test('the generated WebAssembly modules are up to date with src/kernels-wasm/assembly', () => {
  const out = mkdtempSync(join(tmpdir(), 'murmur-wasm-'));
  try {
    const build = spawnSync(process.execPath, [join(root, 'scripts/build-wasm.mjs'), '--out', out], { cwd: root, encoding: 'utf8' });
    assert.equal(build.status, 0, `scripts/build-wasm.mjs failed:\n${build.stderr}`);
    const rebuilt = readdirSync(out).sort();
    assert.deepEqual(rebuilt, VARIANTS.map((v) => `kernels-${v}.wasm.ts`).sort());
    assert.deepEqual(readdirSync(committed).sort(), rebuilt, 'the committed files are exactly the built ones');
    for (const file of rebuilt) {
      assert.ok(
        readFileSync(join(out, file), 'utf8') === readFileSync(join(committed, file), 'utf8'),
        `src/kernels-wasm/generated/${file} is stale: run node scripts/build-wasm.mjs`,
      );
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

const bytesOf = (base64: string) => new Uint8Array(Buffer.from(base64, 'base64'));
const builds = {
  simd: bytesOf(KERNEL_BUILDS.simd),
  'relaxed-simd': bytesOf(KERNEL_BUILDS['relaxed-simd']),
  'simd-threads': bytesOf(KERNEL_THREADS_BUILDS.simd),
  'relaxed-simd-threads': bytesOf(KERNEL_THREADS_BUILDS['relaxed-simd']),
};

/** Ids of the module's top-level sections (11 is the data section). */
function sectionIds(bytes: Uint8Array): number[] {
  const ids: number[] = [];
  let at = 8;
  while (at < bytes.length) {
    ids.push(bytes[at++]!);
    let size = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = bytes[at++]!;
      size += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    at += size;
  }
  return ids;
}

test('only the relaxed builds use relaxed multiply-add', () => {
  // f32x4.relaxed_madd is the SIMD prefix 0xfd then LEB128(0x105) = 0x85 0x02.
  const relaxedMadd = Buffer.from([0xfd, 0x85, 0x02]);
  for (const [name, bytes] of Object.entries(builds)) {
    assert.equal(Buffer.from(bytes).includes(relaxedMadd), name.startsWith('relaxed'), `${name}: relaxed_madd present iff relaxed`);
  }
});

test('every build imports env.memory only, exports the kernels, and has no data segment to re-apply per thread', () => {
  const compiled = Object.entries(builds).filter(([, bytes]) => WebAssembly.validate(bytes));
  assert.ok(compiled.some(([name]) => name === 'simd'), 'the plain SIMD build compiles');
  assert.ok(compiled.some(([name]) => name === 'simd-threads'), 'the threaded SIMD build compiles');
  for (const [name, bytes] of compiled) {
    const module = new WebAssembly.Module(bytes);
    assert.deepEqual(WebAssembly.Module.imports(module), [{ module: 'env', name: 'memory', kind: 'memory' }], name);
    const exported = WebAssembly.Module.exports(module).map((e) => e.name);
    for (const kernel of ['heapBase', 'matmul', 'panelWidth', 'layerNorm', 'im2col', 'attention', 'attentionWorkUnits', 'attentionScratchBytes', 'addPositionalEmbedding', 'embed', 'logitsTopK']) {
      assert.ok(exported.includes(kernel), `${name} exports ${kernel}`);
    }
    assert.ok(!sectionIds(bytes).includes(11), `${name} has no data section`);
  }
});

test(`the threaded builds link against shared memories with any maximum up to ${KERNELS_THREADS_MAXIMUM_PAGES} pages`, () => {
  const script = readFileSync(join(root, 'scripts/build-wasm.mjs'), 'utf8');
  assert.ok(script.includes(`const THREADS_MAXIMUM_PAGES = ${KERNELS_THREADS_MAXIMUM_PAGES};`), 'the build and kernel-builds.ts agree on the maximum');
  const module = new WebAssembly.Module(builds['simd-threads']);
  for (const maximum of [256, 16384, KERNELS_THREADS_MAXIMUM_PAGES]) {
    const memory = new WebAssembly.Memory({ initial: 1, maximum, shared: true });
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    assert.equal(typeof (instance.exports.heapBase as () => number)(), 'number');
  }
  assert.throws(() => new WebAssembly.Instance(module, { env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 256 }) } }), /shared/);
  const plain = new WebAssembly.Module(builds.simd);
  assert.throws(() => new WebAssembly.Instance(plain, { env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 256, shared: true }) } }), /shared/);
});
