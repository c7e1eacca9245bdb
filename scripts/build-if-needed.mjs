#!/usr/bin/env node
// `npm start` runs this first: bundle the server (esbuild, scripts/build-server.mjs) when dist/ is
// missing or older than a source, and the web client (Vite, into dist/client) when its bundle is
// missing or older than its sources. `--client` bundles only the web client (the browser tests use it).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const SERVER_SOURCES = ['homeserver/src', 'media-repo/src', 'bridges/src', 'scripts/build-server.mjs', 'package.json'];
const SERVER_OUTPUT = 'dist/homeserver/src/main.js';
const CLIENT_SOURCES = ['client/src', 'client/public', 'client/index.html', 'client/vite.config.ts', 'package.json'];
const CLIENT_OUTPUT = 'dist/client/index.html';

function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(path).reduce((max, name) => Math.max(max, newestMtime(join(path, name))), stat.mtimeMs);
}

function stale(output, sources) {
  const built = existsSync(output) ? statSync(output).mtimeMs : 0;
  return built === 0 || sources.some((s) => newestMtime(s) > built);
}

function run(what, args) {
  process.stderr.write(`hearth: ${what}…\n`);
  try {
    execFileSync(process.execPath, args, { stdio: 'inherit' });
  } catch {
    process.stderr.write(`hearth: error: ${what} failed (see above)\n`);
    process.exit(1);
  }
}

const clientOnly = process.argv.includes('--client');
if (!clientOnly && stale(SERVER_OUTPUT, SERVER_SOURCES)) {
  run('bundling the server (npm run build:server)', ['scripts/build-server.mjs']);
}
if (stale(CLIENT_OUTPUT, CLIENT_SOURCES)) {
  run('bundling the web client (npm run build:client)', ['node_modules/vite/bin/vite.js', 'build', '--config', 'client/vite.config.ts']);
}
