/**
 * The log-mel spectrogram of one 30 s model window, computed from a slice of the audio.
 *
 * OpenAI's transcribe computes the spectrogram of the whole recording (plus 30 s of zeros) once and
 * slices 3000-frame windows out of it. For hours of audio that spectrogram is hundreds of megabytes,
 * so here each window is computed on its own, from the samples it covers, and memory stays the same
 * whatever the length.
 *
 * The frames are OpenAI's own: a frame is centred on its hop and sees 200 samples either side, so
 * the slice starts two hops before the window (frames computed there see the audio's real
 * left neighbour, and are then dropped) and ends 40 samples after it (the last frame's right half).
 * At the very start of the audio the reflection padding is torch.stft's, as in OpenAI.
 *
 * What differs is the dynamic-range floor: Whisper clamps log-mel values at (max − 8) and here the
 * max is this window's, not the whole recording's. That is what the model saw in training (each
 * 30 s example was transformed on its own) and what Hugging Face's feature extractor does; with
 * OpenAI's whole-file max, a quiet passage in a loud recording is floored harder than the model
 * is used to. Matching OpenAI exactly would need a first pass over all the audio for its max —
 * constant memory but twice the STFT work — which we do not think is worth it.
 *
 * Audio past `endSample` (the end of the recording, or of a clip) is taken as silence, as a short
 * recording padded with zeros would be.
 */
import { HOP_LENGTH, N_FFT, N_FRAMES, logMelSpectrogram } from '../audio/mel.ts';
import type { LogMel } from '../audio/mel.ts';
import { AudioError } from '../errors.ts';

/** Frames of left context computed before the window so that no frame in it sees reflection padding. */
const LEAD_FRAMES = 2;

export interface WindowMelOptions {
  nMels: number;
  /** Row-major [nMels × 201] filters (a ggml file's own); default the standard filterbank. */
  filters?: Float32Array;
  /** Samples from here on count as silence; default the audio's length. */
  endSample?: number;
}

/** Exactly N_FRAMES frames [nMels, N_FRAMES] starting at frame `seek` of `audio`. */
export function windowLogMel(audio: Float32Array, seek: number, options: WindowMelOptions): LogMel {
  const endSample = Math.min(options.endSample ?? audio.length, audio.length);
  if (!Number.isInteger(seek) || seek < 0 || seek * HOP_LENGTH >= Math.max(endSample, 1)) {
    throw new AudioError(`window at frame ${seek} is outside the audio (${audio.length} samples, content up to sample ${endSample})`);
  }
  const lead = Math.min(seek, LEAD_FRAMES);
  const start = (seek - lead) * HOP_LENGTH;
  // The last frame is centred at (lead + N_FRAMES − 1) hops and reaches N_FFT/2 samples past it.
  const span = (lead + N_FRAMES - 1) * HOP_LENGTH + N_FFT / 2;
  const slice = audio.subarray(start, Math.max(start, Math.min(endSample, start + span)));
  const mel = logMelSpectrogram(slice, { nMels: options.nMels, padding: span - slice.length, ...(options.filters ? { filters: options.filters } : {}) });
  if (mel.nFrames !== lead + N_FRAMES) throw new AudioError(`window log-mel: ${mel.nFrames} frames where ${lead + N_FRAMES} were expected`);
  if (lead === 0) return mel;
  const data = new Float32Array(options.nMels * N_FRAMES);
  for (let m = 0; m < options.nMels; m++) {
    data.set(mel.data.subarray(m * mel.nFrames + lead, m * mel.nFrames + lead + N_FRAMES), m * N_FRAMES);
  }
  return { data, nMels: options.nMels, nFrames: N_FRAMES };
}
