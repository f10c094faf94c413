import { MurmurError } from '../errors.ts';

/**
 * "HH:MM:SS<sep>mmm", rounded to the millisecond (as OpenAI's format_timestamp rounds), hours always
 * written and widened past 99 h. SRT uses ',' before the milliseconds, WebVTT '.'.
 */
export function formatTimestamp(seconds: number, separator: ',' | '.'): string {
  if (!Number.isFinite(seconds) || seconds < 0) throw new MurmurError('EXPORT', `cannot write a timestamp of ${seconds} s (must be a finite number ≥ 0)`);
  let milliseconds = Math.round(seconds * 1000);
  const hours = Math.floor(milliseconds / 3_600_000);
  milliseconds -= hours * 3_600_000;
  const minutes = Math.floor(milliseconds / 60_000);
  milliseconds -= minutes * 60_000;
  const wholeSeconds = Math.floor(milliseconds / 1000);
  milliseconds -= wholeSeconds * 1000;
  const pad = (value: number, width: number) => String(value).padStart(width, '0');
  return `${pad(hours, 2)}:${pad(minutes, 2)}:${pad(wholeSeconds, 2)}${separator}${pad(milliseconds, 3)}`;
}

/** Whole milliseconds, as OpenAI's TSV writes times. */
export function toMilliseconds(seconds: number): number {
  if (!Number.isFinite(seconds) || seconds < 0) throw new MurmurError('EXPORT', `cannot write a time of ${seconds} s (must be a finite number ≥ 0)`);
  return Math.round(seconds * 1000);
}
