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
// Non-causal calls with many queries and no weights (the encoder's) have a faster form,
// attentionBlocked, further down.

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
    let j = 0;
    // Four keys at a time (a decoder step's single query): each query vector is loaded once for
    // the four, and the four dot products are reduced together into one vector of scores.
    if (tail == 0) {
      const scaleV = f32x4.splat(scale);
      for (; j + 4 <= keys; j += 4) {
        const k0 = k + <usize>j * rowBytes;
        const k1 = k0 + rowBytes, k2 = k1 + rowBytes, k3 = k2 + rowBytes;
        let a0 = f32x4.splat(0.0), a1 = f32x4.splat(0.0), a2 = f32x4.splat(0.0), a3 = f32x4.splat(0.0);
        for (let c: usize = 0; c < vectorEnd; c += 16) {
          const qv = v128.load(q0 + c);
          a0 = madd(qv, v128.load(k0 + c), a0);
          a1 = madd(qv, v128.load(k1 + c), a1);
          a2 = madd(qv, v128.load(k2 + c), a2);
          a3 = madd(qv, v128.load(k3 + c), a3);
        }
        const low = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), v128.shuffle<f32>(a0, a1, 2, 6, 3, 7));
        const high = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 4, 1, 5), v128.shuffle<f32>(a2, a3, 2, 6, 3, 7));
        const sums = f32x4.add(v128.shuffle<f32>(low, high, 0, 1, 4, 5), v128.shuffle<f32>(low, high, 2, 3, 6, 7));
        v128.store(t0 + (<usize>j << 2), f32x4.mul(sums, scaleV));
      }
    }
    for (; j < keys; j++) {
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
    // Four chunks of channels per pass over the keys: each probability is loaded once for all four.
    for (; c + 64 <= vectorEnd; c += 64) {
      let a0 = v128.load(o0 + c), a1 = v128.load(o0 + c, 16), a2 = v128.load(o0 + c, 32), a3 = v128.load(o0 + c, 48);
      for (let j = 0; j < keys; j++) {
        const vp = v + <usize>j * rowBytes + c;
        const p = v128.load32_splat(t0 + (<usize>j << 2));
        a0 = madd(p, v128.load(vp), a0);
        a1 = madd(p, v128.load(vp, 16), a1);
        a2 = madd(p, v128.load(vp, 32), a2);
        a3 = madd(p, v128.load(vp, 48), a3);
      }
      v128.store(o0 + c, a0);
      v128.store(o0 + c, a1, 16);
      v128.store(o0 + c, a2, 32);
      v128.store(o0 + c, a3, 48);
    }
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

// ---------------------------------------------------------------------------------------------
// Blocked attention for many queries against many keys (the encoder's self-attention): both
// products run as register-blocked matrix products like matmul.ts's micro-kernel (4 query rows ×
// 8 columns of accumulators). Q·Kᵀ needs the keys transposed into panels of 8 keys (key panel p
// holds K[p·8 + j, d] at float d·8 + j, zero past `length`), packed once per call per (key
// sequence, head) by attentionPackKeys, which also copies that head's values into contiguous
// rows of headDim: V's rows in place are cols apart, and a stride of a multiple of 512 bytes maps
// a block's rows onto a few L1 cache sets. P·V then reads the rows 8 channels at a time.
// The split into work units (and so the per-thread scratch) is the same as `attention`'s.

const KEY_PANEL: i32 = 8;
/** Queries per sequence from which packing the keys pays for itself (it reads every key once). */
const BLOCKED_MIN_QUERIES: i32 = 16;

/**
 * Bytes of packed keys attentionBlocked needs, or 0 when the call should run `attention` instead
 * (causal, attention weights wanted, too few queries, or a head width not a multiple of 8).
 */
export function attentionPackedKeyBytes(cols: i32, heads: i32, sequences: i32, queryRows: i32, length: i32, shared: i32, queryOffset: i32, wantWeights: i32): i32 {
  const headDim = cols / heads;
  if (queryOffset >= 0 || wantWeights != 0 || queryRows < BLOCKED_MIN_QUERIES || headDim % KEY_PANEL != 0) return 0;
  const keySequences = shared ? 1 : sequences;
  return keySequences * heads * packedHeadBytes(length, headDim);
}

/** Work units of attentionPackKeys: one per (key sequence, head). */
export function attentionPackUnits(heads: i32, sequences: i32, shared: i32): i32 {
  return (shared ? 1 : sequences) * heads;
}

function keyPanelBytes(length: i32, headDim: i32): i32 {
  return ((length + KEY_PANEL - 1) / KEY_PANEL) * headDim * KEY_PANEL * 4;
}

/** One (key sequence, head): its key panels, then its value rows. */
function packedHeadBytes(length: i32, headDim: i32): i32 {
  return keyPanelBytes(length, headDim) + length * headDim * 4;
}

/**
 * Packs units unitStart..unitEnd ((key sequence, head), sequence-major) into `packed`: the
 * head's keys as panels, then its values as contiguous rows of headDim.
 */
export function attentionPackKeys(key: usize, value: usize, packed: usize, cols: i32, heads: i32, capacity: i32, length: i32, unitStart: i32, unitEnd: i32): void {
  const headDim = cols / heads;
  const rowBytes = <usize>cols << 2;
  const headBytes = <usize>packedHeadBytes(length, headDim);
  const valuesAt = <usize>keyPanelBytes(length, headDim);
  const headRowBytes = <usize>headDim << 2;
  const panels = (length + KEY_PANEL - 1) / KEY_PANEL;
  for (let unit = unitStart; unit < unitEnd; unit++) {
    const h = unit % heads;
    const s = unit / heads;
    const source = key + <usize>s * <usize>capacity * rowBytes + (<usize>(h * headDim) << 2);
    const target = packed + <usize>unit * headBytes;
    const valueSource = value + <usize>s * <usize>capacity * rowBytes + (<usize>(h * headDim) << 2);
    for (let j = 0; j < length; j++) memory.copy(target + valuesAt + <usize>j * headRowBytes, valueSource + <usize>j * rowBytes, headRowBytes);
    for (let p = 0; p < panels; p++) {
      const panel = target + <usize>p * (<usize>headDim << 5);
      const keys = min(KEY_PANEL, length - p * KEY_PANEL);
      for (let j = 0; j < keys; j++) {
        const row = source + <usize>(p * KEY_PANEL + j) * rowBytes;
        // Four channels of one key at a time, scattered into four panel rows.
        for (let d = 0; d < headDim; d += 4) {
          const v = v128.load(row + (<usize>d << 2));
          const at = panel + (<usize>d << 5) + (<usize>j << 2);
          v128.store32_lane(at, v, 0);
          v128.store32_lane(at, v, 1, 32);
          v128.store32_lane(at, v, 2, 64);
          v128.store32_lane(at, v, 3, 96);
        }
      }
      for (let j = keys; j < KEY_PANEL; j++) {
        for (let d = 0; d < headDim; d++) store<f32>(panel + (<usize>d << 5) + (<usize>j << 2), 0);
      }
    }
  }
}

/**
 * Units unitStart..unitEnd of non-causal attention without weights (see attentionPackedKeyBytes),
 * over keys and values packed by attentionPackKeys. Arguments as `attention`'s.
 */
export function attentionBlocked(
  q: usize, packedKeys: usize, out: usize,
  cols: i32, heads: i32, sequences: i32, queryRows: i32,
  length: i32, shared: i32,
  scratch: usize, unitStart: i32, unitEnd: i32,
): void {
  const headDim = cols / heads;
  const blocks = (queryRows + QUERY_BLOCK - 1) / QUERY_BLOCK;
  const scale = f32x4.splat(<f32>(1.0 / Math.sqrt(<f64>headDim)));
  const rowBytes = <usize>cols << 2;
  const headBytes = <usize>headDim << 2;
  const headPackedBytes = <usize>packedHeadBytes(length, headDim);
  const headRowBytes = <usize>headDim << 2;
  const panelBytes = <usize>headDim << 5;
  const tile = scratch;
  const maxes = scratch + <usize>QUERY_BLOCK * TILE_ROW_BYTES;
  const sums = maxes + (<usize>QUERY_BLOCK << 2);

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
    const keySequence = shared ? 0 : s;
    const kBase = packedKeys + <usize>(keySequence * heads + h) * headPackedBytes;
    const vBase = kBase + <usize>keyPanelBytes(length, headDim);

    for (let r = 0; r < rows; r++) {
      store<f32>(maxes + (<usize>r << 2), -Infinity);
      store<f32>(sums + (<usize>r << 2), 0);
      memory.fill(oBase + <usize>r * rowBytes, 0, headBytes);
    }

    for (let j0 = 0; j0 < length; j0 += KEY_BLOCK) {
      const keys = min(KEY_BLOCK, length - j0);
      const paddedKeys = (keys + KEY_PANEL - 1) & ~(KEY_PANEL - 1);
      const kBlock = kBase + <usize>(j0 / KEY_PANEL) * panelBytes;
      for (let p = 0; p < paddedKeys; p += KEY_PANEL) {
        const kp = kBlock + <usize>(p / KEY_PANEL) * panelBytes;
        let r = 0;
        for (; r + 4 <= rows; r += 4) scorePanel4(qBase + <usize>r * rowBytes, rowBytes, kp, headDim, scale, tile + <usize>r * TILE_ROW_BYTES + (<usize>p << 2));
        for (; r < rows; r++) scorePanel1(qBase + <usize>r * rowBytes, kp, headDim, scale, tile + <usize>r * TILE_ROW_BYTES + (<usize>p << 2));
      }
      for (let r = 0; r < rows; r++) {
        const tileRow = tile + <usize>r * TILE_ROW_BYTES;
        for (let j = keys; j < paddedKeys; j++) store<f32>(tileRow + (<usize>j << 2), -Infinity);
        let blockMax = f32x4.splat(-Infinity);
        for (let j = 0; j < paddedKeys; j += 8) {
          const at = tileRow + (<usize>j << 2);
          blockMax = f32x4.max(blockMax, f32x4.max(v128.load(at), v128.load(at, 16)));
        }
        const oldMax = load<f32>(maxes + (<usize>r << 2));
        const newMax = max(oldMax, max(max(f32x4.extract_lane(blockMax, 0), f32x4.extract_lane(blockMax, 1)), max(f32x4.extract_lane(blockMax, 2), f32x4.extract_lane(blockMax, 3))));
        const newMaxV = f32x4.splat(newMax);
        // Two vectors per step: the exponential is one long dependent chain, and two in flight hide its latency.
        let blockSum = f32x4.splat(0.0), blockSum2 = f32x4.splat(0.0);
        for (let j = 0; j < paddedKeys; j += 8) {
          const at = tileRow + (<usize>j << 2);
          const p = expSoftmax(f32x4.sub(v128.load(at), newMaxV));
          const p2 = expSoftmax(f32x4.sub(v128.load(at, 16), newMaxV));
          v128.store(at, p);
          v128.store(at, p2, 16);
          blockSum = f32x4.add(blockSum, p);
          blockSum2 = f32x4.add(blockSum2, p2);
        }
        blockSum = f32x4.add(blockSum, blockSum2);
        const correction: f32 = oldMax == newMax ? 1.0 : expScalar(oldMax - newMax);
        store<f32>(sums + (<usize>r << 2), load<f32>(sums + (<usize>r << 2)) * correction + sumLanes(blockSum));
        store<f32>(maxes + (<usize>r << 2), newMax);
        if (correction != 1.0) scaleRow(oBase + <usize>r * rowBytes, headDim, correction);
      }
      const vBlock = vBase + <usize>j0 * headRowBytes;
      for (let c = 0; c < headDim; c += KEY_PANEL) {
        const channelOffset = <usize>c << 2;
        let r = 0;
        for (; r + 4 <= rows; r += 4) {
          accumulatePanel4(oBase + <usize>r * rowBytes + channelOffset, rowBytes, vBlock + channelOffset, headRowBytes, keys, tile + <usize>r * TILE_ROW_BYTES);
        }
        for (; r < rows; r++) accumulatePanel1(oBase + <usize>r * rowBytes + channelOffset, vBlock + channelOffset, headRowBytes, keys, tile + <usize>r * TILE_ROW_BYTES);
      }
    }

    for (let r = 0; r < rows; r++) scaleRow(oBase + <usize>r * rowBytes, headDim, <f32>1.0 / load<f32>(sums + (<usize>r << 2)));
  }
}

/** Scores of four query rows (rowBytes apart) against one panel of 8 packed keys, into the tile. */
function scorePanel4(q0: usize, rowBytes: usize, kp: usize, headDim: i32, scale: v128, t: usize): void {
  let c00 = f32x4.splat(0.0), c01 = f32x4.splat(0.0);
  let c10 = f32x4.splat(0.0), c11 = f32x4.splat(0.0);
  let c20 = f32x4.splat(0.0), c21 = f32x4.splat(0.0);
  let c30 = f32x4.splat(0.0), c31 = f32x4.splat(0.0);
  const r1 = rowBytes, r2 = rowBytes * 2, r3 = rowBytes * 3;
  let x = q0;
  let w = kp;
  const end = q0 + (<usize>headDim << 2);
  while (x < end) {
    const w0 = v128.load(w);
    const w1 = v128.load(w, 16);
    let a = v128.load32_splat(x);
    c00 = madd(a, w0, c00);
    c01 = madd(a, w1, c01);
    a = v128.load32_splat(x + r1);
    c10 = madd(a, w0, c10);
    c11 = madd(a, w1, c11);
    a = v128.load32_splat(x + r2);
    c20 = madd(a, w0, c20);
    c21 = madd(a, w1, c21);
    a = v128.load32_splat(x + r3);
    c30 = madd(a, w0, c30);
    c31 = madd(a, w1, c31);
    x += 4;
    w += 32;
  }
  v128.store(t, f32x4.mul(c00, scale));
  v128.store(t, f32x4.mul(c01, scale), 16);
  v128.store(t + TILE_ROW_BYTES, f32x4.mul(c10, scale));
  v128.store(t + TILE_ROW_BYTES, f32x4.mul(c11, scale), 16);
  v128.store(t + TILE_ROW_BYTES * 2, f32x4.mul(c20, scale));
  v128.store(t + TILE_ROW_BYTES * 2, f32x4.mul(c21, scale), 16);
  v128.store(t + TILE_ROW_BYTES * 3, f32x4.mul(c30, scale));
  v128.store(t + TILE_ROW_BYTES * 3, f32x4.mul(c31, scale), 16);
}

function scorePanel1(q0: usize, kp: usize, headDim: i32, scale: v128, t: usize): void {
  let c0 = f32x4.splat(0.0), c1 = f32x4.splat(0.0);
  let w = kp;
  const end = q0 + (<usize>headDim << 2);
  for (let x = q0; x < end; x += 4) {
    const a = v128.load32_splat(x);
    c0 = madd(a, v128.load(w), c0);
    c1 = madd(a, v128.load(w, 16), c1);
    w += 32;
  }
  v128.store(t, f32x4.mul(c0, scale));
  v128.store(t, f32x4.mul(c1, scale), 16);
}

/** out[4 rows (rowBytes apart), 8 channels] += P[4 rows, keys] · V[keys (vStride apart), 8 channels]. */
function accumulatePanel4(o0: usize, rowBytes: usize, v: usize, vStride: usize, keys: i32, p: usize): void {
  const o1 = o0 + rowBytes, o2 = o1 + rowBytes, o3 = o2 + rowBytes;
  let c00 = v128.load(o0), c01 = v128.load(o0, 16);
  let c10 = v128.load(o1), c11 = v128.load(o1, 16);
  let c20 = v128.load(o2), c21 = v128.load(o2, 16);
  let c30 = v128.load(o3), c31 = v128.load(o3, 16);
  let vp = v;
  let pp = p;
  const end = p + (<usize>keys << 2);
  while (pp < end) {
    const w0 = v128.load(vp);
    const w1 = v128.load(vp, 16);
    let a = v128.load32_splat(pp);
    c00 = madd(a, w0, c00);
    c01 = madd(a, w1, c01);
    a = v128.load32_splat(pp + TILE_ROW_BYTES);
    c10 = madd(a, w0, c10);
    c11 = madd(a, w1, c11);
    a = v128.load32_splat(pp + TILE_ROW_BYTES * 2);
    c20 = madd(a, w0, c20);
    c21 = madd(a, w1, c21);
    a = v128.load32_splat(pp + TILE_ROW_BYTES * 3);
    c30 = madd(a, w0, c30);
    c31 = madd(a, w1, c31);
    pp += 4;
    vp += vStride;
  }
  v128.store(o0, c00);
  v128.store(o0, c01, 16);
  v128.store(o1, c10);
  v128.store(o1, c11, 16);
  v128.store(o2, c20);
  v128.store(o2, c21, 16);
  v128.store(o3, c30);
  v128.store(o3, c31, 16);
}

function accumulatePanel1(o0: usize, v: usize, vStride: usize, keys: i32, p: usize): void {
  let c0 = v128.load(o0), c1 = v128.load(o0, 16);
  let vp = v;
  const end = p + (<usize>keys << 2);
  for (let pp = p; pp < end; pp += 4) {
    const a = v128.load32_splat(pp);
    c0 = madd(a, v128.load(vp), c0);
    c1 = madd(a, v128.load(vp, 16), c1);
    vp += vStride;
  }
  v128.store(o0, c0);
  v128.store(o0, c1, 16);
}
