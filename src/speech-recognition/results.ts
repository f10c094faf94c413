/**
 * The Web Speech API's result objects: SpeechRecognitionAlternative, SpeechRecognitionResult and
 * SpeechRecognitionResultList, with item(), length and index access as in browsers, and the
 * events that carry them.
 */

export class MurmurSpeechRecognitionAlternative {
  constructor(
    readonly transcript: string,
    readonly confidence: number,
  ) {}
}

/** Array-like with item(); `result[0]` works as in browsers. */
export class MurmurSpeechRecognitionResult {
  readonly [index: number]: MurmurSpeechRecognitionAlternative;
  readonly length: number;
  constructor(
    alternatives: MurmurSpeechRecognitionAlternative[],
    readonly isFinal: boolean,
  ) {
    alternatives.forEach((alternative, i) => Object.defineProperty(this, i, { value: alternative, enumerable: true }));
    this.length = alternatives.length;
  }
  item(index: number): MurmurSpeechRecognitionAlternative | null {
    return index >= 0 && index < this.length ? this[index]! : null;
  }
  *[Symbol.iterator](): IterableIterator<MurmurSpeechRecognitionAlternative> {
    for (let i = 0; i < this.length; i++) yield this[i]!;
  }
}

export class MurmurSpeechRecognitionResultList {
  readonly [index: number]: MurmurSpeechRecognitionResult;
  readonly length: number;
  constructor(results: MurmurSpeechRecognitionResult[]) {
    results.forEach((result, i) => Object.defineProperty(this, i, { value: result, enumerable: true }));
    this.length = results.length;
  }
  item(index: number): MurmurSpeechRecognitionResult | null {
    return index >= 0 && index < this.length ? this[index]! : null;
  }
  *[Symbol.iterator](): IterableIterator<MurmurSpeechRecognitionResult> {
    for (let i = 0; i < this.length; i++) yield this[i]!;
  }
}

export class MurmurSpeechRecognitionEvent extends Event {
  readonly resultIndex: number;
  readonly results: MurmurSpeechRecognitionResultList;
  constructor(type: 'result' | 'nomatch', init: { resultIndex: number; results: MurmurSpeechRecognitionResultList }) {
    super(type);
    this.resultIndex = init.resultIndex;
    this.results = init.results;
  }
}

export type SpeechRecognitionErrorCode =
  | 'no-speech'
  | 'aborted'
  | 'audio-capture'
  | 'network'
  | 'not-allowed'
  | 'service-not-allowed'
  | 'bad-grammar'
  | 'language-not-supported';

export class MurmurSpeechRecognitionErrorEvent extends Event {
  readonly error: SpeechRecognitionErrorCode;
  readonly message: string;
  constructor(init: { error: SpeechRecognitionErrorCode; message?: string }) {
    super('error');
    this.error = init.error;
    this.message = init.message ?? '';
  }
}
