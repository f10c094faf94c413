export { startCapture, CAPTURE_SAMPLE_RATE, type Capture, type CaptureOptions } from './capture.ts';
export { listenLocal, type ListenOptions, type LocalListening, type MicrophoneRequest } from './listen.ts';
