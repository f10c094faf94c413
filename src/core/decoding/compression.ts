/**
 * Whisper's repetition-loop detector, `len(bytes) / len(zlib.compress(bytes))`, without zlib: a
 * synchronous estimate of the size zlib's default level (6) produces, so it runs the same in the
 * browser and in Node. It follows the parts of zlib that decide the size — LZ77 over a 32 KiB
 * window with lazy matching and zlib's level-6 search limits, then the cheapest of a dynamic
 * Huffman, fixed Huffman or stored block — and agrees with zlib within a few percent on text.
 */

const MIN_MATCH = 3;
const MAX_MATCH = 258;
const WINDOW = 32768;
/** zlib level 6: search limits and when to settle for a match. */
const MAX_CHAIN = 128;
const GOOD_LENGTH = 8;
const NICE_LENGTH = 128;
const MAX_LAZY = 16;
/** zlib drops 3-byte matches farther back than this: they cost more than three literals. */
const TOO_FAR = 4096;
const END_OF_BLOCK = 256;
/** 2-byte zlib header and 4-byte Adler-32 trailer. */
const ZLIB_WRAPPER_BYTES = 6;

const LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DISTANCE_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DISTANCE_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
/** The order code-length code lengths are written in (RFC 1951 §3.2.7). */
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

function lengthSymbol(length: number): number {
  let code = LENGTH_BASE.length - 1;
  while (LENGTH_BASE[code]! > length) code--;
  return code;
}

function distanceSymbol(distance: number): number {
  let code = DISTANCE_BASE.length - 1;
  while (DISTANCE_BASE[code]! > distance) code--;
  return code;
}

/** Symbol counts of the LZ77 parse: literal/length alphabet (0..285) and distance alphabet (0..29). */
interface Parse {
  literals: number[];
  distances: number[];
  /** Bits of the length and distance extra fields, the same whatever the Huffman codes. */
  extraBits: number;
}

function lz77(data: Uint8Array): Parse {
  const literals = new Array<number>(286).fill(0);
  const distances = new Array<number>(30).fill(0);
  let extraBits = 0;
  const head = new Map<number, number>();
  const previous = new Int32Array(data.length).fill(-1);
  const key = (i: number) => (data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!;
  const insert = (i: number): number => {
    if (i + MIN_MATCH > data.length) return -1;
    const k = key(i);
    const before = head.get(k) ?? -1;
    previous[i] = before;
    head.set(k, i);
    return before;
  };
  const longestMatch = (pos: number, candidate: number, atLeast: number): { length: number; start: number } => {
    let best = atLeast;
    let start = -1;
    let chain = atLeast >= GOOD_LENGTH ? MAX_CHAIN >> 2 : MAX_CHAIN;
    const limit = Math.min(MAX_MATCH, data.length - pos);
    while (candidate >= 0 && pos - candidate <= WINDOW && chain-- > 0) {
      let length = 0;
      while (length < limit && data[candidate + length] === data[pos + length]) length++;
      if (length > best) {
        best = length;
        start = candidate;
        if (length >= NICE_LENGTH || length === limit) break;
      }
      candidate = previous[candidate]!;
    }
    return { length: start < 0 ? MIN_MATCH - 1 : best, start };
  };
  const emitLiteral = (byte: number) => literals[byte]!++;
  const emitMatch = (distance: number, length: number) => {
    const l = lengthSymbol(length);
    const d = distanceSymbol(distance);
    literals[257 + l]!++;
    distances[d]!++;
    extraBits += LENGTH_EXTRA[l]! + DISTANCE_EXTRA[d]!;
  };

  // zlib's deflate_slow: keep a match pending for one byte in case the next position has a longer one.
  let pending = false;
  let matchLength = MIN_MATCH - 1;
  let matchStart = 0;
  let pos = 0;
  while (pos < data.length) {
    const candidate = insert(pos);
    const previousLength = matchLength;
    const previousStart = matchStart;
    matchLength = MIN_MATCH - 1;
    if (candidate >= 0 && previousLength < MAX_LAZY) {
      const found = longestMatch(pos, candidate, previousLength);
      if (found.start >= 0) {
        matchLength = found.length;
        matchStart = found.start;
        if (matchLength === MIN_MATCH && pos - matchStart > TOO_FAR) matchLength = MIN_MATCH - 1;
      }
    }
    if (previousLength >= MIN_MATCH && matchLength <= previousLength) {
      emitMatch(pos - 1 - previousStart, previousLength);
      const end = pos - 1 + previousLength;
      for (let i = pos + 1; i < end; i++) insert(i);
      pending = false;
      matchLength = MIN_MATCH - 1;
      pos = end;
    } else {
      if (pending) emitLiteral(data[pos - 1]!);
      pending = true;
      pos++;
    }
  }
  if (pending) emitLiteral(data[pos - 1]!);
  literals[END_OF_BLOCK]!++;
  return { literals, distances, extraBits };
}

/** Huffman code lengths for these frequencies, none longer than maxBits (zero for unused symbols). */
function codeLengths(frequencies: readonly number[], maxBits: number): number[] {
  let weights = frequencies.slice();
  for (;;) {
    const lengths = huffmanLengths(weights);
    if (Math.max(...lengths) <= maxBits) return lengths;
    // Flatten the distribution until the tree is shallow enough; rare in practice.
    weights = weights.map((w) => (w === 0 ? 0 : Math.max(1, w >> 1)));
  }
}

function huffmanLengths(frequencies: readonly number[]): number[] {
  const lengths = new Array<number>(frequencies.length).fill(0);
  const used = frequencies.flatMap((f, symbol) => (f > 0 ? [symbol] : []));
  // zlib forces at least two codes so every tree has one bit per symbol.
  if (used.length <= 1) {
    for (const symbol of used) lengths[symbol] = 1;
    return lengths;
  }
  interface Node { weight: number; symbols: number[] }
  let nodes: Node[] = used.map((symbol) => ({ weight: frequencies[symbol]!, symbols: [symbol] }));
  while (nodes.length > 1) {
    nodes.sort((a, b) => a.weight - b.weight);
    const [a, b] = nodes as [Node, Node];
    for (const symbol of [...a.symbols, ...b.symbols]) lengths[symbol]!++;
    nodes = [{ weight: a.weight + b.weight, symbols: [...a.symbols, ...b.symbols] }, ...nodes.slice(2)];
  }
  return lengths;
}

/** The code-length sequence run-length coded with symbols 16 (repeat), 17 and 18 (zeros): symbol counts and extra bits. */
function runLengthCode(lengths: readonly number[]): { counts: number[]; extraBits: number } {
  const counts = new Array<number>(19).fill(0);
  let extraBits = 0;
  for (let i = 0; i < lengths.length; ) {
    const value = lengths[i]!;
    let run = 1;
    while (i + run < lengths.length && lengths[i + run] === value) run++;
    i += run;
    if (value === 0) {
      while (run >= 11) {
        counts[18]!++;
        extraBits += 7;
        run -= Math.min(run, 138);
      }
      if (run >= 3) {
        counts[17]!++;
        extraBits += 3;
        run = 0;
      }
      counts[0]! += run;
    } else {
      counts[value]!++;
      run--;
      while (run >= 3) {
        counts[16]!++;
        extraBits += 2;
        run -= Math.min(run, 6);
      }
      counts[value]! += run;
    }
  }
  return { counts, extraBits };
}

function dynamicBlockBits(parse: Parse): number {
  const literalLengths = codeLengths(parse.literals, 15);
  const distanceCounts = parse.distances.some((count) => count > 0) ? parse.distances : [1, 1, ...parse.distances.slice(2)];
  const distanceLengths = codeLengths(distanceCounts, 15);
  const lastUsed = (lengths: number[], minimum: number) => {
    let n = lengths.length;
    while (n > minimum && lengths[n - 1] === 0) n--;
    return n;
  };
  const hlit = lastUsed(literalLengths, 257);
  const hdist = lastUsed(distanceLengths, 1);
  const rle = runLengthCode([...literalLengths.slice(0, hlit), ...distanceLengths.slice(0, hdist)]);
  const codeLengthLengths = codeLengths(rle.counts, 7);
  let hclen = CODE_LENGTH_ORDER.length;
  while (hclen > 4 && codeLengthLengths[CODE_LENGTH_ORDER[hclen - 1]!] === 0) hclen--;

  let bits = 3 + 5 + 5 + 4 + 3 * hclen + rle.extraBits + parse.extraBits;
  rle.counts.forEach((count, symbol) => (bits += count * codeLengthLengths[symbol]!));
  parse.literals.forEach((count, symbol) => (bits += count * literalLengths[symbol]!));
  parse.distances.forEach((count, symbol) => (bits += count * distanceLengths[symbol]!));
  return bits;
}

function fixedBlockBits(parse: Parse): number {
  let bits = 3 + parse.extraBits;
  parse.literals.forEach((count, symbol) => (bits += count * (symbol < 144 ? 8 : symbol < 256 ? 9 : symbol < 280 ? 7 : 8)));
  parse.distances.forEach((count) => (bits += count * 5));
  return bits;
}

/** Bytes zlib.compress(data) (level 6) takes, estimated. */
export function deflatedSize(data: Uint8Array): number {
  const parse = lz77(data);
  const storedBits = 3 + 5 + 32 + 8 * data.length;
  const bits = Math.min(dynamicBlockBits(parse), fixedBlockBits(parse), storedBits);
  return Math.ceil(bits / 8) + ZLIB_WRAPPER_BYTES;
}

/**
 * UTF-8 bytes of the text over their zlib-compressed size. Ordinary speech stays well below 2.4;
 * a decoder stuck repeating a phrase goes far above it. 0 for empty text.
 */
export function compressionRatio(text: string): number {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length === 0) return 0;
  return bytes.length / deflatedSize(bytes);
}
