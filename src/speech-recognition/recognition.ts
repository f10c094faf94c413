/**
 * MurmurSpeechRecognition: the Web Speech API's SpeechRecognition, recognizing on the device with
 * a Murmur live session instead of a cloud service, so code written for `webkitSpeechRecognition`
 * switches by changing the constructor.
 *
 * How session events become Web Speech events:
 * - 'start' and 'audiostart' once the microphone delivers; 'soundstart' and 'speechstart' at the
 *   first detected speech; 'speechend', 'soundend', 'audioend' and 'end' when recognition ends.
 * - continuous = true: each batch of confirmed words is appended as a final result (confirmed text
 *   never changes, which is what isFinal promises); the tentative text is one interim result after
 *   the finals. Listening goes on until stop() or abort().
 * - continuous = false: one final result holding the whole first utterance, then recognition ends;
 *   interim results show the utterance so far (confirmed words followed by tentative ones).
 * - interimResults = false: only final results are delivered.
 * - An utterance that ends without words fires 'nomatch'.
 * - Errors: a refused microphone → 'not-allowed'; no microphone or capture failure →
 *   'audio-capture'; no speech within noSpeechTimeout ms → 'no-speech'; abort() → 'aborted'; a
 *   language the model lacks → 'language-not-supported'. Never 'network': nothing leaves the device.
 *
 * Results carry one alternative (Whisper's greedy or beam result), whatever maxAlternatives says.
 */
import type { LiveEvent, LiveSessionOptions, LiveTextEvent, StreamingTranscriber } from '../core/streaming/session.ts';
import { MurmurError } from '../core/errors.ts';
import {
  MurmurSpeechRecognitionAlternative,
  MurmurSpeechRecognitionErrorEvent,
  MurmurSpeechRecognitionEvent,
  MurmurSpeechRecognitionResult,
  MurmurSpeechRecognitionResultList,
  type SpeechRecognitionErrorCode,
} from './results.ts';

/** A running live session as recognition sees it. */
export interface RecognitionStream {
  /** Stops listening; resolves after the utterance in progress was finalized and its events emitted. */
  stop(): Promise<void>;
  /** Stops at once; no more events. */
  abort(): void;
}

/** Starts live sessions: the in-page one (transcriberBackend) or the worker's. */
export interface RecognitionBackend {
  start(request: { language: string | undefined; onEvent: (event: LiveEvent) => void; onError: (error: unknown) => void }): Promise<RecognitionStream>;
}

/**
 * What createTranscriber (src/client) returns, as far as recognition needs it: a transcriber that
 * runs live sessions in its engine's worker.
 */
export interface ListeningTranscriber {
  listen(options: {
    stream?: MediaStream;
    microphone?: { deviceId?: string; constraints?: MediaTrackConstraints };
    language?: string;
    onEvent?: (event: LiveEvent) => void;
    onError?: (error: unknown) => void;
  } & Omit<LiveSessionOptions, 'onEvent' | 'onError' | 'language'>): Promise<RecognitionStream>;
}

function isListening(transcriber: StreamingTranscriber | ListeningTranscriber): transcriber is ListeningTranscriber {
  return typeof (transcriber as Partial<ListeningTranscriber>).listen === 'function';
}

/**
 * A backend that opens the microphone and runs a live session on `transcriber`: in its worker for a
 * transcriber from createTranscriber (it has `listen`), else in this thread (a local Transcriber).
 */
export function transcriberBackend(
  transcriber: StreamingTranscriber | ListeningTranscriber,
  microphone: MediaStream | { deviceId?: string; constraints?: MediaTrackConstraints } = {},
  sessionOptions: Omit<LiveSessionOptions, 'onEvent' | 'onError' | 'language'> = {},
): RecognitionBackend {
  return {
    async start({ language, onEvent, onError }) {
      if (isListening(transcriber)) {
        const source = typeof MediaStream !== 'undefined' && microphone instanceof MediaStream ? { stream: microphone } : { microphone: microphone as { deviceId?: string; constraints?: MediaTrackConstraints } };
        return transcriber.listen({ ...sessionOptions, ...source, ...(language !== undefined ? { language } : {}), onEvent, onError });
      }
      const { listenLocal } = await import('../capture/listen.ts');
      return listenLocal(transcriber, microphone, { ...sessionOptions, language, onEvent, onError });
    },
  };
}

type Handler<E extends Event> = ((this: MurmurSpeechRecognition, event: E) => unknown) | null;

export class MurmurSpeechRecognition extends EventTarget {
  /** The backend new instances use when none is passed to the constructor. */
  static defaultBackend: RecognitionBackend | undefined;
  /** Sets the default backend: recognition on `transcriber` (in its worker when it has one). */
  static use(transcriber: StreamingTranscriber | ListeningTranscriber): void {
    MurmurSpeechRecognition.defaultBackend = transcriberBackend(transcriber);
  }

  continuous = false;
  interimResults = false;
  /** BCP 47 tag; its language subtag picks Whisper's language ('' detects it). */
  lang = '';
  maxAlternatives = 1;
  /** Accepted for compatibility; Whisper does not use grammars. */
  grammars: unknown = [];
  /** Milliseconds without speech after start before a 'no-speech' error (not in the Web Speech API). */
  noSpeechTimeout = 8000;

  onstart: Handler<Event> = null;
  onend: Handler<Event> = null;
  onaudiostart: Handler<Event> = null;
  onaudioend: Handler<Event> = null;
  onsoundstart: Handler<Event> = null;
  onsoundend: Handler<Event> = null;
  onspeechstart: Handler<Event> = null;
  onspeechend: Handler<Event> = null;
  onresult: Handler<MurmurSpeechRecognitionEvent> = null;
  onnomatch: Handler<MurmurSpeechRecognitionEvent> = null;
  onerror: Handler<MurmurSpeechRecognitionErrorEvent> = null;

  private readonly backend: RecognitionBackend | undefined;
  private run: Run | undefined;

  constructor(backend?: RecognitionBackend) {
    super();
    this.backend = backend;
  }

  start(): void {
    if (this.run) throw new DOMException('recognition has already started', 'InvalidStateError');
    const run = new Run(this, this.continuous, this.interimResults);
    this.run = run;
    const backend = this.backend ?? MurmurSpeechRecognition.defaultBackend;
    if (!backend) {
      queueMicrotask(() => run.fail('service-not-allowed', 'no recognition backend: call MurmurSpeechRecognition.use(transcriber) or pass one to the constructor'));
      return;
    }
    const language = this.lang.trim() === '' ? undefined : this.lang.trim().split(/[-_]/)[0]!.toLowerCase();
    backend
      .start({ language, onEvent: (event) => run.onSessionEvent(event), onError: (error) => run.fail(errorCode(error), messageOf(error)) })
      .then((stream) => run.listening(stream, this.noSpeechTimeout), (error) => run.fail(errorCode(error), messageOf(error)));
  }

  stop(): void {
    this.run?.stop();
  }

  abort(): void {
    this.run?.fail('aborted', 'recognition was aborted');
  }

  /** Fires `event` at the on<type> handler, then at the listeners. */
  fire(event: Event): void {
    const handler = (this as unknown as Record<string, Handler<Event>>)[`on${event.type}`];
    handler?.call(this, event);
    this.dispatchEvent(event);
  }

  /** Called by the run when it has fired 'end'. */
  ended(run: Run): void {
    if (this.run === run) this.run = undefined;
  }
}

/** One start() to 'end'. */
class Run {
  private stream: RecognitionStream | undefined;
  private state: 'starting' | 'listening' | 'stopping' | 'ended' = 'starting';
  private stopRequested = false;
  private speechStarted = false;
  private noSpeechTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly finals: MurmurSpeechRecognitionResult[] = [];
  /** Confirmed text of the current utterance (single-shot mode builds one final from it). */
  private utteranceText = '';
  private utteranceWords: NonNullable<LiveTextEvent['words']> = [];
  private anyWordsInUtterance = false;

  constructor(
    private readonly owner: MurmurSpeechRecognition,
    private readonly continuous: boolean,
    private readonly interimResults: boolean,
  ) {}

  listening(stream: RecognitionStream, noSpeechTimeout: number): void {
    if (this.state === 'ended') {
      stream.abort();
      return;
    }
    this.stream = stream;
    this.state = 'listening';
    this.owner.fire(new Event('start'));
    this.owner.fire(new Event('audiostart'));
    if (this.stopRequested) {
      this.stop();
      return;
    }
    this.noSpeechTimer = setTimeout(() => {
      if (!this.speechStarted) this.fail('no-speech', `no speech detected within ${noSpeechTimeout} ms`);
    }, noSpeechTimeout);
  }

  onSessionEvent(event: LiveEvent): void {
    if (this.state === 'ended') return;
    switch (event.type) {
      case 'speech-start':
        this.utteranceText = '';
        this.utteranceWords = [];
        this.anyWordsInUtterance = false;
        if (!this.speechStarted) {
          this.speechStarted = true;
          clearTimeout(this.noSpeechTimer);
          this.owner.fire(new Event('soundstart'));
          this.owner.fire(new Event('speechstart'));
        }
        return;
      case 'tentative':
        this.tentative(event);
        return;
      case 'confirmed':
        this.confirmed(event);
        return;
      case 'speech-end':
        this.utteranceEnded();
        return;
    }
  }

  private tentative(event: LiveTextEvent): void {
    if (!this.interimResults || event.text.trim() === '') return;
    const text = this.continuous ? event.text : this.utteranceText + event.text;
    const interim = new MurmurSpeechRecognitionResult([new MurmurSpeechRecognitionAlternative(this.transcript(text), 0)], false);
    this.fireResult(this.finals.length, [...this.finals, interim]);
  }

  private confirmed(event: LiveTextEvent): void {
    this.utteranceText += event.text;
    this.utteranceWords.push(...(event.words ?? []));
    if (event.text.trim() !== '') this.anyWordsInUtterance = true;
    if (!this.continuous || event.text.trim() === '') return;
    this.finals.push(new MurmurSpeechRecognitionResult([new MurmurSpeechRecognitionAlternative(this.transcript(event.text), confidenceOf(event.words))], true));
    this.fireResult(this.finals.length - 1, this.finals);
  }

  private utteranceEnded(): void {
    if (!this.anyWordsInUtterance) {
      this.owner.fire(new MurmurSpeechRecognitionEvent('nomatch', { resultIndex: this.finals.length, results: new MurmurSpeechRecognitionResultList([...this.finals]) }));
    } else if (!this.continuous) {
      this.finals.push(new MurmurSpeechRecognitionResult([new MurmurSpeechRecognitionAlternative(this.utteranceText.trim(), confidenceOf(this.utteranceWords))], true));
      this.fireResult(0, this.finals);
    }
    if (!this.continuous && this.state === 'listening') {
      // Single-shot: the first utterance is the answer.
      this.stream?.abort();
      this.finish();
    }
  }

  private transcript(text: string): string {
    return this.finals.length === 0 ? text.trimStart() : text;
  }

  private fireResult(resultIndex: number, results: MurmurSpeechRecognitionResult[]): void {
    this.owner.fire(new MurmurSpeechRecognitionEvent('result', { resultIndex, results: new MurmurSpeechRecognitionResultList([...results]) }));
  }

  stop(): void {
    if (this.state === 'starting') {
      this.stopRequested = true;
      return;
    }
    if (this.state !== 'listening') return;
    this.state = 'stopping';
    clearTimeout(this.noSpeechTimer);
    this.stream!.stop().then(
      () => this.finish(),
      (error) => this.fail(errorCode(error), messageOf(error)),
    );
  }

  fail(code: SpeechRecognitionErrorCode, message: string): void {
    if (this.state === 'ended') return;
    const wasListening = this.state !== 'starting';
    this.stream?.abort();
    this.owner.fire(new MurmurSpeechRecognitionErrorEvent({ error: code, message }));
    this.finish(wasListening);
  }

  private finish(audioStarted = true): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    clearTimeout(this.noSpeechTimer);
    if (this.speechStarted) {
      this.owner.fire(new Event('speechend'));
      this.owner.fire(new Event('soundend'));
    }
    if (audioStarted) this.owner.fire(new Event('audioend'));
    this.owner.ended(this);
    this.owner.fire(new Event('end'));
  }
}

function confidenceOf(words: LiveTextEvent['words']): number {
  const probabilities = (words ?? []).map((w) => w.probability).filter((p): p is number => typeof p === 'number' && Number.isFinite(p));
  if (probabilities.length === 0) return 0;
  return Math.min(1, Math.max(0, probabilities.reduce((a, b) => a + b, 0) / probabilities.length));
}

function errorCode(error: unknown): SpeechRecognitionErrorCode {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') return 'not-allowed';
  if (name === 'NotFoundError' || name === 'NotReadableError' || name === 'OverconstrainedError' || name === 'AudioError') return 'audio-capture';
  if (error instanceof MurmurError && /language/i.test(error.message)) return 'language-not-supported';
  return 'aborted';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
