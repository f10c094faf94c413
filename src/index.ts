/**
 * Murmur's public entry point. Everything here runs in browsers and in Node 20 (no DOM needed):
 * audio maths, tokenizer, model formats, the reference backend and the transcriber.
 */
export * from './core/errors.ts';

// Transcription
// createTranscriber runs the engine in a module worker in browsers (in-process in Node): see
// src/client/transcriber.ts. The in-process transcriber is createLocalTranscriber.
export { createTranscriber } from './client/transcriber.ts';
export type {
  CreateTranscriberOptions,
  MurmurTranscriber,
  AudioInput,
  ProgressEvent,
  TranscriberBackend,
  TranscriberModelInfo,
  TranscriberPlan,
  BackendAttempt,
  TranscriberListenOptions,
  TranscriberListening,
} from './client/transcriber.ts';
export type { AttemptExecution } from './workers/engine-host.ts';
export { createTranscriber as createLocalTranscriber } from './core/transcriber.ts';
export type {
  AppliedExecution,
  BackendName,
  LanguageDetection,
  Transcriber,
  TranscriberOptions,
  TranscribeOptions,
  Transcript,
  TranscriptSegment,
  TranscriptionResult,
  TranscriptionSegment,
  TranscriptionWord,
} from './core/transcriber.ts';

// Exports: subtitles and text
export { toSrt, toVtt, toTxt, toTsv, toJson, formatTimestamp } from './core/export/index.ts';
export type { VttOptions } from './core/export/index.ts';

// Audio
export { parseWav } from './core/audio/wav.ts';
export type { DecodedAudio } from './core/audio/wav.ts';
export { resample, downmix } from './core/audio/resample.ts';
export { toWhisperInput } from './core/audio/prepare.ts';
export type { WhisperInputOptions } from './core/audio/prepare.ts';
export { melFilterbank } from './core/audio/filterbank.ts';
export { logMelSpectrogram, logMelWindow, padOrTrimFrames, SAMPLE_RATE, N_FFT, HOP_LENGTH, CHUNK_LENGTH, N_SAMPLES, N_FRAMES } from './core/audio/mel.ts';
export type { LogMel, LogMelOptions } from './core/audio/mel.ts';

// Tokenizer
export { WhisperTokenizer } from './core/tokenizer/tokenizer.ts';
export type { Task } from './core/tokenizer/tokenizer.ts';
export { LANGUAGES, LANGUAGE_NAMES, toLanguageCode } from './core/tokenizer/languages.ts';

// Models
export { loadModel } from './core/formats/load-model.ts';
export type { LoadModelOptions, ModelSource } from './core/formats/load-model.ts';
export type { DownloadProgress } from './core/formats/sources.ts';
export { parseSafetensors } from './core/formats/safetensors.ts';
export { parseGgml } from './core/formats/ggml.ts';
export { KNOWN_DIMS, isMultilingual, languageCount } from './core/model/dims.ts';
export type { WhisperDims } from './core/model/dims.ts';
export type { WhisperModel, GenerationConfig, ModelFileFormat } from './core/model/model.ts';
export { weightSlots, mapWeights, huggingFaceName } from './core/model/weights.ts';
export type { WhisperWeights, WeightTensor, WeightDType } from './core/model/weights.ts';
export { decodeTensor, encodeTensor } from './core/model/dtype.ts';

// The model definition and the reference backend
export { encode, createDecoderState, decodeStep, releaseDecoderState } from './core/model/whisper.ts';
export type { WhisperOps, WhisperBackend } from './core/model/ops.ts';
export { createReferenceBackend } from './core/reference/backend.ts';
export { createWasmBackend } from './kernels-wasm/backend.ts';
export { createWebGpuBackend } from './kernels-wgsl/backend.ts';

// Decoding: the window decoder every backend shares
export { greedyDecode } from './core/decoding/greedy.ts';
export type { LogitsSource, GreedyOptions, GreedyResult } from './core/decoding/greedy.ts';
export { createDecoderSession, decodeWindow, decodeWithFallback, detectLanguage, compressionRatio } from './core/decoding/index.ts';
export type { DecoderSession, BatchDecoder, DecodingOptions, DecodingResult, FallbackOptions } from './core/decoding/index.ts';

// Live dictation: voice activity, streaming agreement, microphone capture, Web Speech API
export { VoiceActivityDetector } from './core/streaming/vad.ts';
export type { VadOptions, VadEvent } from './core/streaming/vad.ts';
export { LiveSession } from './core/streaming/session.ts';
export type { LiveEvent, LiveSessionOptions, LiveWord, StreamingTranscriber } from './core/streaming/session.ts';
export { StreamingResampler } from './core/audio/stream-resample.ts';
export { startCapture, listenLocal } from './capture/index.ts';
export type { Capture, CaptureOptions, ListenOptions, LocalListening } from './capture/index.ts';
export {
  MurmurSpeechRecognition,
  MurmurSpeechRecognitionAlternative,
  MurmurSpeechRecognitionErrorEvent,
  MurmurSpeechRecognitionEvent,
  MurmurSpeechRecognitionResult,
  MurmurSpeechRecognitionResultList,
  transcriberBackend,
} from './speech-recognition/index.ts';
export type { ListeningTranscriber, RecognitionBackend, SpeechRecognitionErrorCode } from './speech-recognition/index.ts';

export { probeDevice } from './core/device/probe.ts';
export type {
  DeviceProfile,
  EnvironmentProfile,
  ProbeOptions,
  StorageProfile,
  Unavailable,
  WasmProfile,
  WebGpuProfile,
  WebNnContextAttempt,
  WebNnDeviceOption,
  WebNnProfile,
} from './core/device/probe.ts';
export { planExecution } from './core/device/plan.ts';
export type { ExecutionBackend, ExecutionLayout, ExecutionPlan, ExecutionPrecision, PlannedModel } from './core/device/plan.ts';
