export { MurmurSpeechRecognition, transcriberBackend, type ListeningTranscriber, type RecognitionBackend, type RecognitionStream } from './recognition.ts';
export {
  MurmurSpeechRecognitionAlternative,
  MurmurSpeechRecognitionErrorEvent,
  MurmurSpeechRecognitionEvent,
  MurmurSpeechRecognitionResult,
  MurmurSpeechRecognitionResultList,
  type SpeechRecognitionErrorCode,
} from './results.ts';
