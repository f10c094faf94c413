/**
 * Plain-text exports: TXT (one segment per line), TSV (OpenAI's columns: start and end in whole
 * milliseconds, then the text) and JSON (the result as is, OpenAI's transcribe JSON).
 * Segments whose text is blank are skipped in TXT and TSV.
 */
import type { TranscriptionResult, TranscriptionSegment } from '../transcribe/result.ts';
import { toMilliseconds } from './time.ts';

type TextSegment = Pick<TranscriptionSegment, 'start' | 'end' | 'text'>;
export type TextSource = Pick<TranscriptionResult, 'segments'> | readonly TextSegment[];

function segmentsOf(source: TextSource): readonly TextSegment[] {
  return 'segments' in source ? source.segments : source;
}

/** The text on one line: tabs and line breaks become spaces. */
function oneLine(text: string): string {
  return text.replace(/[\t\r\n]+/g, ' ').trim();
}

export function toTxt(source: TextSource): string {
  return segmentsOf(source)
    .map((segment) => oneLine(segment.text))
    .filter((line) => line !== '')
    .map((line) => `${line}\n`)
    .join('');
}

export function toTsv(source: TextSource): string {
  let tsv = 'start\tend\ttext\n';
  for (const segment of segmentsOf(source)) {
    const text = oneLine(segment.text);
    if (text === '') continue;
    tsv += `${toMilliseconds(segment.start)}\t${toMilliseconds(segment.end)}\t${text}\n`;
  }
  return tsv;
}

/** `JSON.parse(toJson(result))` deep-equals `result`. */
export function toJson(result: TranscriptionResult, options: { indent?: number } = {}): string {
  return JSON.stringify(result, null, options.indent);
}
