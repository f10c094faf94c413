// compressionRatio: the zlib-size estimate against sizes from CPython's zlib.compress (zlib 1.2.13,
// level 6, what OpenAI's whisper calls), and its job: flag a repetition loop above 2.4.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { compressionRatio, deflatedSize } from '../../src/core/decoding/compression.ts';
import { createRandom } from '../../src/core/decoding/math.ts';

/** [text, len(zlib.compress(text.encode()))] measured with CPython 3 / zlib 1.2.13. */
const ZLIB_SIZES: [string, number][] = [
  ['And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.', 79],
  [' Hello.', 15],
  ['a', 9],
  [' I think that the thing is, I think that the thing is, I think that the thing is, I think that the thing is, I think that the thing is.', 33],
  [' Thank you. Thank you. Thank you. Thank you. Thank you. Thank you. Thank you. Thank you. Thank you. Thank you.', 22],
  ['The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. How vexingly quick daft zebras jump! Sphinx of black quartz, judge my vow. The five boxing wizards jump quickly.', 147],
  ['Über die Brücke gehen wir morgen früh, wenn die Sonne aufgeht und die Vögel singen. 今日はいい天気ですね。', 126],
  [' So we went down to the river that morning, and the water was higher than anyone had seen it in years. My father said we should wait, but my brother had already started across with the dog.', 134],
  [' The committee will meet again on Thursday to discuss the budget, the new hiring plan, and whether the office should move downtown next spring.', 113],
];

test('the deflate size estimate agrees with zlib within 5% (and 2 bytes) on text', () => {
  for (const [text, expected] of ZLIB_SIZES) {
    const estimate = deflatedSize(new TextEncoder().encode(text));
    assert.ok(Math.abs(estimate - expected) <= Math.max(2, 0.05 * expected), `${JSON.stringify(text.slice(0, 30))}: estimate ${estimate}, zlib ${expected}`);
  }
});

test('longer inputs: within a few percent of the zlib in this Node, incompressible data is stored', () => {
  const text = ZLIB_SIZES.map(([t]) => t).join(' ').repeat(3) + ' and finally something new at the very end of it all.';
  const bytes = new TextEncoder().encode(text);
  const node = deflateSync(bytes).length;
  const estimate = deflatedSize(bytes);
  assert.ok(Math.abs(estimate - node) / node < 0.05, `estimate ${estimate}, node zlib ${node}`);
  // Pseudo-random bytes do not compress: a stored block, 5 bytes of block header, 6 of zlib wrapper.
  const random = createRandom(11);
  const noise = Uint8Array.from({ length: 3000 }, () => Math.floor(random() * 256));
  assert.equal(deflatedSize(noise), 3000 + 11);
  assert.equal(deflateSync(noise).length, 3000 + 11);
});

test('a looping transcript is above 2.4, ordinary speech below', () => {
  const loop = ' Thank you for watching.'.repeat(20);
  assert.ok(compressionRatio(loop) > 2.4, `${compressionRatio(loop)}`);
  const speech = 'And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.';
  assert.ok(compressionRatio(speech) < 2.4 && compressionRatio(speech) > 1, `${compressionRatio(speech)}`);
  const expected = 107 / 79;
  assert.ok(Math.abs(compressionRatio(speech) - expected) / expected < 0.05);
  assert.equal(compressionRatio(''), 0);
});
