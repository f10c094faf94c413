// Exports of a transcription: SRT and WebVTT parsed back with a small independent parser (cue
// times ordered, text escaped), TSV columns, TXT lines, JSON round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTimestamp, toJson, toMilliseconds, toSrt, toTsv, toTxt, toVtt } from '../../src/core/export/index.ts';
import type { TranscriptionResult, TranscriptionSegment } from '../../src/core/transcribe/result.ts';
import { MurmurError } from '../../src/core/errors.ts';

function segment(id: number, start: number, end: number, text: string, extra: Partial<TranscriptionSegment> = {}): TranscriptionSegment {
  return { id, seek: Math.floor(start * 100), start, end, text, tokens: [50364, 100 + id, 50400], temperature: 0, avg_logprob: -0.25, compression_ratio: 1.3, no_speech_prob: 0.01, ...extra };
}

const result: TranscriptionResult = {
  text: ' Hello there. <b>Bold</b> & co --> next',
  language: 'en',
  segments: [
    segment(0, 0, 1.5, ' Hello there.'),
    segment(1, 1.5, 1.5004, '   '), // blank: skipped everywhere
    segment(2, 62.345, 65.0009, ' <b>Bold</b> & co --> next\n\nsecond line\tend'),
    segment(3, 3725.5, 3727.25, ' Über café', {
      words: [
        { word: ' Über', start: 3725.5, end: 3726, probability: 0.9 },
        { word: ' café', start: 3726.4, end: 3727.25, probability: 0.8 },
      ],
    }),
  ],
};

interface Cue {
  index?: number;
  start: number;
  end: number;
  text: string;
}

/** Parses "HH:MM:SS<sep>mmm" strictly. */
function parseTime(text: string, separator: string): number {
  const match = new RegExp(`^(\\d{2,}):([0-5]\\d):([0-5]\\d)${separator === '.' ? '\\.' : separator}(\\d{3})$`).exec(text);
  assert.ok(match, `bad timestamp ${JSON.stringify(text)}`);
  const [, h, m, s, ms] = match;
  return Number(h) * 3600 + Number(m) * 60 + Number(s) + Number(ms) / 1000;
}

function parseCues(blocks: string[], separator: string, numbered: boolean): Cue[] {
  return blocks.map((block) => {
    const lines = block.split('\n');
    const index = numbered ? Number(lines.shift()) : undefined;
    const timing = /^(\S+) --> (\S+)$/.exec(lines.shift() ?? '');
    assert.ok(timing, `no timing line in ${JSON.stringify(block)}`);
    assert.ok(lines.length > 0 && lines.every((line) => line.trim() !== ''), `cue without text or with a blank line: ${JSON.stringify(block)}`);
    for (const line of lines) assert.ok(!line.includes('-->'), `"-->" in cue text: ${line}`);
    return { ...(index !== undefined ? { index } : {}), start: parseTime(timing[1]!, separator), end: parseTime(timing[2]!, separator), text: lines.join('\n') };
  });
}

function parseSrt(srt: string): Cue[] {
  assert.ok(srt.endsWith('\n'));
  return parseCues(srt.trimEnd().split('\n\n'), ',', true);
}

function parseVtt(vtt: string): Cue[] {
  const [header, ...blocks] = vtt.trimEnd().split('\n\n');
  assert.equal(header, 'WEBVTT');
  return parseCues(blocks, '.', false);
}

function assertOrdered(cues: Cue[]) {
  let previous = 0;
  for (const cue of cues) {
    assert.ok(cue.start >= previous && cue.end > cue.start, `cue ${cue.start}–${cue.end} after ${previous}`);
    previous = cue.end;
  }
}

test('timestamps: SRT with a comma, VTT with a dot, hours always, rounded to the millisecond', () => {
  assert.equal(formatTimestamp(62.345, ','), '00:01:02,345');
  assert.equal(formatTimestamp(62.345, '.'), '00:01:02.345');
  assert.equal(formatTimestamp(0, ','), '00:00:00,000');
  assert.equal(formatTimestamp(59.9996, '.'), '00:01:00.000');
  assert.equal(formatTimestamp(3725.5, ','), '01:02:05,500');
  assert.equal(formatTimestamp(100 * 3600 + 1.001, '.'), '100:00:01.001');
  assert.equal(toMilliseconds(1.2345), 1235);
  assert.throws(() => formatTimestamp(-1, ','), MurmurError);
  assert.throws(() => formatTimestamp(NaN, '.'), /NaN/);
});

test('SRT parses back: consecutive numbers, ordered times, blank segments skipped, "-->" defused, no blank lines in a cue', () => {
  const srt = toSrt(result);
  const cues = parseSrt(srt);
  assert.deepEqual(cues.map((c) => c.index), [1, 2, 3]);
  assertOrdered(cues);
  assert.deepEqual(cues.map((c) => [c.start, c.end]), [[0, 1.5], [62.345, 65.001], [3725.5, 3727.25]]);
  assert.equal(cues[1]!.text, '<b>Bold</b> & co -> next\nsecond line\tend');
  assert.equal(cues[2]!.text, 'Über café');
  assert.ok(srt.startsWith('1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n2\n00:01:02,345 --> 00:01:05,001\n'));
  assert.equal(toSrt(result.segments), srt, 'a segment list works as well as a result');
  assert.equal(toSrt([]), '');
});

test('WebVTT parses back with escaped markup; word-level cues underline each word in turn and fill the pauses', () => {
  const vtt = toVtt(result);
  const cues = parseVtt(vtt);
  assertOrdered(cues);
  assert.equal(cues.length, 3);
  assert.equal(cues[1]!.text, '&lt;b&gt;Bold&lt;/b&gt; &amp; co --&gt; next\nsecond line\tend');
  assert.ok(vtt.includes('00:01:02.345 --> 00:01:05.001'));

  const words = parseVtt(toVtt(result, { words: true }));
  assertOrdered(words);
  // Segments without words keep one cue; the worded one gets a cue per word and one for the pause between them.
  assert.deepEqual(
    words.slice(2).map((c) => [c.start, c.end, c.text]),
    [
      [3725.5, 3726, '<u>Über</u> café'],
      [3726, 3726.4, 'Über café'],
      [3726.4, 3727.25, 'Über <u>café</u>'],
    ],
  );
  assert.equal(words.length, 5);
});

test('TSV: OpenAI columns (start and end in whole milliseconds, text on one line); TXT: one line per segment', () => {
  const rows = toTsv(result).trimEnd().split('\n').map((line) => line.split('\t'));
  assert.deepEqual(rows[0], ['start', 'end', 'text']);
  assert.deepEqual(rows.slice(1), [
    ['0', '1500', 'Hello there.'],
    ['62345', '65001', '<b>Bold</b> & co --> next second line end'],
    ['3725500', '3727250', 'Über café'],
  ]);
  assert.equal(toTxt(result), 'Hello there.\n<b>Bold</b> & co --> next second line end\nÜber café\n');
});

test('JSON round-trips to the same result, OpenAI field names included', () => {
  const json = toJson(result);
  assert.deepEqual(JSON.parse(json), result);
  const parsed = JSON.parse(toJson(result, { indent: 2 }));
  assert.deepEqual(Object.keys(parsed), ['text', 'language', 'segments']);
  assert.ok('avg_logprob' in parsed.segments[0] && 'no_speech_prob' in parsed.segments[0] && 'compression_ratio' in parsed.segments[0]);
  assert.deepEqual(parsed.segments[3].words[1], { word: ' café', start: 3726.4, end: 3727.25, probability: 0.8 });
});
