export { toSrt, toVtt } from './subtitles.ts';
export type { SubtitleSegment, SubtitleSource, VttOptions } from './subtitles.ts';
export { toTxt, toTsv, toJson } from './text.ts';
export type { TextSource } from './text.ts';
export { formatTimestamp, toMilliseconds } from './time.ts';
