/**
 * Applies an execution plan's precision to a loaded model before a backend prepares it: the
 * matrices whisper.cpp's quantize tool would convert (every 2-D weight but the positional
 * embeddings: the attention and MLP projections and the token embedding, which is also the tied
 * logits projection) are re-encoded once, f32 → f16 / q8_0 / q4_0 or f16 → q8_0 / q4_0, with the
 * model's own encoders (src/core/model/dtype.ts, ggml's reference quantizers). Every backend that
 * keeps weights in their dtype then holds fewer bytes. Weights are never widened: a precision above
 * the stored one would add memory without adding accuracy.
 *
 * A narrowed model owns all its bytes: the tensors left as they were are copied out of the loaded
 * file's buffer, so once the caller drops the loaded model the whole file can be collected (a view
 * of one bias would otherwise keep every byte of it alive). Applying the same precision again to a
 * narrowed model returns the first result, so a model is converted once however many backends are
 * tried with it.
 */
import type { WhisperModel } from '../model/model.ts';
import type { WeightDType, WeightTensor } from '../model/weights.ts';
import { mapWeights } from '../model/weights.ts';
import { decodeTensor, encodeTensor } from '../model/dtype.ts';
import type { ExecutionPrecision } from './plan.ts';

/** Lower is more precise; both ranks and targets follow the plan's f32 > f16 > q8 > q4. */
const RANK: Record<ExecutionPrecision, number> = { f32: 0, f16: 1, q8: 2, q4: 3 };
const TARGET_DTYPE: Record<ExecutionPrecision, WeightDType> = { f32: 'f32', f16: 'f16', q8: 'q8_0', q4: 'q4_0' };
const QUANT_BLOCK = 32;

/** Narrowed model → the result that made it (and the target asked), so asking again neither converts nor misreports. */
const narrowings = new WeakMap<WhisperModel, { target: ExecutionPrecision; applied: AppliedPrecision }>();
let conversionsRun = 0;

/** How many times this realm has converted a model's matrices (diagnostics: shows that attempts shared one conversion). */
export function precisionConversions(): number {
  return conversionsRun;
}

/** The plan's precision a stored dtype counts as (bf16 as f16; q5 as q4, the nearest lower step). */
export function precisionOf(dtype: WeightDType): ExecutionPrecision {
  if (dtype === 'f32') return 'f32';
  if (dtype === 'f16' || dtype === 'bf16') return 'f16';
  if (dtype === 'q8_0') return 'q8';
  return 'q4';
}

/** The tensors a precision applies to: 2-D weights other than the positional embeddings. */
export function isConvertibleMatrix(name: string, tensor: WeightTensor): boolean {
  return tensor.shape.length === 2 && !name.endsWith('positional_embedding');
}

export interface AppliedPrecision {
  /** The model the backend should prepare: `model` itself when nothing changed. */
  model: WhisperModel;
  /** The precision most of the matrices' bytes now have. */
  precision: ExecutionPrecision;
  /** Matrices re-encoded. */
  converted: number;
  /** Bytes of every weight before and after. */
  bytesBefore: number;
  bytesAfter: number;
  reason: string;
}

/** `model` with its matrices narrowed to `target` where they are stored more precisely. */
export function applyPrecision(model: WhisperModel, target: ExecutionPrecision): AppliedPrecision {
  const earlier = narrowings.get(model);
  if (earlier?.target === target) return earlier.applied;
  const targetDtype = TARGET_DTYPE[target];
  let converted = 0;
  let bytesBefore = 0;
  let bytesAfter = 0;
  const upcastRefused = new Set<WeightDType>();
  const unblocked: string[] = [];
  const narrowedWeights = mapWeights(model.dims, model.weights, (tensor, slot) => {
    bytesBefore += tensor.bytes.byteLength;
    let result = tensor;
    if (isConvertibleMatrix(slot.name, tensor)) {
      const rank = RANK[precisionOf(tensor.dtype)];
      const rowLength = tensor.shape[1]!;
      if (rank < RANK[target]) {
        if (targetDtype.startsWith('q') && rowLength % QUANT_BLOCK !== 0) unblocked.push(slot.name);
        else {
          result = encodeTensor(decodeTensor(tensor), [...tensor.shape], targetDtype);
          converted++;
        }
      } else if (rank > RANK[target]) {
        upcastRefused.add(tensor.dtype);
      }
    }
    bytesAfter += result.bytes.byteLength;
    return result;
  });
  const parts: string[] = [];
  if (converted > 0) parts.push(`${converted} matrices converted to ${targetDtype} at load (weights ${formatMiB(bytesBefore)} → ${formatMiB(bytesAfter)})`);
  else parts.push('no matrix is stored above it, nothing converted');
  if (upcastRefused.size > 0) parts.push(`${[...upcastRefused].join('/')} matrices stay as stored: weights are never widened (more memory, no accuracy back)`);
  if (unblocked.length > 0) parts.push(`${unblocked.length} matrices kept (rows not whole blocks of ${QUANT_BLOCK}: ${unblocked.slice(0, 3).join(', ')}${unblocked.length > 3 ? ', …' : ''})`);
  const reason = `precision ${target}: ${parts.join('; ')}`;
  if (converted === 0) return { model, precision: matrixPrecision(model), converted, bytesBefore, bytesAfter, reason };
  conversionsRun++;
  const result: WhisperModel = { ...model, weights: mapWeights(model.dims, narrowedWeights, ownedCopy) };
  const applied: AppliedPrecision = { model: result, precision: matrixPrecision(result), converted, bytesBefore, bytesAfter, reason };
  narrowings.set(result, { target, applied });
  return applied;
}

/** The tensor itself when it is the whole of its buffer, else a copy that is (not a view into the file). */
function ownedCopy(tensor: WeightTensor): WeightTensor {
  const { bytes } = tensor;
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return tensor;
  return { ...tensor, bytes: bytes.slice() };
}

/** The precision most of the model's matrices' bytes are held in. */
export function matrixPrecision(model: WhisperModel): ExecutionPrecision {
  const bytes = new Map<ExecutionPrecision, number>();
  mapWeights(model.dims, model.weights, (tensor, slot) => {
    if (isConvertibleMatrix(slot.name, tensor)) bytes.set(precisionOf(tensor.dtype), (bytes.get(precisionOf(tensor.dtype)) ?? 0) + tensor.bytes.byteLength);
    return tensor;
  });
  let best: ExecutionPrecision = 'f32';
  let most = -1;
  for (const [precision, count] of bytes) if (count > most) [best, most] = [precision, count];
  return best;
}

function formatMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
