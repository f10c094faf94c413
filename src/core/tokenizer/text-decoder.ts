/**
 * Token ids to text as tokens arrive. A byte-level token can end in the middle of a UTF-8
 * character (CJK and emoji are often split across two or three tokens), so text is emitted only
 * once each character is complete; bytes that can never form one become U+FFFD.
 */

export interface TokenTextDecoder {
  /** Feeds tokens; returns the text completed by them (possibly empty). */
  push(ids: number | readonly number[]): string;
  /**
   * Ends the stream and returns what is left. A character still incomplete at the end is
   * dropped: it is half a token sequence, not text.
   */
  flush(): string;
}

/** Creates a streaming decoder over `bytesOf`, which returns a token's bytes or undefined to skip it. */
export function createTokenTextDecoder(bytesOf: (id: number) => Uint8Array | undefined): TokenTextDecoder {
  let utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  return {
    push(ids) {
      const list = typeof ids === 'number' ? [ids] : ids;
      const chunks: Uint8Array[] = [];
      let length = 0;
      for (const id of list) {
        const bytes = bytesOf(id);
        if (bytes === undefined || bytes.length === 0) continue;
        chunks.push(bytes);
        length += bytes.length;
      }
      if (length === 0) return '';
      const joined = chunks.length === 1 ? chunks[0] : concatBytes(chunks, length);
      // stream: true holds back an incomplete trailing character until the next call.
      return utf8.decode(joined, { stream: true });
    },
    flush() {
      // Whatever TextDecoder still holds is an incomplete character; start afresh without it.
      utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
      return '';
    },
  };
}

function concatBytes(chunks: readonly Uint8Array[], length: number): Uint8Array {
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}
