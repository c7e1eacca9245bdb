/**
 * Size limits and quotas, checked while the upload streams: refused uploads answer cleanly and
 * leave nothing in the media store; a large upload never sits whole in memory.
 */
import { execFile } from 'node:child_process';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError } from '../../homeserver/test/helpers/client-api.js';
import { registerUser, type RegisteredUser } from '../../homeserver/test/helpers/users.js';
import { auth, mxcPath, startMediaServer, storedFiles, upload, type MediaTestServer } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * 1024;

/** A body generated on the fly, `total` bytes in 64 KiB chunks, without Content-Length. */
function generated(total: number, fill = 0x61): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(64 * KiB).fill(fill);
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      const n = Math.min(chunk.length, total - sent);
      sent += n;
      controller.enqueue(n === chunk.length ? chunk : chunk.subarray(0, n));
    },
  });
}

/** A client in its own process: POSTs `size` bytes made on the fly, prints the response body. */
const CHILD_UPLOAD = `
const [url, token, size] = process.argv.slice(1);
const chunk = new Uint8Array(64 * 1024).fill(0x62);
let sent = 0;
const body = new ReadableStream({ pull(c) { if (sent >= Number(size)) return c.close(); const n = Math.min(chunk.length, Number(size) - sent); sent += n; c.enqueue(chunk.subarray(0, n)); } });
fetch(url, { method: 'POST', headers: { authorization: 'Bearer ' + token, 'content-type': 'application/octet-stream' }, body, duplex: 'half' })
  .then(async (res) => { const text = await res.text(); if (res.status !== 200) { console.error(res.status, text); process.exit(1); } process.stdout.write(text); });
`;

function runNode(code: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', code, ...args], { maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}: ${stderr}`));
      else resolve(stdout);
    });
  });
}

const streamedUpload = (baseUrl: string, user: RegisteredUser, body: ReadableStream<Uint8Array>) =>
  fetch(`${baseUrl}/_matrix/media/v3/upload`, {
    method: 'POST',
    headers: { ...auth(user), 'content-type': 'application/octet-stream' },
    body,
    duplex: 'half',
  } as RequestInit);

/** Files in the store that are not thumbnails of earlier images. */
const files = (hs: MediaTestServer) => storedFiles(hs.mediaDir).filter((f) => !f.startsWith('thumbnails/'));

describe('max_upload_size and media_upload_limits', () => {
  let hs: MediaTestServer;
  let alice: RegisteredUser;

  beforeAll(async () => {
    hs = await startMediaServer(['max_upload_size: 1M', 'media_upload_limits: [{time_period: 1d, max_size: 1500K}]'].join('\n'));
    alice = await registerUser(hs.baseUrl, 'alice');
  });
  afterAll(() => hs?.stop());

  it('refuses an upload whose Content-Length is too large before reading it', async () => {
    const res = await upload(hs.baseUrl, alice, Buffer.alloc(MiB + 1));
    expectError(res, 413, 'M_TOO_LARGE');
    expect(files(hs)).toEqual([]);
  });

  it('refuses a streamed upload once it passes the limit, leaving nothing half-written', async () => {
    const res = await streamedUpload(hs.baseUrl, alice, generated(3 * MiB));
    expectError({ status: res.status, body: await res.json() }, 413, 'M_TOO_LARGE');
    expect(files(hs)).toEqual([]);
    // The same through /create + PUT: the id stays pending, nothing is stored.
    const created = (await (await fetch(`${hs.baseUrl}/_matrix/media/v1/create`, { method: 'POST', headers: auth(alice) })).json()) as {
      content_uri: string;
    };
    const put = await fetch(`${hs.baseUrl}/_matrix/media/v3/upload/${mxcPath(created.content_uri)}`, {
      method: 'PUT',
      headers: auth(alice),
      body: generated(2 * MiB),
      duplex: 'half',
    } as RequestInit);
    expectError({ status: put.status, body: await put.json() }, 413, 'M_TOO_LARGE');
    expect(files(hs)).toEqual([]);
  });

  it('leaves nothing behind when the client goes away mid-upload', async () => {
    const controller = new AbortController();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        sent += 64 * KiB;
        if (sent > 512 * KiB) {
          controller.abort();
          return;
        }
        c.enqueue(new Uint8Array(64 * KiB));
        await new Promise((resolve) => setTimeout(resolve, 5));
      },
    });
    await expect(
      fetch(`${hs.baseUrl}/_matrix/media/v3/upload`, { method: 'POST', headers: auth(alice), body, duplex: 'half', signal: controller.signal } as RequestInit),
    ).rejects.toThrow();
    // The server notices the closed connection and removes its temporary file.
    for (let i = 0; i < 50 && files(hs).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(files(hs)).toEqual([]);
  });

  it('accepts an upload of exactly the limit', async () => {
    const res = await streamedUpload(hs.baseUrl, alice, generated(MiB));
    expect(res.status).toBe(200);
    const { content_uri } = (await res.json()) as { content_uri: string };
    const got = await fetch(`${hs.baseUrl}/_matrix/client/v1/media/download/${mxcPath(content_uri)}`, { headers: auth(alice) });
    expect((await got.arrayBuffer()).byteLength).toBe(MiB);
    expect(files(hs)).toHaveLength(1);
  });

  it('refuses uploads beyond the quota with 403 M_FORBIDDEN and a clear message', async () => {
    // 1 MiB used of 1500 KiB: 300 KiB fit, 600 KiB do not.
    const declared = await upload(hs.baseUrl, alice, Buffer.alloc(600 * KiB));
    expectError(declared, 403, 'M_FORBIDDEN');
    expect(declared.body.error).toMatch(/quota/i);
    const streamed = await streamedUpload(hs.baseUrl, alice, generated(600 * KiB));
    const body = (await streamed.json()) as { errcode: string; error: string };
    expectError({ status: streamed.status, body }, 403, 'M_FORBIDDEN');
    expect(body.error).toContain('of 1536000 bytes');
    expect(files(hs)).toHaveLength(1);
    expect((await upload(hs.baseUrl, alice, Buffer.alloc(300 * KiB))).status).toBe(200);
    expect(files(hs)).toHaveLength(2);
    // Quotas are per user.
    const bob = await registerUser(hs.baseUrl, 'bob');
    expect((await upload(hs.baseUrl, bob, Buffer.alloc(600 * KiB))).status).toBe(200);
  });
});

describe('a large upload is streamed', () => {
  let hs: MediaTestServer;
  let alice: RegisteredUser;

  beforeAll(async () => {
    hs = await startMediaServer('max_upload_size: 100M');
    alice = await registerUser(hs.baseUrl, 'alice');
  });
  afterAll(() => hs?.stop());

  it('keeps memory far below the size of a 50 MB upload, and downloads it back streamed', async () => {
    const size = 50 * MiB;
    // Live memory of this process (the server): garbage is collected before each sample, so a
    // buffered upload would show. The client runs in a child process, generating the body as it
    // sends it.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (options?: { type: 'major' | 'minor' }) => void;
    const used = () => {
      gc();
      // V8 frees the memory of dead ArrayBuffers (the upload's 64 KiB socket chunks) on a
      // background thread after a collection, and `arrayBuffers` counts it until then: on a busy
      // machine megabytes of garbage (once 10.7 MB against the 10 MB bound). Any next collection
      // first finishes that sweep; a minor one is cheap.
      gc({ type: 'minor' });
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const baseline = used();
    let peak = baseline;
    // Every 250 ms: each sample is a full collection of this process (the test runner and the
    // server), which slows the upload down on a busy machine; a buffered 50 MB body would still
    // show in many samples.
    const sampler = setInterval(() => (peak = Math.max(peak, used())), 250);
    let contentUri: string;
    try {
      const out = await runNode(CHILD_UPLOAD, [`${hs.baseUrl}/_matrix/media/v3/upload`, alice.accessToken, String(size)]);
      contentUri = (JSON.parse(out) as { content_uri: string }).content_uri;
    } finally {
      clearInterval(sampler);
    }
    expect(contentUri).toMatch(/^mxc:/);
    expect(peak - baseline).toBeLessThan(size / 5);

    const res = await fetch(`${hs.baseUrl}/_matrix/client/v1/media/download/${mxcPath(contentUri)}`, { headers: auth(alice) });
    expect(res.headers.get('content-length')).toBe(String(size));
    let received = 0;
    let wrong = 0;
    for await (const chunk of Readable.fromWeb(res.body! as never) as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (chunk[0] !== 0x62) wrong++;
    }
    expect({ received, wrong }).toEqual({ received: size, wrong: 0 });
  }, 120_000);
});
