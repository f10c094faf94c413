/**
 * Every error Murmur throws on purpose is a MurmurError subclass with a stable `code`, so callers
 * (and the worker boundary, which re-creates errors by class name) can branch without parsing
 * messages. Messages always name the thing that was wrong: the file, the tensor, the sample.
 */
export class MurmurError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A model file is unreadable: wrong magic, truncated, inconsistent, unsupported dtype, ... */
export class ModelFormatError extends MurmurError {
  /** The file the problem was found in (a path, URL or file name). */
  readonly file: string;
  /** The tensor involved, when there is one. */
  readonly tensor: string | undefined;
  constructor(file: string, problem: string, options?: { tensor?: string; cause?: unknown }) {
    const where = options?.tensor ? `${file}: tensor "${options.tensor}"` : file;
    super('MODEL_FORMAT', `${where}: ${problem}`, options);
    this.file = file;
    this.tensor = options?.tensor;
  }
}

/** A model file could not be fetched or read (network, HTTP status, permissions). */
export class ModelLoadError extends MurmurError {
  readonly file: string;
  readonly status: number | undefined;
  constructor(file: string, problem: string, options?: { status?: number; cause?: unknown }) {
    super('MODEL_LOAD', `${file}: ${problem}`, options);
    this.file = file;
    this.status = options?.status;
  }
}

/** Audio input that cannot be turned into 16 kHz mono samples (empty, unparseable, bad rate). */
export class AudioError extends MurmurError {
  constructor(problem: string, options?: { cause?: unknown }) {
    super('AUDIO', problem, options);
  }
}

/** Tokenizer data that is inconsistent, or a token id / language the tokenizer does not have. */
export class TokenizerError extends MurmurError {
  constructor(problem: string, options?: { cause?: unknown }) {
    super('TOKENIZER', problem, options);
  }
}

/** The operation was cancelled through an AbortSignal. */
export class AbortError extends MurmurError {
  constructor(what: string) {
    super('ABORTED', `${what} was aborted`);
  }
}
