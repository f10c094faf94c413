// Runs test pages in headless Chromium (WebGPU on SwiftShader) served by the Vite test server.
// One browser and one server per test file: call useBrowserSession() at the top of the file.
// Any console error or uncaught exception on a page fails the next call on that page, and the
// test that opened it when it closes.
import { existsSync } from 'node:fs';
import { after, before, type TestContext } from 'node:test';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';
import { startTestServer, type TestServer } from './server.ts';

export const CHROMIUM_PATH = process.env.MURMUR_CHROMIUM ?? '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // Exposes navigator.gpu in headless Chromium on Linux, where it then runs on SwiftShader.
  '--enable-unsafe-webgpu',
];

const LAUNCH_TIMEOUT_MS = 60_000;
const CLOSE_TIMEOUT_MS = 20_000;
const OPEN_TIMEOUT_MS = 30_000;
const EVALUATE_TIMEOUT_MS = 120_000;

export interface OpenPageOptions {
  /** When given, the page is closed (and its errors reported) when this test ends. */
  test?: TestContext;
  /** Console errors matching one of these do not fail the page (for tests that provoke them). */
  allowConsoleErrors?: RegExp[];
  timeoutMs?: number;
}

export interface BrowserSession {
  readonly origin: string;
  readonly browser: Browser;
  /** Serve the files under `dir` at `route` (e.g. '/@models/mini/') from the test server. */
  mount(route: string, dir: string): void;
  /** Opens `path` (e.g. '/test/browser/pages/webgpu-smoke.html') and waits until it has loaded. */
  openPage(path: string, options?: OpenPageOptions): Promise<TestPage>;
  close(): Promise<void>;
}

export interface TestPage {
  readonly page: Page;
  readonly url: string;
  /** Runs `fn` in the page. Rejects with the page's error if one occurred, or on timeout. */
  evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A, options?: { timeoutMs?: number; what?: string }): Promise<R>;
  /** Calls the functions a page published with exposePageApi (test/browser/pages/page-api.ts). */
  api<Api extends object>(options?: { timeoutMs?: number }): RemoteApi<Api>;
  crossOriginIsolated(): Promise<boolean>;
  /** Console errors and uncaught exceptions seen so far. */
  readonly errors: readonly string[];
  /** Closes the page; throws if it reported errors. */
  close(): Promise<void>;
}

/** The page's API as seen from Node: every member becomes an async function. */
export type RemoteApi<Api> = {
  [K in keyof Api]: Api[K] extends (...args: infer P) => infer R ? (...args: P) => Promise<Awaited<R>> : never;
};

export interface BrowserSessionOptions {
  /** Chromium flags added to the fixed ones (e.g. a fake microphone fed from a file). */
  extraArgs?: string[];
}

/** Starts a server and Chromium before the file's tests and closes both after them. */
export function useBrowserSession(options: BrowserSessionOptions = {}): () => BrowserSession {
  let session: BrowserSession | undefined;
  before(async () => {
    session = await startBrowserSession(options);
  }, { timeout: LAUNCH_TIMEOUT_MS + OPEN_TIMEOUT_MS });
  after(async () => {
    await session?.close();
  }, { timeout: CLOSE_TIMEOUT_MS * 3 });
  return () => {
    if (!session) throw new Error('the browser session is not running (its start failed: see the before hook)');
    return session;
  };
}

export async function startBrowserSession(options: BrowserSessionOptions = {}): Promise<BrowserSession> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium is not at ${CHROMIUM_PATH}: install it (apt-get install chromium) or set MURMUR_CHROMIUM`);
  }
  const server = await withTimeout(startTestServer(), OPEN_TIMEOUT_MS, 'starting the Vite test server');
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS, ...(options.extraArgs ?? [])], timeout: LAUNCH_TIMEOUT_MS });
  } catch (error) {
    await server.close();
    throw new Error(`launching ${CHROMIUM_PATH} failed: ${messageOf(error)}`, { cause: error });
  }
  return new Session(server, browser);
}

class Session implements BrowserSession {
  readonly origin: string;
  readonly mount: (route: string, dir: string) => void;
  private readonly pages = new Set<PageHandle>();
  private closing = false;

  constructor(
    private readonly server: TestServer,
    readonly browser: Browser,
  ) {
    this.origin = server.origin;
    this.mount = (route, dir) => server.mount(route, dir);
    browser.on('disconnected', () => {
      if (this.closing) return;
      for (const handle of this.pages) handle.record('Chromium exited or crashed');
    });
  }

  async openPage(path: string, options: OpenPageOptions = {}): Promise<TestPage> {
    const url = new URL(path, this.origin).href;
    const page = await this.browser.newPage();
    const handle = new PageHandle(page, url, options.allowConsoleErrors ?? []);
    this.pages.add(handle);
    handle.onClose = () => this.pages.delete(handle);
    options.test?.after(() => handle.close());
    // Chromium turns some HTTP errors into navigation errors that hide the status; keep it.
    let status: number | undefined;
    page.on('response', (response) => {
      if (response.url() === url) status = response.status();
    });
    try {
      const response = await withTimeout(
        Promise.race([page.goto(url, { waitUntil: 'load', timeout: 0 }), handle.failure]),
        options.timeoutMs ?? OPEN_TIMEOUT_MS,
        `loading ${url}`,
      );
      if (!response?.ok()) throw new Error(`HTTP ${response?.status() ?? '(no response)'}`);
    } catch (error) {
      await handle.close().catch(() => {});
      const answer = status === undefined ? '' : ` (HTTP ${status})`;
      throw new Error(`opening ${url}${answer} failed: ${messageOf(error)}`, { cause: error });
    }
    return handle;
  }

  async close(): Promise<void> {
    this.closing = true;
    const problems: string[] = [];
    for (const handle of [...this.pages]) {
      await handle.close().catch((error) => problems.push(messageOf(error)));
    }
    try {
      await withTimeout(this.browser.close(), CLOSE_TIMEOUT_MS, 'closing Chromium');
    } catch (error) {
      // Playwright kills the browsers it launched when this process exits.
      problems.push(messageOf(error));
    }
    try {
      await withTimeout(this.server.close(), CLOSE_TIMEOUT_MS, 'closing the Vite test server');
    } catch (error) {
      problems.push(messageOf(error));
    }
    if (problems.length > 0) throw new Error(`closing the browser session:\n${problems.join('\n')}`);
  }
}

class PageHandle implements TestPage {
  readonly errors: string[] = [];
  /** Rejects at the first page error; every pending call races it. */
  readonly failure: Promise<never>;
  onClose: () => void = () => {};
  private fail: (error: Error) => void = () => {};
  private closed = false;

  constructor(
    readonly page: Page,
    readonly url: string,
    private readonly allowed: RegExp[],
  ) {
    this.failure = new Promise<never>((_, reject) => {
      this.fail = reject;
    });
    this.failure.catch(() => {}); // reported through calls and close(), not as an unhandled rejection
    page.on('console', (message) => this.onConsole(message));
    page.on('pageerror', (error) => this.record(`uncaught exception: ${error.stack ?? error.message}`));
    page.on('crash', () => this.record('the page crashed'));
  }

  private onConsole(message: ConsoleMessage): void {
    if (message.type() !== 'error') return;
    const text = message.text();
    if (this.allowed.some((pattern) => pattern.test(text))) return;
    const { url, lineNumber } = message.location();
    this.record(`console error: ${text}${url ? ` (${url}:${lineNumber + 1})` : ''}`);
  }

  record(problem: string): void {
    this.errors.push(problem);
    this.fail(new Error(`page ${this.url} reported: ${problem}`));
  }

  async evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A, options: { timeoutMs?: number; what?: string } = {}): Promise<R> {
    if (this.closed) throw new Error(`page ${this.url} is closed`);
    const what = options.what ?? 'evaluate';
    const result = this.page.evaluate(fn as (arg: unknown) => R | Promise<R>, arg as unknown);
    result.catch(() => {}); // when the race below is lost, this rejects once the page closes
    try {
      return (await withTimeout(Promise.race([result, this.failure]), options.timeoutMs ?? EVALUATE_TIMEOUT_MS, `${what} on ${this.url}`)) as R;
    } catch (error) {
      throw new Error(`${what} on ${this.url} failed: ${messageOf(error)}`, { cause: error });
    }
  }

  api<Api extends object>(options: { timeoutMs?: number } = {}): RemoteApi<Api> {
    return new Proxy({} as RemoteApi<Api>, {
      get: (_target, name) => {
        if (typeof name !== 'string' || name === 'then') return undefined;
        return (...args: unknown[]) =>
          this.evaluate(
            async ([method, values]) => {
              const api = (globalThis as { murmurPageApi?: Record<string, (...a: unknown[]) => unknown> }).murmurPageApi;
              if (!api) throw new Error('the page published no API (exposePageApi was not called)');
              const member = api[method];
              if (typeof member !== 'function') throw new Error(`the page API has no function "${method}"`);
              return member(...values);
            },
            [name, args] as [string, unknown[]],
            { timeoutMs: options.timeoutMs, what: `${name}()` },
          );
      },
    });
  }

  crossOriginIsolated(): Promise<boolean> {
    return this.evaluate(() => globalThis.crossOriginIsolated, undefined, { what: 'crossOriginIsolated' });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    await withTimeout(this.page.close(), CLOSE_TIMEOUT_MS, `closing ${this.url}`).catch(() => {});
    if (this.errors.length > 0) throw new Error(`page ${this.url} reported errors:\n${this.errors.join('\n')}`);
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
