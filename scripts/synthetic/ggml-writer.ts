/**
 * Writes whisper.cpp ggml `.bin` model files byte for byte as whisper.cpp's tools do:
 * 'f32' and 'f16' as models/convert-pt-to-ggml.py writes them, the quantized dtypes as its
 * `quantize` tool writes them from the f16 file. For tests and synthetic models.
 */
import type { WhisperDims } from '../../src/core/model/dims.ts';
import { encodeTensor, f16ToF32, f32ToF16, isQuantized } from '../../src/core/model/dtype.ts';
import type { WeightDType } from '../../src/core/model/weights.ts';
import { GGML_FTYPE, GGML_MAGIC, GGML_QNT_VERSION, GGML_QNT_VERSION_FACTOR, GGML_TYPE_ID } from '../../src/core/formats/ggml.ts';

export type GgmlFileDType = 'f32' | 'f16' | 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1';

export interface GgmlWriterOptions {
  dims: WhisperDims;
  /** OpenAI names and PyTorch shapes, written in this order (the converter follows the checkpoint's order). */
  tensors: { name: string; shape: number[]; values: Float32Array }[];
  /** Token bytes in rank order (the BPE ranks of the tiktoken file). */
  vocab: Uint8Array[];
  /** [nMels, nFft] row-major. */
  melFilters: Float32Array;
  dtype: GgmlFileDType;
}

const CONV_BIASES = new Set(['encoder.conv1.bias', 'encoder.conv2.bias']);
/** Tensors the converter keeps in f32 and the quantize tool never quantizes, whatever their rank. */
const KEPT_F32 = new Set([...CONV_BIASES, 'encoder.positional_embedding', 'decoder.positional_embedding']);

/** The converter's shape: the conv biases become [n, 1]. */
function fileShape(name: string, shape: number[]): number[] {
  return CONV_BIASES.has(name) && shape.length === 1 ? [shape[0]!, 1] : shape;
}

/** The element type whisper.cpp's tools give a tensor of this name and (file) shape in a `dtype` file. */
export function ggmlTensorDType(name: string, shape: number[], dtype: GgmlFileDType): WeightDType {
  if (dtype === 'f32') return 'f32';
  // convert-pt-to-ggml.py: vectors and the tensors in KEPT_F32 stay f32, everything else f16.
  const converted: WeightDType = shape.length < 2 || KEPT_F32.has(name) ? 'f32' : 'f16';
  if (dtype === 'f16') return converted;
  // quantize: every 2-D tensor but the skipped ones; conv weights (3-D) stay f16.
  return shape.length === 2 && !KEPT_F32.has(name) ? dtype : converted;
}

let halfValues: Float32Array | undefined;
function roundThroughF16(values: Float32Array): Float32Array {
  halfValues ??= Float32Array.from({ length: 65536 }, (_, h) => f16ToF32(h));
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = halfValues[f32ToF16(values[i]!)]!;
  return out;
}

class ByteSink {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;
  i32(...values: number[]): void {
    const chunk = new Uint8Array(4 * values.length);
    const view = new DataView(chunk.buffer);
    values.forEach((v, i) => view.setInt32(i * 4, v, true));
    this.bytes(chunk);
  }
  bytes(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}

export function writeGgml(options: GgmlWriterOptions): Uint8Array {
  const { dims, tensors, vocab, melFilters, dtype } = options;
  if (melFilters.length % dims.nMels !== 0) throw new RangeError(`${melFilters.length} mel filter values are not ${dims.nMels} rows`);
  const quantized = dtype !== 'f32' && dtype !== 'f16';
  const sink = new ByteSink();
  sink.i32(GGML_MAGIC | 0);
  sink.i32(dims.nVocab, dims.nAudioCtx, dims.nAudioState, dims.nAudioHead, dims.nAudioLayer);
  sink.i32(dims.nTextCtx, dims.nTextState, dims.nTextHead, dims.nTextLayer, dims.nMels);
  sink.i32(GGML_FTYPE[dtype] + (quantized ? GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR : 0));

  sink.i32(dims.nMels, melFilters.length / dims.nMels);
  sink.bytes(encodeTensor(melFilters, [melFilters.length], 'f32').bytes);

  sink.i32(vocab.length);
  for (const token of vocab) {
    sink.i32(token.length);
    sink.bytes(token);
  }

  const encoder = new TextEncoder();
  for (const { name, shape: modelShape, values } of tensors) {
    const shape = fileShape(name, modelShape);
    const tensorType = ggmlTensorDType(name, shape, dtype);
    // The quantize tool reads the f16 file, so quantized tensors start from f16-rounded values.
    const source = isQuantized(tensorType) ? roundThroughF16(values) : values;
    const data = encodeTensor(source, shape, tensorType).bytes;
    const nameBytes = encoder.encode(name);
    sink.i32(shape.length, nameBytes.length, GGML_TYPE_ID[tensorType]);
    sink.i32(...[...shape].reverse());
    sink.bytes(nameBytes);
    sink.bytes(data);
  }
  return sink.concat();
}
