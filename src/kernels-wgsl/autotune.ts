/**
 * A bounded micro-benchmark that picks, per op, the fastest kernel variant on this device for a
 * model's real shapes (variants.ts lists them). Each op is timed on a slice of its real shape
 * (a few query or activation rows against the full keys and weights), so the whole measurement
 * fits a budget of about a second even on a CPU emulation where one full encoder matmul takes
 * seconds. The budget covers pipeline compilation too (seconds per shader on SwiftShader): a
 * candidate is tried only while the time left covers what the last one cost, the rest keep the
 * adapter's guess and are reported as skipped. Results are cached in memory per adapter, runtime,
 * Murmur version and shape, and kept across sessions by a VariantStore (autotune-store.ts:
 * IndexedDB in browsers, a file in Node); the execution plan reuses them (tunedVariantsFor).
 */
import { recordAttention } from './attention.ts';
import { recordLayerNorm } from './layernorm.ts';
import { matmulVariant, recordMatmul, uploadLinearWeights } from './matmul.ts';
import {
  deviceAdapterFacts,
  selectVariants,
  setKernelVariants,
  type AttentionVariant,
  type FewRowsMatmulVariant,
  type KernelVariants,
  type LayerNormVariantName,
  type ManyRowsMatmulVariant,
} from './variants.ts';
import { autotuneKey, cachedVariants, hiddenOf, rememberVariants, type AutotuneShapes, type VariantStore } from './autotune-cache.ts';
export {
  autotuneKey,
  autotuneShapes,
  clearAutotuneCache,
  defaultVariantStore,
  fileVariantStore,
  indexedDbVariantStore,
  restoreTunedVariants,
  tunedVariantsFor,
  variantCacheKey,
  type AutotuneShapes,
  type VariantStore,
} from './autotune-cache.ts';
import { beginRecording, createStorage, runRecorded, submitRecording, uploadStorage, type GpuRecording } from './wgsl-common.ts';



export interface AutotuneOptions {
  /** Wall-clock budget for all measurements, warm-ups included (default 1000 ms). */
  budgetMs?: number;
  store?: VariantStore;
  /** Set the winners as the device's variants (default true). */
  apply?: boolean;
}

export interface AutotuneTiming {
  op: 'matmul' | 'layerNorm' | 'attention' | 'fewRows';
  variant: string;
  /** Best time of one run on the sampled shape. */
  ms: number;
  /** What measuring it cost: compilation, warm-up and timed run. */
  costMs: number;
}

export interface AutotuneResult {
  variants: KernelVariants;
  timings: AutotuneTiming[];
  /** Served from the in-memory cache or the store, without measuring. */
  cached: boolean;
  key: string;
  /** Candidates not measured because the budget was spent (their op keeps the best measured, or the guess). */
  skipped: { op: AutotuneTiming['op']; variant: string }[];
  /** Time spent measuring, compilation included. */
  spentMs: number;
}

export const MATMUL_CANDIDATES: readonly ManyRowsMatmulVariant[] = [
  { kind: 'tiled', vectorX: true },
  { kind: 'register', rowsPerThread: 4, colsPerThread: 8, workgroup: 64, vectorX: true },
  { kind: 'register', rowsPerThread: 8, colsPerThread: 4, workgroup: 64, vectorX: true },
  { kind: 'register', rowsPerThread: 8, colsPerThread: 8, workgroup: 64, vectorX: true },
];
const LAYER_NORM_CANDIDATES: readonly LayerNormVariantName[] = ['workgroup', 'thread'];
const FEW_ROWS_CANDIDATES: readonly FewRowsMatmulVariant[] = ['split', 'columns'];
// rows2 is left out: never faster than rows4 here, and each candidate costs a pipeline compilation.
const ATTENTION_CANDIDATES: readonly AttentionVariant[] = ['flash', 'rows4', 'rows8'];

/** Rows of the sampled shapes: enough to fill a GPU's cores, few enough for an emulation. */
const SAMPLE_ROWS = 64;





function describe(variant: ManyRowsMatmulVariant | string): string {
  if (typeof variant === 'string') return variant;
  return variant.kind === 'tiled' ? 'tiled' : `register ${variant.rowsPerThread}×${variant.colsPerThread} wg${variant.workgroup}`;
}

/** Candidates with the adapter's guess first, so it is measured even when the budget runs out. */
function guessFirst<T>(candidates: readonly T[], guess: T, same: (a: T, b: T) => boolean): T[] {
  return [guess, ...candidates.filter((c) => !same(c, guess))];
}

/**
 * Measures each op's variants on the device (the adapter's guess first), returns the fastest and,
 * unless `apply` is false, makes them the device's variants. Never throws for a variant that
 * fails to compile or run: that variant is skipped.
 */
export async function autotuneKernels(device: GPUDevice, shapes: AutotuneShapes, options: AutotuneOptions = {}): Promise<AutotuneResult> {
  const key = autotuneKey(device, shapes);
  const apply = (variants: KernelVariants) => {
    if (options.apply !== false) setKernelVariants(device, variants);
    return variants;
  };
  const remembered = cachedVariants(key) ?? (await options.store?.load(key).catch(() => undefined));
  if (remembered) {
    rememberVariants(key, remembered);
    return { variants: apply(remembered), timings: [], cached: true, key, skipped: [], spentMs: 0 };
  }

  const budgetMs = options.budgetMs ?? 1000;
  const started = performance.now();
  const deadline = started + budgetMs;
  const skipped: AutotuneResult['skipped'] = [];
  // What the last candidate cost (compilation, warm-up, timed run): the next is tried only if that much is left.
  const cost = { lastMs: 0 };
  const guess = selectVariants(deviceAdapterFacts(device), device.limits, device.features as ReadonlySet<string>);
  const timings: AutotuneTiming[] = [];
  const fixture = createFixture(device, shapes);
  try {
    // Each op gets its share of what is left, so a slow first op cannot starve the others:
    // matmul and attention dominate an encoder pass, layer norm is cheap to measure.
    const weights = [0.4, 0.1, 0.4, 0.1];
    const share = (done: number) => ((deadline - performance.now()) * weights[done]!) / weights.slice(done).reduce((a, b) => a + b, 0);

    const matmul = await fastest(
      device,
      'matmul',
      guessFirst(MATMUL_CANDIDATES, guess.matmul, (a, b) => describe(a) === describe(b)),
      (variant) => (recording) => fixture.matmul(recording, { ...variant, vectorX: shapes.width % 4 === 0 } as ManyRowsMatmulVariant),
      share(0),
      { timings, skipped, cost },
    );
    const layerNorm = await fastest(
      device,
      'layerNorm',
      guessFirst(LAYER_NORM_CANDIDATES, guess.layerNorm, (a, b) => a === b),
      (variant) => (recording) => fixture.layerNorm(recording, variant),
      share(1),
      { timings, skipped, cost },
    );
    const attention = await fastest(
      device,
      'attention',
      guessFirst(ATTENTION_CANDIDATES, guess.attention, (a, b) => a === b),
      (variant) => (recording) => fixture.attention(recording, variant),
      share(2),
      { timings, skipped, cost },
    );
    const fewRows = await fastest(
      device,
      'fewRows',
      guessFirst(FEW_ROWS_CANDIDATES, guess.fewRows, (a, b) => a === b),
      (variant) => (recording) => fixture.fewRows(recording, variant),
      share(3),
      { timings, skipped, cost },
    );
    const variants: KernelVariants = {
      matmul: matmul ?? guess.matmul,
      fewRows: fewRows ?? guess.fewRows,
      // Not measured (yet): the adapter's guess.
      conv: guess.conv,
      layerNorm: layerNorm ?? guess.layerNorm,
      attention: attention ?? guess.attention,
      source: 'tuned',
    };
    rememberVariants(key, variants);
    await options.store?.save(key, variants).catch(() => undefined);
    return { variants: apply(variants), timings, cached: false, key, skipped, spentMs: performance.now() - started };
  } finally {
    fixture.destroy();
  }
}

interface Measurements {
  timings: AutotuneTiming[];
  skipped: AutotuneResult['skipped'];
  cost: { lastMs: number };
}

async function fastest<T>(
  device: GPUDevice,
  op: AutotuneTiming['op'],
  candidates: readonly T[],
  record: (variant: T) => (recording: GpuRecording) => void,
  budgetMs: number,
  { timings, skipped, cost }: Measurements,
): Promise<T | undefined> {
  const deadline = performance.now() + budgetMs;
  let best: { variant: T; ms: number } | undefined;
  for (const [index, variant] of candidates.entries()) {
    // Only while the op's share still covers what the last candidate cost, compilation included:
    // a shader compile cannot be interrupted once begun.
    if (performance.now() + cost.lastMs >= deadline) {
      for (const rest of candidates.slice(index)) skipped.push({ op, variant: describe(rest as ManyRowsMatmulVariant | string) });
      break;
    }
    const work = record(variant);
    const began = performance.now();
    let ms: number;
    try {
      // Warm-up: compiles the pipeline, and reports a variant that does not run on this device.
      await runRecorded(device, `autotune ${op}`, work);
      await device.queue.onSubmittedWorkDone();
      ms = performance.now() - began;
    } catch {
      cost.lastMs = performance.now() - began;
      continue;
    }
    // A timed run when it fits; otherwise the warm-up (compilation included) stands for it, which
    // only ever favours variants already measured.
    if (performance.now() + ms < deadline) {
      const timed = performance.now();
      const recording = beginRecording(device, `autotune ${op}`);
      work(recording);
      submitRecording(recording);
      await device.queue.onSubmittedWorkDone();
      ms = Math.min(ms, performance.now() - timed);
    }
    cost.lastMs = performance.now() - began;
    timings.push({ op, variant: describe(variant as ManyRowsMatmulVariant | string), ms, costMs: cost.lastMs });
    if (!best || ms < best.ms) best = { variant, ms };
  }
  return best?.variant;
}

interface Fixture {
  matmul(recording: GpuRecording, variant: ManyRowsMatmulVariant): void;
  layerNorm(recording: GpuRecording, variant: LayerNormVariantName): void;
  attention(recording: GpuRecording, variant: AttentionVariant): void;
  fewRows(recording: GpuRecording, variant: FewRowsMatmulVariant): void;
  destroy(): void;
}

/**
 * Inputs for the sampled shapes: SAMPLE_ROWS rows through the MLP's first (largest) weight, and
 * those queries of one head against every key (heads only multiply the work).
 */
function createFixture(device: GPUDevice, shapes: AutotuneShapes): Fixture {
  const { width, heads } = shapes;
  const hidden = hiddenOf(shapes);
  const rows = Math.min(shapes.rows, SAMPLE_ROWS);
  const keys = shapes.rows;
  const values = (count: number, seed: number) => Float32Array.from({ length: count }, (_, i) => Math.sin(i * 0.37 + seed) * 0.5);
  const x = uploadStorage(device, 'autotune x', values(keys * width, 1));
  const key = uploadStorage(device, 'autotune key', values(keys * width, 2));
  const value = uploadStorage(device, 'autotune value', values(keys * width, 3));
  const gamma = uploadStorage(device, 'autotune gamma', values(width, 4));
  const beta = uploadStorage(device, 'autotune beta', values(width, 5));
  const output = createStorage(device, 'autotune output', Math.max(rows * hidden, keys * width));
  const weights = uploadLinearWeights(device, values(hidden * width, 6), hidden, width, values(hidden, 7), { label: 'autotune' });
  return {
    matmul: (recording, variant) => recordMatmul(recording, { x, m: rows, weights, output, variant }),
    layerNorm: (recording, variant) => recordLayerNorm(recording, { x, rows, cols: width, gamma, beta, output, variant }),
    attention: (recording, variant) =>
      recordAttention(recording, {
        q: x,
        rows,
        cols: width / heads,
        heads: 1,
        sequences: 1,
        key,
        value,
        capacity: keys,
        length: keys,
        shared: true,
        output,
        variant,
      }),
    // One decoder row through the same weight; 'split' is whatever split-K gemv the device would run.
    fewRows: (recording, variant) => {
      const vectorX = width % 4 === 0;
      const split = matmulVariant(1, hidden, width, device.features as ReadonlySet<string>);
      recordMatmul(recording, { x, m: 1, weights, output, variant: variant === 'columns' ? { kind: 'columns', rows: 1, vectorX } : split });
    },
    destroy() {
      for (const buffer of [x, key, value, gamma, beta, output]) buffer.destroy();
      weights.destroy();
    },
  };
}
