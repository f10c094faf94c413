// `npm run bench`: the machine's WASM SIMD peak, then every entry of bench/entries.ts (peers and
// Murmur's own backends) in one headless Chromium, printed as one report and written to
// bench/results/latest.json.
//   --quick          tiny.en only, fewer repeats
//   --only a,b       only these entries ('peak' names the peak measurement)
//   --threads N      threads for every CPU engine (default: the machine's cores)
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startBrowserSession, type BrowserSession } from '../test/browser/harness.ts';
import { benchSpeech, type BenchSpeech } from './audio.ts';
import { BENCH_ENTRIES } from './entries.ts';
import { peakInChromium, peakInNode, type PeakResult } from './peak.ts';
import { formatReport, type BenchReport, type EntryResult } from './report.ts';
import type { BenchContext } from './types.ts';

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), 'results');

function parseOptions() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      threads: { type: 'string' },
    },
  });
  const only = (values.only ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  const known = ['peak', ...BENCH_ENTRIES.map((e) => e.name)];
  const unknown = only.filter((name) => !known.includes(name));
  if (unknown.length > 0) throw new Error(`--only ${unknown.join(',')}: unknown (known: ${known.join(', ')})`);
  const threads = values.threads === undefined ? availableParallelism() : Number(values.threads);
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`--threads ${values.threads}: give a whole number ≥ 1`);
  return { quick: values.quick ?? false, only, threads };
}

async function main(): Promise<void> {
  const options = parseOptions();
  const selected = (name: string) => options.only.length === 0 || options.only.includes(name);
  const log = (message: string) => console.error(message);

  let session: Promise<BrowserSession> | undefined;
  let speech: Promise<BenchSpeech> | undefined;
  const context: BenchContext = {
    threads: options.threads,
    quick: options.quick,
    session: () => (session ??= startBrowserSession()),
    speech: () => (speech ??= benchSpeech()),
    log,
  };

  const report: BenchReport = {
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? 'unknown CPU', cores: availableParallelism(), node: process.versions.node, loadAverage: { start: loadavg()[0]! } },
    options,
    peak: [],
    results: [],
    notes: [],
  };

  try {
    if (selected('peak')) {
      log('peak: WASM SIMD f32 throughput in Node and Chromium');
      const target = { targetSeconds: options.quick ? 0.25 : 0.5 };
      const measured: PeakResult[] = [];
      for (const run of [() => peakInNode(options.threads, target), () => peakInChromium(context, target)]) {
        try {
          const { results, notes } = await run();
          measured.push(...results);
          report.notes.push(...notes);
        } catch (error) {
          report.notes.push(`peak: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      report.peak = measured;
    }
    for (const entry of BENCH_ENTRIES.filter((e) => selected(e.name))) {
      log(`${entry.name}:`);
      const started = Date.now();
      let results: EntryResult[];
      try {
        results = (await entry.run(context)).map((r) => ({ ...r, entry: entry.name, kind: entry.kind }));
      } catch (error) {
        results = [{ entry: entry.name, kind: entry.kind, peer: entry.name, backend: 'wasm', threads: options.threads, error: error instanceof Error ? error.message : String(error) }];
      }
      for (const r of results) if (r.error) log(`  ${entry.name}${r.model ? ` ${r.model}` : ''}: not measured: ${r.error.split('\n')[0]}`);
      log(`  (${((Date.now() - started) / 1000).toFixed(0)} s)`);
      report.results.push(...results);
    }
    if (session) report.machine.chromium = (await session).browser.version();
  } finally {
    if (session) await (await session.catch(() => undefined))?.close().catch((error) => log(`closing the browser session: ${error}`));
  }

  report.machine.loadAverage.end = loadavg()[0];
  await mkdir(resultsDir, { recursive: true });
  const ignore = join(resultsDir, '.gitignore');
  if (!existsSync(ignore)) await writeFile(ignore, '*\n!.gitignore\n');
  await writeFile(join(resultsDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log(formatReport(report));
  console.log(`\n(written to ${join(resultsDir, 'latest.json')})`);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
