/**
 * Whisper's ranks from Hugging Face tokenizer files: `tokenizer.json`, or the older
 * `vocab.json` + `merges.txt` + `added_tokens.json` layout.
 *
 * In these files a token's id is its tiktoken rank, so the ranks are read from the vocabulary
 * and the merges are not needed: Hugging Face derived them from the same ranks, and encoding by
 * rank is what OpenAI's Whisper does. The special tokens must sit exactly where Whisper's layout
 * puts them. Published files differ in where they list them: `openai/whisper-tiny.en` keeps
 * `<|endoftext|>` (50256) in the vocabulary, `openai/whisper-tiny` keeps both the empty token
 * (50256) and `<|endoftext|>` (50257) there, the rest are added tokens, older files leave the
 * timestamps out and spell two specials differently (see SPECIAL_TOKEN_ALIASES).
 */
import { TokenizerError } from '../errors.ts';
import { languageCount } from '../model/dims.ts';
import { byteLevelToBytes } from './byte-level.ts';
import { LANGUAGES, type LanguageCode } from './languages.ts';
import { SPECIAL_TOKEN_ALIASES, specialTokenCount, specialTokenNames } from './specials.ts';

export interface RankedVocabulary {
  ranks: (Uint8Array | undefined)[];
  nVocab: number;
}

type Entry = readonly [text: string, id: number];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function ranksFromTokenizerJson(json: unknown, source: string, nVocab?: number): RankedVocabulary {
  if (!isRecord(json)) throw new TokenizerError(`${source}: not a JSON object`);
  const model = json.model;
  if (!isRecord(model)) throw new TokenizerError(`${source}: no "model" object`);
  if (model.type !== undefined && model.type !== 'BPE') {
    throw new TokenizerError(`${source}: model type is ${JSON.stringify(model.type)}, Whisper's is "BPE"`);
  }
  if (!isByteLevel(json.pre_tokenizer)) {
    throw new TokenizerError(`${source}: the pre-tokenizer is not ByteLevel, so this is not a Whisper vocabulary`);
  }
  if (model.merges !== undefined && !Array.isArray(model.merges)) {
    throw new TokenizerError(`${source}: "model.merges" is not a list`);
  }
  const vocab = vocabEntries(model.vocab, `${source}: model.vocab`);
  const addedTokens = json.added_tokens ?? [];
  if (!Array.isArray(addedTokens)) throw new TokenizerError(`${source}: "added_tokens" is not a list`);
  const added: Entry[] = addedTokens.map((token, index) => {
    if (!isRecord(token) || typeof token.content !== 'string' || !isTokenId(token.id)) {
      throw new TokenizerError(`${source}: added_tokens[${index}] lacks a string "content" and an integer "id"`);
    }
    return [token.content, token.id];
  });
  return ranksFromEntries(vocab, added, source, nVocab);
}

export function ranksFromVocabFiles(
  vocabJson: unknown,
  mergesText: string | undefined,
  addedTokensJson: unknown,
  source: string,
  nVocab?: number,
): RankedVocabulary {
  if (mergesText !== undefined && typeof mergesText !== 'string') {
    throw new TokenizerError(`${source}: merges.txt is not text`);
  }
  const vocab = vocabEntries(vocabJson, `${source}: vocab.json`);
  const added = addedTokensJson === undefined ? [] : vocabEntries(addedTokensJson, `${source}: added_tokens.json`);
  return ranksFromEntries(vocab, added, source, nVocab);
}

function isByteLevel(preTokenizer: unknown): boolean {
  if (preTokenizer === undefined || preTokenizer === null) return true; // absent: nothing contradicts
  if (!isRecord(preTokenizer)) return false;
  if (preTokenizer.type === 'ByteLevel') return true;
  if (preTokenizer.type === 'Sequence' && Array.isArray(preTokenizer.pretokenizers)) {
    return preTokenizer.pretokenizers.some(isByteLevel);
  }
  return false;
}

function isTokenId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < 1 << 24;
}

function vocabEntries(value: unknown, where: string): Entry[] {
  if (!isRecord(value)) throw new TokenizerError(`${where}: not an object of token -> id`);
  return Object.entries(value).map(([text, id]) => {
    if (!isTokenId(id)) throw new TokenizerError(`${where}: token ${JSON.stringify(text)} has id ${JSON.stringify(id)}, not an integer`);
    return [text, id] as const;
  });
}

function canonicalSpecial(text: string): string {
  return SPECIAL_TOKEN_ALIASES[text] ?? text;
}

function ranksFromEntries(vocab: readonly Entry[], added: readonly Entry[], source: string, nVocabHint?: number): RankedVocabulary {
  const specialIds = new Map<string, number>();
  for (const [text, id] of [...vocab, ...added]) {
    const name = canonicalSpecial(text);
    if (name.startsWith('<|') && name.endsWith('|>')) specialIds.set(name, id);
  }
  const eot = specialIds.get('<|endoftext|>');
  if (eot === undefined) throw new TokenizerError(`${source}: no <|endoftext|> token, so this is not a Whisper vocabulary`);

  // The language tokens listed give the count; if a file lists none, the position of
  // <|translate|> (right after them) does.
  let languages = new Set([...specialIds.keys()].filter((name) => LANGUAGES.includes(name.slice(2, -2) as LanguageCode))).size;
  if (nVocabHint !== undefined) {
    languages = languageCount({ nVocab: nVocabHint });
  } else if (languages === 0) {
    const translate = specialIds.get('<|translate|>');
    if (translate === undefined) {
      throw new TokenizerError(`${source}: neither language tokens nor <|translate|>, so the number of languages is unknown`);
    }
    languages = translate - eot - 2;
  }
  if (languages < 1 || languages > LANGUAGES.length) {
    throw new TokenizerError(`${source}: the special tokens imply ${languages} languages; Whisper has 1 to ${LANGUAGES.length}`);
  }
  const nVocab = eot + specialTokenCount(languages);
  if (nVocabHint !== undefined && nVocab !== nVocabHint) {
    throw new TokenizerError(
      `${source}: <|endoftext|> at ${eot} means ${eot} BPE tokens + ${specialTokenCount(languages)} special tokens = ${nVocab}, but the model has ${nVocabHint}`,
    );
  }
  if (languageCount({ nVocab }) !== languages) {
    // Elsewhere the language count is derived from nVocab alone (dims.ts), as OpenAI does; a
    // layout that disagrees would give the model the wrong language tokens.
    throw new TokenizerError(`${source}: ${eot} BPE tokens with ${languages} languages is not a Whisper vocabulary layout`);
  }

  const expectedIds = new Map(specialTokenNames(languages).map((name, index) => [name, eot + index]));
  const ranks: (Uint8Array | undefined)[] = new Array(eot).fill(undefined);
  const place = (text: string, id: number, where: string, mayBeText: boolean): void => {
    const expected = expectedIds.get(canonicalSpecial(text));
    if (expected !== undefined) {
      if (id !== expected) {
        throw new TokenizerError(`${source}: ${where} ${JSON.stringify(text)} has id ${id}; Whisper's layout of ${nVocab} tokens puts it at ${expected}`);
      }
      return;
    }
    if (!mayBeText || id >= eot) {
      throw new TokenizerError(`${source}: ${where} ${JSON.stringify(text)} (id ${id}) is not one of Whisper's special tokens`);
    }
    const bytes = byteLevelToBytes(text);
    if (bytes === undefined) {
      throw new TokenizerError(`${source}: ${where} ${JSON.stringify(text)} (id ${id}) is not a byte-level BPE token`);
    }
    if (ranks[id] !== undefined) throw new TokenizerError(`${source}: id ${id} is given to two tokens`);
    ranks[id] = bytes;
  };
  for (const [text, id] of vocab) place(text, id, 'vocabulary token', true);
  for (const [text, id] of added) place(text, id, 'added token', false);
  return { ranks, nVocab };
}
