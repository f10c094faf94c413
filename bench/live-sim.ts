// Live dictation in simulated real time: audio "arrives" chunk by chunk on a virtual clock, and
// every bit of work the session does (VAD on each chunk, each decode) is charged to that clock at
// the wall time it actually took. While a decode runs, arriving chunks wait, as they wait in the
// engine worker's message queue; once it ends, every chunk that arrived meanwhile is pushed before
// the next decode starts (the session yields to the event loop before each decode, so the worker
// drains its queue the same way). Latencies are measured against the true speech boundaries.
import { LiveSession, type LiveEvent, type LiveSessionOptions, type StreamingTranscriber } from '../src/core/streaming/session.ts';

const RATE = 16000;

export interface LiveSimulationInput {
  transcriber: StreamingTranscriber;
  samples: Float32Array;
  /** [start, end] seconds of each spoken phrase (the truth latencies are measured from). */
  spans: Array<[number, number]>;
  chunkSeconds?: number;
  session?: Omit<LiveSessionOptions, 'onEvent' | 'onError'>;
}

export interface UtteranceLatency {
  utterance: number;
  text: string;
  /** Seconds from the true speech onset to the first tentative event with words. */
  firstTentative?: number;
  /** Seconds from the true end of speech to the utterance's final event (all of it confirmed). */
  confirmed?: number;
  decodes: number;
}

export interface LiveTimings {
  utterances: UtteranceLatency[];
  /** Wall time of all work done while no one spoke (VAD, and decodes if any), per second of silence. */
  silenceCpuMsPerSecond: number;
  decodesInSilence: number;
  /** Mean and max wall time of one decode (interim and final). */
  decodeMs: { mean: number; max: number; count: number };
  audioSeconds: number;
}

export async function simulateLive(input: LiveSimulationInput): Promise<LiveTimings> {
  const chunk = Math.round((input.chunkSeconds ?? 0.1) * RATE);
  const { samples, spans } = input;
  /** Virtual seconds since the first sample. */
  let now = 0;
  const decodeTimes: number[] = [];
  const decodeStarts: number[] = [];
  const timed: StreamingTranscriber = {
    async transcribe(audio, options) {
      const started = performance.now();
      decodeStarts.push(now);
      try {
        return await input.transcriber.transcribe(audio, options);
      } finally {
        const seconds = (performance.now() - started) / 1000;
        decodeTimes.push(seconds * 1000);
        now += seconds;
      }
    },
  };
  const events: Array<{ at: number; event: LiveEvent }> = [];
  let failure: unknown;
  const session = new LiveSession(timed, {
    ...input.session,
    onEvent: (event) => events.push({ at: now, event }),
    onError: (error) => (failure = error),
  });

  const silent = (from: number, to: number) => spans.every(([start, end]) => to < start - 0.05 || from > end + 1);
  let silenceSeconds = 0;
  let silenceCpuSeconds = 0;
  let decodesInSilence = 0;
  const chunks = Math.ceil(samples.length / chunk);
  let next = 0;
  while (next < chunks) {
    now = Math.max(now, ((next + 1) * chunk) / RATE);
    const began = now;
    const decodesBefore = session.decodes;
    const firstSample = next * chunk;
    while (next < chunks && ((next + 1) * chunk) / RATE <= now + 1e-9) {
      const started = performance.now();
      session.push(samples.subarray(next * chunk, (next + 1) * chunk));
      now += (performance.now() - started) / 1000;
      next++;
    }
    await session.idle();
    if (failure) throw failure;
    const lastSample = Math.min(samples.length, next * chunk);
    if (!session.speaking && silent(firstSample / RATE, lastSample / RATE)) {
      silenceSeconds += (lastSample - firstSample) / RATE;
      silenceCpuSeconds += now - began;
      decodesInSilence += session.decodes - decodesBefore;
    }
  }
  await session.stop();

  const utterances: UtteranceLatency[] = [];
  for (const { event: end } of events) {
    if (end.type !== 'speech-end') continue;
    const mine = events.filter(({ event }) => 'utterance' in event && event.utterance === end.utterance);
    // The phrase this utterance belongs to: the one its audio overlaps most.
    const span = spans.reduce((best, s) => (overlap(s, end) > overlap(best, end) ? s : best), spans[0]!);
    const firstWords = mine.find(({ event }) => event.type === 'tentative' && event.text.trim() !== '');
    const finalAt = mine.find(({ event }) => event.type === 'speech-end')!.at;
    utterances.push({
      utterance: end.utterance,
      text: end.text,
      ...(firstWords ? { firstTentative: firstWords.at - span[0] } : {}),
      confirmed: finalAt - span[1],
      decodes: decodeStarts.filter((t) => t >= end.audioStart && t <= finalAt).length,
    });
  }
  const total = decodeTimes.reduce((a, b) => a + b, 0);
  return {
    utterances,
    silenceCpuMsPerSecond: silenceSeconds > 0 ? (1000 * silenceCpuSeconds) / silenceSeconds : 0,
    decodesInSilence,
    decodeMs: { mean: decodeTimes.length ? total / decodeTimes.length : 0, max: Math.max(0, ...decodeTimes), count: decodeTimes.length },
    audioSeconds: samples.length / RATE,
  };
}

function overlap([start, end]: [number, number], utterance: { audioStart: number; audioEnd: number }): number {
  return Math.max(0, Math.min(end, utterance.audioEnd) - Math.max(start, utterance.audioStart));
}
