/**
 * OpenAI's `.tiktoken` rank files: one `base64(token bytes) rank` per line. Whisper's
 * multilingual file ends with `= 50256`, an empty token that must parse but is never produced.
 */
import { TokenizerError } from '../errors.ts';

const BASE64_VALUES = (() => {
  const values = new Int8Array(128).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < alphabet.length; i++) values[alphabet.charCodeAt(i)] = i;
  return values;
})();

/** Decodes standard base64 (padding optional); undefined when the text is not base64. */
export function decodeBase64(text: string): Uint8Array | undefined {
  let length = text.length;
  while (length > 0 && text.charCodeAt(length - 1) === 0x3d /* = */) length--;
  if (text.length - length > 2 || length % 4 === 1) return undefined;
  const bytes = new Uint8Array(Math.floor((length * 3) / 4));
  let accumulator = 0;
  let bits = 0;
  let out = 0;
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? BASE64_VALUES[code] : -1;
    if (value < 0) return undefined;
    accumulator = ((accumulator << 6) | value) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes[out++] = (accumulator >> bits) & 0xff;
    }
  }
  return bytes;
}

/** The byte string of each rank, indexed by rank (holes stay undefined). */
export function parseTiktokenRanks(fileText: string, source: string): (Uint8Array | undefined)[] {
  const ranks: (Uint8Array | undefined)[] = [];
  const lines = fileText.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index].trim();
    if (line === '') continue;
    const where = `${source}: line ${index + 1}`;
    const fields = line.split(/\s+/);
    if (fields.length !== 2) {
      throw new TokenizerError(`${where}: expected "base64 rank", got ${JSON.stringify(truncate(line))}`);
    }
    const [encoded, rankText] = fields;
    if (!/^\d{1,9}$/.test(rankText)) {
      throw new TokenizerError(`${where}: rank ${JSON.stringify(truncate(rankText))} is not a non-negative integer`);
    }
    const rank = Number(rankText);
    const bytes = decodeBase64(encoded);
    if (bytes === undefined) {
      throw new TokenizerError(`${where}: token ${JSON.stringify(truncate(encoded))} is not base64`);
    }
    if (ranks[rank] !== undefined) throw new TokenizerError(`${where}: rank ${rank} appears twice`);
    if (rank >= 1 << 24) throw new TokenizerError(`${where}: rank ${rank} is implausibly large`);
    while (ranks.length < rank) ranks.push(undefined);
    ranks[rank] = bytes;
  }
  if (ranks.length === 0) throw new TokenizerError(`${source}: no tokens in the file`);
  return ranks;
}

function truncate(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
