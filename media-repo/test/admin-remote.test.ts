/**
 * Admin actions (quarantine and delete by media, user and room; remote cache purge), remote media
 * through a RemoteMediaFetcher, and the federation download endpoint's multipart answer.
 */
import { Readable } from 'node:stream';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../homeserver/src/http/rate-limit.js';
import { MatrixError } from '../../homeserver/src/http/errors.js';
import { client, expectError } from '../../homeserver/test/helpers/client-api.js';
import { registerUser, type RegisteredUser } from '../../homeserver/test/helpers/users.js';
import { mediaRoutes } from '../src/http/plugin.js';
import { boundaryOf, parseMultipart } from '../src/multipart.js';
import { auth, mxcPath, startMediaServer, storedFiles, testImage, upload, type MediaTestServer } from './helpers.js';

let hs: MediaTestServer;
let admin: RegisteredUser;
let alice: RegisteredUser;
const api = client(() => hs.baseUrl);

beforeAll(async () => {
  hs = await startMediaServer('max_upload_size: 1M\nrc_message: {per_second: 100, burst_count: 100}');
  admin = await registerUser(hs.baseUrl, 'admin');
  alice = await registerUser(hs.baseUrl, 'alice');
  await hs.server.ctx.storage.accounts.setAdmin(admin.userId, true);
});
afterAll(() => hs?.stop());

/** The Synapse admin API (the shared client helper prefixes paths outside /_matrix). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function synapse(user: RegisteredUser, method: string, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${hs.baseUrl}/_synapse/admin/v1${path}`, { method, headers: auth(user) });
  return { status: res.status, body: await res.json() };
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function synapseOk(user: RegisteredUser, method: string, path: string): Promise<any> {
  const res = await synapse(user, method, path);
  if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

const download = (path: string, user = alice) => fetch(`${hs.baseUrl}/_matrix/client/v1/media/download/${path}`, { headers: auth(user) });

describe('media admin API', () => {
  it('is for server admins only', async () => {
    const res = await synapse(alice, 'POST', '/media/quarantine/hearth.test/abc');
    expectError(res, 403, 'M_FORBIDDEN');
  });

  it('quarantines and releases media by id, and protects media from quarantine', async () => {
    const path = mxcPath((await upload(hs.baseUrl, alice, 'bad stuff', 'text/plain')).body.content_uri);
    expect(await synapseOk(admin, 'POST', `/media/quarantine/${path}`)).toEqual({});
    const hidden = await download(path);
    expectError({ status: hidden.status, body: await hidden.json() }, 404, 'M_NOT_FOUND');
    await synapseOk(admin, 'POST', `/media/unquarantine/${path}`);
    expect((await download(path)).status).toBe(200);

    const [, mediaId] = path.split('/');
    await synapseOk(admin, 'POST', `/media/protect/${mediaId}`);
    await synapseOk(admin, 'POST', `/media/quarantine/${path}`);
    expect((await download(path)).status).toBe(200);
  });

  it('quarantines a user’s media and a room’s media', async () => {
    const bob = await registerUser(hs.baseUrl, 'bob');
    const a = mxcPath((await upload(hs.baseUrl, bob, 'one', 'text/plain')).body.content_uri);
    const b = mxcPath((await upload(hs.baseUrl, bob, 'two', 'text/plain')).body.content_uri);
    expect(await synapseOk(admin, 'POST', `/user/${encodeURIComponent(bob.userId)}/media/quarantine`)).toEqual({ num_quarantined: 2 });
    for (const p of [a, b]) expect((await download(p)).status).toBe(404);

    const photo = mxcPath((await upload(hs.baseUrl, alice, await testImage(64, 64), 'image/jpeg', 'room.jpg')).body.content_uri);
    const { room_id: roomId } = await api.ok(alice, 'POST', '/createRoom', {});
    await api.ok(alice, 'PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/img1`, {
      msgtype: 'm.image',
      body: 'room.jpg',
      url: `mxc://${photo}`,
    });
    const listed = await synapseOk(admin, 'GET', `/room/${encodeURIComponent(roomId)}/media`);
    expect(listed).toEqual({ local: [`mxc://${photo}`], remote: [] });
    expect(await synapseOk(admin, 'POST', `/room/${encodeURIComponent(roomId)}/media/quarantine`)).toEqual({ num_quarantined: 1 });
    const thumb = await fetch(`${hs.baseUrl}/_matrix/client/v1/media/thumbnail/${photo}?width=32&height=32`, { headers: auth(alice) });
    expect(thumb.status).toBe(404);
    await thumb.arrayBuffer();
  });

  it('deletes media by id, by user and by room, files and thumbnails included', async () => {
    const carol = await registerUser(hs.baseUrl, 'carol');
    const photo = mxcPath((await upload(hs.baseUrl, carol, await testImage(400, 300), 'image/jpeg')).body.content_uri);
    const note = mxcPath((await upload(hs.baseUrl, carol, 'note', 'text/plain')).body.content_uri);
    await hs.media.repo.idle();
    const [, photoId] = photo.split('/');
    const files = () => storedFiles(hs.mediaDir).filter((f) => f.includes(photoId!.slice(4)));
    expect(files().length).toBeGreaterThan(3);

    expect(await synapseOk(admin, 'DELETE', `/media/${photo}`)).toEqual({ deleted_media: [photoId], total: 1 });
    expect(files()).toEqual([]);
    expect((await download(photo)).status).toBe(404);
    expectError(await synapse(admin, 'DELETE', `/media/${photo}`), 404, 'M_NOT_FOUND');

    const byUser = await synapseOk(admin, 'DELETE', `/users/${encodeURIComponent(carol.userId)}/media`);
    expect(byUser).toEqual({ deleted_media: [note.split('/')[1]], total: 1 });

    const inRoom = mxcPath((await upload(hs.baseUrl, alice, 'room file', 'text/plain', 'f.txt')).body.content_uri);
    const { room_id: roomId } = await api.ok(alice, 'POST', '/createRoom', {});
    await api.ok(alice, 'PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/f1`, { msgtype: 'm.file', body: 'f.txt', url: `mxc://${inRoom}` });
    const byRoom = await synapseOk(admin, 'DELETE', `/room/${encodeURIComponent(roomId)}/media`);
    expect(byRoom.total).toBe(1);
    expect((await download(inRoom)).status).toBe(404);
  });
});

describe('remote media', () => {
  it('is fetched once through the RemoteMediaFetcher, cached, frozen for legacy, and purged', async () => {
    const calls: string[] = [];
    hs.media.repo.remote = {
      async download(origin, mediaId, opts) {
        calls.push(`${origin}/${mediaId}`);
        if (mediaId === 'huge') return { body: Readable.from([Buffer.alloc(opts.maxBytes + 1)]), contentType: null, uploadName: null };
        if (mediaId === 'gone') throw new MatrixError(404, 'M_NOT_FOUND', 'no such media there');
        return { body: Readable.from([Buffer.from('remote bytes')]), contentType: 'text/plain', uploadName: 'far.txt' };
      },
    };
    try {
      const first = await download('other.example/remote1');
      expect(first.status).toBe(200);
      expect(first.headers.get('content-disposition')).toBe('inline; filename="far.txt"');
      expect(await first.text()).toBe('remote bytes');
      expect(await (await download('other.example/remote1')).text()).toBe('remote bytes');
      expect(calls).toEqual(['other.example/remote1']);
      // Cached after the freeze: not on the legacy endpoint.
      const legacy = await fetch(`${hs.baseUrl}/_matrix/media/v3/download/other.example/remote1`);
      expect(legacy.status).toBe(404);
      await legacy.arrayBuffer();

      const huge = await download('other.example/huge');
      expectError({ status: huge.status, body: await huge.json() }, 502, 'M_TOO_LARGE');
      const gone = await download('other.example/gone');
      expectError({ status: gone.status, body: await gone.json() }, 404, 'M_NOT_FOUND');
      expect(storedFiles(hs.mediaDir).filter((f) => f.startsWith('remote_content/'))).toHaveLength(1);

      const purged = await synapseOk(admin, 'POST', `/purge_media_cache?before_ts=${Date.now() + 1000}`);
      expect(purged).toEqual({ deleted: 1 });
      expect(storedFiles(hs.mediaDir).filter((f) => f.startsWith('remote_content/'))).toEqual([]);
      expect(await (await download('other.example/remote1')).text()).toBe('remote bytes');
      expect(calls).toHaveLength(4);
    } finally {
      hs.media.repo.remote = undefined;
    }
    const unavailable = await download('other.example/never');
    expectError({ status: unavailable.status, body: await unavailable.json() }, 404, 'M_NOT_FOUND');
  });
});

describe('federation media download', () => {
  it('answers multipart/mixed with the metadata and the bytes, for verified servers only', async () => {
    const app = Fastify();
    await app.register(mediaRoutes, {
      repo: hs.media.repo,
      previewer: hs.media.previewer,
      rateLimiter: new RateLimiter(),
      auth: { requireUser: async () => ({ userId: '@x:y', isGuest: false }), isAdmin: async () => false },
      federationAuth: async (request) => {
        if (request.headers.authorization !== 'X-Matrix origin="other.example",key="ed25519:1",sig="ok"') {
          throw new MatrixError(401, 'M_UNAUTHORIZED', 'Missing or invalid signature');
        }
        return 'other.example';
      },
    });
    const path = mxcPath((await upload(hs.baseUrl, alice, 'for the federation', 'text/plain', 'fed.txt')).body.content_uri);
    const mediaId = path.split('/')[1]!;
    const headers = { authorization: 'X-Matrix origin="other.example",key="ed25519:1",sig="ok"' };
    const res = await app.inject({ method: 'GET', url: `/_matrix/federation/v1/media/download/${mediaId}`, headers });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^multipart\/mixed; boundary=/);
    const parts = parseMultipart(res.rawPayload, boundaryOf(res.headers['content-type'] as string)!);
    expect(parts).toHaveLength(2);
    expect(parts[0]!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(parts[0]!.body.toString())).toEqual({});
    expect(parts[1]!.headers['content-type']).toBe('text/plain');
    expect(parts[1]!.headers['content-disposition']).toBe('inline; filename="fed.txt"');
    expect(parts[1]!.body.toString()).toBe('for the federation');

    expect((await app.inject({ method: 'GET', url: `/_matrix/federation/v1/media/download/${mediaId}` })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/_matrix/federation/v1/media/download/unknownMedia', headers })).statusCode).toBe(404);
    await app.close();

    // The homeserver serves it on its federation listener, behind X-Matrix verification.
    const res2 = await fetch(`${hs.baseUrl}/_matrix/federation/v1/media/download/${mediaId}`);
    expect(res2.status).toBe(401);
    expect(((await res2.json()) as { errcode: string }).errcode).toBe('M_UNAUTHORIZED');
  });
});
