// The encoder's matrix products, one 30 s window (1500 frames): the shapes every matmul entry
// (peers and Murmur's kernels) is timed on, so their GFLOP/s line up row by row.
import { KNOWN_DIMS } from '../src/core/model/dims.ts';

export interface EncoderMatmulShape {
  /** e.g. 'tiny.en mlp.0 1500×384×1536' */
  label: string;
  /** [m, k, n]: an m×k activation times a k×n weight. */
  shape: [number, number, number];
}

export type BenchModel = 'tiny.en' | 'base';

export function encoderMatmulShapes(model: BenchModel): EncoderMatmulShape[] {
  const { nAudioCtx: frames, nAudioState: width } = KNOWN_DIMS[model];
  const named = (name: string, k: number, n: number): EncoderMatmulShape => ({ label: `${model} ${name} ${frames}×${k}×${n}`, shape: [frames, k, n] });
  return [named('attn.qkv/out', width, width), named('mlp.0', width, 4 * width), named('mlp.2', 4 * width, width)];
}

export function matmulGflops([m, k, n]: [number, number, number], ms: number): number {
  return (2 * m * k * n) / (ms / 1000) / 1e9;
}
