/**
 * Byte strings as JavaScript strings with one char per byte (0..255), the cheapest hashable key a
 * Map can take, plus the UTF-8 conversions the tokenizer needs around them.
 */

/** A byte string's key: one char (U+0000..U+00FF) per byte. */
export function bytesToKey(bytes: Uint8Array): string {
  let key = '';
  for (let start = 0; start < bytes.length; start += 8192) {
    key += String.fromCharCode(...bytes.subarray(start, start + 8192));
  }
  return key;
}

export function keyToBytes(key: string): Uint8Array {
  const bytes = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) bytes[i] = key.charCodeAt(i);
  return bytes;
}

/**
 * The UTF-8 bytes of `text` as a byte key, without an intermediate Uint8Array. Lone surrogates
 * become U+FFFD, as TextEncoder (and the WASM string boundary of tiktoken) does.
 */
export function utf8Key(text: string): string {
  let key = '';
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      key += text[i];
      continue;
    }
    if (c < 0x800) {
      key += String.fromCharCode(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const low = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
        key += String.fromCharCode(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
        continue;
      }
      c = 0xfffd;
    }
    key += String.fromCharCode(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return key;
}
