/**
 * X-Matrix request authentication between real servers: a request signed with A's key is
 * accepted by B (which fetches A's keys over HTTPS), and every tampered part is refused with
 * 401 M_UNAUTHORIZED.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerContext } from '../../src/context.js';
import { generateSigningKey } from '../../src/events/signing.js';
import type { JsonObject } from '../../src/events/types.js';
import { parseXMatrixAuthorization, xMatrixAuthorization, XMatrixParseError } from '../../src/federation/request-signing.js';
import { buildListenerApp } from '../../src/http/app.js';
import { requireServer } from '../../src/http/x-matrix.js';
import { harnessCertificate, startFederatedServers, type FederatedServer } from '../helpers/federation.js';

const ROUTE = '/_matrix/federation/v1/hearth_test/whoami';

describe('X-Matrix verification (requireServer)', () => {
  let servers: FederatedServer[];
  let a: FederatedServer;
  let b: FederatedServer;
  let c: FederatedServer;
  let app: FastifyInstance;
  let url: string;
  let agent: Agent;

  /** A test-only route on a listener app of B's context: answers with the verified origin. */
  async function startTestRoute(ctx: ServerContext): Promise<void> {
    const cert = harnessCertificate();
    app = await buildListenerApp(ctx, {
      resources: new Set(),
      https: { cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath) },
    });
    const handler = async (req: Parameters<typeof requireServer>[1]) => ({ origin: await requireServer(ctx, req) });
    app.get(ROUTE, handler);
    app.put(ROUTE, handler);
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `https://localhost:${(app.server.address() as AddressInfo).port}`;
  }

  beforeAll(async () => {
    servers = await startFederatedServers(3);
    [a, b, c] = servers as [FederatedServer, FederatedServer, FederatedServer];
    await startTestRoute(b.server.ctx);
    agent = new Agent({ connect: { ca: readFileSync(harnessCertificate().certPath, 'utf8') } });
  });
  afterAll(async () => {
    await app?.close();
    await agent?.close();
    await Promise.all((servers ?? []).map((s) => s.stop()));
  });

  interface Signed {
    method?: 'GET' | 'PUT';
    uri?: string;
    origin?: string;
    destination?: string;
    content?: JsonObject;
  }
  /** The header A's key makes for `signed`. */
  const signedBy = (server: FederatedServer, signed: Signed) =>
    xMatrixAuthorization(
      {
        method: signed.method ?? 'GET',
        uri: signed.uri ?? ROUTE,
        origin: signed.origin ?? server.name,
        destination: signed.destination ?? b.name,
        ...(signed.content ? { content: signed.content } : {}),
      },
      server.server.ctx.keys.signingKey,
    );

  async function send(method: 'GET' | 'PUT', path: string, authorization: string | undefined, body?: JsonObject) {
    const res = await request(`${url}${path}`, {
      method,
      dispatcher: agent,
      headers: {
        ...(authorization ? { authorization } : {}),
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.statusCode, body: (await res.body.json()) as JsonObject };
  }

  const expectUnauthorized = (res: { status: number; body: JsonObject }) => {
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe('M_UNAUTHORIZED');
    expect(typeof res.body.error).toBe('string');
  };

  it('accepts a GET signed by A and fetches A\'s keys into B\'s database', async () => {
    const res = await send('GET', ROUTE, signedBy(a, {}));
    expect(res).toEqual({ status: 200, body: { origin: a.name } });
    const stored = await b.server.ctx.storage.serverKeys.getKey(a.name, a.server.ctx.keys.signingKey.keyId);
    expect(stored?.publicKey).toBeDefined();
  });

  it('accepts a PUT with a body and a query string', async () => {
    const uri = `${ROUTE}?since=a%20b&limit=3`;
    const content = { hello: 'world', n: 1 };
    const res = await send('PUT', uri, signedBy(a, { method: 'PUT', uri, content }), content);
    expect(res).toEqual({ status: 200, body: { origin: a.name } });
  });

  it('accepts the header written in other allowed forms (order, bare values, no destination)', async () => {
    const p = parseXMatrixAuthorization(signedBy(a, {}));
    const reordered = `X-Matrix  sig="${p.sig}", KEY=${p.key},origin=${p.origin} ,destination="${p.destination}"`;
    expect((await send('GET', ROUTE, reordered)).status).toBe(200);
    // Before spec v1.3 no destination was sent; the signature still covers our name.
    const legacy = `X-Matrix origin=${p.origin},key="${p.key}",sig="${p.sig}"`;
    expect((await send('GET', ROUTE, legacy)).status).toBe(200);
  });

  it('refuses a tampered method, uri, body, origin, destination, key or signature', async () => {
    // Method: signed for PUT, sent as GET.
    expectUnauthorized(await send('GET', ROUTE, signedBy(a, { method: 'PUT' })));
    // URI: signed for another query string.
    expectUnauthorized(await send('GET', `${ROUTE}?limit=2`, signedBy(a, { uri: `${ROUTE}?limit=1` })));
    // Body: signed {n: 1}, sent {n: 2}; and a body sent where none was signed.
    expectUnauthorized(await send('PUT', ROUTE, signedBy(a, { method: 'PUT', content: { n: 1 } }), { n: 2 }));
    expectUnauthorized(await send('PUT', ROUTE, signedBy(a, { method: 'GET' }), { n: 1 }));
    // Origin: A's signature claimed to come from C (C has no such key).
    const p = parseXMatrixAuthorization(signedBy(a, {}));
    expectUnauthorized(await send('GET', ROUTE, `X-Matrix origin="${c.name}",destination="${b.name}",key="${p.key}",sig="${p.sig}"`));
    // Origin: signed by A's key but naming C inside and out.
    expectUnauthorized(await send('GET', ROUTE, signedBy(a, { origin: c.name })));
    // Destination: the header names another server.
    expectUnauthorized(await send('GET', ROUTE, signedBy(a, { destination: c.name })));
    // Destination: the header says B but the signature was made for C.
    const forC = parseXMatrixAuthorization(signedBy(a, { destination: c.name }));
    expectUnauthorized(await send('GET', ROUTE, `X-Matrix origin="${a.name}",destination="${b.name}",key="${forC.key}",sig="${forC.sig}"`));
    // Key: a key id A does not have, and a key A does not publish.
    expectUnauthorized(await send('GET', ROUTE, `X-Matrix origin="${a.name}",destination="${b.name}",key="ed25519:nope",sig="${p.sig}"`));
    const stranger = generateSigningKey();
    const strangerHeader = xMatrixAuthorization({ method: 'GET', uri: ROUTE, origin: a.name, destination: b.name }, stranger);
    expectUnauthorized(await send('GET', ROUTE, strangerHeader));
    // Signature: one character changed.
    const flipped = p.sig.startsWith('A') ? `B${p.sig.slice(1)}` : `A${p.sig.slice(1)}`;
    expectUnauthorized(await send('GET', ROUTE, `X-Matrix origin="${a.name}",destination="${b.name}",key="${p.key}",sig="${flipped}"`));
  });

  it('refuses missing and malformed headers', async () => {
    expectUnauthorized(await send('GET', ROUTE, undefined));
    expectUnauthorized(await send('GET', ROUTE, 'Bearer abc'));
    expectUnauthorized(await send('GET', ROUTE, 'X-Matrix origin="unterminated'));
    expectUnauthorized(await send('GET', ROUTE, `X-Matrix origin="${a.name}",key="ed25519:x"`));
    expectUnauthorized(await send('GET', ROUTE, 'X-Matrix origin="not a server name!",key="ed25519:x",sig="abc"'));
  });

  it('answers 403 M_FORBIDDEN to a server outside federation_domain_whitelist', async () => {
    const ctx = b.server.ctx;
    const saved = ctx.config.federation_domain_whitelist;
    ctx.config.federation_domain_whitelist = [c.name];
    try {
      const res = await send('GET', ROUTE, signedBy(a, {}));
      expect(res.status).toBe(403);
      expect(res.body.errcode).toBe('M_FORBIDDEN');
    } finally {
      ctx.config.federation_domain_whitelist = saved;
    }
  });
});

describe('parseXMatrixAuthorization', () => {
  it('unescapes quoted values and accepts colons in bare values', () => {
    expect(parseXMatrixAuthorization('X-Matrix origin=example.org:8448,key="ed25519:a\\"b",sig=abc,destination=d.org')).toEqual({
      origin: 'example.org:8448',
      key: 'ed25519:a"b',
      sig: 'abc',
      destination: 'd.org',
    });
  });
  it('rejects duplicated parameters and other schemes', () => {
    expect(() => parseXMatrixAuthorization('X-Matrix origin=a,origin=b,key=k,sig=s')).toThrow(XMatrixParseError);
    expect(() => parseXMatrixAuthorization('Basic abc')).toThrow(XMatrixParseError);
  });
});
