/**
 * Microphone capture: a MediaStream through an AudioWorklet (./capture-processor.ts) into 16 kHz
 * mono chunks of about 100 ms, resampled on this side with the streaming resampler so the chunks
 * match what the block resampler would give for the whole recording.
 */
import { AudioError } from '../core/errors.ts';
import { StreamingResampler } from '../core/audio/stream-resample.ts';

export const CAPTURE_SAMPLE_RATE = 16000;
/** Must match CAPTURE_PROCESSOR_NAME in ./capture-processor.ts (that module only loads in the worklet scope). */
const PROCESSOR_NAME = 'murmur-capture';

export interface CaptureOptions {
  /** An AudioContext to use (default: a new one, closed by stop()). */
  context?: AudioContext;
  /** Seconds per chunk (default 0.1). */
  chunkSeconds?: number;
}

export interface Capture {
  /** 16 kHz mono chunks until stop(); then the last partial chunk, and the iteration ends. */
  readonly chunks: AsyncIterable<Float32Array>;
  /** The device's rate, before resampling. */
  readonly inputSampleRate: number;
  stop(): Promise<void>;
}

/** The worklet module's URL, from the sources (Vite dev, tests) or from the built package. */
function processorUrl(): URL {
  return import.meta.url.endsWith('.ts')
    ? new URL('./capture-processor.ts', import.meta.url)
    : new URL('./capture-processor.js', import.meta.url);
}

const loadedContexts = new WeakSet<BaseAudioContext>();

export async function startCapture(stream: MediaStream, options: CaptureOptions = {}): Promise<Capture> {
  if (stream.getAudioTracks().length === 0) throw new AudioError('capture: the media stream has no audio track');
  const ownsContext = options.context === undefined;
  const context = options.context ?? new AudioContext();
  try {
    if (!loadedContexts.has(context)) {
      await context.audioWorklet.addModule(processorUrl());
      loadedContexts.add(context);
    }
    if (context.state === 'suspended') await context.resume();
  } catch (error) {
    if (ownsContext) await context.close().catch(() => {});
    throw new AudioError(`capture: could not start the audio worklet: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, PROCESSOR_NAME, {
    numberOfInputs: 1,
    numberOfOutputs: 0,
    channelCountMode: 'explicit',
    channelCount: Math.max(1, stream.getAudioTracks()[0]!.getSettings().channelCount ?? 1),
    processorOptions: { batchSeconds: options.chunkSeconds ?? 0.1 },
  });
  source.connect(node);

  const resampler = new StreamingResampler(context.sampleRate, CAPTURE_SAMPLE_RATE);
  const queue = new ChunkQueue();
  let stopped: Promise<void> | undefined;
  const finished = new Promise<void>((resolve) => {
    node.port.onmessage = (event: MessageEvent<{ type: 'audio'; samples: Float32Array } | { type: 'stopped' }>) => {
      if (event.data.type === 'audio') {
        const out = resampler.push(event.data.samples);
        if (out.length > 0) queue.put(out);
      } else {
        const tail = resampler.flush();
        if (tail.length > 0) queue.put(tail);
        queue.end();
        resolve();
      }
    };
  });

  return {
    chunks: queue,
    inputSampleRate: context.sampleRate,
    stop() {
      stopped ??= (async () => {
        node.port.postMessage('stop');
        // A closed or suspended context never answers; do not wait for it forever.
        await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, 500))]);
        queue.end();
        source.disconnect();
        node.port.onmessage = null;
        if (ownsContext) await context.close().catch(() => {});
      })();
      return stopped;
    },
  };
}

/** A single-consumer queue of chunks, iterable with for await. */
class ChunkQueue implements AsyncIterable<Float32Array> {
  private readonly items: Float32Array[] = [];
  private waiting: ((result: IteratorResult<Float32Array>) => void) | undefined;
  private ended = false;

  put(chunk: Float32Array): void {
    if (this.ended) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: chunk, done: false });
    } else {
      this.items.push(chunk);
    }
  }

  end(): void {
    this.ended = true;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Float32Array> {
    return {
      next: () => {
        const item = this.items.shift();
        if (item) return Promise.resolve({ value: item, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          this.waiting = resolve;
        });
      },
    };
  }
}
