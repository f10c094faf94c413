/** Word timestamps from cross-attention, and the guards against hallucinated text. */
export { dtw, medianFilter, rowStartTimes, type DtwPath } from './dtw.ts';
export {
  TIME_PRECISION,
  alignmentMatrix,
  findAlignment,
  rowTimesFromMatrix,
  textTokenProbabilities,
  type AlignmentOptions,
  type AlignmentSession,
  type AlignmentSetup,
  type AlignmentStepOptions,
  type AlignmentStepResult,
  type TokenAlignment,
} from './alignment.ts';
export {
  APPEND_PUNCTUATIONS,
  NO_SPACE_LANGUAGES,
  PREPEND_PUNCTUATIONS,
  addWordTimestamps,
  mergePunctuations,
  mergeWords,
  placeWords,
  splitToWordTokens,
  splitTokensOnSpaces,
  splitTokensOnUnicode,
  wordsFromAlignment,
  type MergeOptions,
  type MergedWords,
  type SegmentForWords,
  type WordTimestampOptions,
  type WordTiming,
} from './words.ts';
export {
  detectRepetitionLoop,
  isAnomalousWord,
  isSegmentAnomaly,
  segmentAnomalyScore,
  skipHallucinatedSilence,
  wordAnomalyScore,
  type RepetitionLoop,
  type RepetitionOptions,
  type SilenceSkipDecision,
  type SilenceSkipInput,
  type TimedSegment,
  type TimedWord,
} from './hallucination.ts';
export { modelAlignmentSession } from './model-session.ts';
