// The benchmark's report: what was measured (kept as JSON) and its tables, where every time is
// also given as a ratio to the fastest peer on the same model or shape (1.00 = as fast as it;
// 2.00 = twice its time), and every CPU GFLOP/s as a share of the measured peak.
import type { PeakResult } from './peak.ts';
import type { BenchEntry, BenchResult } from './types.ts';

export interface EntryResult extends BenchResult {
  entry: string;
  kind: BenchEntry['kind'];
}

export interface BenchReport {
  date: string;
  machine: { cpu: string; cores: number; node: string; chromium?: string; loadAverage: { start: number; end?: number } };
  options: { threads: number; quick: boolean; only: string[] };
  peak: PeakResult[];
  results: EntryResult[];
  notes: string[];
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const fixed = (value: number | undefined, digits: number) => (value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits));

/** Value over the smallest peer value among `candidates` (undefined when no peer measured it). */
function ratioToFastestPeer(value: number | undefined, candidates: { kind: string; value: number | undefined }[]): string {
  const peers = candidates.filter((c) => c.kind === 'peer' && c.value !== undefined && Number.isFinite(c.value) && c.value > 0).map((c) => c.value!);
  if (value === undefined || peers.length === 0) return '-';
  return (value / Math.min(...peers)).toFixed(2);
}

function modelName(result: BenchResult): string {
  return result.model?.split(' ')[0] ?? '';
}

/** The best measured WASM GFLOP/s at this thread count, Chromium's first (where the engines run). */
export function peakFor(peak: PeakResult[], threads: number): PeakResult | undefined {
  for (const where of ['chromium', 'node'] as const) {
    const candidates = peak.filter((p) => p.where === where && p.threads === threads);
    if (candidates.length > 0) return candidates.reduce((a, b) => (b.gflops > a.gflops ? b : a));
  }
  return undefined;
}

function engine(result: EntryResult): string {
  return result.kind === 'murmur' ? `${result.peer} [murmur]` : result.peer;
}

/** GPU entries run on the adapter's own threads. */
function threadsOf(result: BenchResult): string {
  return result.backend === 'webgpu' ? '-' : String(result.threads);
}

export function formatReport(report: BenchReport): string {
  const out: string[] = [];
  const { machine, options } = report;
  out.push(`Murmur benchmark, ${report.date}: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}${machine.chromium ? `, Chromium ${machine.chromium}` : ''}; ${options.threads} threads${options.quick ? ', --quick' : ''}`);
  // Other processes' load skews every number here; say how busy the machine was.
  out.push(`1-minute load average: ${machine.loadAverage.start.toFixed(1)} at the start, ${fixed(machine.loadAverage.end, 1)} at the end`);

  if (report.peak.length > 0) {
    out.push('', 'Peak f32 WASM SIMD throughput (independent f32x4 chains)');
    out.push(table(['where', 'instructions', 'threads', 'GFLOP/s'], report.peak.map((p) => [p.where, p.variant, String(p.threads), fixed(p.gflops, 1)])));
  }

  const whole = report.results.filter((r) => !r.error && (r.encoderMs !== undefined || r.decodeMsPerToken !== undefined));
  if (whole.length > 0) {
    out.push('', 'Whisper stages (× = time over the fastest peer on the same model)');
    const rows = whole
      .sort((a, b) => modelName(a).localeCompare(modelName(b)) || (a.encoderMs ?? Infinity) - (b.encoderMs ?? Infinity))
      .map((r) => {
        const same = whole.filter((o) => modelName(o) === modelName(r));
        return [
          engine(r), r.backend, r.model ?? '-', threadsOf(r),
          fixed(r.encoderMs, 0), ratioToFastestPeer(r.encoderMs, same.map((o) => ({ kind: o.kind, value: o.encoderMs }))),
          fixed(r.decodeMsPerToken, 2), ratioToFastestPeer(r.decodeMsPerToken, same.map((o) => ({ kind: o.kind, value: o.decodeMsPerToken }))),
        ];
      });
    out.push(table(['engine', 'backend', 'model', 'threads', 'encoder ms', '×', 'decode ms/token', '×'], rows));
  }

  const matmuls = report.results.flatMap((r) => (r.error ? [] : (r.matmul ?? []).map((m) => ({ result: r, timing: m }))));
  if (matmuls.length > 0) {
    out.push('', 'Encoder matmuls (× = time over the fastest peer on the same shape and backend; % peak = share of the measured WASM peak at that thread count)');
    const rows = matmuls
      .sort((a, b) => a.timing.label.localeCompare(b.timing.label) || a.result.backend.localeCompare(b.result.backend) || a.timing.ms - b.timing.ms)
      .map(({ result, timing }) => {
        const same = matmuls.filter((o) => o.timing.label === timing.label && o.result.backend === result.backend);
        const peak = result.backend === 'wasm' ? peakFor(report.peak, result.threads) : undefined;
        return [
          timing.label, engine(result), result.backend, threadsOf(result),
          fixed(timing.ms, 1), fixed(timing.gflops, 1), peak ? `${((100 * timing.gflops) / peak.gflops).toFixed(0)}%` : '-',
          ratioToFastestPeer(timing.ms, same.map((o) => ({ kind: o.result.kind, value: o.timing.ms }))),
        ];
      });
    out.push(table(['shape', 'engine', 'backend', 'threads', 'ms', 'GFLOP/s', '% peak', '×'], rows));
  }

  const failed = report.results.filter((r) => r.error);
  if (failed.length > 0) {
    out.push('', 'Not measured');
    for (const r of failed) out.push(`- ${r.entry}${r.model ? ` (${r.model})` : ''}: ${r.error}`);
  }

  const notes = [...report.notes, ...report.results.flatMap((r) => (r.notes ?? []).map((note) => `${r.entry}${r.model ? ` ${modelName(r)}` : ''}: ${note}`))];
  if (notes.length > 0) {
    out.push('', 'Notes');
    for (const note of notes) out.push(`- ${note}`);
  }
  return out.join('\n');
}
