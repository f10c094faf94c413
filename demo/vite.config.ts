import { defineConfig } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

// COOP/COEP make the page cross-origin isolated, which WASM threads (SharedArrayBuffer) need.
export const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // Relative so the built app works under any path (GitHub Pages, a test server's sub-route).
  base: './',
  server: { headers: isolationHeaders, fs: { allow: [repoRoot] } },
  preview: { headers: isolationHeaders },
  worker: { format: 'es' },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
  plugins: [
    VitePWA({
      // demo/src/main.ts registers the worker itself, only in built pages (the dev server has none).
      injectRegister: false,
      registerType: 'autoUpdate',
      manifest: {
        name: 'Murmur — private speech transcription',
        short_name: 'Murmur',
        description: 'Whisper speech transcription that runs in the page; audio never leaves the device.',
        theme_color: '#1f3b57',
        background_color: '#1f3b57',
        display: 'standalone',
        start_url: './',
        scope: './',
        icons: [
          { src: 'icon-192.png', sizes: '192x192', type: 'image/png' },
          { src: 'icon-512.png', sizes: '512x512', type: 'image/png' },
          { src: 'icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        ],
      },
      workbox: {
        // The app shell only. Model files are cached by the page (demo/src/model-cache.ts), where the
        // model manager can list and delete them.
        globPatterns: ['**/*.{js,css,html,svg,png,webmanifest}'],
        // The engine worker inlines its WASM kernels, so its chunk is large.
        maximumFileSizeToCacheInBytes: 64 * 1024 * 1024,
        navigateFallback: 'index.html',
        cleanupOutdatedCaches: true,
      },
    }),
  ],
});
