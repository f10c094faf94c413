/**
 * GPT-2's reversible byte <-> printable character mapping, which Hugging Face's byte-level BPE
 * files use to write token bytes as JSON strings: printable Latin-1 bytes stand for themselves,
 * the other 68 bytes take the characters from U+0100 upwards in byte order (space becomes 'Ġ').
 */

function isPrintableLatin1(byte: number): boolean {
  return (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
}

const BYTE_TO_CHAR: readonly string[] = (() => {
  const chars: string[] = [];
  let next = 0x100;
  for (let byte = 0; byte < 256; byte++) chars.push(String.fromCharCode(isPrintableLatin1(byte) ? byte : next++));
  return chars;
})();

const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((char, byte) => [char, byte]));

export function bytesToByteLevel(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += BYTE_TO_CHAR[byte];
  return text;
}

/** The bytes a byte-level string stands for, or undefined if it has a char outside the mapping. */
export function byteLevelToBytes(text: string): Uint8Array | undefined {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const byte = CHAR_TO_BYTE.get(text[i]);
    if (byte === undefined) return undefined;
    bytes[i] = byte;
  }
  return bytes;
}
