// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// Multi-head scaled dot-product attention, flash-style: each query row streams over its keys in
// blocks of KEY_BLOCK with an online softmax (running max and sum, the output rescaled when the
// max grows), so no score row longer than a block ever exists. The output rows themselves are the
// accumulators.
//
// Semantics are WhisperOps.attention's (src/core/model/ops.ts): q and out are [sequences ×
// queryRows, cols], cols = heads × headDim; key/value hold `capacity` rows per sequence of which
// the first `length` are valid, or one block of rows every sequence reads when `shared`; causal
// (queryOffset ≥ 0) lets query row i see keys 0..queryOffset + i; weights (optional, 0 = absent)
// is [sequences × heads × queryRows, length], 0 past each row's visible keys.
//
// The work splits into independent units, one per (sequence, head, block of QUERY_BLOCK query
// rows), numbered sequence-major then head then block; `attention` runs units unitStart..unitEnd,
// so a thread pool gives each worker a range and its own scratch (attentionScratchBytes()).

import { expScalar, expSoftmax, loadPartial, madd, storePartial, sumLanes } from './simd';

const QUERY_BLOCK: i32 = 16;
const KEY_BLOCK: i32 = 64;
const TILE_ROW_BYTES: usize = <usize>KEY_BLOCK << 2;

export function attentionWorkUnits(heads: i32, sequences: i32, queryRows: i32): i32 {
  return sequences * heads * ((queryRows + QUERY_BLOCK - 1) / QUERY_BLOCK);
}

/** Per-thread scratch: a QUERY_BLOCK × KEY_BLOCK score tile, then running maxima and sums. */
export function attentionScratchBytes(): i32 {
  return QUERY_BLOCK * KEY_BLOCK * 4 + QUERY_BLOCK * 8;
}

export function attention(
  q: usize, key: usize, value: usize, out: usize, weights: usize,
  cols: i32, heads: i32, sequences: i32, queryRows: i32,
  capacity: i32, length: i32, shared: i32, queryOffset: i32,
  scratch: usize, unitStart: i32, unitEnd: i32,
): void {
  const headDim = cols / heads;
  const blocks = (queryRows + QUERY_BLOCK - 1) / QUERY_BLOCK;
  const scale = <f32>(1.0 / Math.sqrt(<f64>headDim));
  const rowBytes = <usize>cols << 2;
  const headBytes = <usize>headDim << 2;
  const tile = scratch;
  const maxes = scratch + <usize>QUERY_BLOCK * TILE_ROW_BYTES;
  const sums = maxes + (<usize>QUERY_BLOCK << 2);
  const causal = queryOffset >= 0;

  for (let unit = unitStart; unit < unitEnd; unit++) {
    const block = unit % blocks;
    const sequenceHead = unit / blocks;
    const h = sequenceHead % heads;
    const s = sequenceHead / heads;
    const i0 = block * QUERY_BLOCK;
    const rows = min(QUERY_BLOCK, queryRows - i0);
    const channel = <usize>h * headBytes;
    const qBase = q + <usize>(s * queryRows + i0) * rowBytes + channel;
    const oBase = out + <usize>(s * queryRows + i0) * rowBytes + channel;
    const keyRow = shared ? 0 : s * capacity;
    const kBase = key + <usize>keyRow * rowBytes + channel;
    const vBase = value + <usize>keyRow * rowBytes + channel;
    const lastVisible = causal ? queryOffset + i0 + rows : length;
    const wBase = weights + <usize>((s * heads + h) * queryRows + i0) * (<usize>length << 2);

    for (let r = 0; r < rows; r++) {
      store<f32>(maxes + (<usize>r << 2), -Infinity);
      store<f32>(sums + (<usize>r << 2), 0);
      memory.fill(oBase + <usize>r * rowBytes, 0, headBytes);
    }

    for (let j0 = 0; j0 < lastVisible; j0 += KEY_BLOCK) {
      const keys = min(KEY_BLOCK, lastVisible - j0);
      const paddedKeys = (keys + 3) & ~3;
      scoreTile(qBase, rowBytes, rows, kBase + <usize>j0 * rowBytes, keys, headDim, scale, tile);
      for (let r = 0; r < rows; r++) {
        const tileRow = tile + <usize>r * TILE_ROW_BYTES;
        const visible = causal ? queryOffset + i0 + r + 1 : length;
        const seen = min(max(visible - j0, 0), keys);
        for (let j = seen; j < paddedKeys; j++) store<f32>(tileRow + (<usize>j << 2), -Infinity);
        // Raw scores now; turned into probabilities once the row's final max and sum are known.
        if (weights != 0 && seen > 0) memory.copy(wBase + (<usize>r * <usize>length + <usize>j0) * 4, tileRow, <usize>seen << 2);

        let blockMax = f32x4.splat(-Infinity);
        for (let j = 0; j < paddedKeys; j += 4) blockMax = f32x4.max(blockMax, v128.load(tileRow + (<usize>j << 2)));
        const oldMax = load<f32>(maxes + (<usize>r << 2));
        const newMax = max(oldMax, max(max(f32x4.extract_lane(blockMax, 0), f32x4.extract_lane(blockMax, 1)), max(f32x4.extract_lane(blockMax, 2), f32x4.extract_lane(blockMax, 3))));
        const newMaxV = f32x4.splat(newMax);
        let blockSum = f32x4.splat(0.0);
        for (let j = 0; j < paddedKeys; j += 4) {
          const at = tileRow + (<usize>j << 2);
          const p = expSoftmax(f32x4.sub(v128.load(at), newMaxV));
          v128.store(at, p);
          blockSum = f32x4.add(blockSum, p);
        }
        const correction: f32 = oldMax == newMax ? 1.0 : expScalar(oldMax - newMax);
        store<f32>(sums + (<usize>r << 2), load<f32>(sums + (<usize>r << 2)) * correction + sumLanes(blockSum));
        store<f32>(maxes + (<usize>r << 2), newMax);
        if (correction != 1.0) scaleRow(oBase + <usize>r * rowBytes, headDim, correction);
      }
      accumulateTile(oBase, rowBytes, rows, vBase + <usize>j0 * rowBytes, keys, headDim, tile);
    }

    for (let r = 0; r < rows; r++) {
      const total = load<f32>(sums + (<usize>r << 2));
      const inverse = <f32>1.0 / total;
      scaleRow(oBase + <usize>r * rowBytes, headDim, inverse);
      if (weights == 0) continue;
      const visible = causal ? queryOffset + i0 + r + 1 : length;
      const wRow = wBase + <usize>r * (<usize>length << 2);
      const rowMax = f32x4.splat(load<f32>(maxes + (<usize>r << 2)));
      const inverseV = f32x4.splat(inverse);
      let j = 0;
      for (; j + 4 <= visible; j += 4) {
        const at = wRow + (<usize>j << 2);
        v128.store(at, f32x4.mul(expSoftmax(f32x4.sub(v128.load(at), rowMax)), inverseV));
      }
      for (; j < visible; j++) {
        const at = wRow + (<usize>j << 2);
        store<f32>(at, expScalar(load<f32>(at) - load<f32>(maxes + (<usize>r << 2))) * inverse);
      }
      if (visible < length) memory.fill(wRow + (<usize>visible << 2), 0, <usize>(length - visible) << 2);
    }
  }
}

function scaleRow(row: usize, count: i32, factor: f32): void {
  const f = f32x4.splat(factor);
  const vectorEnd = <usize>(count & ~3) << 2;
  let c: usize = 0;
  for (; c < vectorEnd; c += 16) v128.store(row + c, f32x4.mul(v128.load(row + c), f));
  const end = <usize>count << 2;
  for (; c < end; c += 4) store<f32>(row + c, load<f32>(row + c) * factor);
}

/** tile[r][j] = q_r · k_j · scale for `rows` query rows and `keys` keys, four query rows at a time. */
function scoreTile(q: usize, rowBytes: usize, rows: i32, k: usize, keys: i32, headDim: i32, scale: f32, tile: usize): void {
  const vectorEnd = <usize>(headDim & ~3) << 2;
  const tail = headDim & 3;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const q0 = q + <usize>r * rowBytes;
    const q1 = q0 + rowBytes, q2 = q1 + rowBytes, q3 = q2 + rowBytes;
    const t0 = tile + <usize>r * TILE_ROW_BYTES;
    for (let j = 0; j < keys; j++) {
      const kp = k + <usize>j * rowBytes;
      let a0 = f32x4.splat(0.0), a1 = f32x4.splat(0.0), a2 = f32x4.splat(0.0), a3 = f32x4.splat(0.0);
      let c: usize = 0;
      for (; c < vectorEnd; c += 16) {
        const kv = v128.load(kp + c);
        a0 = madd(v128.load(q0 + c), kv, a0);
        a1 = madd(v128.load(q1 + c), kv, a1);
        a2 = madd(v128.load(q2 + c), kv, a2);
        a3 = madd(v128.load(q3 + c), kv, a3);
      }
      if (tail != 0) {
        const kv = loadPartial(kp + c, tail);
        a0 = madd(loadPartial(q0 + c, tail), kv, a0);
        a1 = madd(loadPartial(q1 + c, tail), kv, a1);
        a2 = madd(loadPartial(q2 + c, tail), kv, a2);
        a3 = madd(loadPartial(q3 + c, tail), kv, a3);
      }
      const at = t0 + (<usize>j << 2);
      store<f32>(at, sumLanes(a0) * scale);
      store<f32>(at + TILE_ROW_BYTES, sumLanes(a1) * scale);
      store<f32>(at + TILE_ROW_BYTES * 2, sumLanes(a2) * scale);
      store<f32>(at + TILE_ROW_BYTES * 3, sumLanes(a3) * scale);
    }
  }
  for (; r < rows; r++) {
    const q0 = q + <usize>r * rowBytes;
    const t0 = tile + <usize>r * TILE_ROW_BYTES;
    for (let j = 0; j < keys; j++) {
      const kp = k + <usize>j * rowBytes;
      let a0 = f32x4.splat(0.0), a1 = f32x4.splat(0.0);
      let c: usize = 0;
      for (; c + 32 <= vectorEnd; c += 32) {
        a0 = madd(v128.load(q0 + c), v128.load(kp + c), a0);
        a1 = madd(v128.load(q0 + c, 16), v128.load(kp + c, 16), a1);
      }
      for (; c < vectorEnd; c += 16) a0 = madd(v128.load(q0 + c), v128.load(kp + c), a0);
      if (tail != 0) a0 = madd(loadPartial(q0 + c, tail), loadPartial(kp + c, tail), a0);
      store<f32>(t0 + (<usize>j << 2), sumLanes(f32x4.add(a0, a1)) * scale);
    }
  }
}

/** out_r += Σ_j tile[r][j] · v_j, four output rows and four channels at a time. */
function accumulateTile(out: usize, rowBytes: usize, rows: i32, v: usize, keys: i32, headDim: i32, tile: usize): void {
  const vectorEnd = <usize>(headDim & ~3) << 2;
  const tail = headDim & 3;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const o0 = out + <usize>r * rowBytes;
    const o1 = o0 + rowBytes, o2 = o1 + rowBytes, o3 = o2 + rowBytes;
    const t0 = tile + <usize>r * TILE_ROW_BYTES;
    for (let c: usize = 0; c < vectorEnd; c += 16) {
      let a0 = v128.load(o0 + c), a1 = v128.load(o1 + c), a2 = v128.load(o2 + c), a3 = v128.load(o3 + c);
      for (let j = 0; j < keys; j++) {
        const vv = v128.load(v + <usize>j * rowBytes + c);
        const p = t0 + (<usize>j << 2);
        a0 = madd(v128.load32_splat(p), vv, a0);
        a1 = madd(v128.load32_splat(p + TILE_ROW_BYTES), vv, a1);
        a2 = madd(v128.load32_splat(p + TILE_ROW_BYTES * 2), vv, a2);
        a3 = madd(v128.load32_splat(p + TILE_ROW_BYTES * 3), vv, a3);
      }
      v128.store(o0 + c, a0);
      v128.store(o1 + c, a1);
      v128.store(o2 + c, a2);
      v128.store(o3 + c, a3);
    }
    if (tail != 0) {
      const c = vectorEnd;
      let a0 = loadPartial(o0 + c, tail), a1 = loadPartial(o1 + c, tail), a2 = loadPartial(o2 + c, tail), a3 = loadPartial(o3 + c, tail);
      for (let j = 0; j < keys; j++) {
        const vv = loadPartial(v + <usize>j * rowBytes + c, tail);
        const p = t0 + (<usize>j << 2);
        a0 = madd(v128.load32_splat(p), vv, a0);
        a1 = madd(v128.load32_splat(p + TILE_ROW_BYTES), vv, a1);
        a2 = madd(v128.load32_splat(p + TILE_ROW_BYTES * 2), vv, a2);
        a3 = madd(v128.load32_splat(p + TILE_ROW_BYTES * 3), vv, a3);
      }
      storePartial(o0 + c, a0, tail);
      storePartial(o1 + c, a1, tail);
      storePartial(o2 + c, a2, tail);
      storePartial(o3 + c, a3, tail);
    }
  }
  for (; r < rows; r++) {
    const o0 = out + <usize>r * rowBytes;
    const t0 = tile + <usize>r * TILE_ROW_BYTES;
    let c: usize = 0;
    // Two chunks of channels per pass over the keys: each probability is loaded once for both.
    for (; c + 32 <= vectorEnd; c += 32) {
      let a0 = v128.load(o0 + c), a1 = v128.load(o0 + c, 16);
      for (let j = 0; j < keys; j++) {
        const vp = v + <usize>j * rowBytes + c;
        const p = v128.load32_splat(t0 + (<usize>j << 2));
        a0 = madd(p, v128.load(vp), a0);
        a1 = madd(p, v128.load(vp, 16), a1);
      }
      v128.store(o0 + c, a0);
      v128.store(o0 + c, a1, 16);
    }
    for (; c < vectorEnd; c += 16) {
      let a0 = v128.load(o0 + c);
      for (let j = 0; j < keys; j++) a0 = madd(v128.load32_splat(t0 + (<usize>j << 2)), v128.load(v + <usize>j * rowBytes + c), a0);
      v128.store(o0 + c, a0);
    }
    if (tail != 0) {
      let a0 = loadPartial(o0 + c, tail);
      for (let j = 0; j < keys; j++) a0 = madd(v128.load32_splat(t0 + (<usize>j << 2)), loadPartial(v + <usize>j * rowBytes + c, tail), a0);
      storePartial(o0 + c, a0, tail);
    }
  }
}
