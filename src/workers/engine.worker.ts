/**
 * The module worker that hosts the engine: model I/O, audio preparation and inference all run
 * here, so the page's main thread only posts messages. src/client/transcriber.ts spawns it and
 * talks to the EngineHost (engine-host.ts) through comlink; errors keep their class on the way
 * back (error-transfer.ts).
 */
import * as Comlink from 'comlink';
import { createEngineHost, type EngineHost } from './engine-host.ts';
import { registerErrorTransfer } from './error-transfer.ts';

registerErrorTransfer();

const host: EngineHost = createEngineHost();

const engine = {
  init: (...args: Parameters<EngineHost['init']>) => host.init(...args),
  transcribe: (...args: Parameters<EngineHost['transcribe']>) => host.transcribe(...args),
  detectLanguage: (...args: Parameters<EngineHost['detectLanguage']>) => host.detectLanguage(...args),
  listen: (...args: Parameters<EngineHost['listen']>) => host.listen(...args),
  abort: (id: number) => host.abort(id),
  dispose: () => host.dispose(),
};

// Every EngineHost method must be forwarded: the client calls them by name through comlink.
const forwardsEveryMethod: EngineHost = engine;
void forwardsEveryMethod;

export type Engine = typeof engine;
Comlink.expose(engine);
