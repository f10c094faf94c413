// The machine's peak f32 SIMD throughput as WebAssembly sees it: a module, written here byte by
// byte, whose loop updates many independent f32x4 accumulators (acc = acc·m + a), either as
// f32x4.mul + f32x4.add or as one relaxed_madd. Independent chains hide the instructions'
// latency, so the loop is bound by the FP ports alone. Runs in Node and in browsers (no imports).

export type PeakVariant = 'mul+add' | 'relaxed_madd';

/** Independent accumulators: enough to cover 2 ports × 4-cycle latency, few enough to stay in 16 XMM registers. */
export const ACCUMULATORS = 12;
/** Accumulator sweeps per loop trip, so the counter and branch are noise. */
const UNROLL = 8;
/** mul + add on 4 lanes for each accumulator update. */
export const FLOPS_PER_ITERATION = ACCUMULATORS * UNROLL * 4 * 2;

const SIMD = 0xfd;
const OP = {
  block: 0x02,
  loop: 0x03,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  localGet: 0x20,
  localSet: 0x21,
  i32Const: 0x41,
  f32Const: 0x43,
  i32Eqz: 0x45,
  i32Sub: 0x6b,
} as const;
const SIMD_OP = { f32x4Splat: 0x13, f32x4ExtractLane: 0x1f, f32x4Add: 0xe4, f32x4Mul: 0xe6, f32x4RelaxedMadd: 0x105 } as const;
const TYPE = { i32: 0x7f, f32: 0x7d, v128: 0x7b, func: 0x60 } as const;

function uleb(value: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    bytes.push(byte);
  } while (value !== 0);
  return bytes;
}

function f32(value: number): number[] {
  return [...new Uint8Array(new Float32Array([value]).buffer)];
}

function simd(op: number): number[] {
  return [SIMD, ...uleb(op)];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vector(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/** `run(iterations: i32) -> f32`: the FMA loop; the result keeps the work observable. */
export function peakModuleBytes(variant: PeakVariant): Uint8Array<ArrayBuffer> {
  const counter = 0; // the parameter
  const multiplier = 1;
  const addend = 2;
  const acc = (i: number) => 3 + i;
  const code: number[] = [];
  const splat = (value: number, local: number) => code.push(OP.f32Const, ...f32(value), ...simd(SIMD_OP.f32x4Splat), OP.localSet, local);
  // acc → acc·0.9999 + 1e-4 converges to 1: no overflow and no subnormals, whatever the count.
  splat(0.9999, multiplier);
  splat(1e-4, addend);
  for (let i = 0; i < ACCUMULATORS; i++) splat(0.5 + i / 64, acc(i));
  code.push(OP.block, 0x40, OP.loop, 0x40);
  code.push(OP.localGet, counter, OP.i32Eqz, OP.brIf, 1);
  for (let u = 0; u < UNROLL; u++) {
    for (let i = 0; i < ACCUMULATORS; i++) {
      if (variant === 'relaxed_madd') {
        code.push(OP.localGet, acc(i), OP.localGet, multiplier, OP.localGet, addend, ...simd(SIMD_OP.f32x4RelaxedMadd));
      } else {
        code.push(OP.localGet, acc(i), OP.localGet, multiplier, ...simd(SIMD_OP.f32x4Mul), OP.localGet, addend, ...simd(SIMD_OP.f32x4Add));
      }
      code.push(OP.localSet, acc(i));
    }
  }
  code.push(OP.localGet, counter, OP.i32Const, 1, OP.i32Sub, OP.localSet, counter, OP.br, 0, OP.end, OP.end);
  code.push(OP.localGet, acc(0));
  for (let i = 1; i < ACCUMULATORS; i++) code.push(OP.localGet, acc(i), ...simd(SIMD_OP.f32x4Add));
  code.push(...simd(SIMD_OP.f32x4ExtractLane), 0, OP.end);

  const locals = vector([[...uleb(2 + ACCUMULATORS), TYPE.v128]]);
  const body = [...locals, ...code];
  const name = [...new TextEncoder().encode('run')];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vector([[TYPE.func, ...vector([[TYPE.i32]]), ...vector([[TYPE.f32]])]])),
    ...section(3, vector([[0]])),
    ...section(7, vector([[...uleb(name.length), ...name, 0x00, 0]])),
    ...section(10, vector([[...uleb(body.length), ...body]])),
  ]);
}

/** Whether this engine compiles the variant (relaxed SIMD needs a flag on Node 20). */
export function peakVariantSupported(variant: PeakVariant): boolean {
  return WebAssembly.validate(peakModuleBytes(variant));
}

/**
 * The worker's source, plain JavaScript that runs as a browser Worker (from a Blob URL) and as a
 * Node worker thread (eval): it compiles the module it is sent, warms it up, and runs
 * `iterations` when told to go.
 */
export const PEAK_WORKER_SOURCE = `
const port = typeof postMessage === 'function' && typeof require === 'undefined'
  ? { post: (m) => postMessage(m), on: (f) => { onmessage = (e) => f(e.data); } }
  : (() => { const { parentPort } = require('node:worker_threads'); return { post: (m) => parentPort.postMessage(m), on: (f) => parentPort.on('message', f) }; })();
let run;
port.on((message) => {
  if (message.bytes) {
    run = new WebAssembly.Instance(new WebAssembly.Module(message.bytes)).exports.run;
    // V8 starts in its baseline compiler and swaps in the optimized code between calls (no
    // on-stack replacement in WebAssembly), so call it in short bursts until that has happened.
    const warmUntil = Date.now() + 400;
    while (Date.now() < warmUntil) run(20000);
    port.post({ ready: true });
  } else {
    const checksum = run(message.iterations);
    port.post({ done: true, checksum });
  }
});
`;

/** What a runner needs from a worker, in Node or a browser. */
export interface PeakWorker {
  send(message: unknown): void;
  next(): Promise<{ ready?: boolean; done?: boolean; checksum?: number }>;
  terminate(): void;
}

export interface PeakMeasurement {
  variant: PeakVariant;
  threads: number;
  gflops: number;
  seconds: number;
}

/** Wall time of `threads` workers each running `iterations` at once; the best of `repeats`. */
export async function measurePeak(
  variant: PeakVariant,
  threads: number,
  spawn: () => PeakWorker,
  now: () => number,
  { targetSeconds = 0.5, repeats = 3 }: { targetSeconds?: number; repeats?: number } = {},
): Promise<PeakMeasurement> {
  const bytes = peakModuleBytes(variant);
  const workers = Array.from({ length: threads }, spawn);
  try {
    await Promise.all(workers.map(async (worker) => {
      worker.send({ bytes });
      await worker.next();
    }));
    const timeRound = async (iterations: number): Promise<number> => {
      const start = now();
      const replies = workers.map((worker) => worker.next());
      for (const worker of workers) worker.send({ iterations });
      const results = await Promise.all(replies);
      if (results.some((r) => !Number.isFinite(r.checksum))) throw new Error(`the ${variant} peak kernel returned a non-finite checksum`);
      return (now() - start) / 1000;
    };
    // Calibrate so one round lasts about targetSeconds (message latency is then noise).
    let iterations = 10_000;
    for (let seconds = await timeRound(iterations); seconds < targetSeconds / 4; seconds = await timeRound(iterations)) {
      iterations = Math.min(2 ** 30, Math.ceil(iterations * Math.max(2, (targetSeconds / 2) / Math.max(seconds, 1e-4))));
    }
    const calibrated = await timeRound(iterations);
    iterations = Math.max(1, Math.min(2 ** 30, Math.round((iterations * targetSeconds) / calibrated)));
    let best = Infinity;
    for (let i = 0; i < repeats; i++) best = Math.min(best, await timeRound(iterations));
    const flops = FLOPS_PER_ITERATION * iterations * threads;
    return { variant, threads, gflops: flops / best / 1e9, seconds: best };
  } finally {
    for (const worker of workers) worker.terminate();
  }
}

/** A PeakWorker over a worker's postMessage and its message and error events. */
export function messageQueue(
  post: (message: unknown) => void,
  subscribe: (onMessage: (data: unknown) => void, onError: (error: unknown) => void) => void,
  terminate: () => void,
): PeakWorker {
  const waiting: { resolve: (data: never) => void; reject: (error: unknown) => void }[] = [];
  const arrived: unknown[] = [];
  let failure: unknown;
  subscribe(
    (data) => {
      const next = waiting.shift();
      if (next) next.resolve(data as never);
      else arrived.push(data);
    },
    (error) => {
      failure = error;
      for (const next of waiting.splice(0)) next.reject(error);
    },
  );
  return {
    send: post,
    next: () => {
      if (arrived.length > 0) return Promise.resolve(arrived.shift() as never);
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    terminate,
  };
}
