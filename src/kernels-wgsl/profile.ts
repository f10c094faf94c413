/**
 * Per-op timing of the WebGPU backend. With the "timestamp-query" feature every compute pass gets
 * a begin and end timestamp (the recording's encoder is wrapped so each kernel's pass asks for
 * them), and a pass's time goes to the op that recorded it. Without the feature the backend
 * submits after every op and times each submission on the CPU, from its submit (or the previous
 * op's completion) to onSubmittedWorkDone: coarser, and the submissions are no longer batched.
 */

export interface ProfileRow {
  /** The WhisperOps op (linear, attention, ...), or 'read' for the readbacks. */
  op: string;
  totalMs: number;
  /**
   * totalMs over the sum of the kernel rows' totalMs. Host waits ('read') overlap the kernels
   * they wait for, so they are left out of the sum and have share 0.
   */
  share: number;
  /** Times the op was called. */
  calls: number;
  /** GPU passes timed for it (0 for host-side rows such as 'read'). */
  passes: number;
  /** 'gpu': timestamp queries around its kernels; 'cpu': CPU time around its submissions or waits. */
  timing: 'gpu' | 'cpu';
}

export type ProfileTiming = 'gpu' | 'cpu';

interface OpTotals {
  ns: number;
  calls: number;
  passes: number;
  timing: ProfileTiming;
}

/** Queries per query set: two per pass (begin, end). WebGPU caps a set at 4096. */
const QUERIES = 4096;

/** One recording's timestamp queries and which op owns each pass. */
export interface PassTimestamps {
  querySet: GPUQuerySet;
  /** Op of pass i (queries 2i, 2i + 1). */
  ops: string[];
  /** Passes past the query set's size, left untimed. */
  untimed: number;
}

export class OpProfiler {
  readonly timing: ProfileTiming;
  readonly #device: GPUDevice;
  readonly #totals = new Map<string, OpTotals>();
  readonly #pending = new Set<Promise<void>>();
  readonly #freeQuerySets: GPUQuerySet[] = [];
  #untimed = 0;
  #lastDone = 0;

  constructor(device: GPUDevice, timing: ProfileTiming) {
    this.#device = device;
    this.timing = timing;
  }

  countCall(op: string): void {
    this.#entry(op, op === 'read' ? 'cpu' : this.timing).calls++;
  }

  /** Adds host-measured time (readback waits; every op in CPU timing). */
  addCpuTime(op: string, ms: number, passes = 0): void {
    const entry = this.#entry(op, 'cpu');
    entry.ns += ms * 1e6;
    entry.passes += passes;
  }

  /** Fresh timestamp bookkeeping for one recording (GPU timing only). */
  beginTimestamps(): PassTimestamps {
    const querySet = this.#freeQuerySets.pop() ?? this.#device.createQuerySet({ type: 'timestamp', count: QUERIES, label: 'op timestamps' });
    return { querySet, ops: [], untimed: 0 };
  }

  /** The timestampWrites for the next pass, which belongs to `op`; undefined once the set is full. */
  passTimestamps(stamps: PassTimestamps, op: string): GPUComputePassTimestampWrites | undefined {
    const index = stamps.ops.length;
    if (2 * index + 1 >= QUERIES) {
      stamps.untimed++;
      return undefined;
    }
    stamps.ops.push(op);
    return { querySet: stamps.querySet, beginningOfPassWriteIndex: 2 * index, endOfPassWriteIndex: 2 * index + 1 };
  }

  /** Records the resolve and readback of the timestamps into `encoder` (before it is finished). */
  resolveTimestamps(encoder: GPUCommandEncoder, stamps: PassTimestamps): () => void {
    const count = 2 * stamps.ops.length;
    if (count === 0) {
      this.#freeQuerySets.push(stamps.querySet);
      return () => {};
    }
    const bytes = count * 8;
    const resolved = this.#device.createBuffer({ label: 'timestamps resolved', size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const readback = this.#device.createBuffer({ label: 'timestamps readback', size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.resolveQuerySet(stamps.querySet, 0, count, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, readback, 0, bytes);
    // Called once the encoder is submitted: read the times back in the background.
    return () => {
      this.#untimed += stamps.untimed;
      const done = readback
        .mapAsync(GPUMapMode.READ)
        .then(() => {
          const times = new BigInt64Array(readback.getMappedRange());
          stamps.ops.forEach((op, i) => {
            const entry = this.#entry(op, 'gpu');
            const elapsed = Number(times[2 * i + 1]! - times[2 * i]!);
            // Some implementations quantize or reorder timestamps slightly: never count negative time.
            entry.ns += Math.max(0, elapsed);
            entry.passes++;
          });
          readback.unmap();
        })
        .catch(() => {
          // A lost device loses its timings; the op that was running reports the loss.
        })
        .finally(() => {
          readback.destroy();
          resolved.destroy();
          this.#freeQuerySets.push(stamps.querySet);
          this.#pending.delete(done);
        });
      this.#pending.add(done);
    };
  }

  /** CPU timing: the submission just made holds `op`'s work (`passes` passes); time it to completion. */
  timeSubmission(op: string, passes: number, submittedAt: number): void {
    const done = this.#device.queue
      .onSubmittedWorkDone()
      .then(() => {
        const now = performance.now();
        // Submissions complete in order: this one's work began when the previous one finished.
        const start = Math.max(submittedAt, this.#lastDone);
        this.#lastDone = now;
        this.addCpuTime(op, now - start, passes);
      })
      .catch(() => {})
      .finally(() => this.#pending.delete(done));
    this.#pending.add(done);
  }

  /** Passes not timed because a recording had more than a query set holds. */
  get untimedPasses(): number {
    return this.#untimed;
  }

  /** The totals so far, once every timing in flight has come back; largest first. */
  async rows(): Promise<ProfileRow[]> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
    const total = [...this.#totals.entries()].reduce((sum, [op, entry]) => sum + (isHostOp(op) ? 0 : entry.ns), 0);
    return [...this.#totals.entries()]
      .map(([op, entry]) => ({
        op,
        totalMs: entry.ns / 1e6,
        share: total > 0 && !isHostOp(op) ? entry.ns / total : 0,
        calls: entry.calls,
        passes: entry.passes,
        timing: entry.timing,
      }))
      .sort((a, b) => b.totalMs - a.totalMs || a.op.localeCompare(b.op));
  }

  reset(): void {
    this.#totals.clear();
    this.#untimed = 0;
  }

  destroy(): void {
    for (const set of this.#freeQuerySets) set.destroy();
    this.#freeQuerySets.length = 0;
  }

  #entry(op: string, timing: ProfileTiming): OpTotals {
    let entry = this.#totals.get(op);
    if (!entry) this.#totals.set(op, (entry = { ns: 0, calls: 0, passes: 0, timing }));
    return entry;
  }
}

/** Ops timed on the host: waits for results, not work of their own. */
function isHostOp(op: string): boolean {
  return op === 'read';
}

/** The rows as an aligned text table, with a total line over the kernel rows. */
export function formatProfileTable(rows: readonly ProfileRow[]): string {
  const header = ['op', 'total ms', 'share', 'calls', 'ms/call', 'timing'];
  const body = rows.map((row) => [
    row.op,
    row.totalMs.toFixed(2),
    isHostOp(row.op) ? '-' : `${(row.share * 100).toFixed(1)}%`,
    String(row.calls),
    row.calls > 0 ? (row.totalMs / row.calls).toFixed(3) : '-',
    row.timing,
  ]);
  const kernels = rows.filter((row) => !isHostOp(row.op));
  const totalMs = kernels.reduce((sum, row) => sum + row.totalMs, 0);
  const calls = kernels.reduce((sum, row) => sum + row.calls, 0);
  body.push(['kernels', totalMs.toFixed(2), '100.0%', String(calls), '', '']);
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((cells) => cells[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
