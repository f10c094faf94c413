// The committed WebAssembly modules (src/kernels-wasm/generated) must be what the AssemblyScript
// sources compile to today: rebuild into a temporary directory and compare byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const committed = join(root, 'src/kernels-wasm/generated');

test('the generated WebAssembly modules are up to date with src/kernels-wasm/assembly', () => {
  const out = mkdtempSync(join(tmpdir(), 'murmur-wasm-'));
  try {
    const build = spawnSync(process.execPath, [join(root, 'scripts/build-wasm.mjs'), '--out', out], { cwd: root, encoding: 'utf8' });
    assert.equal(build.status, 0, `scripts/build-wasm.mjs failed:\n${build.stderr}`);
    const rebuilt = readdirSync(out).sort();
    assert.deepEqual(rebuilt, ['matmul-relaxed-simd.wasm.ts', 'matmul-simd.wasm.ts']);
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

test('the relaxed build uses relaxed multiply-add and the plain build does not', async () => {
  const { matmulSimdWasm } = await import('../../src/kernels-wasm/generated/matmul-simd.wasm.ts');
  const { matmulRelaxedSimdWasm } = await import('../../src/kernels-wasm/generated/matmul-relaxed-simd.wasm.ts');
  const plain = Buffer.from(matmulSimdWasm, 'base64');
  const relaxed = Buffer.from(matmulRelaxedSimdWasm, 'base64');
  // f32x4.relaxed_madd is the SIMD prefix 0xfd then LEB128(0x105) = 0x85 0x02.
  const relaxedMadd = Buffer.from([0xfd, 0x85, 0x02]);
  assert.ok(relaxed.includes(relaxedMadd), 'relaxed build contains f32x4.relaxed_madd');
  assert.ok(!plain.includes(relaxedMadd), 'plain build has no relaxed_madd');
  // Both import their memory from env.memory and export none (the relaxed one is checked where
  // this engine can compile it).
  const modules = [plain, relaxed].map((bytes) => new Uint8Array(bytes)).filter((bytes) => WebAssembly.validate(bytes));
  assert.ok(modules.length >= 1, 'the plain SIMD build compiles');
  for (const bytes of modules) {
    const module = new WebAssembly.Module(bytes);
    assert.deepEqual(WebAssembly.Module.imports(module), [{ module: 'env', name: 'memory', kind: 'memory' }]);
    assert.deepEqual(WebAssembly.Module.exports(module).map((e) => e.name).sort(), ['heapBase', 'matmul', 'panelWidth']);
  }
});
