/**
 * Writes a WhisperTokenizer as Hugging Face tokenizer files, in the layout the published
 * `openai/whisper-*` repositories use: byte-level vocabulary keyed by GPT-2's byte <-> unicode
 * strings, merges derived from the ranks, `<|endoftext|>` in the vocabulary and every special
 * token (timestamps included) as an added token.
 */
import { bytesToByteLevel } from '../../src/core/tokenizer/byte-level.ts';
import type { WhisperTokenizer } from '../../src/core/tokenizer/tokenizer.ts';

interface VocabularyAndMerges {
  vocab: Record<string, number>;
  merges: string[];
  specials: { id: number; content: string; special: boolean }[];
}

/**
 * Vocabulary and merges as Hugging Face's tiktoken converter derives them: a multi-byte token
 * whose bytes BPE (with only lower ranks) into exactly two parts is created by merging those
 * two parts; tokens BPE cannot reach get no merge.
 */
function vocabularyAndMerges(tokenizer: WhisperTokenizer): VocabularyAndMerges {
  const vocab: Record<string, number> = {};
  const merges: string[] = [];
  tokenizer.bpeRanks().forEach((bytes, rank) => {
    if (bytes === undefined) return;
    vocab[bytesToByteLevel(bytes)] = rank;
    if (bytes.length < 2) return;
    const parts = tokenizer.mergeParts(bytes, rank);
    if (parts.length === 2) merges.push(`${bytesToByteLevel(parts[0])} ${bytesToByteLevel(parts[1])}`);
  });
  vocab[tokenizer.idToString(tokenizer.eot)] = tokenizer.eot;
  const specials = [];
  for (let id = tokenizer.eot; id < tokenizer.nVocab; id++) {
    // Published files mark timestamps as non-special so that decode() keeps them.
    specials.push({ id, content: tokenizer.idToString(id), special: tokenizer.timestampOf(id) === undefined });
  }
  return { vocab, merges, specials };
}

/** A `tokenizer.json` object (serialize with JSON.stringify). */
export function writeHuggingFaceTokenizerJson(tokenizer: WhisperTokenizer): object {
  const { vocab, merges, specials } = vocabularyAndMerges(tokenizer);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map(({ id, content, special }) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

/** The older three-file layout: `vocab.json`, `merges.txt` and `added_tokens.json`. */
export function writeHuggingFaceVocabFiles(tokenizer: WhisperTokenizer): {
  vocabJson: Record<string, number>;
  mergesText: string;
  addedTokensJson: Record<string, number>;
} {
  const { vocab, merges, specials } = vocabularyAndMerges(tokenizer);
  const addedTokensJson: Record<string, number> = {};
  for (const { id, content } of specials) if (id !== tokenizer.eot) addedTokensJson[content] = id;
  return { vocabJson: vocab, mergesText: `#version: 0.2\n${merges.join('\n')}\n`, addedTokensJson };
}
