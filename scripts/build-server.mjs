#!/usr/bin/env node
// Bundles the server's entry points with esbuild, one ESM file each, at the paths `npm start`,
// the `hearth` bin and the bench run (dist/homeserver/src/main.js, dist/media-repo/src/main.js).
// One file instead of ~1,500 modules resolved and compiled one by one: start-up is mostly module
// loading (docs/PERFORMANCE.md). Type checking is `tsc` (npm run typecheck / npm run build).
//
// Native and optional-native packages stay in node_modules, loaded by Node as usual.
import { build } from 'esbuild';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Paths below are relative to the checkout, wherever this is run from.
process.chdir(fileURLToPath(new URL('..', import.meta.url)));

const EXTERNAL = [
  'better-sqlite3', // native addon
  'sharp', // native (libvips), loaded on the first thumbnail
  'pg', // loaded only for PostgreSQL; its optional pg-native must not be bundled
  'pg-native',
];

const SERVER_ENTRIES = {
  'homeserver/src/main': 'homeserver/src/main.ts',
  'media-repo/src/main': 'media-repo/src/main.ts',
};

/** The config validator's standalone code, from the sources (homeserver/src/config/validator-code.ts). */
async function configValidatorCode() {
  const generator = resolve('dist/.build/config-validator-code.mjs');
  mkdirSync(dirname(generator), { recursive: true });
  await build({
    entryPoints: ['homeserver/src/config/validator-code.ts'],
    outfile: generator,
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    logLevel: 'warning',
  });
  try {
    const { configValidatorCode: generate } = await import(`${pathToFileURL(generator).href}?t=${Date.now()}`);
    return generate();
  } finally {
    rmSync(dirname(generator), { recursive: true, force: true });
  }
}

/** Puts the precompiled config validator in place of config/validator.ts (which compiles it at run time). */
function precompiledConfigValidator(code) {
  return {
    name: 'precompiled-config-validator',
    setup(b) {
      b.onLoad({ filter: /[\\/]homeserver[\\/]src[\\/]config[\\/]validator\.ts$/ }, (args) => ({
        contents: code,
        loader: 'js',
        resolveDir: dirname(args.path),
      }));
    },
  };
}

async function buildServer() {
  const validatorCode = await configValidatorCode();
  // tsc's per-file output of earlier builds would sit next to the bundles: stale, never loaded.
  rmSync('dist/homeserver', { recursive: true, force: true });
  rmSync('dist/media-repo', { recursive: true, force: true });
  rmSync('dist/bridges', { recursive: true, force: true });
  await build({
    entryPoints: SERVER_ENTRIES,
    outdir: 'dist',
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL,
    // The bundle's source stays in memory (V8 keeps it for lazy compilation): 4.7 MB as written,
    // 3.1 MB without whitespace (−8 MB idle RSS). Identifiers are NOT minified: esbuild then turns
    // each CommonJS module into `__commonJS((exports, module) => …)`, a parenthesised function
    // that V8 compiles eagerly, every module whether run or not (+9 MB). Names stay readable in
    // stack traces; `node --enable-source-maps` maps the lines back to the sources.
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: true,
    legalComments: 'none',
    plugins: [precompiledConfigValidator(validatorCode)],
    logLevel: 'warning',
    // The CommonJS packages in the bundle (fastify, pino, ajv, …) call require() for Node's
    // built-ins; an ES module has no require of its own.
    banner: {
      js: "import { createRequire as __hearthCreateRequire } from 'node:module'; const require = __hearthCreateRequire(import.meta.url);",
    },
  });
}

await buildServer();
