// The Vite dev server the browser tests load their pages from. Pages under test/browser/pages/
// import /src/**/*.ts directly (Vite compiles them on request), and /@shared/<path> serves the
// read-only reference data in ../shared/data, so audio and model files come from the same origin.
import { createReadStream, existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type Plugin, type ViteDevServer } from 'vite';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SHARED_DATA_DIR = resolve(REPO_ROOT, '../shared/data');
/** URL prefix under which SHARED_DATA_DIR is served. */
export const SHARED_DATA_ROUTE = '/@shared/';

/** Makes pages cross-origin isolated, which SharedArrayBuffer and threaded WASM need. */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
} as const;

export interface TestServer {
  /** e.g. http://127.0.0.1:41234 (a loopback origin, so pages are secure contexts). */
  readonly origin: string;
  close(): Promise<void>;
}

export async function startTestServer(): Promise<TestServer> {
  const vite: ViteDevServer = await createServer({
    configFile: false,
    root: REPO_ROOT,
    appType: 'mpa',
    logLevel: 'error',
    clearScreen: false,
    // Without discovery Vite neither crawls the repo for dependencies before serving nor reloads
    // a page mid-test after optimizing a newly seen one; dependencies are served as plain ESM.
    optimizeDeps: { noDiscovery: true },
    server: {
      host: '127.0.0.1',
      port: 0,
      strictPort: false,
      headers: { ...ISOLATION_HEADERS },
      hmr: false,
      watch: null,
      fs: { strict: true, allow: [REPO_ROOT] },
    },
    plugins: [sharedDataPlugin()],
  });
  try {
    await vite.listen();
  } catch (error) {
    await vite.close();
    throw error;
  }
  const address = vite.httpServer?.address() as AddressInfo | null;
  if (!address || typeof address !== 'object') {
    await vite.close();
    throw new Error('the Vite test server did not report the port it listens on');
  }
  return {
    origin: `http://127.0.0.1:${address.port}`,
    close: () => vite.close(),
  };
}

const CONTENT_TYPES: Record<string, string> = {
  '.wav': 'audio/wav',
  '.flac': 'audio/flac',
  '.json': 'application/json',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.tiktoken': 'text/plain; charset=utf-8',
};

function sharedDataPlugin(): Plugin {
  return {
    name: 'murmur-shared-data',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        if (!req.url?.startsWith(SHARED_DATA_ROUTE)) return next();
        serveSharedFile(req, res).catch(next);
      });
    },
  };
}

async function serveSharedFile(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers = { ...ISOLATION_HEADERS, 'Cross-Origin-Resource-Policy': 'same-origin', 'Cache-Control': 'no-store' };
  const fail = (status: number, message: string) => {
    res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(`${message}\n`);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, `${req.method} is not supported here`);

  const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname).slice(SHARED_DATA_ROUTE.length);
  const file = resolve(SHARED_DATA_DIR, pathname);
  if (!file.startsWith(SHARED_DATA_DIR + sep)) return fail(403, `${pathname} is outside the shared data directory`);
  if (!existsSync(SHARED_DATA_DIR)) return fail(404, `the shared data directory ${SHARED_DATA_DIR} does not exist`);
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return fail(404, `${pathname} is not a file in ${SHARED_DATA_DIR}`);

  const type = CONTENT_TYPES[extname(file)] ?? 'application/octet-stream';
  const range = parseRange(req.headers.range, info.size);
  if (range === 'invalid') {
    res.writeHead(416, { ...headers, 'Content-Range': `bytes */${info.size}` });
    res.end();
    return;
  }
  const [start, end] = range ?? [0, info.size - 1];
  res.writeHead(range ? 206 : 200, {
    ...headers,
    'Content-Type': type,
    'Content-Length': String(info.size === 0 ? 0 : end - start + 1),
    'Accept-Ranges': 'bytes',
    ...(range ? { 'Content-Range': `bytes ${start}-${end}/${info.size}` } : {}),
  });
  if (req.method === 'HEAD' || info.size === 0) {
    res.end();
    return;
  }
  createReadStream(file, { start, end }).pipe(res);
}

/** A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range; model loaders fetch files in pieces. */
function parseRange(header: string | undefined, size: number): [number, number] | 'invalid' | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return 'invalid';
  let start: number;
  let end: number;
  if (match[1] === '') {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  return start <= end && start < size ? [start, end] : 'invalid';
}
