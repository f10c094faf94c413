// DTW and the median filter of word alignment, against hand-worked paths and a direct computation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dtw, medianFilter, rowStartTimes } from '../../src/core/timing/dtw.ts';
import { MurmurError } from '../../src/core/errors.ts';

const path = (cost: number[][]) => {
  const { textIndices, timeIndices } = dtw(cost.flat(), cost.length, cost[0]!.length);
  return { text: [...textIndices], time: [...timeIndices] };
};

test('DTW follows a cheap diagonal exactly', () => {
  const cost = [0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => (i === j ? 0 : 1)));
  assert.deepEqual(path(cost), { text: [0, 1, 2, 3], time: [0, 1, 2, 3] });
});

test('DTW stretches tokens over the frames where they are cheap', () => {
  // Token 0 cheap on frames 0-2, token 1 on frame 3, token 2 on frames 4-6.
  const cost = [
    [0, 0, 0, 5, 5, 5, 5],
    [5, 5, 5, 0, 5, 5, 5],
    [5, 5, 5, 5, 0, 0, 0],
  ];
  const result = path(cost);
  assert.deepEqual(result, { text: [0, 0, 0, 1, 2, 2, 2], time: [0, 1, 2, 3, 4, 5, 6] });
  assert.deepEqual([...rowStartTimes(dtw(cost.flat(), 3, 7), 3)], [0, 3, 4]);
  // More tokens than frames: several tokens share a frame (steps down the token axis).
  assert.deepEqual(path([[0, 9], [0, 9], [9, 0]]), { text: [0, 1, 2], time: [0, 0, 1] });
});

test('DTW on a plateau breaks ties as OpenAI: time step first, then token step, diagonal only when strictly cheaper', () => {
  // Worked by hand from dtw_cpu's rules on an all-zero 2 × 3 matrix.
  assert.deepEqual(path([[0, 0, 0], [0, 0, 0]]), { text: [0, 1, 1, 1], time: [0, 0, 1, 2] });
  // A plateau in the middle: token 0 is cheap first, token 1 last, both cost the same between.
  const plateau = [
    [0, 1, 1, 1, 9],
    [9, 1, 1, 1, 0],
  ];
  // Equal totals on the plateau make every cell prefer the time step, so token 1 takes the whole plateau.
  assert.deepEqual(path(plateau), { text: [0, 1, 1, 1, 1], time: [0, 1, 2, 3, 4] });
});

test('without ties, DTW finds a path of minimal total cost on random matrices', () => {
  // (With ties OpenAI's rules can pick a dearer step: c0 == c1 < c2 takes c2. Real-valued costs have no ties.)
  let seed = 5;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let trial = 0; trial < 30; trial++) {
    const rows = 1 + Math.floor(random() * 6);
    const cols = 1 + Math.floor(random() * 8);
    const cost = Array.from({ length: rows }, () => Array.from({ length: cols }, () => random() * 10));
    // Independent minimum by memoised recursion over the three moves.
    const memo = new Map<string, number>();
    const best = (i: number, j: number): number => {
      if (i === 0 && j === 0) return cost[0]![0]!;
      const key = `${i},${j}`;
      if (!memo.has(key)) {
        const options = [i > 0 && j > 0 ? best(i - 1, j - 1) : Infinity, i > 0 ? best(i - 1, j) : Infinity, j > 0 ? best(i, j - 1) : Infinity];
        memo.set(key, cost[i]![j]! + Math.min(...options));
      }
      return memo.get(key)!;
    };
    const { text, time } = path(cost);
    assert.equal(text[0], 0);
    assert.equal(time[0], 0);
    assert.equal(text.at(-1), rows - 1);
    assert.equal(time.at(-1), cols - 1);
    for (let k = 1; k < text.length; k++) {
      const di = text[k]! - text[k - 1]!;
      const dj = time[k]! - time[k - 1]!;
      assert.ok((di === 0 || di === 1) && (dj === 0 || dj === 1) && di + dj > 0, `step ${k}`);
    }
    const total = text.reduce((sum, i, k) => sum + cost[i]![time[k]!]!, 0);
    assert.ok(Math.abs(total - best(rows - 1, cols - 1)) < 1e-9, `trial ${trial}: ${total} vs ${best(rows - 1, cols - 1)}`);
  }
});

test('DTW rejects a malformed or non-finite cost matrix', () => {
  assert.throws(() => dtw([1, 2, 3], 2, 2), MurmurError);
  assert.throws(() => dtw([0, NaN, 0, 0], 2, 2), /token 0, frame 1 is NaN/);
});

/** Median filter written the slow, obvious way: pad by reflection, sort each window. */
function directMedian(row: number[], width: number): number[] {
  const pad = width >> 1;
  if (row.length <= pad) return row;
  const padded = [...row.slice(1, pad + 1).reverse(), ...row, ...row.slice(row.length - 1 - pad, row.length - 1).reverse()];
  return row.map((_, c) => padded.slice(c, c + width).sort((a, b) => a - b)[pad]!);
}

test('the median filter equals a direct computation for awkward widths and row lengths', () => {
  let seed = 11;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (const width of [1, 3, 5, 7, 9, 11]) {
    for (const columns of [1, 2, 3, 4, 5, 6, 7, 10, 23]) {
      const rows = 3;
      const values = Array.from({ length: rows * columns }, () => Math.fround(random() * 4 - 2));
      const filtered = medianFilter(Float32Array.from(values), columns, width);
      for (let r = 0; r < rows; r++) {
        const row = values.slice(r * columns, (r + 1) * columns);
        assert.deepEqual([...filtered.subarray(r * columns, (r + 1) * columns)], directMedian(row, width), `width ${width}, ${columns} columns, row ${r}`);
      }
    }
  }
  // A step survives a median filter; a lone spike does not.
  assert.deepEqual([...medianFilter([0, 0, 0, 5, 0, 0, 1, 1, 1, 1], 10, 3)], [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
});

test('the median filter refuses even widths and ragged input', () => {
  assert.throws(() => medianFilter([1, 2, 3, 4], 4, 4), /positive odd number, got 4/);
  assert.throws(() => medianFilter([1, 2, 3], 2, 3), /do not form rows of 2/);
});
