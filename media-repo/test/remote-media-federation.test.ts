/**
 * Remote media between two real Hearth servers over HTTPS (the multi-server harness): a client of
 * server A downloads media uploaded on server B; A fetches it once over federation
 * (`/_matrix/federation/v1/media/download`, signed), caches it, and keeps serving it from its
 * cache when B is gone; thumbnails of B's images (made by A from its copy, and served by B over
 * federation). Media B does not have is 404 through A too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enc } from '../../homeserver/test/helpers/client-api.js';
import { startFederatedServers, type FederatedServer } from '../../homeserver/test/helpers/federation.js';
import { registerUser, type RegisteredUser } from '../../homeserver/test/helpers/users.js';
import { mediaServiceOf } from '../src/mount.js';
import sharp from 'sharp';
import { boundaryOf, parseMultipart } from '../src/multipart.js';
import { readAll } from '../src/streams.js';
import { auth, testImage, upload } from './helpers.js';

describe('remote media over federation', () => {
  let servers: FederatedServer[];
  let a: FederatedServer;
  let b: FederatedServer;
  let alice: RegisteredUser;
  let bob: RegisteredUser;

  beforeAll(async () => {
    servers = await startFederatedServers(2, 'enable_registration: true\n');
    [a, b] = servers as [FederatedServer, FederatedServer];
    alice = await registerUser(a.baseUrl, 'alice');
    bob = await registerUser(b.baseUrl, 'bob');
  });
  afterAll(async () => {
    await Promise.all((servers ?? []).map((s) => s.stop()));
  });

  const downloadViaA = (origin: string, mediaId: string) =>
    fetch(`${a.baseUrl}/_matrix/client/v1/media/download/${enc(origin)}/${enc(mediaId)}`, { headers: auth(alice) });

  it('downloads media of another server through its own server, and caches it', async () => {
    const bytes = Buffer.concat([Buffer.from('remote media \r\n--not-a-boundary\r\n'), Buffer.alloc(200_000, 42)]);
    const uploaded = await upload(b.baseUrl, bob, bytes, 'application/pdf', 'report.pdf');
    expect(uploaded.status).toBe(200);
    const uri = uploaded.body.content_uri as string;
    const mediaId = uri.slice(`mxc://${b.name}/`.length);

    const res = await downloadViaA(b.name, mediaId);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(res.headers.get('content-disposition')).toContain('report.pdf');
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);

    const repo = (await mediaServiceOf(a.server.ctx)!).repo;
    expect(await repo.meta.getRemote(b.name, mediaId)).toMatchObject({ remote: true, size: bytes.length, contentType: 'application/pdf' });

    // An image of B: thumbnailed by A from its cached copy; B also serves thumbnails over federation.
    const image = await testImage(400, 300, 'png');
    const imageId = ((await upload(b.baseUrl, bob, image, 'image/png', 'pic.png')).body.content_uri as string).slice(`mxc://${b.name}/`.length);
    const thumb = await fetch(`${a.baseUrl}/_matrix/client/v1/media/thumbnail/${enc(b.name)}/${enc(imageId)}?width=64&height=64&method=scale`, {
      headers: auth(alice),
    });
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get('content-type')).toMatch(/^image\//);
    const thumbMeta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
    // A thumbnail (at least the size asked, as the spec allows), not the 400×300 original.
    expect(thumbMeta.width).toBeGreaterThanOrEqual(64);
    expect(thumbMeta.width).toBeLessThan(400);
    const fedThumb = await a.server.ctx.federation.client.requestStream(b.name, {
      method: 'GET',
      path: `/_matrix/federation/v1/media/thumbnail/${enc(imageId)}`,
      query: { width: 32, height: 32, method: 'crop' },
    });
    expect(fedThumb.status).toBe(200);
    const parts = parseMultipart(await readAll(fedThumb.body, 1 << 20), boundaryOf(String(fedThumb.headers['content-type']))!);
    expect(parts.map((p) => p.headers['content-type'])).toEqual(['application/json', expect.stringMatching(/^image\//)]);

    // Media B does not have is 404 through A too.
    const unknown = await downloadViaA(b.name, 'doesNotExist42');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { errcode: string }).errcode).toBe('M_NOT_FOUND');

    // B goes away: A still has it.
    await b.stop();
    const cached = await downloadViaA(b.name, mediaId);
    expect(cached.status).toBe(200);
    expect(Buffer.from(await cached.arrayBuffer()).equals(bytes)).toBe(true);
    // Media A never fetched is not available while B is down: a clean error, no hang.
    const missing = await downloadViaA(b.name, 'neverFetched123');
    expect([404, 502]).toContain(missing.status);
    expect(((await missing.json()) as { errcode: string }).errcode).toMatch(/^M_/);
  }, 180_000);
});
