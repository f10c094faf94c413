// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// The end of a decoder step: per row of logits [rows, vocabulary], drop the suppressed tokens
// (mask byte ≠ 0), take the log-softmax over the rest and keep the top k (k ≤ 8) ids with their
// log-probabilities, best first, so only a few words per row leave the module. Equal logits rank
// the lower id first (the first maximum, as argmax and the reference greedy pick have it). Rows
// with fewer than k allowed tokens end in id -1 with log-probability -Infinity; a NaN logit makes
// the row's log-sum-exp NaN, which the caller reports.

import { expSoftmax, logPositive } from './simd';

const MAX_TOP_K: i32 = 8;
/** Terms summed in f32 before they join the double-precision total. */
const SUM_CHUNK: i32 = 1024;

export function logitsMaxTopK(): i32 {
  return MAX_TOP_K;
}

/**
 * Rows rowStart..rowEnd. mask: 0 (nothing suppressed) or u8 flags, one row of `vocabulary` shared
 * by every row (maskStride 0) or one per row (maskStride = vocabulary). ids: i32 [rows, topK];
 * logProbs: f32 [rows, topK]; logSumExps: f32 [rows] or 0.
 */
export function logitsTopK(
  logits: usize, vocabulary: i32, mask: usize, maskStride: i32, topK: i32,
  ids: usize, logProbs: usize, logSumExps: usize, rowStart: i32, rowEnd: i32,
): void {
  const vectorEnd = vocabulary & ~3;
  for (let r = rowStart; r < rowEnd; r++) {
    const row = logits + <usize>r * (<usize>vocabulary << 2);
    const maskRow = mask != 0 ? mask + <usize>r * <usize>maskStride : 0;
    const topIds = ids + <usize>r * (<usize>topK << 2);
    // The values ride in the log-prob slots until the log-sum-exp is known.
    const topValues = logProbs + <usize>r * (<usize>topK << 2);
    for (let j = 0; j < topK; j++) {
      store<i32>(topIds + (<usize>j << 2), -1);
      store<f32>(topValues + (<usize>j << 2), -Infinity);
    }
    const lastSlot = topValues + (<usize>(topK - 1) << 2);

    let i = 0;
    for (; i < vectorEnd; i += 4) {
      const v = allowed(row, maskRow, i);
      // Most of the vocabulary falls below the current k-th best: one comparison per 4 tokens.
      if (v128.any_true(f32x4.gt(v, f32x4.splat(load<f32>(lastSlot))))) {
        insert(topIds, topValues, topK, i, f32x4.extract_lane(v, 0));
        insert(topIds, topValues, topK, i + 1, f32x4.extract_lane(v, 1));
        insert(topIds, topValues, topK, i + 2, f32x4.extract_lane(v, 2));
        insert(topIds, topValues, topK, i + 3, f32x4.extract_lane(v, 3));
      }
    }
    for (; i < vocabulary; i++) {
      if (maskRow != 0 && load<u8>(maskRow + <usize>i) != 0) continue;
      insert(topIds, topValues, topK, i, load<f32>(row + (<usize>i << 2)));
    }

    const best = load<f32>(topValues);
    let logSumExp: f32 = -Infinity;
    if (best > -Infinity) {
      const bestV = f32x4.splat(best);
      let total: f64 = 0;
      let partial = f32x4.splat(0.0);
      i = 0;
      for (; i < vectorEnd; i += 4) {
        partial = f32x4.add(partial, expSoftmax(f32x4.sub(allowed(row, maskRow, i), bestV)));
        if ((i + 4) % SUM_CHUNK == 0) {
          total += <f64>f32x4.extract_lane(partial, 0) + <f64>f32x4.extract_lane(partial, 1) + <f64>f32x4.extract_lane(partial, 2) + <f64>f32x4.extract_lane(partial, 3);
          partial = f32x4.splat(0.0);
        }
      }
      total += <f64>f32x4.extract_lane(partial, 0) + <f64>f32x4.extract_lane(partial, 1) + <f64>f32x4.extract_lane(partial, 2) + <f64>f32x4.extract_lane(partial, 3);
      for (; i < vocabulary; i++) {
        if (maskRow != 0 && load<u8>(maskRow + <usize>i) != 0) continue;
        total += <f64>f32x4.extract_lane(expSoftmax(f32x4.splat(load<f32>(row + (<usize>i << 2)) - best)), 0);
      }
      // total ≥ 1 (the best token's own term) unless a NaN logit spoiled it.
      logSumExp = total >= 1.0 ? <f32>(<f64>best + logPositive(total)) : NaN;
    }
    for (let j = 0; j < topK; j++) {
      const at = topValues + (<usize>j << 2);
      store<f32>(at, load<f32>(at) - logSumExp);
      // -Infinity − -Infinity would be NaN; an empty slot stays -Infinity.
      if (load<i32>(topIds + (<usize>j << 2)) < 0) store<f32>(at, -Infinity);
    }
    if (logSumExps != 0) store<f32>(logSumExps + (<usize>r << 2), logSumExp);
  }
}

/** Logits i..i+3 with suppressed ones at -Infinity. */
// @ts-ignore: decorator
@inline function allowed(row: usize, maskRow: usize, i: i32): v128 {
  const v = v128.load(row + (<usize>i << 2));
  if (maskRow == 0) return v;
  const flags = i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(maskRow + <usize>i)));
  return v128.bitselect(f32x4.splat(-Infinity), v, i32x4.ne(flags, i32x4.splat(0)));
}

/** Insert (value, id) into the sorted top list if it beats the last entry (ties keep the earlier id). */
function insert(topIds: usize, topValues: usize, topK: i32, id: i32, value: f32): void {
  let j = topK - 1;
  if (!(value > load<f32>(topValues + (<usize>j << 2)))) return;
  while (j > 0 && load<f32>(topValues + (<usize>(j - 1) << 2)) < value) {
    store<f32>(topValues + (<usize>j << 2), load<f32>(topValues + (<usize>(j - 1) << 2)));
    store<i32>(topIds + (<usize>j << 2), load<i32>(topIds + (<usize>(j - 1) << 2)));
    j--;
  }
  store<f32>(topValues + (<usize>j << 2), value);
  store<i32>(topIds + (<usize>j << 2), id);
}
