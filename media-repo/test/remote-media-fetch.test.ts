/**
 * The federation media fetcher (media-repo/src/remote-fetch.ts): the multipart/mixed answer of
 * `/_matrix/federation/v1/media/download` cut on the fly however the bytes are chunked, the
 * legacy `/_matrix/media/v3/download` for servers that do not know that endpoint, and remote
 * errors. The transport is a FederationClient that streams the answers a remote server would
 * give (the multi-server test fetches over real HTTPS).
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MatrixError } from '../../homeserver/src/http/errors.js';
import {
  FederationRequestError,
  type FederationClient,
  type FederationRequest,
  type FederationResponseStream,
} from '../../homeserver/src/federation/runtime.js';
import { multipartMixed } from '../src/multipart.js';
import { FederationMediaFetcher, fileNameOf } from '../src/remote-fetch.js';
import { readAll } from '../src/streams.js';

/** Re-chunks a stream into pieces of `size` bytes (1: every boundary split across chunks). */
async function* rechunk(source: Readable, size: number): AsyncGenerator<Buffer> {
  const all = await readAll(source, 1 << 30);
  for (let i = 0; i < all.length; i += size) yield all.subarray(i, i + size);
}

type Answer = (req: FederationRequest) => FederationResponseStream | Promise<FederationResponseStream>;

class StreamingClient implements FederationClient {
  readonly paths: string[] = [];
  constructor(private readonly answer: Answer) {}
  async request<T>(): Promise<T> {
    throw new Error('not used');
  }
  async requestStream(_destination: string, req: FederationRequest): Promise<FederationResponseStream> {
    this.paths.push(req.path);
    return this.answer(req);
  }
}

function multipartAnswer(bytes: Buffer, chunk: number, partHeaders: Record<string, string>): FederationResponseStream {
  const boundary = 'b0undary-x';
  const body = multipartMixed(
    [
      { headers: { 'Content-Type': 'application/json' }, body: Buffer.from('{}') },
      { headers: partHeaders, body: bytes },
    ],
    boundary,
  );
  return { status: 200, headers: { 'content-type': `multipart/mixed; boundary=${boundary}` }, body: Readable.from(rechunk(body, chunk)) };
}

const opts = { maxBytes: 1 << 20, timeoutMs: 5_000 };

describe('federation media fetcher', () => {
  // Bytes that contain CRLFs and dashes, and something very like the boundary.
  const media = Buffer.concat([Buffer.from('\r\n--b0undary-\r\n--b0undary'), Buffer.alloc(70_000, 7), Buffer.from('end\r\n')]);

  for (const chunk of [1, 7, 64, 100_000]) {
    it(`extracts the media part from the multipart answer (chunks of ${chunk} bytes)`, async () => {
      const client = new StreamingClient(() =>
        multipartAnswer(media, chunk, { 'Content-Type': 'image/png', 'Content-Disposition': 'inline; filename="cat.png"' }),
      );
      const got = await new FederationMediaFetcher(client).download('b.test', 'abc', opts);
      expect(got.contentType).toBe('image/png');
      expect(got.uploadName).toBe('cat.png');
      expect((await readAll(got.body, 1 << 20)).equals(media)).toBe(true);
      expect(client.paths).toEqual(['/_matrix/federation/v1/media/download/abc']);
    });
  }

  it('falls back to the legacy download of a server that does not know the federation endpoint', async () => {
    const client = new StreamingClient((req) => {
      if (req.path.startsWith('/_matrix/federation/')) throw new FederationRequestError('unknown', 'old.test', 404, 'M_UNRECOGNIZED');
      expect(req.query).toMatchObject({ allow_remote: 'false' });
      return {
        status: 200,
        headers: { 'content-type': 'text/plain', 'content-disposition': "attachment; filename*=utf-8''r%C3%A9sum%C3%A9.txt" },
        body: Readable.from([Buffer.from('legacy bytes')]),
      };
    });
    const got = await new FederationMediaFetcher(client).download('old.test', 'xyz', opts);
    expect(got).toMatchObject({ contentType: 'text/plain', uploadName: 'résumé.txt' });
    expect((await readAll(got.body, 1000)).toString()).toBe('legacy bytes');
    expect(client.paths).toEqual(['/_matrix/federation/v1/media/download/xyz', '/_matrix/media/v3/download/old.test/xyz']);
  });

  it('answers 404 for media the remote does not have, 502 for unreachable servers and malformed answers', async () => {
    const notFound = new StreamingClient(() => ({
      status: 404,
      headers: { 'content-type': 'application/json' },
      body: Readable.from([Buffer.from('{"errcode":"M_NOT_FOUND","error":"no"}')]),
    }));
    await expect(new FederationMediaFetcher(notFound).download('b.test', 'gone', opts)).rejects.toMatchObject({ statusCode: 404, errcode: 'M_NOT_FOUND' });

    const down = new StreamingClient(() => {
      throw new FederationRequestError('connect ECONNREFUSED', 'down.test');
    });
    const err = await new FederationMediaFetcher(down).download('down.test', 'x', opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MatrixError);
    expect(err).toMatchObject({ statusCode: 502 });

    const notMultipart = new StreamingClient(() => ({ status: 200, headers: { 'content-type': 'text/plain' }, body: Readable.from([Buffer.from('x')]) }));
    await expect(new FederationMediaFetcher(notMultipart).download('b.test', 'x', opts)).rejects.toMatchObject({ statusCode: 502 });

    const truncated = new StreamingClient(() => {
      const whole = multipartAnswer(Buffer.from('abc'), 5, { 'Content-Type': 'text/plain' });
      return { ...whole, body: Readable.from([Buffer.from('--b0undary-x\r\nContent-Type: application/json\r\n\r\n{}')]) };
    });
    await expect(new FederationMediaFetcher(truncated).download('b.test', 'x', opts)).rejects.toMatchObject({ statusCode: 502 });

    const redirect = new StreamingClient(() => multipartAnswer(Buffer.alloc(0), 10, { Location: 'https://cdn.example/x' }));
    await expect(new FederationMediaFetcher(redirect).download('b.test', 'x', opts)).rejects.toMatchObject({ statusCode: 502 });
  });

  it('reads file names of Content-Disposition headers', () => {
    expect(fileNameOf('inline; filename="a b.txt"')).toBe('a b.txt');
    expect(fileNameOf('attachment; filename=plain.bin')).toBe('plain.bin');
    expect(fileNameOf("attachment; filename*=utf-8''%E2%82%AC.txt")).toBe('€.txt');
    expect(fileNameOf('inline')).toBeNull();
    expect(fileNameOf(null)).toBeNull();
  });
});
