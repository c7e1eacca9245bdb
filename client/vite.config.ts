// Bundles the web client into dist/client, which the homeserver serves at `/`
// (homeserver/src/http/web-client.ts). `npm run build:client` or `npm start` runs it.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  publicDir: 'public',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/client', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // matrix-js-sdk is large: one vendor chunk keeps the app's own chunk small and cacheable.
    chunkSizeWarningLimit: 2000,
  },
  // `npm run dev:client`: the dev server passes the Matrix API through to a local Hearth.
  server: { port: 5173, proxy: { '/_matrix': 'http://localhost:8008', '/.well-known': 'http://localhost:8008' } },
});
