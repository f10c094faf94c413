// The Vite dev server the browser tests load their pages from. Pages under test/browser/pages/
// import /src/**/*.ts directly (Vite compiles them on request), and /@shared/<path> serves the
// read-only reference data in ../shared/data, so audio and model files come from the same origin.
// Tests mount more folders (e.g. a generated synthetic model) with `server.mount(route, dir)`.
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
  /** Serve the files under `dir` at `route` (which starts and ends with '/'), read-only. */
  mount(route: string, dir: string): void;
  close(): Promise<void>;
}

export async function startTestServer(): Promise<TestServer> {
  const mounts = new Map<string, string>([[SHARED_DATA_ROUTE, SHARED_DATA_DIR]]);
  const vite: ViteDevServer = await createServer({
    configFile: false,
    root: REPO_ROOT,
    appType: 'mpa',
    logLevel: 'error',
    clearScreen: false,
    // Without discovery Vite neither crawls the repo for dependencies before serving nor reloads
    // a page mid-test after optimizing a newly seen one; dependencies are served as plain ESM,
    // except the CommonJS ones listed here, bundled into ESM once at startup (protobufjs: src/onnx).
    optimizeDeps: { noDiscovery: true, include: ['protobufjs/light.js'] },
    server: {
      host: '127.0.0.1',
      port: 0,
      strictPort: false,
      headers: { ...ISOLATION_HEADERS },
      hmr: false,
      watch: null,
      fs: { strict: true, allow: [REPO_ROOT] },
    },
    plugins: [mountedFoldersPlugin(mounts)],
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
    mount(route, dir) {
      if (!route.startsWith('/@') || !route.endsWith('/')) throw new Error(`mount routes look like /@name/, not ${route}`);
      mounts.set(route, resolve(dir));
    },
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

function mountedFoldersPlugin(mounts: ReadonlyMap<string, string>): Plugin {
  return {
    name: 'murmur-mounted-folders',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const route = [...mounts.keys()].find((r) => req.url?.startsWith(r));
        if (!route) return next();
        serveMountedFile(req, res, route, mounts.get(route)!).catch(next);
      });
    },
  };
}

async function serveMountedFile(req: IncomingMessage, res: ServerResponse, route: string, root: string): Promise<void> {
  const headers = { ...ISOLATION_HEADERS, 'Cross-Origin-Resource-Policy': 'same-origin', 'Cache-Control': 'no-store' };
  const fail = (status: number, message: string) => {
    res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(`${message}\n`);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, `${req.method} is not supported here`);

  const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname).slice(route.length);
  const file = resolve(root, pathname);
  if (!file.startsWith(root + sep)) return fail(403, `${pathname} is outside ${root}`);
  if (!existsSync(root)) return fail(404, `the directory ${root} does not exist`);
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return fail(404, `${pathname} is not a file in ${root}`);

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
