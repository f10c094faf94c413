// The built demo as an offline PWA in headless Chromium: `vite build` of demo/, served by Vite's
// preview server (COOP/COEP) on 127.0.0.1 with the synthetic model beside it. The first visit
// loads the model (cached by the page) while the service worker precaches the app shell; then,
// with the network off, the page reloads, loads the model from the cache and transcribes jfk.wav,
// making no network request at all.
import { copyFileSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve, sep } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { build, preview, type Plugin, type PreviewServer } from 'vite';
import { cachedSyntheticModel } from '../../scripts/synthetic/generate.ts';
import { useBrowserSession } from './harness.ts';
import { REPO_ROOT, SHARED_DATA_DIR } from './server.ts';
import { waitForModel, waitForTranscript } from './demo-steps.ts';

const JFK = join(SHARED_DATA_DIR, 'audio/jfk.wav');
const CONFIG = join(REPO_ROOT, 'demo/vite.config.ts');
const SCREENSHOTS = join(REPO_ROOT, 'test-results/pwa');
const MODEL_ROUTE = '/@models/mini/';

/** Serves `dir` at `route` from the preview server (same origin, so COEP allows it). */
function modelRoute(route: string, dir: string): Plugin {
  return {
    name: 'murmur-test-model',
    configurePreviewServer(server) {
      server.middlewares.use(async (req, res, next) => {
        const path = decodeURIComponent((req.url ?? '').split('?')[0]!);
        if (!path.startsWith(route)) return next();
        const file = resolve(dir, path.slice(route.length));
        const info = file.startsWith(dir + sep) ? await stat(file).catch(() => undefined) : undefined;
        if (!info?.isFile()) {
          res.statusCode = 404;
          return res.end();
        }
        res.writeHead(200, { 'Content-Length': info.size, 'Content-Type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream', 'Cross-Origin-Resource-Policy': 'same-origin' });
        createReadStream(file).pipe(res);
      });
    },
  };
}

describe('the demo as an offline PWA', { skip: existsSync(JFK) ? false : `${JFK} is absent (the shared reference data is not checked out beside the repo)` }, () => {
  const session = useBrowserSession();
  let server: PreviewServer;
  let origin: string;
  let modelDir: string | undefined;

  before(async () => {
    const model = await cachedSyntheticModel({ preset: 'mini', seed: 7, format: 'huggingface', dtype: 'f32' });
    // A private copy: the shared synthetic cache may be pruned by another test process meanwhile.
    modelDir = mkdtempSync(join(tmpdir(), 'murmur-pwa-model-'));
    for (const name of readdirSync(model.dir)) copyFileSync(join(model.dir, name), join(modelDir, name));
    // The harness's dev server set NODE_ENV=development for this process, which would make this a
    // development build (import.meta.env.PROD false: no service worker registered).
    const nodeEnv = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      await build({ configFile: CONFIG, mode: 'production', logLevel: 'error' });
    } finally {
      if (nodeEnv === undefined) delete process.env.NODE_ENV;
      else process.env.NODE_ENV = nodeEnv;
    }
    server = await preview({ configFile: CONFIG, logLevel: 'error', preview: { host: '127.0.0.1', port: 0, strictPort: false }, plugins: [modelRoute(MODEL_ROUTE, resolve(modelDir))] });
    const address = server.httpServer.address() as AddressInfo;
    origin = `http://127.0.0.1:${address.port}`;
  }, { timeout: 120_000 });

  after(async () => {
    await server?.close();
    if (modelDir) rmSync(modelDir, { recursive: true, force: true });
  });

  test('after one online visit, reloads and transcribes with the network off, making no request', { timeout: 300_000 }, async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const context = await session().browser.newContext({ viewport: { width: 390, height: 844 } });
    const errors: string[] = [];
    try {
      const page = await context.newPage();
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
      });
      page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));

      await page.goto(`${origin}/?model=${MODEL_ROUTE}&backend=wasm`);
      await waitForModel(page);
      const worker = await page.evaluate(async () => (await navigator.serviceWorker.ready).active?.scriptURL);
      assert.match(worker ?? '', /\/sw\.js$/, 'the service worker is active');
      const manifest = await page.$eval('link[rel="manifest"]', (link) => (link as HTMLLinkElement).href);
      assert.match(manifest, /manifest\.webmanifest$/, 'the page links its web app manifest');

      await context.setOffline(true);
      const requests: string[] = [];
      await page.reload();
      assert.ok(await page.evaluate(() => navigator.serviceWorker.controller !== null), 'the service worker serves the page offline');
      const loaded = await waitForModel(page);
      assert.match(loaded, /^Loaded /);
      const files = await page.$$eval('#model-files-progress li', (items) => items.map((item) => item.textContent ?? ''));
      assert.ok(files.length >= 4 && files.every((text) => text.includes('(cached)')), `every model file came from the cache: ${JSON.stringify(files)}`);
      await page.screenshot({ path: join(SCREENSHOTS, '1-offline-loaded.png'), fullPage: true });

      // From the moment the model is loaded, transcribing must not touch the network (even the cache-backed service worker).
      context.on('request', (request) => requests.push(request.url()));
      await page.setInputFiles('#audio-file', JFK);
      const status = await waitForTranscript(page);
      assert.match(status, /^Done in /, 'transcribed offline');
      const segments = await page.$$eval('#segments li', (items) => items.length);
      assert.ok(segments > 0, 'segments are shown');
      assert.deepEqual(requests.filter((url) => !url.startsWith('blob:') && !url.startsWith('data:')), [], 'transcribing made no network request');
      await page.screenshot({ path: join(SCREENSHOTS, '2-offline-transcribed.png'), fullPage: true });
      assert.deepEqual(errors, [], 'no console errors');
    } finally {
      await context.close();
    }
  });
});
