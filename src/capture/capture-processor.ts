/**
 * AudioWorklet processor for microphone capture: averages the input's channels and posts mono
 * Float32 batches of about `batchSeconds` (render quanta are 128 frames, ~3 ms: posting each would
 * flood the main thread with messages). Each batch's buffer is transferred, not copied.
 *
 * Runs in the AudioWorkletGlobalScope, which has neither imports of our modules nor the DOM types;
 * what it uses is declared below.
 */
declare const sampleRate: number;
declare function registerProcessor(name: string, processor: new (options: { processorOptions?: { batchSeconds?: number } }) => object): void;
declare abstract class AudioWorkletProcessor {
  readonly port: MessagePort;
  constructor(options?: object);
}

export const CAPTURE_PROCESSOR_NAME = 'murmur-capture';

class CaptureProcessor extends AudioWorkletProcessor {
  private readonly batchFrames: number;
  private batch: Float32Array;
  private filled = 0;
  private running = true;

  constructor(options: { processorOptions?: { batchSeconds?: number } }) {
    super(options);
    this.batchFrames = Math.max(128, Math.round(sampleRate * (options.processorOptions?.batchSeconds ?? 0.1)));
    this.batch = new Float32Array(this.batchFrames);
    this.port.onmessage = (event: MessageEvent) => {
      if (event.data === 'stop') {
        this.post();
        this.running = false;
        this.port.postMessage({ type: 'stopped' });
      }
    };
  }

  process(inputs: Float32Array[][]): boolean {
    if (!this.running) return false;
    const channels = inputs[0];
    // No input connected yet (or a muted track): nothing to record this quantum.
    if (!channels || channels.length === 0) return true;
    const frames = channels[0]!.length;
    const scale = 1 / channels.length;
    for (let i = 0; i < frames; i++) {
      let sum = 0;
      for (const channel of channels) sum += channel[i]!;
      this.batch[this.filled++] = sum * scale;
      if (this.filled === this.batchFrames) this.post();
    }
    return true;
  }

  private post(): void {
    if (this.filled === 0) return;
    const samples = this.filled === this.batchFrames ? this.batch : this.batch.slice(0, this.filled);
    this.port.postMessage({ type: 'audio', samples }, [samples.buffer]);
    this.batch = new Float32Array(this.batchFrames);
    this.filled = 0;
  }
}

registerProcessor(CAPTURE_PROCESSOR_NAME, CaptureProcessor);
