/**
 * Whisper's log-mel spectrogram on WebGPU, the same computation as src/core/audio/mel.ts
 * (periodic Hann window of 400, hop 160, reflect padding of 200, |DFT|² over 201 bins, the last
 * frame dropped, Slaney filters, log10 floored at 1e-10, then at the global max − 8, then
 * (x + 4) / 4), written channel-first [nMels, nFrames] into a GPUBuffer the conv stem reads.
 *
 * Three dispatches:
 * 1. one workgroup per frame: window the frame into workgroup memory, fold it into its even and
 *    odd halves around the centre (x_i ± x_{400−i}, which halves the DFT's multiplications because
 *    cos is even and sin odd), one invocation per bin sums against a cos/sin table of the 400
 *    angles 2πj/400 (exact in double, rounded once), then applies the filters over each one's
 *    nonzero bins, takes log10 and leaves the frame's maximum;
 * 2. one workgroup reduces the frame maxima to the global maximum;
 * 3. every value is floored at max − 8 and scaled, in place.
 * A direct DFT rather than an FFT: 400 = 2⁴·5² needs mixed radices, and at 80 k multiply-adds per
 * frame the direct form is not what bounds an encoder pass.
 */
import { AudioError } from '../core/errors.ts';
import { HOP_LENGTH, N_FFT, N_SAMPLES, type LogMel } from '../core/audio/mel.ts';
import { melFilterbank } from '../core/audio/filterbank.ts';
import { readFloat32 } from './device.ts';
import {
  cachedPipeline,
  checkBuffer,
  createStorage,
  destroyAll,
  foldedGrid,
  recordDispatch,
  runRecorded,
  uniformWords,
  uploadStorage,
  type GpuRecording,
} from './wgsl-common.ts';

const KERNEL = 'logMel';
const BINS = N_FFT / 2 + 1;
const HALF = N_FFT / 2;
const FRAME_WORKGROUP = 64;
const REDUCE_WORKGROUP = 256;
const SCALE_WORKGROUP = 256;

const FRAME_SHADER = /* wgsl */ `
struct Params { nSamples: u32, n: u32, nFrames: u32, nMels: u32, groupsX: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> samples: array<f32>;
// [window 400][cos 400][sin 400].
@group(0) @binding(2) var<storage, read> tables: array<f32>;
// [nMels, 201] row-major.
@group(0) @binding(3) var<storage, read> filters: array<f32>;
// [nMels] × (first bin, end bin) of each filter's nonzero span.
@group(0) @binding(4) var<storage, read> spans: array<u32>;
@group(0) @binding(5) var<storage, read_write> logMel: array<f32>;
@group(0) @binding(6) var<storage, read_write> frameMax: array<f32>;

const N_FFT = ${N_FFT}u;
const HALF = ${HALF}u;
const BINS = ${BINS}u;
const HOP = ${HOP_LENGTH}u;
const LANES = ${FRAME_WORKGROUP}u;
const COS = ${N_FFT}u;
const SIN = ${2 * N_FFT}u;

var<workgroup> frame: array<f32, ${N_FFT}>;
// even[i] = x_i + x_{400−i}, odd[i] = x_i − x_{400−i} for 0 < i < 200; even[0] = x_0, odd[0] = 0.
var<workgroup> even: array<f32, ${HALF}>;
var<workgroup> odd: array<f32, ${HALF}>;
var<workgroup> power: array<f32, ${BINS}>;
var<workgroup> maxima: array<f32, ${FRAME_WORKGROUP}>;

// Sample i of the signal padded with zeros to n and reflected at both ends (numpy's 'reflect',
// repeating for signals shorter than the reflection).
fn sampleAt(i: i32) -> f32 {
  let n = i32(params.n);
  var j = 0;
  if (n > 1) {
    let period = 2 * (n - 1);
    var m = i % period;
    if (m < 0) { m += period; }
    j = select(period - m, m, m < n);
  }
  if (u32(j) >= params.nSamples) { return 0.0; }
  return samples[j];
}

@compute @workgroup_size(${FRAME_WORKGROUP})
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lane: u32) {
  let f = group.x + group.y * params.groupsX;
  if (f >= params.nFrames) { return; }

  let start = i32(f * HOP) - i32(HALF);
  for (var i = lane; i < N_FFT; i += LANES) { frame[i] = sampleAt(start + i32(i)) * tables[i]; }
  workgroupBarrier();
  for (var i = lane; i < HALF; i += LANES) {
    if (i == 0u) {
      even[0] = frame[0];
      odd[0] = 0.0;
    } else {
      even[i] = frame[i] + frame[N_FFT - i];
      odd[i] = frame[i] - frame[N_FFT - i];
    }
  }
  workgroupBarrier();

  let middle = frame[HALF];
  for (var bin = lane; bin < BINS; bin += LANES) {
    // Two partial sums each: shorter chains of rounding.
    var re0 = 0.0;
    var re1 = 0.0;
    var im0 = 0.0;
    var im1 = 0.0;
    var angle = 0u;
    for (var i = 0u; i < HALF; i += 2u) {
      re0 = fma(even[i], tables[COS + angle], re0);
      im0 = fma(odd[i], tables[SIN + angle], im0);
      angle += bin;
      if (angle >= N_FFT) { angle -= N_FFT; }
      re1 = fma(even[i + 1u], tables[COS + angle], re1);
      im1 = fma(odd[i + 1u], tables[SIN + angle], im1);
      angle += bin;
      if (angle >= N_FFT) { angle -= N_FFT; }
    }
    let re = re0 + re1 + select(middle, -middle, (bin & 1u) == 1u);
    let im = im0 + im1;
    power[bin] = re * re + im * im;
  }
  workgroupBarrier();

  var largest = -100.0;
  for (var mel = lane; mel < params.nMels; mel += LANES) {
    var sum = 0.0;
    let row = mel * BINS;
    for (var k = spans[2u * mel]; k < spans[2u * mel + 1u]; k++) { sum = fma(filters[row + k], power[k], sum); }
    let value = log2(max(sum, 1e-10)) * 0.30102999566398120;
    logMel[mel * params.nFrames + f] = value;
    largest = max(largest, value);
  }
  maxima[lane] = largest;
  workgroupBarrier();
  for (var half = LANES / 2u; half > 0u; half /= 2u) {
    if (lane < half) { maxima[lane] = max(maxima[lane], maxima[lane + half]); }
    workgroupBarrier();
  }
  if (lane == 0u) { frameMax[f] = maxima[0]; }
}
`;

const REDUCE_SHADER = /* wgsl */ `
struct Params { count: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> frameMax: array<f32>;
@group(0) @binding(2) var<storage, read_write> globalMax: array<f32>;

const LANES = ${REDUCE_WORKGROUP}u;
var<workgroup> maxima: array<f32, ${REDUCE_WORKGROUP}>;

@compute @workgroup_size(${REDUCE_WORKGROUP})
fn main(@builtin(local_invocation_index) lane: u32) {
  var largest = -100.0;
  for (var i = lane; i < params.count; i += LANES) { largest = max(largest, frameMax[i]); }
  maxima[lane] = largest;
  workgroupBarrier();
  for (var half = LANES / 2u; half > 0u; half /= 2u) {
    if (lane < half) { maxima[lane] = max(maxima[lane], maxima[lane + half]); }
    workgroupBarrier();
  }
  if (lane == 0u) { globalMax[0] = maxima[0]; }
}
`;

const SCALE_SHADER = /* wgsl */ `
struct Params { count: u32, groupsX: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> globalMax: array<f32>;
@group(0) @binding(2) var<storage, read_write> logMel: array<f32>;

@compute @workgroup_size(${SCALE_WORKGROUP})
fn main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lane: u32) {
  let i = (group.x + group.y * params.groupsX) * ${SCALE_WORKGROUP}u + lane;
  if (i >= params.count) { return; }
  logMel[i] = (max(logMel[i], globalMax[0] - 8.0) + 4.0) / 4.0;
}
`;

/** Frames the spectrogram of nSamples + padding samples has (floor(n / 160): the last STFT frame is dropped). */
export function logMelFrameCount(nSamples: number, padding = 0): number {
  return Math.floor((nSamples + padding) / HOP_LENGTH);
}

export interface LogMelArgs {
  /** Mono 16 kHz f32 samples, at least nSamples of them. */
  samples: GPUBuffer;
  nSamples: number;
  nMels: number;
  /** [nMels, logMelFrameCount(nSamples, padding)] f32, channel-first; must not be samples. */
  output: GPUBuffer;
  /** Zero samples appended before the STFT, as in logMelSpectrogram. Default 0. */
  padding?: number;
  /** Row-major [nMels × 201] filters; default melFilterbank(nMels). */
  filters?: Float32Array;
}

/** Records the three dispatches; returns the frame count. Nothing is recorded when there are no frames. */
export function recordLogMel(recording: GpuRecording, args: LogMelArgs): { nFrames: number } {
  const { nSamples, nMels, samples, output } = args;
  const padding = args.padding ?? 0;
  if (!Number.isInteger(nMels) || nMels < 1) throw new AudioError(`log-mel: nMels must be a positive integer, got ${nMels}`);
  if (!Number.isSafeInteger(nSamples) || nSamples < 0) throw new AudioError(`log-mel: nSamples must be a non-negative integer, got ${nSamples}`);
  if (!Number.isSafeInteger(padding) || padding < 0) throw new AudioError(`log-mel: padding must be a non-negative integer, got ${padding}`);
  const n = nSamples + padding;
  if (n === 0) throw new AudioError('log-mel: no samples (empty audio)');
  if (n > 2 ** 30) throw new AudioError(`log-mel: ${n} samples are more than the kernel indexes (2³⁰)`);
  if (args.filters && args.filters.length !== nMels * BINS) {
    throw new AudioError(`log-mel: filters have ${args.filters.length} values, expected ${nMels} × ${BINS} = ${nMels * BINS}`);
  }
  const nFrames = logMelFrameCount(nSamples, padding);
  checkBuffer(KERNEL, 'samples', samples, nSamples);
  checkBuffer(KERNEL, 'output', output, nMels * nFrames);
  if (output === samples) throw new AudioError('log-mel: the output buffer is also the samples buffer');
  if (nFrames === 0) return { nFrames };

  const device = recording.device;
  const constants = args.filters ? temporaryFilters(recording, args.filters, nMels) : cachedFilters(device, nMels);
  const frameMax = temporaryStorage(recording, 'logMel frame maxima', nFrames);
  const globalMax = temporaryStorage(recording, 'logMel maximum', 1);
  // A zero-length binding is invalid; an empty signal buffer stands in with zeros it never reads.
  const samplesBuffer = nSamples > 0 ? samples : globalMax;

  const frameGrid = foldedGrid(device, KERNEL, nFrames);
  recordDispatch(
    recording,
    `${KERNEL} frames`,
    cachedPipeline(device, `${KERNEL} frames`, FRAME_SHADER),
    [uniformWords(recording, KERNEL, [nSamples, n, nFrames, nMels, frameGrid[0]]), samplesBuffer, dftTables(device), constants.filters, constants.spans, output, frameMax],
    frameGrid,
  );
  recordDispatch(
    recording,
    `${KERNEL} maximum`,
    cachedPipeline(device, `${KERNEL} maximum`, REDUCE_SHADER),
    [uniformWords(recording, KERNEL, [nFrames]), frameMax, globalMax],
    [1],
  );
  const count = nMels * nFrames;
  const scaleGrid = foldedGrid(device, KERNEL, Math.ceil(count / SCALE_WORKGROUP));
  recordDispatch(
    recording,
    `${KERNEL} scale`,
    cachedPipeline(device, `${KERNEL} scale`, SCALE_SHADER),
    [uniformWords(recording, KERNEL, [count, scaleGrid[0]]), globalMax, output],
    scaleGrid,
  );
  return { nFrames };
}

export interface RunLogMelOptions {
  padding?: number;
  filters?: Float32Array;
}

/** Uploads the samples, computes the log-mel on the GPU and reads it back: logMelSpectrogram's result (tests, tools). */
export async function runLogMel(device: GPUDevice, samples: Float32Array, nMels: number, options: RunLogMelOptions = {}): Promise<LogMel> {
  for (let i = 0; i < samples.length; i++) {
    if (!Number.isFinite(samples[i])) throw new AudioError(`log-mel: sample ${i} is ${samples[i]}, not a finite number`);
  }
  const nFrames = logMelFrameCount(samples.length, options.padding ?? 0);
  const buffers = {
    samples: uploadStorage(device, `${KERNEL} samples`, samples.length > 0 ? samples : new Float32Array(1)),
    output: createStorage(device, `${KERNEL} output`, Math.max(1, nMels * nFrames)),
  };
  try {
    await runRecorded(device, KERNEL, (recording) =>
      recordLogMel(recording, { samples: buffers.samples, nSamples: samples.length, nMels, output: buffers.output, ...options }),
    );
    const data = nFrames === 0 ? new Float32Array(0) : await readFloat32(device, buffers.output, nMels * nFrames);
    return { data, nMels, nFrames };
  } finally {
    destroyAll(Object.values(buffers));
  }
}

/** logMelWindow on the GPU: the audio zero-padded or trimmed to 30 s, 3000 frames. */
export function runLogMelWindow(device: GPUDevice, samples: Float32Array, nMels: number): Promise<LogMel> {
  const window = samples.length >= N_SAMPLES ? samples.subarray(0, N_SAMPLES) : samples;
  return runLogMel(device, window, nMels, { padding: N_SAMPLES - window.length });
}

interface FilterBuffers {
  filters: GPUBuffer;
  spans: GPUBuffer;
}

const tablesByDevice = new WeakMap<GPUDevice, GPUBuffer>();
const filtersByDevice = new WeakMap<GPUDevice, Map<number, FilterBuffers>>();

/** The periodic Hann window and the cos/sin of 2πj/400, computed in double. */
function dftTables(device: GPUDevice): GPUBuffer {
  let buffer = tablesByDevice.get(device);
  if (!buffer) {
    const tables = new Float32Array(3 * N_FFT);
    for (let j = 0; j < N_FFT; j++) {
      const angle = (2 * Math.PI * j) / N_FFT;
      tables[j] = 0.5 - 0.5 * Math.cos(angle);
      tables[N_FFT + j] = Math.cos(angle);
      tables[2 * N_FFT + j] = Math.sin(angle);
    }
    buffer = uploadStorage(device, 'logMel window and DFT tables', tables);
    tablesByDevice.set(device, buffer);
  }
  return buffer;
}

function cachedFilters(device: GPUDevice, nMels: number): FilterBuffers {
  let cache = filtersByDevice.get(device);
  if (!cache) filtersByDevice.set(device, (cache = new Map()));
  let buffers = cache.get(nMels);
  if (!buffers) {
    const filters = melFilterbank(nMels);
    buffers = { filters: uploadStorage(device, `logMel ${nMels} filters`, filters), spans: uploadStorage(device, `logMel ${nMels} spans`, nonzeroSpans(filters, nMels)) };
    cache.set(nMels, buffers);
  }
  return buffers;
}

function temporaryFilters(recording: GpuRecording, filters: Float32Array, nMels: number): FilterBuffers {
  const buffers = {
    filters: uploadStorage(recording.device, 'logMel filters', filters),
    spans: uploadStorage(recording.device, 'logMel spans', nonzeroSpans(filters, nMels)),
  };
  recording.temporaries.push(buffers.filters, buffers.spans);
  return buffers;
}

function temporaryStorage(recording: GpuRecording, label: string, count: number): GPUBuffer {
  const buffer = createStorage(recording.device, label, count);
  recording.temporaries.push(buffer);
  return buffer;
}

/** Each filter row's nonzero bins as [start, end), so the kernel skips the zeros. */
function nonzeroSpans(filters: Float32Array, nMels: number): Uint32Array {
  const spans = new Uint32Array(2 * nMels);
  for (let m = 0; m < nMels; m++) {
    let start = BINS;
    let end = 0;
    for (let k = 0; k < BINS; k++) {
      if (filters[m * BINS + k] !== 0) {
        start = Math.min(start, k);
        end = k + 1;
      }
    }
    spans[2 * m] = start;
    spans[2 * m + 1] = Math.max(start, end);
  }
  return spans;
}
