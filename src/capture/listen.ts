/**
 * Live dictation in the page: microphone → AudioWorklet capture → LiveSession on a transcriber in
 * this thread. (The worker runtime hosts the same LiveSession off the main thread.)
 */
import { LiveSession, type LiveSessionOptions, type StreamingTranscriber } from '../core/streaming/session.ts';
import { AudioError } from '../core/errors.ts';
import { startCapture, type Capture } from './capture.ts';

export interface ListenOptions extends LiveSessionOptions {
  /** Sees every captured 16 kHz chunk before the session does (to record or meter it). */
  onAudio?: (chunk: Float32Array) => void;
  context?: AudioContext;
  chunkSeconds?: number;
}

export interface MicrophoneRequest {
  deviceId?: string;
  /** Extra constraints for getUserMedia's audio track. */
  constraints?: MediaTrackConstraints;
}

export interface LocalListening {
  readonly session: LiveSession;
  readonly capture: Capture;
  /** Stops capturing, finalizes the utterance in progress, resolves when its events are out. */
  stop(): Promise<void>;
  /** Stops capturing at once and drops what was not yet confirmed. */
  abort(): void;
}

/** A stream to capture from, and how to let go of it. */
export interface OpenedInput {
  stream: MediaStream;
  /** Stops the tracks if this call opened them (a stream passed in is left running). */
  release(): void;
}

/**
 * Uses `input` as is, or opens the microphone it describes. A failed getUserMedia rejects with its
 * DOMException (NotAllowedError, NotFoundError, ...) unchanged, so callers can tell a refused
 * permission from a missing device.
 */
export async function openInput(input: MediaStream | MicrophoneRequest): Promise<OpenedInput> {
  if (isMediaStream(input)) return { stream: input, release() {} };
  if (typeof navigator === 'undefined' || !navigator.mediaDevices?.getUserMedia) throw new AudioError('listen: this environment has no navigator.mediaDevices.getUserMedia');
  const audio: MediaTrackConstraints = { ...input.constraints };
  if (input.deviceId !== undefined) audio.deviceId = { exact: input.deviceId };
  const stream = await navigator.mediaDevices.getUserMedia({ audio });
  return {
    stream,
    release() {
      for (const track of stream.getTracks()) track.stop();
    },
  };
}

/** Opens the input and starts capturing it; releases the input again if capture cannot start. */
export async function captureInput(input: MediaStream | MicrophoneRequest, options: { context?: AudioContext; chunkSeconds?: number }): Promise<{ capture: Capture; release(): void }> {
  const opened = await openInput(input);
  try {
    return { capture: await startCapture(opened.stream, options), release: () => opened.release() };
  } catch (error) {
    opened.release();
    throw error;
  }
}

/**
 * Opens the microphone (or uses `input` as is) and transcribes what it hears on `transcriber`, in
 * this thread. (createTranscriber's `listen` runs the same session in the engine's worker.)
 */
export async function listenLocal(transcriber: StreamingTranscriber, input: MediaStream | MicrophoneRequest, options: ListenOptions): Promise<LocalListening> {
  const { capture, release: stopTracks } = await captureInput(input, { context: options.context, chunkSeconds: options.chunkSeconds });
  const session = new LiveSession(transcriber, options);
  let aborted = false;
  const pump = (async () => {
    for await (const chunk of capture.chunks) {
      if (aborted) return;
      options.onAudio?.(chunk);
      try {
        session.push(chunk);
      } catch (error) {
        options.onError?.(error);
        return;
      }
    }
  })();

  let stopping: Promise<void> | undefined;
  return {
    session,
    capture,
    stop() {
      stopping ??= (async () => {
        await capture.stop();
        await pump;
        stopTracks();
        await session.stop();
      })();
      return stopping;
    },
    abort() {
      aborted = true;
      session.abort();
      void capture.stop().finally(stopTracks);
    },
  };
}

function isMediaStream(value: unknown): value is MediaStream {
  return typeof MediaStream !== 'undefined' && value instanceof MediaStream;
}
