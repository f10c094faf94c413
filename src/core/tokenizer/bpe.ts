/**
 * Rank-based byte-pair encoding, the algorithm of OpenAI's tiktoken: split text with GPT-2's
 * pattern, then in each piece repeatedly merge the adjacent pair whose concatenation has the
 * lowest rank (the leftmost on ties) until no pair is a token.
 *
 * tiktoken rescans the piece after every merge (quadratic in the piece length); this keeps the
 * candidate pairs in a heap instead, which picks the same pair at every step in O(n log n), so a
 * megabyte without spaces cannot stall the page.
 */
import { TokenizerError } from '../errors.ts';
import { bytesToKey, keyToBytes, utf8Key } from './bytes.ts';

/**
 * GPT-2's pre-tokenization pattern. `\s` is spelled `\p{White_Space}` because tiktoken's Rust
 * regex means the Unicode property by it, while JavaScript's `\s` differs (it adds U+FEFF and
 * leaves out U+0085).
 */
const PIECE_PATTERN =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

/** The pieces BPE works on, in order; their concatenation is the input. */
export function splitPieces(text: string): string[] {
  return text.match(PIECE_PATTERN) ?? [];
}

/** Pieces up to this length have their tokens remembered; longer ones are rare and costly to keep. */
const CACHED_PIECE_LENGTH = 64;
const CACHE_ENTRIES = 32_768;

export class BytePairEncoder {
  /** Byte string of each rank (holes allowed), indexed by rank. */
  readonly tokens: readonly (Uint8Array | undefined)[];
  private readonly rankByKey = new Map<string, number>();
  private readonly pieceCache = new Map<string, readonly number[]>();

  constructor(tokens: readonly (Uint8Array | undefined)[], source: string) {
    this.tokens = tokens;
    tokens.forEach((bytes, rank) => {
      if (bytes === undefined) return;
      const key = bytesToKey(bytes);
      const earlier = this.rankByKey.get(key);
      if (earlier !== undefined) {
        throw new TokenizerError(`${source}: tokens ${earlier} and ${rank} have the same bytes`);
      }
      this.rankByKey.set(key, rank);
    });
    for (let byte = 0; byte < 256; byte++) {
      if (!this.rankByKey.has(String.fromCharCode(byte))) {
        throw new TokenizerError(
          `${source}: no token for the single byte 0x${byte.toString(16).padStart(2, '0')}, so some text could not be encoded`,
        );
      }
    }
  }

  /** The rank of a byte string, or undefined when it is not a token. */
  rankOf(bytes: Uint8Array): number | undefined {
    return this.rankByKey.get(bytesToKey(bytes));
  }

  /** Token ids of plain text; nothing in it is treated as a special token. */
  encodeOrdinary(text: string): number[] {
    const ids: number[] = [];
    for (const piece of splitPieces(text)) {
      const cached = this.pieceCache.get(piece);
      if (cached !== undefined) {
        for (const id of cached) ids.push(id);
        continue;
      }
      const pieceIds = this.encodePiece(utf8Key(piece));
      if (piece.length <= CACHED_PIECE_LENGTH) {
        if (this.pieceCache.size >= CACHE_ENTRIES) this.pieceCache.clear();
        this.pieceCache.set(piece, pieceIds);
      }
      for (const id of pieceIds) ids.push(id);
    }
    return ids;
  }

  private encodePiece(key: string): number[] {
    // As tiktoken: a piece that is itself a token is that token, even if merging would not reach it.
    const whole = this.rankByKey.get(key);
    if (whole !== undefined) return [whole];
    const bounds = this.mergeBounds(key, Infinity);
    const ids: number[] = [];
    for (let i = 0; i + 1 < bounds.length; i++) ids.push(this.rankByKey.get(key.slice(bounds[i], bounds[i + 1]))!);
    return ids;
  }

  /**
   * The parts BPE splits `bytes` into when only tokens of rank below `maxRank` may be formed.
   * With maxRank = a token's own rank this gives the merge that creates it (how Hugging Face's
   * converter derives merges.txt from ranks).
   */
  mergeParts(bytes: Uint8Array, maxRank: number): Uint8Array[] {
    const key = bytesToKey(bytes);
    const bounds = this.mergeBounds(key, maxRank);
    const parts: Uint8Array[] = [];
    for (let i = 0; i + 1 < bounds.length; i++) parts.push(keyToBytes(key.slice(bounds[i], bounds[i + 1])));
    return parts;
  }

  /** Start offsets of the final parts of `key`, followed by its length. */
  private mergeBounds(key: string, maxRank: number): number[] {
    const n = key.length;
    if (n <= 1) return n === 0 ? [0] : [0, 1];
    // Parts are contiguous runs [start, end[start]); a part is identified by its start offset.
    const end = new Int32Array(n);
    const prev = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      end[i] = i + 1;
      prev[i] = i - 1;
    }
    const heap = new PairHeap(n);
    const offer = (left: number, pairEnd: number): void => {
      const rank = this.rankByKey.get(key.slice(left, pairEnd));
      if (rank !== undefined && rank < maxRank) heap.push(rank, left, pairEnd);
    };
    for (let i = 0; i + 1 < n; i++) offer(i, i + 2);

    while (heap.size > 0) {
      const { left, pairEnd } = heap.pop();
      // Stale entries (one of the two parts has merged since) are skipped.
      if (!alive[left]) continue;
      const right = end[left];
      if (right >= n || end[right] !== pairEnd) continue;
      alive[right] = 0;
      end[left] = pairEnd;
      if (pairEnd < n) prev[pairEnd] = left;
      if (left > 0) offer(prev[left], pairEnd);
      if (pairEnd < n) offer(left, end[pairEnd]);
    }

    const bounds: number[] = [];
    for (let start = 0; start < n; start = end[start]) bounds.push(start);
    bounds.push(n);
    return bounds;
  }
}

/** A binary min-heap of candidate merges ordered by (rank, left offset): tiktoken's choice. */
class PairHeap {
  private keys: number[] = [];
  private ends: number[] = [];
  constructor(private readonly pieceLength: number) {}

  get size(): number {
    return this.keys.length;
  }

  push(rank: number, left: number, pairEnd: number): void {
    // rank * n + left is exact in a double for any rank and piece length a browser can hold.
    const key = rank * this.pieceLength + left;
    const keys = this.keys;
    const ends = this.ends;
    let i = keys.length;
    keys.push(key);
    ends.push(pairEnd);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent] <= key) break;
      keys[i] = keys[parent];
      ends[i] = ends[parent];
      i = parent;
    }
    keys[i] = key;
    ends[i] = pairEnd;
  }

  pop(): { left: number; pairEnd: number } {
    const keys = this.keys;
    const ends = this.ends;
    const topKey = keys[0];
    const topEnd = ends[0];
    const lastKey = keys.pop()!;
    const lastEnd = ends.pop()!;
    const size = keys.length;
    if (size > 0) {
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= size) break;
        if (child + 1 < size && keys[child + 1] < keys[child]) child++;
        if (keys[child] >= lastKey) break;
        keys[i] = keys[child];
        ends[i] = ends[child];
        i = child;
      }
      keys[i] = lastKey;
      ends[i] = lastEnd;
    }
    return { left: topKey % this.pieceLength, pairEnd: topEnd };
  }
}
