// Live dictation latency (issue #7's targets): espeak-ng phrases with silence around them fed in
// simulated real time (bench/live-sim.ts) through the live session on the synthetic tiny.en
// (f16 ggml) on the WASM backend, in Node. Reports, per utterance, the first tentative text's
// delay after the speech onset and the confirmed text's delay after the end of speech, and the
// CPU time spent per second of silence.
import { cachedSyntheticModel } from '../scripts/synthetic/generate.ts';
import { createTranscriber } from '../src/core/transcriber.ts';
import { layout, speak } from '../test/unit/streaming-fixture.ts';
import { simulateLive, type LiveSimulationInput, type LiveTimings } from './live-sim.ts';
import type { StreamingTranscriber } from '../src/core/streaming/session.ts';
import type { BenchContext, BenchEntry, BenchResult } from './types.ts';

export const LIVE_PHRASES = ['Hello world, this is a test of live dictation.', 'Seven silver foxes jumped over the fence.'];

/** The targets of issue #7, in seconds. */
export const LIVE_TARGETS = { firstTentative: 1.0, confirmed: 1.5 };

export function summarizeLive(timings: LiveTimings): string {
  const parts = timings.utterances.map((u) => `#${u.utterance}: first tentative ${u.firstTentative?.toFixed(2) ?? '-'} s, confirmed ${u.confirmed?.toFixed(2) ?? '-'} s (${u.decodes} decodes)`);
  return `${parts.join('; ')}; silence ${timings.silenceCpuMsPerSecond.toFixed(1)} ms CPU/s, ${timings.decodesInSilence} decodes in silence; decode mean ${timings.decodeMs.mean.toFixed(0)} ms, max ${timings.decodeMs.max.toFixed(0)} ms`;
}

/** Tokens a real English model writes for this much audio (≈ 3 text tokens per second of speech, plus the timestamps around a segment). */
export function realisticTokens(seconds: number): number {
  return Math.ceil(3 * seconds) + 4;
}

/**
 * Synthetic weights never write end-of-text, so every decode would run to the 224-token limit
 * (and, with timestamps, through several seek windows) where a real model stops after a few
 * tokens in one window. This makes the synthetic model do a real one's amount of work: one window
 * (text without timestamp tokens) and `realisticTokens` tokens. Session options are kept otherwise.
 */
export function asRealModel(transcriber: StreamingTranscriber): StreamingTranscriber {
  return {
    transcribe: (audio, options = {}) => transcriber.transcribe(audio, { ...options, withoutTimestamps: true, maxTokens: Math.min(options.maxTokens ?? Infinity, realisticTokens(audio.length / 16000)) }),
  };
}

export interface LiveConfiguration {
  label: string;
  session?: LiveSimulationInput['session'];
}

/** The default session, and the session without its latency measures (for before/after). */
export const LIVE_CONFIGURATIONS: LiveConfiguration[] = [
  { label: 'default session' },
  // The session as it was before its latency measures: interims with word timestamps (two encoder passes each), no pause gate, no token cap.
  { label: 'earlier session', session: { pauseSeconds: Infinity, interimTokensPerSecond: Infinity, interimWordTimestamps: true } },
];

export async function measureLive(threads: number, configurations: LiveConfiguration[] = LIVE_CONFIGURATIONS.slice(0, 1)): Promise<Array<{ label: string; timings: LiveTimings }>> {
  const model = await cachedSyntheticModel({ preset: 'tiny.en', seed: 1, format: 'ggml', dtype: 'f16' });
  const transcriber = await createTranscriber({ model: model.path, backend: 'wasm', threads });
  try {
    const recording = layout(LIVE_PHRASES.map((text) => speak(text)), { lead: 2, gap: 3 });
    // One warm-up decode, so the first utterance does not pay for first-use costs.
    await transcriber.transcribe(recording.samples.subarray(0, 16000), { temperature: 0, maxTokens: 4 });
    const results: Array<{ label: string; timings: LiveTimings }> = [];
    for (const { label, session } of configurations) {
      results.push({ label, timings: await simulateLive({ transcriber: asRealModel(transcriber), samples: recording.samples, spans: recording.spans, ...(session ? { session } : {}) }) });
    }
    return results;
  } finally {
    transcriber.dispose();
  }
}

async function run(context: BenchContext): Promise<BenchResult[]> {
  const measured = await measureLive(context.threads, context.quick ? LIVE_CONFIGURATIONS.slice(0, 1) : LIVE_CONFIGURATIONS);
  return measured.map(({ label, timings }) => {
    context.log(`  ${label}: ${summarizeLive(timings)}`);
    return {
      peer: 'Murmur (Node)',
      backend: 'wasm',
      model: 'tiny.en f16 (synthetic)',
      threads: context.threads,
      live: timings,
      notes: [
        `live dictation (${label}) in simulated real time, a virtual clock charged with the measured compute: ${summarizeLive(timings)}; targets: first tentative ≤ ${LIVE_TARGETS.firstTentative} s after onset, confirmed ≤ ${LIVE_TARGETS.confirmed} s after the end of speech`,
        `the synthetic model is made to stop like a real one: one window, ${realisticTokens(1)} tokens for 1 s of audio and 3 more per second`,
      ],
    };
  });
}

export const murmurLiveEntry: BenchEntry = { name: 'live', kind: 'murmur', run };
