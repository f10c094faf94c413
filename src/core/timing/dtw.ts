/**
 * The two signal steps of word alignment, as OpenAI's whisper/timing.py defines them: a median
 * filter along the last axis with reflect padding, and dynamic time warping with its tie and
 * backtrace rules, so that the same attention gives the same word times.
 */
import { MurmurError } from '../errors.ts';

/**
 * Median of each length-`width` window along the last axis of a row-major [rows, columns] array.
 * The edges are reflect-padded (mirror without repeating the edge value) by width/2 on each side;
 * a row no longer than that padding is returned unchanged, as OpenAI does.
 */
export function medianFilter(values: ArrayLike<number>, columns: number, width: number): Float32Array {
  if (!Number.isInteger(width) || width < 1 || width % 2 === 0) {
    throw new MurmurError('ALIGNMENT', `the median filter width must be a positive odd number, got ${width}`);
  }
  if (!Number.isInteger(columns) || columns < 1 || values.length % columns !== 0) {
    throw new MurmurError('ALIGNMENT', `${values.length} values do not form rows of ${columns} columns`);
  }
  const out = Float32Array.from(values);
  const pad = width >> 1;
  if (columns <= pad || width === 1) return out;
  const rows = values.length / columns;
  const window = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    const base = r * columns;
    for (let c = 0; c < columns; c++) {
      // Insertion sort of a small window: width is 7 in practice.
      for (let k = 0; k < width; k++) {
        let index = c + k - pad;
        if (index < 0) index = -index;
        else if (index >= columns) index = 2 * (columns - 1) - index;
        const value = values[base + index]!;
        let slot = k;
        while (slot > 0 && window[slot - 1]! > value) {
          window[slot] = window[slot - 1]!;
          slot--;
        }
        window[slot] = value;
      }
      out[base + c] = window[pad]!;
    }
  }
  return out;
}

export interface DtwPath {
  /** Row (token) index of each step of the path, from 0 to rows − 1, never decreasing. */
  textIndices: Int32Array;
  /** Column (time) index of each step, from 0 to columns − 1, never decreasing. */
  timeIndices: Int32Array;
}

const DIAGONAL = 0;
const FROM_ABOVE = 1; // the previous token, same time
const FROM_LEFT = 2; // the same token, previous time

/**
 * The cheapest monotonic path through a [rows, columns] cost matrix from its first cell to its
 * last, moving one row, one column or both per step. The step rules are OpenAI's dtw_cpu, ties
 * included: the diagonal or the token step only when strictly cheaper than both others, else the
 * time step (so a tie of those two falls to the time step, even when it costs more).
 */
export function dtw(cost: ArrayLike<number>, rows: number, columns: number): DtwPath {
  if (!Number.isInteger(rows) || !Number.isInteger(columns) || rows < 1 || columns < 1 || cost.length !== rows * columns) {
    throw new MurmurError('ALIGNMENT', `a DTW cost matrix of ${cost.length} values is not ${rows} × ${columns} (both at least 1)`);
  }
  const width = columns + 1;
  const total = new Float64Array((rows + 1) * width).fill(Infinity);
  const trace = new Uint8Array((rows + 1) * width);
  total[0] = 0;
  for (let i = 1; i <= rows; i++) {
    for (let j = 1; j <= columns; j++) {
      const value = cost[(i - 1) * columns + (j - 1)]!;
      if (!Number.isFinite(value)) throw new MurmurError('ALIGNMENT', `DTW cost at token ${i - 1}, frame ${j - 1} is ${value}`);
      const c0 = total[(i - 1) * width + j - 1]!;
      const c1 = total[(i - 1) * width + j]!;
      const c2 = total[i * width + j - 1]!;
      let best: number;
      let step: number;
      if (c0 < c1 && c0 < c2) {
        best = c0;
        step = DIAGONAL;
      } else if (c1 < c0 && c1 < c2) {
        best = c1;
        step = FROM_ABOVE;
      } else {
        best = c2;
        step = FROM_LEFT;
      }
      total[i * width + j] = value + best;
      trace[i * width + j] = step;
    }
  }

  // Walk back from the last cell; along the top edge only time steps remain, along the left edge only token steps.
  const text: number[] = [];
  const time: number[] = [];
  let i = rows;
  let j = columns;
  while (i > 0 || j > 0) {
    text.push(i - 1);
    time.push(j - 1);
    const step = i === 0 ? FROM_LEFT : j === 0 ? FROM_ABOVE : trace[i * width + j]!;
    if (step === DIAGONAL) {
      i--;
      j--;
    } else if (step === FROM_ABOVE) {
      i--;
    } else {
      j--;
    }
  }
  return { textIndices: Int32Array.from(text.reverse()), timeIndices: Int32Array.from(time.reverse()) };
}

/**
 * The time index at which each row's stretch of the path begins: where the text index first
 * reaches that row (the path visits every row, one step at a time).
 */
export function rowStartTimes(path: DtwPath, rows: number): Int32Array {
  const starts = new Int32Array(rows);
  let previous = -1;
  for (let k = 0; k < path.textIndices.length; k++) {
    const row = path.textIndices[k]!;
    if (row !== previous && row >= 0) starts[row] = path.timeIndices[k]!;
    previous = row;
  }
  return starts;
}
