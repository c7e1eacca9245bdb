/**
 * The keyring between real servers over HTTPS: keys fetched from the origin and cached in the
 * database, validity honoured, old keys, our own keys without HTTP, and the notary path
 * (`/_matrix/key/v2/query`) with the notary's configured key.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey, publicKeyBase64, signJson, verifyJsonSignature } from '../../src/events/signing.js';
import type { JsonObject } from '../../src/events/types.js';
import { RemoteKeyring } from '../../src/federation/keyring.js';
import { FederationRequestError, SignatureError, type FederationClient } from '../../src/federation/runtime.js';
import { harnessCertificate, startFederatedServers, type FederatedServer } from '../helpers/federation.js';

const DAY = 24 * 60 * 60 * 1000;
const silent = pino({ level: 'silent' });

/** A fresh keyring on `server`'s database and client (empty memory cache, no refetch pause). */
function freshKeyring(server: FederatedServer, client: FederationClient = server.server.ctx.federation.client) {
  const ctx = server.server.ctx;
  return new RemoteKeyring({ config: ctx.config, keys: ctx.keys, storage: ctx.storage, client, log: silent, minRefetchIntervalMs: 0 });
}

const signedBy = (server: FederatedServer, obj: JsonObject = { hello: 'world' }) =>
  signJson(obj, server.name, server.server.ctx.keys.signingKey) as unknown as JsonObject;

describe('RemoteKeyring', () => {
  const oldKey = generateSigningKey('old');
  const oldExpiredTs = Date.now() - DAY;
  let servers: FederatedServer[];
  let a: FederatedServer;
  let b: FederatedServer;

  beforeAll(async () => {
    servers = await startFederatedServers(2, `old_signing_keys: {"${oldKey.keyId}": {key: "${publicKeyBase64(oldKey)}", expired_ts: ${oldExpiredTs}}}`);
    [a, b] = servers as [FederatedServer, FederatedServer];
  });
  afterAll(async () => {
    await Promise.all((servers ?? []).map((s) => s.stop()));
  });

  it('fetches the origin\'s keys over HTTPS, checks the signature and caches the key in the database', async () => {
    const keyId = a.server.ctx.keys.signingKey.keyId;
    expect(await b.server.ctx.storage.serverKeys.getKey(a.name, keyId)).toBeUndefined();
    await b.server.ctx.federation.keyring.verifySignedJson(a.name, signedBy(a));
    const stored = await b.server.ctx.storage.serverKeys.getKey(a.name, keyId);
    expect(stored).toMatchObject({ serverName: a.name, keyId, publicKey: publicKeyBase64(a.server.ctx.keys.signingKey), expiredTs: null });
    expect(stored!.validUntilTs).toBeGreaterThan(Date.now());
    // The old key of A's response is cached too, with its expiry.
    expect(await b.server.ctx.storage.serverKeys.getKey(a.name, oldKey.keyId)).toMatchObject({ expiredTs: oldExpiredTs });
  });

  it('uses the database cache without asking the origin again', async () => {
    const calls: string[] = [];
    const failing: FederationClient = {
      request: async (destination) => {
        calls.push(destination);
        throw new FederationRequestError('no network in this test', destination);
      },
      requestStream: async (destination) => {
        throw new FederationRequestError('no network in this test', destination);
      },
    };
    await freshKeyring(b, failing).verifySignedJson(a.name, signedBy(a));
    expect(calls).toEqual([]);
    // Our own signatures are checked with our own keys, locally.
    await freshKeyring(b, failing).verifySignedJson(b.name, signedBy(b));
    expect(calls).toEqual([]);
  });

  it('refuses a wrong signature, a missing one, and one by an unknown key', async () => {
    const keyring = b.server.ctx.federation.keyring;
    const signed = signedBy(a, { n: 1 });
    await expect(keyring.verifySignedJson(a.name, { ...signed, n: 2 })).rejects.toBeInstanceOf(SignatureError);
    await expect(keyring.verifySignedJson(a.name, { n: 1 })).rejects.toBeInstanceOf(SignatureError);
    await expect(keyring.verifySignedJson(b.name, signed)).rejects.toBeInstanceOf(SignatureError);
    const stranger = signJson({ n: 1 }, a.name, generateSigningKey('stranger')) as unknown as JsonObject;
    await expect(freshKeyring(b).verifySignedJson(a.name, stranger)).rejects.toThrow(/no key ed25519:stranger/);
  });

  it('fetches again once the cached key is no longer valid, and honours valid_until_ts', async () => {
    const keyId = a.server.ctx.keys.signingKey.keyId;
    const storage = b.server.ctx.storage.serverKeys;
    const before = (await storage.getKey(a.name, keyId))!;
    const longAgo = Date.now() - 10 * DAY;
    await storage.storeKeys([{ ...before, validUntilTs: longAgo + DAY, fetchedAt: longAgo }]);
    await freshKeyring(b).verifySignedJson(a.name, signedBy(a));
    const after = (await storage.getKey(a.name, keyId))!;
    expect(after.fetchedAt).toBeGreaterThan(longAgo);
    expect(after.validUntilTs).toBeGreaterThan(Date.now());
    // A signature dated after the key's validity (A promises 1 day) does not verify.
    await expect(freshKeyring(b).verifySignedJson(a.name, signedBy(a), Date.now() + 30 * DAY)).rejects.toBeInstanceOf(SignatureError);
  });

  it('accepts an old key only for what it signed before expired_ts', async () => {
    const signed = signJson({ old: true }, a.name, oldKey) as unknown as JsonObject;
    const keyring = freshKeyring(b);
    await keyring.verifySignedJson(a.name, signed, oldExpiredTs - 1000);
    await expect(keyring.verifySignedJson(a.name, signed, oldExpiredTs + 1000)).rejects.toBeInstanceOf(SignatureError);
    // Our own old keys, the same way.
    const own = signJson({ old: true }, b.name, oldKey) as unknown as JsonObject;
    await b.server.ctx.federation.keyring.verifySignedJson(b.name, own, oldExpiredTs - 1000);
    await expect(b.server.ctx.federation.keyring.verifySignedJson(b.name, own, oldExpiredTs + 1000)).rejects.toBeInstanceOf(SignatureError);
  });

  it('shares one fetch among concurrent verifications', async () => {
    let fetches = 0;
    const client = b.server.ctx.federation.client;
    const counting: FederationClient = {
      request: (destination, req) => {
        fetches++;
        return client.request(destination, req);
      },
      requestStream: (destination, req) => client.requestStream(destination, req),
    };
    const keyring = freshKeyring(b, counting);
    // A key id A does not have: every verification needs a fetch, and they share it.
    const stranger = signJson({ n: 1 }, a.name, generateSigningKey('unknown')) as unknown as JsonObject;
    await Promise.allSettled(Array.from({ length: 5 }, () => keyring.verifySignedJson(a.name, stranger)));
    expect(fetches).toBe(1);
  });
});

describe('notary: /_matrix/key/v2/query and trusted_key_servers', () => {
  let origin: FederatedServer;
  let notary: FederatedServer;
  let asker: FederatedServer;
  let others: FederatedServer[] = [];
  let agent: Agent;

  beforeAll(async () => {
    [origin, notary] = (await startFederatedServers(2)) as [FederatedServer, FederatedServer];
    const nk = notary.server.ctx.keys.signingKey;
    [asker] = (await startFederatedServers(
      1,
      `trusted_key_servers: [{server_name: "${notary.name}", verify_keys: {"${nk.keyId}": "${publicKeyBase64(nk)}"}}]`,
    )) as [FederatedServer];
    others = [origin, notary, asker];
    agent = new Agent({ connect: { ca: readFileSync(harnessCertificate().certPath, 'utf8') } });
  });
  afterAll(async () => {
    await agent?.close();
    await Promise.all(others.map((s) => s.stop()));
  });

  const query = async (method: 'GET' | 'POST', path: string, body?: JsonObject) => {
    const res = await request(`${notary.federationUrl}${path}`, {
      method,
      dispatcher: agent,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.statusCode, body: (await res.body.json()) as JsonObject };
  };
  const verifiesWith = (json: JsonObject, server: FederatedServer) =>
    verifyJsonSignature(json, server.name, server.server.ctx.keys.signingKey.keyId, server.server.ctx.keys.signingKey.publicKey);

  it('answers GET /query/{serverName} with the origin\'s response signed by origin and notary', async () => {
    const res = await query('GET', `/_matrix/key/v2/query/${encodeURIComponent(origin.name)}`);
    expect(res.status).toBe(200);
    const [response] = res.body.server_keys as JsonObject[];
    expect(response!.server_name).toBe(origin.name);
    expect(verifiesWith(response!, origin)).toBe(true);
    expect(verifiesWith(response!, notary)).toBe(true);
  });

  it('answers a POST batch: own keys, other servers, unknown servers left out', async () => {
    const res = await query('POST', '/_matrix/key/v2/query', {
      server_keys: {
        [origin.name]: { [origin.server.ctx.keys.signingKey.keyId]: { minimum_valid_until_ts: Date.now() } },
        [notary.name]: {},
        'localhost:1': {},
      },
    });
    expect(res.status).toBe(200);
    const responses = res.body.server_keys as JsonObject[];
    expect(responses.map((r) => r.server_name).sort()).toEqual([origin.name, notary.name].sort());
    for (const r of responses) expect(verifiesWith(r, notary)).toBe(true);
    const bad = await query('POST', '/_matrix/key/v2/query', { server_keys: [] as unknown as JsonObject });
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe('M_BAD_JSON');
    const badTs = await query('GET', `/_matrix/key/v2/query/${encodeURIComponent(notary.name)}?minimum_valid_until_ts=soon`);
    expect(badTs.status).toBe(400);
    expect(badTs.body.errcode).toBe('M_INVALID_PARAM');
    const tooMany = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`s${i}.example`, {}]));
    expect((await query('POST', '/_matrix/key/v2/query', { server_keys: tooMany })).status).toBe(400);
  });

  it('lets a server verify an offline origin\'s signature through the notary', async () => {
    const signed = signedBy(origin, { via: 'notary' });
    await origin.stop();
    await asker.server.ctx.federation.keyring.verifySignedJson(origin.name, signed);
    expect(await asker.server.ctx.storage.serverKeys.getKey(origin.name, origin.server.ctx.keys.signingKey.keyId)).toBeDefined();
  });

  it('refuses notary answers not signed with the configured notary key', async () => {
    const wrongKey = generateSigningKey('wrong');
    const [misconfigured] = (await startFederatedServers(
      1,
      `trusted_key_servers: [{server_name: "${notary.name}", verify_keys: {"${wrongKey.keyId}": "${publicKeyBase64(wrongKey)}"}}]`,
    )) as [FederatedServer];
    others.push(misconfigured);
    // The origin is offline (previous test): only the notary could vouch for its key.
    const signed = signedBy(origin, { via: 'notary' });
    await expect(misconfigured.server.ctx.federation.keyring.verifySignedJson(origin.name, signed)).rejects.toBeInstanceOf(SignatureError);
    expect(await misconfigured.server.ctx.storage.serverKeys.getKey(origin.name, origin.server.ctx.keys.signingKey.keyId)).toBeUndefined();
  });

  it('checks the signature of a notary without configured verify_keys with its own keys', async () => {
    const [fresh] = (await startFederatedServers(1)) as [FederatedServer];
    others.push(fresh);
    const ctx = fresh.server.ctx;
    const config = { ...ctx.config, trusted_key_servers: [{ server_name: notary.name, accept_keys_insecurely: true }] };
    const keyringWith = (client: FederationClient) =>
      new RemoteKeyring({ config, keys: ctx.keys, storage: ctx.storage, client, log: silent, minRefetchIntervalMs: 0 });
    // The notary's answers, with its signature replaced by one over something else.
    const real = ctx.federation.client;
    const forging: FederationClient = {
      ...real,
      request: (async (destination: string, req: Parameters<FederationClient['request']>[1]) => {
        const answer = (await real.request(destination, req)) as JsonObject;
        if (destination !== notary.name || req.path !== '/_matrix/key/v2/query') return answer;
        const wrong = (signJson({ other: 'thing' }, notary.name, notary.server.ctx.keys.signingKey) as JsonObject).signatures as JsonObject;
        for (const r of answer.server_keys as JsonObject[]) (r.signatures as JsonObject)[notary.name] = wrong[notary.name]!;
        return answer;
      }) as FederationClient['request'],
    };
    // The origin is offline: only the notary could vouch for its key.
    const signed = signedBy(origin, { via: 'unverified notary' });
    const keyId = origin.server.ctx.keys.signingKey.keyId;
    await expect(keyringWith(forging).verifySignedJson(origin.name, signed)).rejects.toBeInstanceOf(SignatureError);
    expect(await ctx.storage.serverKeys.getKey(origin.name, keyId)).toBeUndefined();
    // Signed by the notary's real key (fetched from the notary itself): accepted.
    await keyringWith(real).verifySignedJson(origin.name, signed);
    expect(await ctx.storage.serverKeys.getKey(origin.name, keyId)).toBeDefined();
  });
});
