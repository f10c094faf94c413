/**
 * whisper.cpp's ggml quantization blocks (32 values each): q8_0, q4_0, q4_1, q5_0, q5_1.
 * TODO(ggml helper): implement exactly as ggml does (layout, rounding, nibble order).
 */
import type { WeightDType } from './weights.ts';

export function decodeBlocks(dtype: WeightDType, _bytes: Uint8Array, _out: Float32Array, _count: number): void {
  throw new Error(`decoding ${dtype} blocks is not implemented yet`);
}

export function encodeBlocks(dtype: WeightDType, _values: Float32Array, _out: Uint8Array): void {
  throw new Error(`encoding ${dtype} blocks is not implemented yet`);
}
