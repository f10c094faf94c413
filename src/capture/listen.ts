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

/**
 * Opens the microphone (or uses `input` as is) and transcribes what it hears. A failed
 * getUserMedia rejects with its DOMException (NotAllowedError, NotFoundError, ...) unchanged, so
 * callers can tell a refused permission from a missing device.
 */
export async function listenLocal(transcriber: StreamingTranscriber, input: MediaStream | MicrophoneRequest, options: ListenOptions): Promise<LocalListening> {
  let stream: MediaStream;
  const ownsStream = !isMediaStream(input);
  if (isMediaStream(input)) {
    stream = input;
  } else {
    if (typeof navigator === 'undefined' || !navigator.mediaDevices?.getUserMedia) throw new AudioError('listen: this environment has no navigator.mediaDevices.getUserMedia');
    const audio: MediaTrackConstraints = { ...input.constraints };
    if (input.deviceId !== undefined) audio.deviceId = { exact: input.deviceId };
    stream = await navigator.mediaDevices.getUserMedia({ audio });
  }
  const stopTracks = () => {
    if (ownsStream) for (const track of stream.getTracks()) track.stop();
  };
  let capture: Capture;
  try {
    capture = await startCapture(stream, { context: options.context, chunkSeconds: options.chunkSeconds });
  } catch (error) {
    stopTracks();
    throw error;
  }
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
