/**
 * Entry of a kernel thread (src/kernels-wasm/threads.ts): a browser module Worker or a Node
 * worker thread. It receives the module, the shared memory and the control block once,
 * instantiates its own copy of the kernels, reports ready, then serves dispatches until shut down.
 */
import { instantiateKernel } from './instantiate.ts';
import { serveKernelThread, type WorkerStart } from './threads.ts';

type Reply = { ready: true } | { ready: false; error: string };

async function start(message: WorkerStart, reply: (r: Reply) => void): Promise<void> {
  let instance: WebAssembly.Instance;
  try {
    instance = await instantiateKernel('kernels', message.module, message.memory);
  } catch (error) {
    reply({ ready: false, error: error instanceof Error ? error.message : String(error) });
    return;
  }
  reply({ ready: true });
  serveKernelThread(message, instance);
}

const isNodeThread = Boolean((globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node) && typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === 'undefined';

if (isNodeThread) {
  const { parentPort } = await import('node:worker_threads');
  if (!parentPort) throw new Error('pool-worker.ts runs as a worker thread');
  parentPort.once('message', (message: WorkerStart) => void start(message, (r) => parentPort.postMessage(r)));
} else {
  const scope = globalThis as unknown as { onmessage: ((event: MessageEvent<WorkerStart>) => void) | null; postMessage(message: Reply): void };
  scope.onmessage = (event) => {
    scope.onmessage = null;
    void start(event.data, (r) => scope.postMessage(r));
  };
}
