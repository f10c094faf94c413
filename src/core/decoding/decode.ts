/**
 * One 30 s window decoded the way OpenAI's whisper does it, on any backend through a
 * DecoderSession: language detection, prompt and prefix, logit filters, greedy / best-of sampling
 * / beam search as stacked sequences, no-speech probability, and temperature fallback.
 */
import type { DecoderSession } from './session.ts';
import type { TokenSelection, TokenSelectionRequest } from '../model/ops.ts';
import { TOKEN_SELECTION_MAX_K } from '../model/ops.ts';
import type { DecodingOptions, DecodingResult, DecodingSetupInput, FallbackOptions } from './options.ts';
import type { WhisperTokenizer } from '../tokenizer/tokenizer.ts';
import type { LogitFilter } from './filters.ts';
import { resolveSuppressTokens, suppressBlank, suppressTokens, timestampRules } from './filters.ts';
import { initialTokens } from './prompt.ts';
import { beamSearch, rankCandidates, sampling, type SearchStrategy, type SearchUpdate } from './search.ts';
import { checkLogits, checkSelection, createRandom, logSumExp } from './math.ts';
import { packTokenRanges } from './select-tokens.ts';
import { compressionRatio } from './compression.ts';
import { AbortError, MurmurError } from '../errors.ts';

/** OpenAI's fallback temperatures. */
export const DEFAULT_TEMPERATURES: readonly number[] = [0, 0.2, 0.4, 0.6, 0.8, 1.0];

/** Seconds per timestamp token. */
const TIMESTAMP_SECONDS = 0.02;

function optionError(message: string): MurmurError {
  return new MurmurError('DECODING_OPTIONS', message);
}

function positiveInteger(value: number | undefined, name: string): number | undefined {
  if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw optionError(`${name} must be a whole number ≥ 1, got ${value}`);
  return value;
}

/** OpenAI's option checks, plus range checks on every number. */
function checkOptions(options: DecodingOptions): void {
  const temperature = options.temperature ?? 0;
  if (!Number.isFinite(temperature) || temperature < 0) throw optionError(`temperature must be a finite number ≥ 0, got ${temperature}`);
  positiveInteger(options.sampleLen, 'sampleLen');
  positiveInteger(options.bestOf, 'bestOf');
  positiveInteger(options.beamSize, 'beamSize');
  if (options.beamSize !== undefined && options.bestOf !== undefined) throw optionError("beamSize and bestOf can't be given together");
  if (temperature === 0 && options.bestOf !== undefined) throw optionError('bestOf with greedy decoding (temperature 0) has nothing to choose from');
  if (options.beamSize !== undefined && temperature > 0) throw optionError('beam search runs at temperature 0');
  if (options.patience !== undefined) {
    if (options.beamSize === undefined) throw optionError('patience applies to beam search: give beamSize');
    if (!Number.isFinite(options.patience) || options.patience <= 0) throw optionError(`patience must be a number > 0, got ${options.patience}`);
  }
  const penalty = options.lengthPenalty;
  if (penalty !== undefined && penalty !== null && !(penalty >= 0 && penalty <= 1)) throw optionError(`lengthPenalty must be between 0 and 1, got ${penalty}`);
  const maxInitial = options.maxInitialTimestamp;
  if (maxInitial !== undefined && maxInitial !== null && !(Number.isFinite(maxInitial) && maxInitial >= 0)) {
    throw optionError(`maxInitialTimestamp must be a number of seconds ≥ 0, got ${maxInitial}`);
  }
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError('decoding');
}

function checkedLogits(session: DecoderSession, rows: Float32Array[], sequences: number): Float32Array[] {
  if (rows.length !== sequences) throw new MurmurError('DECODER', `the decoder returned logits for ${rows.length} sequences, expected ${sequences}`);
  for (const row of rows) {
    if (row.length !== session.nVocab) throw new MurmurError('DECODER', `${row.length} logits for a vocabulary of ${session.nVocab}`);
  }
  return rows;
}

/**
 * The spoken language from the logits after <|startoftranscript|>: softmax over the language
 * tokens only. English-only models answer 'en' without running the decoder.
 */
export async function detectLanguage(session: DecoderSession, tokenizer: WhisperTokenizer): Promise<{ language: string; probabilities: Record<string, number> }> {
  if (!tokenizer.isMultilingual) return { language: 'en', probabilities: { en: 1 } };
  const batch = session.begin(1);
  try {
    const ids = tokenizer.languages.map((code) => tokenizer.languageToken(code));
    let values: number[];
    if (batch.select) {
      // Only the language tokens' logits come back, not the vocabulary's.
      const [row] = await batch.select([[tokenizer.sot]], { topK: 1, gather: ids });
      checkSelection(row!, 'language detection');
      values = row!.gathered;
    } else {
      const [logits] = checkedLogits(session, (await batch.step([[tokenizer.sot]])).logits, 1);
      checkLogits(logits!, 'language detection');
      values = ids.map((id) => logits![id]!);
    }
    const normalizer = logSumExp(values);
    const probabilities: Record<string, number> = {};
    let language = tokenizer.languages[0]!;
    tokenizer.languages.forEach((code, i) => {
      probabilities[code] = Math.exp(values[i]! - normalizer);
      if (probabilities[code]! > probabilities[language]!) language = code;
    });
    return { language, probabilities };
  } finally {
    batch.dispose();
  }
}

/** Decode one window with one temperature: the best candidate of greedy, best-of sampling or beam search. */
export async function decodeWindow(session: DecoderSession, setup: DecodingSetupInput, options: DecodingOptions = {}, signal?: AbortSignal): Promise<DecodingResult> {
  checkOptions(options);
  const { tokenizer, generation } = setup;
  const { nTextCtx, nVocab } = session;
  if (tokenizer.nVocab !== nVocab) throw new MurmurError('DECODER', `the tokenizer has ${tokenizer.nVocab} tokens, the model ${nVocab}`);
  const temperature = options.temperature ?? 0;
  const sampleLen = options.sampleLen ?? Math.floor(nTextCtx / 2);
  const withoutTimestamps = options.withoutTimestamps ?? false;
  checkAborted(signal);

  // Checked before any model work: English-only models refuse other languages and translation.
  tokenizer.sotSequence({ language: options.language, task: options.task });
  let language: string;
  let languageProbs: Record<string, number> | undefined;
  if (options.language !== undefined) language = tokenizer.languageOf(tokenizer.languageToken(options.language)) ?? 'en';
  else if (!tokenizer.isMultilingual) language = 'en';
  else ({ language, probabilities: languageProbs } = await detectLanguage(session, tokenizer));

  const layout = initialTokens(tokenizer, { ...options, language: tokenizer.isMultilingual ? language : undefined, withoutTimestamps, sampleLen }, nTextCtx);
  const filters: LogitFilter[] = [];
  if (options.suppressBlank ?? true) filters.push(suppressBlank(tokenizer));
  filters.push(suppressTokens(resolveSuppressTokens(options.suppressTokens, tokenizer, generation, { withoutTimestamps, nVocab })));
  if (!withoutTimestamps) {
    const maxInitial = options.maxInitialTimestamp;
    const maxInitialIndex = maxInitial === null ? undefined : maxInitial === undefined ? generation.maxInitialTimestampIndex : Math.round(maxInitial / TIMESTAMP_SECONDS);
    filters.push(timestampRules(tokenizer, maxInitialIndex));
  }

  const sequences = options.beamSize ?? (temperature > 0 ? (options.bestOf ?? 1) : 1);
  const strategy: SearchStrategy = options.beamSize !== undefined
    ? beamSearch(options.beamSize, options.patience ?? 1, tokenizer.eot)
    : sampling(sequences, tokenizer.eot, temperature, createRandom(options.seed));
  const limit = Math.min(sampleLen, nTextCtx - layout.tokens.length);

  const batch = session.begin(sequences);
  let noSpeechProb: number;
  try {
    const requests = batch.select ? selectionRequests(filters, strategy, nVocab, sequences) : undefined;
    // Each step either reads the logits back and filters them here, or has the backend apply the
    // same rules and return a few words per sequence (sampling at temperature > 0 needs the logits).
    const feed = async (tokens: number[][], gather?: number[]): Promise<StepRows> =>
      requests ? { selections: await batch.select!(tokens, requests(gather)) } : { logits: checkedLogits(session, (await batch.step(tokens)).logits, sequences) };
    const everyone = (tokens: number[]) => Array.from({ length: sequences }, () => tokens.slice());
    // The prompt goes in as two steps so the logits at <|startoftranscript|> (no-speech probability)
    // come out without reading back every prompt position's logits.
    const throughSot = layout.tokens.slice(0, layout.sotIndex + 1);
    const afterSot = layout.tokens.slice(layout.sotIndex + 1);
    checkAborted(signal);
    let rows = await feed(everyone(throughSot), [tokenizer.noSpeech]);
    if ('selections' in rows) {
      const first = rows.selections[0]!;
      checkSelection(first, 'at the start of transcript');
      noSpeechProb = Math.exp(first.gathered[0]! - first.rawLogSumExp);
    } else {
      const first = rows.logits[0]!;
      checkLogits(first, 'at the start of transcript');
      noSpeechProb = Math.exp(first[tokenizer.noSpeech]! - logSumExp(first));
    }
    if (afterSot.length > 0) {
      checkAborted(signal);
      rows = await feed(everyone(afterSot));
    }
    await search(strategy, filters, rows, limit, { feed, reorder: (order) => batch.reorder(order) }, signal);
  } finally {
    batch.dispose();
  }

  const candidates = strategy.finish();
  const best = candidates[rankCandidates(candidates, options.lengthPenalty)]!;
  const text = tokenizer.decode(best.tokens).trim();
  return {
    language,
    ...(languageProbs ? { languageProbs } : {}),
    tokens: best.tokens,
    text,
    avgLogProb: best.sumLogProb / (best.tokens.length + 1),
    sumLogProb: best.sumLogProb,
    noSpeechProb,
    temperature,
    compressionRatio: compressionRatio(text),
  };
}

/** One step's rows: the logits (filtered here), or the backend's token selection. */
type StepRows = { logits: Float32Array[] } | { selections: TokenSelection[] };

/**
 * The selectTokens request for each step, when the strategy needs only a few best tokens and the
 * filters can be expressed as one: fixed suppression packed once, the rest as ranges per
 * sequence, the timestamp rule last (the op applies it after every suppression).
 */
function selectionRequests(filters: readonly LogitFilter[], strategy: SearchStrategy, nVocab: number, sequences: number): ((gather?: number[]) => TokenSelectionRequest) | undefined {
  const topK = strategy.selectionSize;
  if (topK === undefined || !strategy.updateSelected || topK > TOKEN_SELECTION_MAX_K || topK > nVocab) return undefined;
  const rule = filters.findIndex((filter) => filter.timestampBegin !== undefined);
  if (rule >= 0 && rule !== filters.length - 1) return undefined;
  const timestampBegin = filters[rule]?.timestampBegin;
  const fixed = filters.filter((filter) => filter.fixed);
  const changing = filters.filter((filter) => !filter.fixed);
  const suppress = fixed.length > 0 ? packTokenRanges(fixed.flatMap((filter) => filter.suppressed([])), nVocab) : undefined;
  return (gather) => ({
    topK,
    ...(suppress ? { suppress } : {}),
    suppressRanges: Array.from({ length: sequences }, (_, s) => changing.flatMap((filter) => filter.suppressed(strategy.sampled(s)))),
    ...(timestampBegin !== undefined ? { timestampBegin } : {}),
    ...(gather ? { gather } : {}),
  });
}

/** Choose, feed, repeat: up to `limit` tokens per sequence, or until the strategy is done. */
async function search(
  strategy: SearchStrategy,
  filters: readonly LogitFilter[],
  first: StepRows,
  limit: number,
  decoder: { feed(tokens: number[][]): Promise<StepRows>; reorder(order: number[]): void },
  signal: AbortSignal | undefined,
): Promise<void> {
  let rows = first;
  for (let i = 0; i < limit; i++) {
    let update: SearchUpdate;
    if ('selections' in rows) {
      rows.selections.forEach((row, s) => checkSelection(row, `sequence ${s}, sampled token ${i}`));
      update = strategy.updateSelected!(rows.selections);
    } else {
      const filtered = rows.logits.map((row, s) => {
        checkLogits(row, `sequence ${s}, sampled token ${i}`);
        const copy = row.slice();
        for (const filter of filters) filter.apply(copy, strategy.sampled(s));
        return copy;
      });
      update = strategy.update(filtered);
    }
    const { next, order, completed } = update;
    if (completed || i === limit - 1) return;
    if (order) decoder.reorder(order);
    checkAborted(signal);
    rows = await decoder.feed(next.map((token) => [token]));
  }
}

/**
 * decodeWindow at each temperature in turn until the result is neither repetitive (compression
 * ratio) nor improbable (average log-probability). A window whose no-speech probability is high
 * and whose text is improbable is silence: returned as it is, for the caller to skip.
 * Beam search applies at temperature 0 only, best-of above it, as in OpenAI's transcribe.
 */
export async function decodeWithFallback(session: DecoderSession, setup: DecodingSetupInput, options: FallbackOptions = {}, signal?: AbortSignal): Promise<DecodingResult> {
  const { temperatures = DEFAULT_TEMPERATURES, compressionRatioThreshold = 2.4, logProbThreshold = -1.0, noSpeechThreshold = 0.6, ...decoding } = options;
  if (temperatures.length === 0) throw optionError('temperatures is empty: give at least one temperature');
  let language = decoding.language;
  let languageProbs: Record<string, number> | undefined;
  let result: DecodingResult | undefined;
  for (const temperature of temperatures) {
    const attempt: DecodingOptions = { ...decoding, temperature, ...(language !== undefined ? { language } : {}) };
    if (temperature > 0) {
      delete attempt.beamSize;
      delete attempt.patience;
    } else {
      delete attempt.bestOf;
    }
    result = await decodeWindow(session, setup, attempt, signal);
    // The language is detected once, at the first temperature.
    language = result.language;
    languageProbs ??= result.languageProbs;
    if (languageProbs) result.languageProbs = languageProbs;

    const tooRepetitive = compressionRatioThreshold !== null && result.compressionRatio > compressionRatioThreshold;
    const tooImprobable = logProbThreshold !== null && result.avgLogProb < logProbThreshold;
    const silent = noSpeechThreshold !== null && logProbThreshold !== null && result.noSpeechProb > noSpeechThreshold && result.avgLogProb < logProbThreshold;
    if (silent || !(tooRepetitive || tooImprobable)) break;
  }
  return result!;
}
