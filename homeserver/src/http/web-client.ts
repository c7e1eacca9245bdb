/**
 * Serves the built web client (client/, bundled by Vite into dist/client) at `/`.
 *
 * No routes are registered: an onRequest hook answers GET/HEAD requests that no API route
 * matched, so the API's own 404/405 M_UNRECOGNIZED answers (and the route list tests sweep) stay
 * as they are, and /_matrix, /.well-known and /health are never shadowed. Paths that name no file
 * fall back to index.html (the client routes by path).
 */
import { createReadStream, existsSync, statSync, type Stats } from 'node:fs';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Prefixes that belong to the APIs: never answered with the client. */
const RESERVED_PREFIXES = ['/_matrix', '/_synapse', '/.well-known', '/health'];

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** The bundle folder: dist/client under the checkout, from the sources or from dist/. */
export function defaultWebClientRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'homeserver'))) return join(dir, 'dist', 'client');
    dir = dirname(dir);
  }
  return resolve('dist', 'client');
}

export function registerWebClient(app: FastifyInstance, root = defaultWebClientRoot()): void {
  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return;
    if (!request.is404) return;
    const path = decodePath(request.url.split('?')[0]!);
    if (path === undefined || RESERVED_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`))) return;
    const file = resolveFile(root, path);
    if (file) return sendFile(request, reply, root, file.path, file.stat);
    // Paths with a file extension that does not exist are real 404s; others are client routes.
    if (extname(path) !== '') return;
    const index = resolveFile(root, '/index.html');
    if (index) return sendFile(request, reply, root, index.path, index.stat);
    if (path === '/') {
      return reply
        .code(503)
        .header('content-type', 'text/plain; charset=utf-8')
        .header('cache-control', 'no-store')
        .send('The Hearth web client is not built: run `npm run build:client` (npm start builds it).\n');
    }
  });
}

function decodePath(raw: string): string | undefined {
  try {
    const path = decodeURIComponent(raw);
    return path.includes('\0') ? undefined : path;
  } catch {
    return undefined;
  }
}

/** The file under root that `path` names, never outside root. */
function resolveFile(root: string, path: string): { path: string; stat: Stats } | undefined {
  const full = resolve(root, `.${path}`);
  if (full !== root && !full.startsWith(root + sep)) return undefined;
  try {
    const stat = statSync(full);
    if (stat.isFile()) return { path: full, stat };
    if (stat.isDirectory()) {
      const index = join(full, 'index.html');
      const indexStat = statSync(index, { throwIfNoEntry: false });
      if (indexStat?.isFile()) return { path: index, stat: indexStat };
    }
  } catch {
    // no such file
  }
  return undefined;
}

/** Hashed bundle files never change; the shell, manifest and service worker must revalidate. */
function cacheControl(root: string, file: string): string {
  const relative = file.slice(root.length).split(sep).join('/');
  if (relative.startsWith('/assets/')) return 'public, max-age=31536000, immutable';
  if (/\.(html|webmanifest)$/.test(relative) || relative === '/sw.js') return 'no-cache';
  return 'public, max-age=3600';
}

function sendFile(request: FastifyRequest, reply: FastifyReply, root: string, file: string, stat: Stats): FastifyReply {
  const etag = `W/"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
  reply
    .header('content-type', CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream')
    .header('cache-control', cacheControl(root, file))
    .header('etag', etag)
    .header('last-modified', stat.mtime.toUTCString())
    .header('x-content-type-options', 'nosniff');
  if (request.headers['if-none-match'] === etag) return reply.code(304).send();
  reply.header('content-length', stat.size);
  if (request.method === 'HEAD') return reply.code(200).send();
  return reply.code(200).send(createReadStream(file));
}
