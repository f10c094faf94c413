/**
 * Errors that keep their class across the worker boundary. Comlink's own handler sends only
 * name, message and stack, so a ModelFormatError thrown in the worker would arrive as a plain
 * Error. This handler sends every own field (code, file, tensor, status, ...) and the cause chain,
 * and the receiving side re-creates the MurmurError subclass by its name. Both sides register it
 * (the worker when it starts, the client before it wraps the worker).
 */
import * as Comlink from 'comlink';
import { AbortError, AudioError, ModelFormatError, ModelLoadError, MurmurError, TokenizerError } from '../core/errors.ts';

/** A plain, structured-cloneable picture of an error. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  fields: Record<string, unknown>;
  cause?: SerializedError | { value: unknown };
}

const MURMUR_CLASSES: Record<string, new (...args: never[]) => MurmurError> = {
  MurmurError,
  ModelFormatError,
  ModelLoadError,
  AudioError,
  TokenizerError,
  AbortError,
};

const MAX_CAUSE_DEPTH = 8;

export function serializeError(error: Error, depth = 0): SerializedError {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) {
    if (key === 'cause' || key === 'name' || key === 'message' || key === 'stack' || key === 'code') continue;
    if (isCloneable(value)) fields[key] = value;
  }
  const serialized: SerializedError = { name: error.name, message: error.message, fields };
  if (error.stack !== undefined) serialized.stack = error.stack;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') serialized.code = code;
  if ('cause' in error && error.cause !== undefined && depth < MAX_CAUSE_DEPTH) {
    serialized.cause = error.cause instanceof Error ? serializeError(error.cause, depth + 1) : { value: isCloneable(error.cause) ? error.cause : String(error.cause) };
  }
  return serialized;
}

export function deserializeError(serialized: SerializedError): Error {
  const Class = MURMUR_CLASSES[serialized.name];
  // Built without running the constructor, whose message formatting already happened in the worker.
  const error: Error = Class
    ? Object.create(Class.prototype)
    : serialized.code !== undefined
      ? Object.create(MurmurError.prototype)
      : serialized.name === 'AbortError' ? new DOMException(serialized.message, 'AbortError') : new Error(serialized.message);
  const own = (key: string, value: unknown) => Object.defineProperty(error, key, { value, writable: true, configurable: true, enumerable: key !== 'message' && key !== 'stack' });
  own('message', serialized.message);
  if (serialized.stack !== undefined) own('stack', serialized.stack);
  if (Class || serialized.code !== undefined) own('name', serialized.name);
  if (serialized.code !== undefined) own('code', serialized.code);
  for (const [key, value] of Object.entries(serialized.fields)) own(key, value);
  if (serialized.cause) own('cause', 'name' in serialized.cause ? deserializeError(serialized.cause) : serialized.cause.value);
  return error;
}

function isCloneable(value: unknown): boolean {
  return value === null || value === undefined || ['string', 'number', 'boolean', 'bigint'].includes(typeof value) || (Array.isArray(value) && value.every(isCloneable));
}

let registered = false;

export function registerErrorTransfer(): void {
  if (registered) return;
  registered = true;
  const builtIn = Comlink.transferHandlers.get('throw')!;
  Comlink.transferHandlers.set('throw', {
    canHandle: builtIn.canHandle,
    serialize(thrown: unknown) {
      const { value } = thrown as { value: unknown };
      if (value instanceof Error) return [{ isError: true, value: serializeError(value) }, []];
      return [{ isError: false, value }, []];
    },
    deserialize(serialized: unknown) {
      const { isError, value } = serialized as { isError: boolean; value: unknown };
      throw isError ? deserializeError(value as SerializedError) : value;
    },
  } as Comlink.TransferHandler<unknown, unknown>);
}
