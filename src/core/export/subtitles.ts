/**
 * Subtitles from a transcription: SubRip (.srt) and WebVTT (.vtt). One cue per segment with text;
 * segments whose text is blank are skipped (SRT cue numbers stay consecutive).
 *
 * A blank line ends a cue in both formats, so line breaks inside a segment's text are kept but
 * empty lines are removed. SRT has no escaping: "-->" is written "->" (as OpenAI does) so a cue's
 * text cannot be read as a timing line. WebVTT text is markup: '&', '<' and '>' are escaped.
 */
import type { TranscriptionResult, TranscriptionSegment } from '../transcribe/result.ts';
import { formatTimestamp } from './time.ts';

/** The segments as subtitles see them; a TranscriptionResult fits. */
export type SubtitleSource = Pick<TranscriptionResult, 'segments'> | readonly SubtitleSegment[];
export type SubtitleSegment = Pick<TranscriptionSegment, 'start' | 'end' | 'text' | 'words'>;

export interface VttOptions {
  /**
   * Word-level cues (needs segment.words): one cue per word, showing the segment's text with the
   * word spoken underlined (<u>…</u>), and plain cues for the pauses between words — OpenAI's
   * `highlight_words`. Default false: one cue per segment.
   */
  words?: boolean;
}

function segmentsOf(source: SubtitleSource): readonly SubtitleSegment[] {
  return 'segments' in source ? source.segments : source;
}

/** The text's non-blank lines, each trimmed. */
function cueLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/).map((line) => line.trim()).filter((line) => line !== '');
}

function escapeVtt(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function toSrt(source: SubtitleSource): string {
  const cues: string[] = [];
  for (const segment of segmentsOf(source)) {
    const lines = cueLines(segment.text.replace(/-->/g, '->'));
    if (lines.length === 0) continue;
    cues.push(`${cues.length + 1}\n${formatTimestamp(segment.start, ',')} --> ${formatTimestamp(segment.end, ',')}\n${lines.join('\n')}\n`);
  }
  return cues.join('\n');
}

export function toVtt(source: SubtitleSource, options: VttOptions = {}): string {
  const cues: string[] = [];
  const cue = (start: number, end: number, text: string) => cues.push(`${formatTimestamp(start, '.')} --> ${formatTimestamp(end, '.')}\n${text}\n`);
  for (const segment of segmentsOf(source)) {
    const lines = cueLines(segment.text);
    if (lines.length === 0) continue;
    const words = segment.words ?? [];
    if (!options.words || words.length === 0) {
      cue(segment.start, segment.end, lines.map(escapeVtt).join('\n'));
      continue;
    }
    const plain = words.map((word) => escapeVtt(word.word)).join('').trim();
    let last = segment.start;
    words.forEach((word, i) => {
      if (word.start > last) cue(last, word.start, plain);
      if (word.end > word.start) {
        const highlighted = words
          .map((other, j) => (j === i ? other.word.replace(/^(\s*)(.*?)(\s*)$/s, (_, lead: string, body: string, tail: string) => `${lead}<u>${escapeVtt(body)}</u>${tail}`) : escapeVtt(other.word)))
          .join('')
          .trim();
        cue(word.start, word.end, highlighted);
      }
      last = Math.max(last, word.end);
    });
  }
  return ['WEBVTT\n', ...cues].join('\n');
}
