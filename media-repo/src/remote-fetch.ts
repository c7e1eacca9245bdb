/**
 * Fetching media of other servers over federation (spec v1.19 "Content Repository", Server-Server
 * API): `GET /_matrix/federation/v1/media/download/{mediaId}`, whose answer is multipart/mixed
 * (a JSON metadata part, then the bytes); a server that does not know that endpoint (404
 * M_UNRECOGNIZED) is asked with the legacy `GET /_matrix/media/v3/download/{origin}/{mediaId}`.
 *
 * Requests go through the homeserver's federation client, so discovery, signing and the IP range
 * blacklist (SSRF) apply. The bytes are streamed, never held whole: the multipart body is cut
 * on the fly. A second part that redirects (`Location`) is not followed (answered 502).
 */
import { Readable } from 'node:stream';
import { MatrixError } from '../../homeserver/src/http/errors.js';
import {
  FederationRequestError,
  type FederationClient,
  type FederationResponseStream,
} from '../../homeserver/src/federation/runtime.js';
import { boundaryOf } from './multipart.js';
import type { RemoteMediaFetcher } from './repository.js';
import { readAll } from './streams.js';

/** Headers and metadata before the bytes: a few KiB in practice. */
const MAX_PREAMBLE_BYTES = 64 * 1024;

export class FederationMediaFetcher implements RemoteMediaFetcher {
  constructor(private readonly client: FederationClient) {}

  async download(
    origin: string,
    mediaId: string,
    opts: { maxBytes: number; timeoutMs: number },
  ): Promise<{ body: Readable; contentType: string | null; uploadName: string | null }> {
    const query = { timeout_ms: opts.timeoutMs };
    const federated = await this.get(origin, {
      path: `/_matrix/federation/v1/media/download/${encodeURIComponent(mediaId)}`,
      query,
      timeoutMs: opts.timeoutMs,
    });
    if (federated.kind === 'ok') return fromMultipart(federated.response);
    if (federated.errcode !== 'M_UNRECOGNIZED') throw remoteError(origin, federated.status, federated.errcode);
    // An older server: the legacy (unauthenticated) endpoint, never forwarding to a third server.
    const legacy = await this.get(origin, {
      path: `/_matrix/media/v3/download/${encodeURIComponent(origin)}/${encodeURIComponent(mediaId)}`,
      query: { ...query, allow_remote: 'false', allow_redirect: 'false' },
      timeoutMs: opts.timeoutMs,
    });
    if (legacy.kind !== 'ok') throw remoteError(origin, legacy.status, legacy.errcode);
    const headers = legacy.response.headers;
    return {
      body: legacy.response.body,
      contentType: header(headers['content-type']),
      uploadName: fileNameOf(header(headers['content-disposition'])),
    };
  }

  /** A GET whose non-2xx answers are read as Matrix errors, thrown or resolved alike by the client. */
  private async get(
    origin: string,
    req: { path: string; query: Record<string, string | number>; timeoutMs: number },
  ): Promise<{ kind: 'ok'; response: FederationResponseStream } | { kind: 'error'; status: number | undefined; errcode: string | undefined }> {
    let response: FederationResponseStream;
    try {
      response = await this.client.requestStream(origin, { method: 'GET', ...req });
    } catch (err) {
      if (err instanceof FederationRequestError) {
        if (err.status === undefined) throw new MatrixError(502, 'M_UNKNOWN', `Could not fetch the media from ${origin}: ${err.message}`);
        return { kind: 'error', status: err.status, errcode: err.errcode };
      }
      throw err;
    }
    if (response.status >= 200 && response.status < 300) return { kind: 'ok', response };
    let errcode: string | undefined;
    try {
      const parsed = JSON.parse((await readAll(response.body, 64 * 1024)).toString('utf8')) as { errcode?: unknown };
      if (typeof parsed.errcode === 'string') errcode = parsed.errcode;
    } catch {
      response.body.destroy();
    }
    return { kind: 'error', status: response.status, errcode };
  }
}

function remoteError(origin: string, status: number | undefined, errcode: string | undefined): MatrixError {
  if (status === 404) return new MatrixError(404, 'M_NOT_FOUND', 'Media not found');
  return new MatrixError(502, 'M_UNKNOWN', `Could not fetch the media from ${origin} (${status ?? 'no answer'}${errcode ? ` ${errcode}` : ''})`);
}

function header(value: string | string[] | undefined): string | null {
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

/** `filename*=utf-8''…` or `filename="…"` of a Content-Disposition. */
export function fileNameOf(disposition: string | null): string | null {
  if (!disposition) return null;
  const extended = /filename\*\s*=\s*(?:utf-8|UTF-8)''([^;]+)/.exec(disposition);
  if (extended) {
    try {
      return decodeURIComponent(extended[1]!.trim());
    } catch {
      return null;
    }
  }
  const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/.exec(disposition);
  if (!plain) return null;
  return plain[1] !== undefined ? plain[1].replace(/\\(.)/g, '$1') : (plain[2] ?? null);
}

/**
 * The media part of a federation download: reads the metadata part and the media part's headers
 * (bounded), then streams the media bytes up to the closing boundary.
 */
async function fromMultipart(
  response: FederationResponseStream,
): Promise<{ body: Readable; contentType: string | null; uploadName: string | null }> {
  const boundary = boundaryOf(header(response.headers['content-type']));
  if (!boundary) {
    response.body.destroy();
    throw new MatrixError(502, 'M_UNKNOWN', 'The remote server answered the media download without a multipart body');
  }
  const source = response.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  // Reading the preamble: everything up to the end of the second part's headers. The body starts
  // with `--boundary` (no CRLF before the first delimiter): a CRLF is put in front.
  let buffered = Buffer.from('\r\n');
  const fill = async (): Promise<boolean> => {
    const next = await source.next();
    if (next.done) return false;
    buffered = Buffer.concat([buffered, Buffer.from(next.value)]);
    return true;
  };
  const fail = (message: string) => {
    response.body.destroy();
    return new MatrixError(502, 'M_UNKNOWN', `Malformed media download from the remote server: ${message}`);
  };
  let mediaHeaders: Record<string, string>;
  let start: number;
  try {
    const partStarts: number[] = [];
    let searchFrom = 0;
    let headersEnd = -1;
    for (;;) {
      while (partStarts.length < 2) {
        const at = buffered.indexOf(delimiter, searchFrom);
        if (at < 0) break;
        partStarts.push(at);
        searchFrom = at + delimiter.length;
      }
      if (partStarts.length === 2) {
        headersEnd = buffered.indexOf('\r\n\r\n', partStarts[1]! + delimiter.length);
        if (headersEnd >= 0) break;
      }
      // Checked before reading more: one chunk may well carry the headers and much of the media.
      if (buffered.length > MAX_PREAMBLE_BYTES) throw new Error('multipart preamble too large');
      if (!(await fill())) throw new Error('the body ended before the media part');
    }
    const headerText = buffered.subarray(partStarts[1]! + delimiter.length, headersEnd).toString('utf8');
    mediaHeaders = {};
    for (const line of headerText.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) mediaHeaders[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    start = headersEnd + 4;
  } catch (err) {
    throw fail((err as Error).message);
  }
  if (mediaHeaders.location !== undefined) throw fail('redirects to another location are not followed');
  const rest = buffered.subarray(start);
  return {
    body: Readable.from(untilDelimiter(rest, source, delimiter), { objectMode: false }),
    contentType: mediaHeaders['content-type'] ?? null,
    uploadName: fileNameOf(mediaHeaders['content-disposition'] ?? null),
  };
}

/** The bytes before the next `delimiter`, streamed; a body without one is an error. */
async function* untilDelimiter(first: Buffer, source: AsyncIterator<Buffer>, delimiter: Buffer): AsyncGenerator<Buffer> {
  let pending = first;
  for (;;) {
    const at = pending.indexOf(delimiter);
    if (at >= 0) {
      if (at > 0) yield pending.subarray(0, at);
      await source.return?.();
      return;
    }
    // Keep what could be the start of a delimiter split across chunks.
    const keep = Math.min(pending.length, delimiter.length - 1);
    if (pending.length > keep) yield pending.subarray(0, pending.length - keep);
    pending = pending.subarray(pending.length - keep);
    const next = await source.next();
    if (next.done) throw new Error('the media part ended without its closing boundary');
    pending = Buffer.concat([pending, Buffer.from(next.value)]);
  }
}
