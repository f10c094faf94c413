/**
 * How the reference backend reads weights: a few rows at a time, widened to f32 into a scratch
 * buffer (decodeRows), so a quantized matrix is never widened whole. f32 weights whose bytes are
 * 4-aligned are read in place through a Float32Array view, which costs nothing.
 */
import { decodeRows, decodeTensor, isQuantized } from '../model/dtype.ts';
import type { WeightTensor } from '../model/weights.ts';
import { elementCount } from '../model/weights.ts';

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function f32View(tensor: WeightTensor): Float32Array | undefined {
  if (tensor.dtype !== 'f32' || !littleEndian || tensor.bytes.byteOffset % 4 !== 0) return undefined;
  return new Float32Array(tensor.bytes.buffer, tensor.bytes.byteOffset, tensor.bytes.byteLength / 4);
}

/** Length of a tensor's rows (its last axis). */
export function rowLength(tensor: WeightTensor): number {
  return tensor.shape[tensor.shape.length - 1] ?? 1;
}

/**
 * Rows rowStart..rowStart+rowCount as f32: a view into the tensor when it is aligned f32, else
 * widened into `scratch` (which must hold rowCount × rowLength values).
 */
export function readRows(tensor: WeightTensor, rowStart: number, rowCount: number, scratch: Float32Array): Float32Array {
  const length = rowLength(tensor);
  const view = f32View(tensor);
  if (view) return view.subarray(rowStart * length, (rowStart + rowCount) * length);
  return decodeRows(tensor, rowStart, rowCount, scratch.subarray(0, rowCount * length));
}

/** A small tensor (bias, layer-norm parameters) as f32, whole. */
export function readVector(tensor: WeightTensor): Float32Array {
  return f32View(tensor) ?? decodeTensor(tensor);
}

/**
 * A matrix of the same bytes seen as [rows, cols], e.g. a conv weight [out, in, 3] as [out, in·3].
 * Only for element-wise dtypes, whose rows can be regrouped freely.
 */
export function asMatrix(tensor: WeightTensor, rows: number, cols: number): WeightTensor {
  if (elementCount(tensor.shape) !== rows * cols) throw new RangeError(`[${tensor.shape}] is not a [${rows}, ${cols}] matrix`);
  if (isQuantized(tensor.dtype)) throw new RangeError(`a ${tensor.dtype} tensor [${tensor.shape}] cannot be regrouped into [${rows}, ${cols}]`);
  return { dtype: tensor.dtype, shape: [rows, cols], bytes: tensor.bytes };
}
