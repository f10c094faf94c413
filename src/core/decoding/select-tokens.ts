/**
 * The token selection of a decoder step (WhisperOps.selectTokens) worked out on the host from full
 * logits: the reference backend's implementation of the op, and the oracle the GPU kernel is
 * tested against. It applies the rules with the same functions the host decoding path uses
 * (filters.ts, math.ts), so both paths choose the same tokens with the same log-probabilities.
 */
import type { TokenRange, TokenSelection, TokenSelectionRequest } from '../model/ops.ts';
import { TOKEN_SELECTION_MAX_K } from '../model/ops.ts';
import { suppressTextWhenTimestampsWin } from './filters.ts';
import { logSumExp, topK } from './math.ts';
import { MurmurError } from '../errors.ts';

function requestError(problem: string): MurmurError {
  return new MurmurError('DECODER', `selectTokens: ${problem}`);
}

/** Throws a MurmurError naming the first thing in `request` that does not fit logits [rows, cols]. */
export function checkSelectionRequest(request: TokenSelectionRequest, rows: number, cols: number): void {
  const { topK: k, suppress, suppressRanges, timestampBegin, gather } = request;
  if (!Number.isInteger(k) || k < 1 || k > TOKEN_SELECTION_MAX_K || k > cols) {
    throw requestError(`topK must be a whole number from 1 to ${Math.min(TOKEN_SELECTION_MAX_K, cols)}, got ${k}`);
  }
  if (suppress && suppress.length !== Math.ceil(cols / 32)) throw requestError(`the suppress bitset has ${suppress.length} words, a vocabulary of ${cols} needs ${Math.ceil(cols / 32)}`);
  if (suppressRanges) {
    if (suppressRanges.length !== rows) throw requestError(`${suppressRanges.length} rows of suppressed ranges for ${rows} rows of logits`);
    suppressRanges.forEach((ranges, row) => {
      for (const [from, to] of ranges) {
        if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to < from) throw requestError(`row ${row} suppresses the range [${from}, ${to}), not a range of token ids`);
      }
    });
  }
  if (timestampBegin !== undefined && !(Number.isInteger(timestampBegin) && timestampBegin >= 0 && timestampBegin <= cols)) {
    throw requestError(`timestampBegin ${timestampBegin} is not a token id of a vocabulary of ${cols}`);
  }
  for (const id of gather ?? []) {
    if (!Number.isInteger(id) || id < 0 || id >= cols) throw requestError(`gather asks for token ${id} of a vocabulary of ${cols}`);
  }
}

/** A bitset of ceil(nVocab / 32) words with the ranges' tokens set (TokenSelectionRequest.suppress). */
export function packTokenRanges(ranges: readonly TokenRange[], nVocab: number): Uint32Array {
  const words = new Uint32Array(Math.ceil(nVocab / 32));
  for (const [from, to] of ranges) {
    for (let id = Math.max(0, from); id < Math.min(to, nVocab); id++) words[id >>> 5]! |= 1 << (id & 31);
  }
  return words;
}

function firstNaN(row: Float32Array): number {
  for (let i = 0; i < row.length; i++) if (Number.isNaN(row[i]!)) return i;
  return -1;
}

/** selectTokens over host logits [rows, cols], row-major. */
export function selectTokensOnHost(logits: Float32Array, rows: number, cols: number, request: TokenSelectionRequest): TokenSelection[] {
  if (logits.length !== rows * cols) throw requestError(`${logits.length} logits are not [${rows}, ${cols}]`);
  checkSelectionRequest(request, rows, cols);
  const { suppress, suppressRanges, timestampBegin, gather = [] } = request;
  return Array.from({ length: rows }, (_, r) => {
    const raw = logits.subarray(r * cols, (r + 1) * cols);
    const row = raw.slice();
    if (suppress) {
      for (let id = 0; id < cols; id++) if ((suppress[id >>> 5]! >>> (id & 31)) & 1) row[id] = -Infinity;
    }
    for (const [from, to] of suppressRanges?.[r] ?? []) if (from < cols) row.fill(-Infinity, from, Math.min(to, cols));
    const rule = timestampBegin !== undefined ? suppressTextWhenTimestampsWin(row, timestampBegin) : { timestampLogSumExp: -Infinity, maxTextLogit: -Infinity, timestampsWin: false };
    const normalizer = logSumExp(row);
    // Ranked by logit (the normalizer is shared), so the first is exactly argmax.
    const top = topK(row, request.topK);
    return {
      ids: top.map(({ index }) => index),
      logProbs: top.map(({ value }) => (normalizer === -Infinity ? -Infinity : value - normalizer)),
      logSumExp: normalizer,
      rawLogSumExp: logSumExp(raw),
      ...rule,
      gathered: gather.map((id) => raw[id]!),
      nanToken: firstNaN(raw),
    };
  });
}
