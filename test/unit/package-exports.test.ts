// The built package as a consumer sees it: `import ... from 'murmur'` resolves through
// package.json "exports" to dist/ (scripts/run-tests.mjs builds it first), offers at run time
// exactly what src/index.ts exports, and its declarations type-check those names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const packageJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const notBuilt = 'run `npm run build` first (npm test does)';

async function sourceExportNames(): Promise<string[]> {
  return Object.keys(await import('../../src/index.ts')).sort();
}

test('package.json points "exports" at files the build produced', () => {
  const entry = packageJson.exports?.['.'];
  assert.equal(packageJson.name, 'murmur');
  assert.ok(entry, 'package.json has exports["."]');
  for (const file of [entry.import, entry.types, packageJson.main, packageJson.types]) {
    assert.equal(typeof file, 'string');
    assert.ok(existsSync(join(root, file)), `${file} exists: ${notBuilt}`);
  }
  assert.ok(existsSync(join(root, 'dist/index.d.ts')), `dist/index.d.ts exists: ${notBuilt}`);
});

test("Node imports 'murmur' from dist with the names src/index.ts exports", async () => {
  const expected = await sourceExportNames();
  assert.ok(expected.includes('MurmurError'), 'src/index.ts exports MurmurError');
  const script = "const m = await import('murmur'); console.log(JSON.stringify(Object.keys(m).sort()));";
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, `importing 'murmur' failed (${notBuilt}):\n${run.stderr}`);
  assert.deepEqual(JSON.parse(run.stdout), expected, `dist/ is stale or differs from src/index.ts: ${notBuilt}`);
});

test('the declarations in dist/ type every runtime export for a consumer', async () => {
  const names = await sourceExportNames();
  // Inside the repository, 'murmur' resolves to the package itself through "exports".
  const dir = join(root, '.cache', 'package-exports');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'consumer.ts'),
    "import * as murmur from 'murmur';\n" +
      `export const names: (keyof typeof murmur)[] = ${JSON.stringify(names)};\n` +
      `// @ts-expect-error a name the package does not export\n` +
      `export const missing: keyof typeof murmur = 'notExportedByMurmur';\n`,
  );
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        lib: ['es2022', 'dom'],
        types: ['@webgpu/types'],
        skipLibCheck: true,
      },
      files: ['consumer.ts'],
    }),
  );
  try {
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const check = spawnSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    assert.equal(check.status, 0, `type-checking a consumer of dist/index.d.ts failed:\n${check.stdout}${check.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
