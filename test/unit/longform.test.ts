// The long-form seek loop with a scripted engine: the "model" is a function from the window (its
// seek, frames, prompt) to the tokens it would write, so every rule can be checked on minutes of
// audio without running a network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { transcribeLongForm, clipRanges } from '../../src/core/transcribe/longform.ts';
import type { EncodedWindow, TranscriptionEngine, WindowDecoding, WordAlignment, WordAlignmentRequest } from '../../src/core/transcribe/engine.ts';
import type { TranscriptionResult, TranscriptionSegment } from '../../src/core/transcribe/result.ts';
import { splitWindowTokens } from '../../src/core/transcribe/segments.ts';
import { windowLogMel } from '../../src/core/transcribe/window-mel.ts';
import { logMelSpectrogram, N_FRAMES, N_SAMPLES, SAMPLE_RATE } from '../../src/core/audio/mel.ts';
import { AbortError, MurmurError } from '../../src/core/errors.ts';

const EOT = 1000;
const TS = 2000; // <|0.00|>
const ts = (seconds: number) => TS + Math.round(seconds * 50);

/** Words are tokens: id k < EOT reads " wk"; encode gives ids from 500 up for new words. */
function fakeTokenizer() {
  const dictionary = new Map<string, number>();
  return {
    eot: EOT,
    timestampBegin: TS,
    encode(text: string): number[] {
      return text.split(/\s+/).filter(Boolean).map((word) => {
        if (!dictionary.has(word)) dictionary.set(word, 500 + dictionary.size);
        return dictionary.get(word)!;
      });
    },
    decode(ids: readonly number[]): string {
      return ids.map((id) => {
        if (id >= EOT) throw new Error(`decode got special token ${id}`);
        return ` w${id}`;
      }).join('');
    },
  };
}

interface WindowCall {
  seek: number;
  frames: number;
  prompt: number[];
  language: string;
}

interface Script {
  /** The window's output; `index` counts decoded windows. */
  decode(call: WindowCall, index: number): Partial<WindowDecoding> & { tokens: number[] };
  words?(request: WordAlignmentRequest): WordAlignment[];
  multilingual?: boolean;
  /** Runs inside decode, before it returns (e.g. to abort mid-window). */
  during?(call: WindowCall): void | Promise<void>;
}

function scriptedEngine(script: Script) {
  const calls: WindowCall[] = [];
  const encodedAt: number[] = [];
  let disposed = 0;
  let detections = 0;
  const engine: TranscriptionEngine = {
    tokenizer: fakeTokenizer(),
    multilingual: script.multilingual ?? false,
    nMels: 80,
    nTextCtx: 448,
    nAudioCtx: 1500,
    async encodeWindow(mel, placement) {
      assert.equal(mel.nFrames, N_FRAMES);
      assert.equal(mel.data.length, 80 * N_FRAMES);
      encodedAt.push(placement.seek);
      let live = true;
      return {
        async decode(request, signal) {
          assert.ok(live, 'decode on a disposed window');
          const call: WindowCall = { seek: placement.seek, frames: placement.frames, prompt: request.prompt, language: request.language };
          calls.push(call);
          await script.during?.(call);
          if (signal?.aborted) throw new AbortError('decoding');
          return { temperature: 0, avgLogProb: -0.2, compressionRatio: 1.2, noSpeechProb: 0.01, ...script.decode(call, calls.length - 1) };
        },
        async detectLanguage() {
          detections++;
          return { language: 'de', probabilities: { de: 0.9, en: 0.1 } };
        },
        ...(script.words ? { alignWords: async (request: WordAlignmentRequest) => script.words!(request) } : {}),
        dispose() {
          assert.ok(live, 'window disposed twice');
          live = false;
          disposed++;
        },
      } satisfies EncodedWindow;
    },
  };
  return { engine, calls, counts: () => ({ encoded: encodedAt.length, encodedAt, disposed, detections }) };
}

async function run(seconds: number, script: Script, options: Parameters<typeof transcribeLongForm>[2] = {}) {
  const audio = noise(seconds);
  const fake = scriptedEngine(script);
  const streamed: TranscriptionSegment[] = [];
  const result = await transcribeLongForm(audio, fake.engine, {
    ...options,
    onSegment: (segment) => {
      streamed.push(segment);
      options.onSegment?.(segment);
    },
  });
  return { result, calls: fake.calls, counts: fake.counts(), streamed, duration: audio.length / SAMPLE_RATE };
}

function noise(seconds: number): Float32Array {
  const audio = new Float32Array(Math.round(seconds * SAMPLE_RATE));
  let x = 12345;
  for (let i = 0; i < audio.length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    audio[i] = (x / 0x7fffffff - 0.5) * 0.02;
  }
  return audio;
}

function assertWellFormed(result: TranscriptionResult, duration: number) {
  let previousEnd = 0;
  result.segments.forEach((segment, i) => {
    assert.equal(segment.id, i);
    assert.ok(segment.start >= previousEnd, `segment ${i} starts at ${segment.start}, before the previous end ${previousEnd}`);
    assert.ok(segment.end > segment.start, `segment ${i} is empty: ${segment.start}–${segment.end}`);
    assert.ok(segment.end <= duration, `segment ${i} ends at ${segment.end}, past the audio's ${duration} s`);
    assert.ok(segment.text.trim() !== '');
    previousEnd = segment.end;
  });
}

test('splitWindowTokens: segments at timestamp pairs, seek to the last complete timestamp or past a single trailing one', () => {
  const geometry = { timeOffset: 10, frames: 3000, inputStride: 2, frameSeconds: 0.01 };
  // Two complete segments and an unfinished one: seek to the last complete timestamp (12 s → 1200 frames).
  const unfinished = splitWindowTokens([ts(0), 1, 2, ts(5), ts(5), 3, ts(12), ts(12), 4, 5], { eot: EOT, timestampBegin: TS }, geometry);
  assert.deepEqual(unfinished.segments.map((s) => [s.start, s.end]), [[10, 15], [15, 22]]);
  assert.equal(unfinished.advance, 1200);
  assert.equal(unfinished.singleTimestampEnding, false);
  // Ending with a single timestamp: no speech after it, the whole window is consumed.
  const single = splitWindowTokens([ts(0), 1, ts(5), ts(5), 3, ts(12)], { eot: EOT, timestampBegin: TS }, geometry);
  assert.deepEqual(single.segments.map((s) => [s.start, s.end]), [[10, 15], [15, 22]]);
  assert.equal(single.advance, 3000);
  assert.equal(single.singleTimestampEnding, true);
  // No pair: one segment up to the last timestamp, window consumed.
  const lone = splitWindowTokens([ts(0.4), 1, 2, ts(7)], { eot: EOT, timestampBegin: TS }, geometry);
  assert.deepEqual(lone.segments.map((s) => [s.start, s.end, s.tokens.length]), [[10, 17, 4]]);
  assert.equal(lone.advance, 3000);
  // Text only (no timestamps): the whole window.
  const text = splitWindowTokens([1, 2, 3], { eot: EOT, timestampBegin: TS }, { ...geometry, frames: 1234 });
  assert.deepEqual(text.segments.map((s) => [s.start, s.end]), [[10, 22.34]]);
  assert.equal(text.advance, 1234);
  // A model stuck at <|0.00|> must not make the loop decode the same window for ever.
  assert.equal(splitWindowTokens([ts(0), ts(0), 1, 2], { eot: EOT, timestampBegin: TS }, geometry).advance, 3000);
});

/**
 * A talkative fake: 4 s segments from the window start; window i ends in one of three ways —
 * an unfinished segment after 24 s (seek to 24 s), a single timestamp at 26 s (seek past the
 * window), or a closing pair at 28 s (seek to 28 s). Timestamps ignore the audio's end, so the
 * last window's segments must be clamped.
 */
function talkative(call: WindowCall, index: number): { tokens: number[] } {
  const word = (k: number) => ((index * 7 + k) % 900) + 1;
  const tokens: number[] = [];
  const variant = index % 3;
  const lastEnd = variant === 0 ? 24 : variant === 1 ? 26 : 28;
  for (let start = 0, k = 0; start < lastEnd; start += 4, k++) {
    const end = Math.min(start + 4, lastEnd);
    tokens.push(ts(start), word(2 * k), word(2 * k + 1), ts(end));
  }
  if (variant === 0) tokens.push(ts(24), word(99), word(98)); // unfinished
  if (variant === 2) tokens.push(ts(28)); // a pair at the end: the next segment would start at 28 s
  void call;
  return { tokens };
}

/** Where each window should start, replayed from the script's own outputs. */
function expectedSeeks(calls: WindowCall[], contentFrames: number): number[] {
  const seeks = [0];
  calls.forEach((call, index) => {
    const variant = index % 3;
    seeks.push(call.seek + (variant === 0 ? 2400 : variant === 1 ? call.frames : 2800));
  });
  return seeks.filter((seek) => seek < contentFrames);
}

test('5.5 minutes: seeks follow the last complete timestamp or a single trailing one; segments ordered, within the audio, streamed in order', async () => {
  const { result, calls, counts, streamed, duration } = await run(330, { decode: talkative });
  assert.deepEqual(calls.map((c) => c.seek), expectedSeeks(calls, 33000));
  assert.ok(calls.length >= 12, `${calls.length} windows for 330 s`);
  assert.equal(calls.at(-1)!.frames, 33000 - calls.at(-1)!.seek, 'the last window holds only the audio that is left');
  assertWellFormed(result, duration);
  assert.deepEqual(streamed, result.segments);
  // Unfinished text is dropped: the 99/98 words of variant-0 windows never appear.
  for (const [index, call] of calls.entries()) {
    if (index % 3 !== 0) continue;
    const unfinished = ((index * 7 + 99) % 900) + 1;
    assert.ok(!result.segments.some((s) => s.seek === call.seek && s.tokens.includes(unfinished)));
  }
  // Segment times are the window offset plus the timestamps: window 1 starts at 24 s.
  const second = result.segments.find((s) => s.seek === 2400)!;
  assert.deepEqual([second.start, second.end], [24, 28]);
  assert.ok(result.segments.at(-1)!.end <= 330 && result.segments.at(-1)!.end > 320);
  assert.equal(result.text, result.segments.map((s) => s.text).join(''));
  assert.equal(result.language, 'en');
  assert.equal(counts.encoded, calls.length);
  assert.equal(counts.disposed, counts.encoded, 'every encoded window is released');
  assert.equal(counts.detections, 0);
  // OpenAI's JSON fields, snake_case inside segments.
  assert.deepEqual(Object.keys(result.segments[0]!).sort(), ['avg_logprob', 'compression_ratio', 'end', 'id', 'no_speech_prob', 'seek', 'start', 'temperature', 'text', 'tokens']);
});

test('the previous text is the next prompt; a temperature above 0.5 or conditionOnPreviousText=false resets it; the prompt stays bounded', async () => {
  const temperatures = [0, 0.8, 0.2, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  const many = (index: number) => {
    // 3 segments of 10 text tokens each, single timestamp ending: each window adds 36 prompt tokens.
    const tokens: number[] = [];
    for (let s = 0; s < 3; s++) tokens.push(ts(s * 8), ...Array.from({ length: 10 }, (_, k) => 1 + ((index * 31 + s * 10 + k) % 900)), ts(s * 8 + 8));
    return tokens;
  };
  const script: Script = { decode: (_call, index) => ({ tokens: many(index), temperature: temperatures[index] ?? 0 }) };
  const { result, calls } = await run(330, script, { initialPrompt: '  hello world ' });
  const initial = calls[0]!.prompt;
  assert.equal(initial.length, 2, 'the initial prompt is the encoded " hello world"');
  const windowTokens = (seek: number) => result.segments.filter((s) => s.seek === seek).flatMap((s) => s.tokens);
  assert.deepEqual(calls[1]!.prompt, [...initial, ...windowTokens(calls[0]!.seek)]);
  assert.deepEqual(calls[2]!.prompt, [], 'window 1 needed temperature 0.8: no prompt after it');
  assert.deepEqual(calls[3]!.prompt, windowTokens(calls[2]!.seek));
  assert.deepEqual(calls[4]!.prompt, [...windowTokens(calls[2]!.seek), ...windowTokens(calls[3]!.seek)]);
  // The decoder reads at most nTextCtx/2 − 1 = 223 prompt tokens; the loop keeps exactly those.
  const last = calls.at(-1)!;
  assert.equal(last.prompt.length, 223);
  const all = calls.slice(2, -1).flatMap((c) => windowTokens(c.seek));
  assert.deepEqual(last.prompt, all.slice(-223));

  const off = await run(100, script, { initialPrompt: 'hello world', conditionOnPreviousText: false });
  assert.equal(off.calls[0]!.prompt.length, 2);
  assert.ok(off.calls.slice(1).every((c) => c.prompt.length === 0));
});

test('silent windows (no-speech probable and log-probability low) are skipped whole; confident ones are kept', async () => {
  const script: Script = {
    decode: (call, index) => {
      const base = { tokens: [ts(0), index + 1, ts(10)] };
      if (call.seek >= 3000 && call.seek < 9000) return { ...base, noSpeechProb: 0.9, avgLogProb: -1.5 };
      if (call.seek === 9000) return { ...base, noSpeechProb: 0.9, avgLogProb: -0.5 };
      return base;
    },
  };
  const { result, calls, duration } = await run(150, script);
  assert.deepEqual(calls.map((c) => c.seek), [0, 3000, 6000, 9000, 12000]);
  assert.deepEqual(result.segments.map((s) => s.seek), [0, 9000, 12000]);
  assertWellFormed(result, duration);
  const noCheck = await run(150, script, { noSpeechThreshold: null });
  assert.deepEqual(noCheck.result.segments.map((s) => s.seek), [0, 3000, 6000, 9000, 12000]);
});

test('segment times are made monotonic and kept in the audio, deterministically', async () => {
  const script: Script = {
    decode: (call) =>
      call.seek === 0
        ? // [0,5] then [3,7] overlapping, [7,7] instantaneous, [6,9]; then a window-final timestamp.
          { tokens: [ts(0), 1, ts(5), ts(3), 2, ts(7), ts(7), 3, ts(7), ts(6), 4, ts(9), ts(9), 5, ts(29.5), ts(29.5), 6] }
        : { tokens: [ts(0), 7, ts(29), ts(29), 8, ts(30)] },
  };
  const { result, calls, duration } = await run(40, script);
  assert.deepEqual(calls.map((c) => c.seek), [0, 2950]);
  assert.deepEqual(
    result.segments.map((s) => [s.start, s.end, s.text]),
    [
      [0, 5, ' w1'],
      [5, 7, ' w2'],
      [7, 9, ' w4'],
      [9, 29.5, ' w5'],
      [29.5, 40, ' w7'], // 29.5 + 29 s, clamped to the audio's 40 s
    ],
  );
  assertWellFormed(result, duration);
  assert.deepEqual((await run(40, script)).result, result, 'same input, same output');
});

test('a multilingual engine detects the language once, on the first window, which is then decoded without encoding it again', async () => {
  const script: Script = { multilingual: true, decode: () => ({ tokens: [ts(0), 1, ts(10)] }) };
  const { result, calls, counts } = await run(70, script);
  assert.equal(counts.detections, 1);
  assert.deepEqual(counts.encodedAt, [0, 3000, 6000]);
  assert.equal(result.language, 'de');
  assert.ok(calls.every((c) => c.language === 'de'));
  const given = await run(70, script, { language: 'fr' });
  assert.equal(given.counts.detections, 0);
  assert.equal(given.result.language, 'fr');
});

test('word timestamps: words kept monotonic inside their segments, and the next window starts at the last word', async () => {
  const script: Script = {
    decode: (call) => (call.seek === 0 ? { tokens: [ts(0), 1, 2, ts(10), ts(10), 3, 4, ts(20), ts(20), 5] } : { tokens: [ts(0), 6, ts(5)] }),
    words: (request) =>
      request.segments.map((segment, i) => ({
        // Word times that overlap each other and spill out of the segment.
        words: [
          { word: ` a${i}`, start: segment.start - 1, end: segment.start + 3, probability: 0.9 },
          { word: ` b${i}`, start: segment.start + 2, end: i === request.segments.length - 1 ? request.timeOffset + 21.5 : segment.end + 1, probability: 0.8 },
        ],
      })),
  };
  const { result, calls, duration } = await run(60, script, { wordTimestamps: true });
  // Without words the loop would seek to 20 s; the last word ends at 21.5 s.
  assert.deepEqual(calls.map((c) => c.seek), [0, 2150, 5150]);
  let previous = 0;
  for (const segment of result.segments) {
    assert.ok(segment.words && segment.words.length === 2);
    for (const word of segment.words) {
      assert.ok(word.start >= previous && word.end >= word.start, `word ${word.word} at ${word.start}–${word.end} after ${previous}`);
      assert.ok(word.start >= segment.start && word.end <= segment.end && word.end <= duration);
      previous = word.end;
    }
  }
  const noWords = scriptedEngine({ decode: script.decode });
  await assert.rejects(() => transcribeLongForm(noise(10), noWords.engine, { wordTimestamps: true }), (e: unknown) => e instanceof MurmurError && /word timestamps/.test(e.message));
});

test('clip timestamps limit the loop to the given stretches', async () => {
  assert.deepEqual(clipRanges('10,20,40', 6000), [[1000, 2000], [4000, 6000]]);
  assert.deepEqual(clipRanges(undefined, 500), [[0, 500]]);
  assert.throws(() => clipRanges([1, -2], 500), /clip timestamp 1/);
  const { result, calls } = await run(60, { decode: () => ({ tokens: [ts(0), 1, ts(3)] }) }, { clipTimestamps: [10, 20, 40] });
  assert.deepEqual(calls.map((c) => [c.seek, c.frames]), [[1000, 1000], [4000, 2000]]);
  assert.deepEqual(result.segments.map((s) => [s.start, s.end]), [[10, 13], [40, 43]]);
});

test('abort: from onSegment between windows, and inside a window; every encoded window is released', async () => {
  const controller = new AbortController();
  const fake = scriptedEngine({ decode: talkative });
  let seen = 0;
  await assert.rejects(
    () => transcribeLongForm(noise(330), fake.engine, { signal: controller.signal, onSegment: () => { if (++seen === 8) controller.abort(); } }),
    AbortError,
  );
  assert.equal(fake.calls.length, 2, 'no window is decoded after the abort');
  assert.equal(fake.counts().disposed, fake.counts().encoded);

  const inside = new AbortController();
  const fake2 = scriptedEngine({ decode: talkative, during: (call) => { if (call.seek > 5000) inside.abort(); } });
  await assert.rejects(() => transcribeLongForm(noise(330), fake2.engine, { signal: inside.signal }), AbortError);
  assert.equal(fake2.calls.length, 3);
  assert.equal(fake2.counts().disposed, fake2.counts().encoded);

  const before = new AbortController();
  before.abort();
  const fake3 = scriptedEngine({ decode: talkative });
  await assert.rejects(() => transcribeLongForm(noise(10), fake3.engine, { signal: before.signal }), AbortError);
  assert.equal(fake3.counts().encoded, 0);
});

test('a window spectrogram equals the whole-file spectrogram where both have the same maximum', () => {
  // 70 s of quiet noise with a loud burst at 45 s: the window from 30 s holds the global maximum.
  const audio = noise(70);
  for (let i = 45 * SAMPLE_RATE; i < 45.5 * SAMPLE_RATE; i++) audio[i] = Math.sin(i * 0.3) * 0.8;
  const whole = logMelSpectrogram(audio, { nMels: 80, padding: N_SAMPLES });
  for (const seek of [3000, 2999, 1601]) {
    const window = windowLogMel(audio, seek, { nMels: 80 });
    let worst = 0;
    for (let m = 0; m < 80; m++) {
      for (let f = 0; f < N_FRAMES; f++) worst = Math.max(worst, Math.abs(window.data[m * N_FRAMES + f]! - whole.data[m * whole.nFrames + seek + f]!));
    }
    assert.ok(worst < 1e-5, `seek ${seek}: largest difference ${worst}`);
  }
  // The last window: past the audio's end the frames are the zero padding's, as in the whole-file spectrogram.
  const loudEnd = noise(40);
  for (let i = 35 * SAMPLE_RATE; i < 36 * SAMPLE_RATE; i++) loudEnd[i] = Math.sin(i * 0.2) * 0.9;
  const wholeEnd = logMelSpectrogram(loudEnd, { nMels: 80, padding: N_SAMPLES });
  const last = windowLogMel(loudEnd, 3000, { nMels: 80 });
  let worst = 0;
  for (let m = 0; m < 80; m++) for (let f = 0; f < N_FRAMES; f++) worst = Math.max(worst, Math.abs(last.data[m * N_FRAMES + f]! - wholeEnd.data[m * wholeEnd.nFrames + 3000 + f]!));
  assert.ok(worst < 1e-5, `last window: largest difference ${worst}`);
  assert.throws(() => windowLogMel(audio, 7000, { nMels: 80 }), /outside the audio/);
});

test('hallucination silence threshold: an invented segment between silences is dropped and the silence skipped', async () => {
  const script: Script = {
    decode: (call) => (call.seek === 0 ? { tokens: [ts(0), 1, ts(8), ts(14), 2, ts(15)] } : { tokens: [ts(0), 3, ts(5)] }),
    words: (request) =>
      request.segments.map((segment) => {
        const invented = segment.tokens.includes(2);
        // An improbable 50 ms word is what an invented one looks like; real words are probable, a second or so long.
        if (invented) return { words: [{ word: ' w2', start: segment.start, end: segment.start + 0.05, probability: 0.01 }] };
        const count = Math.max(1, Math.round(segment.end - segment.start));
        const step = (segment.end - segment.start) / count;
        return { words: Array.from({ length: count }, (_, k) => ({ word: ` r${k}`, start: segment.start + k * step, end: segment.start + (k + 1) * step, probability: 0.9 })) };
      }),
  };
  const plain = await run(40, script, { wordTimestamps: true });
  assert.deepEqual(plain.result.segments.map((s) => [s.start, s.end, s.text]), [[0, 8, ' w1'], [14, 15, ' w2'], [30, 35, ' w3']]);

  const guarded = await run(40, script, { wordTimestamps: true, hallucinationSilenceThreshold: 2 });
  assert.deepEqual(guarded.calls.map((c) => c.seek), [0, 1400]);
  assert.deepEqual(guarded.result.segments.map((s) => [s.start, s.end, s.text]), [[0, 8, ' w1'], [14, 19, ' w3']]);
  assertWellFormed(guarded.result, guarded.duration);
  await assert.rejects(() => run(10, script, { hallucinationSilenceThreshold: 2 }), /needs wordTimestamps/);
});
