// Greedy decoding against a scripted LogitsSource: suppression, stopping, log-probs, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { defaultPrompt, greedyDecode, pickGreedy, type DecodingSetup, type LogitsSource } from '../../src/core/decoding/greedy.ts';
import { AbortError, MurmurError } from '../../src/core/errors.ts';
import type { WhisperTokenizer } from '../../src/core/tokenizer/tokenizer.ts';
import { DEFAULT_ASSETS_DIR, syntheticTokenizer } from '../../scripts/synthetic/generate.ts';

const haveAssets = existsSync(`${DEFAULT_ASSETS_DIR}/gpt2.tiktoken`);
const skip = haveAssets ? false : `${DEFAULT_ASSETS_DIR} is absent (reference data folder not mounted)`;
const nVocab = 51864;
let tokenizerPromise: Promise<WhisperTokenizer> | undefined;
const tokenizer = () => (tokenizerPromise ??= syntheticTokenizer(nVocab));

/** A source whose logits favour `preferred[step]` (then `fallback`), and which records what it was asked. */
function scripted(preferred: number[][], seen: number[][] = []): LogitsSource {
  return {
    async next(tokens) {
      seen.push([...tokens]);
      const logits = new Float32Array(nVocab);
      const wishes = preferred[Math.min(seen.length - 1, preferred.length - 1)]!;
      wishes.forEach((id, rank) => (logits[id] = 10 - rank));
      return logits;
    },
  };
}

async function setup(suppressTokens: number[] = [], beginSuppressTokens: number[] = []): Promise<DecodingSetup> {
  const tok = await tokenizer();
  return {
    tokenizer: tok,
    generation: { suppressTokens, beginSuppressTokens, alignmentHeads: undefined, maxInitialTimestampIndex: 50 },
    dims: { nTextCtx: 448, nVocab },
  };
}

test('greedy takes the best allowed token each step and stops at end-of-text', { skip }, async () => {
  const s = await setup([11], [220, 50256]);
  const hello = s.tokenizer.encode(' hello world');
  const seen: number[][] = [];
  // Step 1 wants eot and space (begin-suppressed), step 2 wants token 11 (always suppressed), then eot.
  const result = await greedyDecode(scripted([[50256, 220, hello[0]!], [11, hello[1]!], [50256]], seen), s);
  assert.deepEqual(result.tokens, hello);
  assert.equal(result.text, ' hello world');
  assert.equal(result.stop, 'eot');
  assert.equal(result.logProbs.length, 3);
  const prompt = defaultPrompt(s.tokenizer);
  assert.deepEqual(prompt, [s.tokenizer.sot, s.tokenizer.noTimestamps]);
  assert.deepEqual(seen, [prompt, [...prompt, hello[0]!], [...prompt, ...hello]]);
});

test('special tokens other than end-of-text are never sampled; the limit stops decoding', { skip }, async () => {
  const s = await setup();
  const tok = s.tokenizer;
  const result = await greedyDecode(scripted([[tok.timestampBegin, tok.noTimestamps, tok.sot, 400]]), s, { maxTokens: 5 });
  assert.deepEqual(result.tokens, [400, 400, 400, 400, 400]);
  assert.equal(result.stop, 'length');
  // The default limit is nTextCtx / 2.
  assert.equal((await greedyDecode(scripted([[400]]), s)).tokens.length, 224);
  assert.equal((await greedyDecode(scripted([[400]]), s, { maxTokens: 0 })).tokens.length, 0);
});

test('log-probabilities are the log-softmax over the allowed tokens', () => {
  const logits = Float32Array.from([1, 3, 2, 5]);
  const { token, logProb } = pickGreedy(logits, (id) => id === 3);
  assert.equal(token, 1);
  const expected = 3 - Math.log(Math.exp(1) + Math.exp(3) + Math.exp(2));
  assert.ok(Math.abs(logProb - expected) < 1e-12);
  // Ties go to the lowest id, as argmax does.
  assert.equal(pickGreedy(Float32Array.from([2, 2]), () => false).token, 0);
  assert.throws(() => pickGreedy(Float32Array.from([0, NaN]), () => false), (e: unknown) => e instanceof MurmurError && /NaN logit for token 1/.test(e.message));
  assert.throws(() => pickGreedy(Float32Array.from([0, 1]), () => true), MurmurError);
});

test('bad prompts, a wrong logit count and cancellation are errors', { skip }, async () => {
  const s = await setup();
  await assert.rejects(() => greedyDecode(scripted([[400]]), s, { prompt: [] }), /prompt of 0 tokens/);
  await assert.rejects(() => greedyDecode(scripted([[400]]), s, { prompt: new Array(448).fill(s.tokenizer.sot) }), /does not fit/);
  const short: LogitsSource = { next: async () => new Float32Array(10) };
  await assert.rejects(() => greedyDecode(short, s), /10 logits for a vocabulary of 51864/);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(() => greedyDecode(scripted([[400]]), s, { signal: controller.signal }), AbortError);
  // The prompt plus the sampled tokens never exceed the context.
  const long = await greedyDecode(scripted([[400]]), s, { prompt: new Array(440).fill(s.tokenizer.sot), maxTokens: 100 });
  assert.equal(long.tokens.length, 8);
});
