// findAlignment over crafted cross-attention: OpenAI's normalisation, known token times, probabilities, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { alignmentMatrix, findAlignment, rowTimesFromMatrix, type AlignmentSession, type AlignmentSetup, type AlignmentStepOptions } from '../../src/core/timing/alignment.ts';
import { medianFilter } from '../../src/core/timing/dtw.ts';
import { MurmurError } from '../../src/core/errors.ts';
import type { WhisperTokenizer } from '../../src/core/tokenizer/tokenizer.ts';
import { DEFAULT_ASSETS_DIR, syntheticTokenizer } from '../../scripts/synthetic/generate.ts';

const skip = existsSync(`${DEFAULT_ASSETS_DIR}/gpt2.tiktoken`) ? false : `${DEFAULT_ASSETS_DIR} is absent (reference data folder not mounted)`;
let tokenizerPromise: Promise<WhisperTokenizer> | undefined;
const tokenizer = () => (tokenizerPromise ??= syntheticTokenizer(51864));

let seed = 3;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);

/**
 * Attention of one head over [positions, audioRows]: row p puts 95% of its kept mass on the
 * audio rows in spans[p] (or spreads evenly when it has none), and `beyond` of its total on the
 * audio rows past `columns`.
 */
function craftedHead(positions: number, audioRows: number, columns: number, spans: ([number, number] | undefined)[], beyond = 0.4): Float32Array {
  const weights = new Float32Array(positions * audioRows);
  for (let p = 0; p < positions; p++) {
    const span = spans[p];
    for (let c = 0; c < columns; c++) {
      const inside = span !== undefined && c >= span[0] && c < span[1];
      const share = span === undefined ? 1 / columns : inside ? 0.95 / (span[1] - span[0]) : 0.05 / (columns - (span[1] - span[0]));
      weights[p * audioRows + c] = share * (1 - beyond);
    }
    for (let c = columns; c < audioRows; c++) weights[p * audioRows + c] = beyond / (audioRows - columns);
  }
  return weights;
}

const randomHead = (positions: number, audioRows: number) => {
  const weights = Float32Array.from({ length: positions * audioRows }, () => random());
  for (let p = 0; p < positions; p++) {
    const row = weights.subarray(p * audioRows, (p + 1) * audioRows);
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((w, i) => (row[i] = w / total));
  }
  return weights;
};

/** A session that returns chosen weights for every layer and head, and records what it was fed. */
function fakeSession(layers: Float32Array[][], logits: Float32Array, calls: { begin: number[]; steps: { tokens: number[][]; options: AlignmentStepOptions }[] }): AlignmentSession {
  return {
    begin(sequences) {
      calls.begin.push(sequences);
    },
    async step(tokens, options) {
      calls.steps.push({ tokens: tokens.map((row) => [...row]), options });
      const crossAttention = layers.map((heads) => {
        const out = new Float32Array(heads.reduce((n, h) => n + h.length, 0));
        let offset = 0;
        for (const h of heads) {
          out.set(h, offset);
          offset += h.length;
        }
        return out;
      });
      return { logits: logits.slice(logits.length - logits.length / tokens[0]!.length), allLogits: logits, crossAttention };
    },
  };
}

test('the alignment matrix matches OpenAI: softmax over the kept rows (with qk_scale), per-row standardising over tokens, median filter, head mean', () => {
  const positions = 7;
  const audioRows = 30;
  const columns = 17;
  const qkScale = 1.7;
  const logitsPerHead = [0, 1].map(() => Array.from({ length: positions }, () => Array.from({ length: audioRows }, () => random() * 6 - 3)));
  // What our model returns: the full softmax over every audio row.
  const heads = logitsPerHead.map((rows) => {
    const out = new Float32Array(positions * audioRows);
    rows.forEach((row, p) => {
      const max = Math.max(...row);
      const total = row.reduce((s, x) => s + Math.exp(x - max), 0);
      row.forEach((x, c) => (out[p * audioRows + c] = Math.exp(x - max) / total));
    });
    return out;
  });
  const matrix = alignmentMatrix(heads, positions, audioRows, { columns, firstRow: 2, rows: 4, medianFilterWidth: 5, qkScale });

  // OpenAI's steps on the logits, in double.
  const expected = new Float64Array(4 * columns);
  for (const rows of logitsPerHead) {
    const soft = rows.map((row) => {
      const kept = row.slice(0, columns).map((x) => x * qkScale);
      const max = Math.max(...kept);
      const total = kept.reduce((s, x) => s + Math.exp(x - max), 0);
      return kept.map((x) => Math.exp(x - max) / total);
    });
    const standardized = soft.map((row) => row.slice());
    for (let c = 0; c < columns; c++) {
      const column = soft.map((row) => row[c]!);
      const mean = column.reduce((a, b) => a + b, 0) / positions;
      const std = Math.sqrt(column.reduce((a, b) => a + (b - mean) ** 2, 0) / positions);
      standardized.forEach((row) => (row[c] = (row[c]! - mean) / std));
    }
    const filtered = medianFilter(standardized.slice(2, 6).flat(), columns, 5);
    filtered.forEach((v, k) => (expected[k] += v / logitsPerHead.length));
  }
  let worst = 0;
  matrix.forEach((v, k) => (worst = Math.max(worst, Math.abs(v - expected[k]!))));
  assert.ok(worst < 1e-4, `largest difference ${worst}`);
});

test('token times from a matrix whose best path is known', () => {
  // 4 rows over 25 columns, each row bright on its own span and below average elsewhere, as a
  // standardised matrix is (with zeros off the span a detour through them would be free).
  const bounds = [0, 5, 12, 20, 25];
  const matrix = new Float32Array(4 * 25).fill(-1);
  for (let r = 0; r < 4; r++) for (let c = bounds[r]!; c < bounds[r + 1]!; c++) matrix[r * 25 + c] = 1 + random() * 0.1;
  assert.deepEqual(rowTimesFromMatrix(matrix, 4, 25).map((t) => +t.toFixed(2)), [0, 0.1, 0.24, 0.4]);
});

test('findAlignment over a fake session gives the crafted token times and the text-only probabilities', { skip }, async () => {
  const tok = await tokenizer();
  const textTokens = tok.encode(' Hello world.');
  assert.equal(textTokens.length, 3);
  const sot = [tok.sot];
  const positions = sot.length + 1 + textTokens.length + 1;
  const audioRows = 40;
  const numFrames = 50;
  const columns = numFrames / 2;
  // Positions: sot, notimestamps (predicts token 0), tokens 0..2 (the last predicts eot), eot.
  const spans: ([number, number] | undefined)[] = [undefined, [0, 5], [5, 12], [12, 20], [20, 25], undefined];
  const aligned = craftedHead(positions, audioRows, columns, spans);
  const layers = [
    [randomHead(positions, audioRows), randomHead(positions, audioRows)],
    [randomHead(positions, audioRows), aligned],
  ];
  const nVocab = tok.nVocab;
  const logits = new Float32Array(positions * nVocab);
  textTokens.forEach((token, i) => {
    logits[(sot.length + i) * nVocab + token] = Math.log(9);
    // A special token may be the favourite; it does not count among text tokens.
    logits[(sot.length + i) * nVocab + tok.eot] = 20;
  });
  const calls = { begin: [] as number[], steps: [] as { tokens: number[][]; options: AlignmentStepOptions }[] };
  const setup: AlignmentSetup = { tokenizer: tok, alignmentHeads: [[1, 1]], nTextCtx: 448, nTextHead: 2 };
  const result = await findAlignment(fakeSession(layers, logits, calls), setup, sot, textTokens, numFrames);

  assert.deepEqual(calls.begin, [1]);
  assert.deepEqual(calls.steps, [{ tokens: [[tok.sot, tok.noTimestamps, ...textTokens, tok.eot]], options: { allPositions: true, crossAttention: true } }]);
  assert.deepEqual(result.tokens, textTokens);
  assert.deepEqual(result.startTimes.map((t) => +t.toFixed(2)), [0, 0.1, 0.24, 0.4]);
  const expected = 9 / (tok.eot - 1 + 9);
  for (const p of result.probabilities) assert.ok(Math.abs(p - expected) < 1e-7, `${p} vs ${expected}`);

  // Averaging with a head that says the same thing changes nothing.
  const twice = await findAlignment(fakeSession([[aligned, randomHead(positions, audioRows)], [randomHead(positions, audioRows), aligned]], logits, calls), { ...setup, alignmentHeads: [[0, 0], [1, 1]] }, sot, textTokens, numFrames);
  assert.deepEqual(twice.startTimes.map((t) => +t.toFixed(2)), [0, 0.1, 0.24, 0.4]);
});

test('findAlignment refuses what it cannot align, naming the problem', { skip }, async () => {
  const tok = await tokenizer();
  const positions = 5;
  const session = fakeSession([[randomHead(positions, 10), randomHead(positions, 10)]], new Float32Array(positions * tok.nVocab), { begin: [], steps: [] });
  const setup: AlignmentSetup = { tokenizer: tok, alignmentHeads: [[0, 1]], nTextCtx: 448, nTextHead: 2 };
  assert.deepEqual(await findAlignment(session, setup, [tok.sot], [], 20), { tokens: [], startTimes: [], probabilities: [] });
  await assert.rejects(findAlignment(session, setup, [tok.sot], [tok.eot], 20), /text token 0 \(50256\) is not a text token/);
  await assert.rejects(findAlignment(session, { ...setup, alignmentHeads: [] }, [tok.sot], [1, 2], 20), /no alignment heads/);
  await assert.rejects(findAlignment(session, { ...setup, alignmentHeads: [[3, 0]] }, [tok.sot], [1, 2], 20), /names layer 3, the decoder has 1/);
  await assert.rejects(findAlignment(session, { ...setup, nTextCtx: 4 }, [tok.sot], [1, 2], 20), /do not fit the decoder context of 4/);
  await assert.rejects(findAlignment(session, setup, [tok.sot], [1, 2], 1), MurmurError);
});
