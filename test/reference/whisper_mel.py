#!/usr/bin/env python3
"""Float64 NumPy port of openai/whisper's log_mel_spectrogram, as an independent reference.

usage: whisper_mel.py SAMPLES.f32 MEL_FILTERS.npz N_MELS PADDING OUT.f64
Reads little-endian float32 samples, writes the [n_mels, n_frames] result as little-endian float64
and prints {"nMels": ..., "nFrames": ...} on stdout.
"""
import json
import sys

import numpy as np

N_FFT = 400
HOP_LENGTH = 160


def log_mel_spectrogram(audio, filters, padding):
    audio = audio.astype(np.float64)
    if padding > 0:
        audio = np.pad(audio, (0, padding))
    # torch.stft(center=True) reflects N_FFT // 2 samples at both ends; np.pad also handles
    # signals shorter than that by reflecting repeatedly.
    padded = np.pad(audio, (N_FFT // 2, N_FFT // 2), mode="reflect")
    n_frames = 1 + (len(padded) - N_FFT) // HOP_LENGTH
    index = np.arange(N_FFT)[None, :] + HOP_LENGTH * np.arange(n_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    spectrum = np.fft.rfft(padded[index] * window, axis=-1)
    magnitudes = np.abs(spectrum[:-1]) ** 2  # drop the last frame, like stft[..., :-1]
    mel = filters.astype(np.float64) @ magnitudes.T
    log_spec = np.log10(np.maximum(mel, 1e-10))
    if log_spec.size:
        log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def main():
    samples_path, npz_path, n_mels, padding, out_path = sys.argv[1:6]
    audio = np.fromfile(samples_path, dtype="<f4")
    filters = np.load(npz_path)[f"mel_{int(n_mels)}"]
    result = log_mel_spectrogram(audio, filters, int(padding))
    result.astype("<f8").tofile(out_path)
    print(json.dumps({"nMels": int(result.shape[0]), "nFrames": int(result.shape[1])}))


if __name__ == "__main__":
    main()
