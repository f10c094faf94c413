/**
 * Greedy decoding: from the start-of-transcript prompt, take the most likely allowed token until
 * end-of-text or a token limit.
 *
 * It sees the model only through a LogitsSource, so it runs unchanged on any backend, and the
 * later decoding stack (beam search, temperature fallback, timestamps) builds on the same pieces.
 */
import type { GenerationConfig } from '../model/model.ts';
import type { WhisperTokenizer } from '../tokenizer/tokenizer.ts';
import { AbortError, MurmurError } from '../errors.ts';

/** Next-token logits for a sequence. */
export interface LogitsSource {
  /**
   * Logits [nVocab] for the position after `tokens`, the whole sequence so far (prompt included).
   * A source with a KV cache feeds only what it has not seen yet.
   */
  next(tokens: readonly number[]): Promise<Float32Array>;
}

export interface GreedyOptions {
  /** The prompt; default the tokenizer's SOT sequence for language/task followed by <|notimestamps|>. */
  prompt?: number[];
  language?: string;
  task?: 'transcribe' | 'translate';
  /** Most tokens to sample (eot not counted); default nTextCtx / 2, never past the context. */
  maxTokens?: number;
  signal?: AbortSignal;
}

export interface GreedyResult {
  /** The sampled text tokens, without the prompt and without the final <|endoftext|>. */
  tokens: number[];
  text: string;
  /** Log-probability of each sampled token (and of the final eot when there is one), after suppression. */
  logProbs: number[];
  /** 'eot' when the model ended the text, 'length' when the token limit did. */
  stop: 'eot' | 'length';
}

export interface DecodingSetup {
  tokenizer: WhisperTokenizer;
  generation: GenerationConfig;
  dims: { nTextCtx: number; nVocab: number };
}

/** The default prompt: SOT sequence for the language and task, then <|notimestamps|>. */
export function defaultPrompt(tokenizer: WhisperTokenizer, options: { language?: string; task?: 'transcribe' | 'translate' } = {}): number[] {
  return [...tokenizer.sotSequence(options), tokenizer.noTimestamps];
}

/**
 * Which tokens may never be sampled: the model's suppress list, plus every special token but
 * end-of-text — control, language and prompt tokens have no place inside a transcript, and
 * without timestamps neither do timestamp tokens (as Hugging Face's no-timestamps rule has it).
 */
export function suppressionMask(setup: DecodingSetup): Uint8Array {
  const { tokenizer, generation, dims } = setup;
  const mask = new Uint8Array(dims.nVocab);
  for (const id of generation.suppressTokens) if (id >= 0 && id < dims.nVocab) mask[id] = 1;
  for (let id = tokenizer.eot + 1; id < dims.nVocab; id++) mask[id] = 1;
  return mask;
}

/** Index of the largest allowed logit (first one on ties) and its log-softmax over the allowed tokens. */
export function pickGreedy(logits: Float32Array, suppressed: (id: number) => boolean): { token: number; logProb: number } {
  let best = -1;
  let max = -Infinity;
  for (let id = 0; id < logits.length; id++) {
    const value = logits[id]!;
    if (Number.isNaN(value)) throw new MurmurError('NUMERIC', `the model produced a NaN logit for token ${id}`);
    if (!suppressed(id) && value > max) {
      max = value;
      best = id;
    }
  }
  if (best < 0) throw new MurmurError('NUMERIC', 'every token is suppressed or has a logit of -Infinity');
  let total = 0;
  for (let id = 0; id < logits.length; id++) if (!suppressed(id)) total += Math.exp(logits[id]! - max);
  return { token: best, logProb: -Math.log(total) };
}

export async function greedyDecode(source: LogitsSource, setup: DecodingSetup, options: GreedyOptions = {}): Promise<GreedyResult> {
  const { tokenizer, generation, dims } = setup;
  const prompt = options.prompt ?? defaultPrompt(tokenizer, options);
  if (prompt.length === 0 || prompt.length >= dims.nTextCtx) {
    throw new MurmurError('DECODER', `a prompt of ${prompt.length} tokens does not fit the decoder context of ${dims.nTextCtx}`);
  }
  const limit = Math.min(options.maxTokens ?? Math.floor(dims.nTextCtx / 2), dims.nTextCtx - prompt.length);
  if (!Number.isInteger(limit) || limit < 0) throw new MurmurError('DECODER', `maxTokens must be a whole number ≥ 0, got ${options.maxTokens}`);

  const always = suppressionMask(setup);
  const atBegin = new Set(generation.beginSuppressTokens);
  const sequence = [...prompt];
  const tokens: number[] = [];
  const logProbs: number[] = [];
  while (tokens.length < limit) {
    if (options.signal?.aborted) throw new AbortError('decoding');
    const logits = await source.next(sequence);
    if (logits.length !== dims.nVocab) throw new MurmurError('DECODER', `${logits.length} logits for a vocabulary of ${dims.nVocab}`);
    const first = tokens.length === 0;
    const { token, logProb } = pickGreedy(logits, (id) => always[id] === 1 || (first && atBegin.has(id)));
    logProbs.push(logProb);
    if (token === tokenizer.eot) return { tokens, text: tokenizer.decode(tokens), logProbs, stop: 'eot' };
    tokens.push(token);
    sequence.push(token);
  }
  return { tokens, text: tokenizer.decode(tokens), logProbs, stop: 'length' };
}
