/**
 * The outgoing federation client between real servers over HTTPS: discovery by explicit port,
 * the shared test CA, X-Matrix signing, errors, and the outgoing address filter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { HttpFederationClient } from '../../src/federation/client.js';
import { IpRangeFilter } from '../../src/federation/ip-ranges.js';
import { FederationRequestError } from '../../src/federation/runtime.js';
import { startFederatedServers, type FederatedServer } from '../helpers/federation.js';

describe('HttpFederationClient between two harness servers', () => {
  let servers: FederatedServer[];
  let a: FederatedServer;
  let b: FederatedServer;

  beforeAll(async () => {
    servers = await startFederatedServers(2);
    [a, b] = servers as [FederatedServer, FederatedServer];
  });
  afterAll(async () => {
    await Promise.all((servers ?? []).map((s) => s.stop()));
  });

  /** A second client for A's identity with other settings (filters, CAs). */
  const clientOf = (server: FederatedServer, yaml: string) => {
    const { config } = parseConfig([
      { file: `${server.dir}/homeserver.yaml`, text: `server_name: "${server.name}"\n${yaml}` },
    ]);
    return new HttpFederationClient({ config, keys: server.server.ctx.keys, log: pino({ level: 'silent' }) });
  };

  it('fetches the other server\'s key response and version over HTTPS', async () => {
    const keys = await a.server.ctx.federation.client.request<{ server_name: string; verify_keys: object }>(b.name, {
      method: 'GET',
      path: '/_matrix/key/v2/server',
    });
    expect(keys.server_name).toBe(b.name);
    expect(Object.keys(keys.verify_keys)).toContain(b.server.ctx.keys.signingKey.keyId);
    const version = await a.server.ctx.federation.client.request<{ server: { name: string } }>(b.name, {
      method: 'GET',
      path: '/_matrix/federation/v1/version',
    });
    expect(version.server.name).toBe('Hearth');
  });

  it('gives a FederationRequestError with status and errcode for a non-2xx answer', async () => {
    const err = await a.server.ctx.federation.client
      .request(b.name, { method: 'GET', path: '/_matrix/federation/v1/no_such_endpoint', query: { a: 'b c' } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FederationRequestError);
    expect((err as FederationRequestError).status).toBe(404);
    expect((err as FederationRequestError).errcode).toBe('M_UNRECOGNIZED');
    expect((err as FederationRequestError).destination).toBe(b.name);
  });

  it('signs the query string and body the way the receiver sees them', async () => {
    // Real endpoints behind requireServer: a bad signature would be 401, not these answers.
    const profile = await a.server.ctx.federation.client
      .request(b.name, { method: 'GET', path: '/_matrix/federation/v1/query/profile', query: { user_id: `@nobody ü:${b.name}`, field: 'displayname' } })
      .catch((e: unknown) => e);
    expect((profile as FederationRequestError).status).toBe(404);
    const keys = await a.server.ctx.federation.client.request<{ device_keys: object }>(b.name, {
      method: 'POST',
      path: '/_matrix/federation/v1/user/keys/query',
      body: { device_keys: { [`@nobody:${b.name}`]: [] } },
    });
    expect(keys.device_keys).toBeDefined();
  });

  it('streams an answer with requestStream', async () => {
    const res = await a.server.ctx.federation.client.requestStream(b.name, { method: 'GET', path: '/_matrix/key/v2/server' });
    expect(res.status).toBe(200);
    let text = '';
    for await (const chunk of res.body) text += String(chunk);
    expect(JSON.parse(text).server_name).toBe(b.name);
  });

  it('refuses loopback when it is not whitelisted, checked at connect time', async () => {
    const client = clientOf(a, `federation_custom_ca_list: ["${a.config.federation_custom_ca_list[0]}"]`);
    try {
      const err = await client.request(b.name, { method: 'GET', path: '/_matrix/key/v2/server' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FederationRequestError);
      expect((err as Error).message).toMatch(/ip_range_blacklist/);
      expect((err as FederationRequestError).status).toBeUndefined();
      // An IP literal server name never goes through DNS: it is checked before connecting.
      const port = b.name.split(':')[1];
      const literal = await client.request(`127.0.0.1:${port}`, { method: 'GET', path: '/_matrix/key/v2/server' }).catch((e: unknown) => e);
      expect((literal as Error).message).toMatch(/ip_range_blacklist/);
    } finally {
      await client.close();
    }
  });

  it('refuses a certificate no configured CA vouches for', async () => {
    const client = clientOf(a, "ip_range_whitelist: ['127.0.0.0/8', '::1/128']");
    try {
      const err = await client.request(b.name, { method: 'GET', path: '/_matrix/key/v2/server' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FederationRequestError);
      expect((err as Error).message).toMatch(/certificate/i);
    } finally {
      await client.close();
    }
  });

  it('accepts any certificate when federation_verify_certificates is false', async () => {
    const client = clientOf(a, "ip_range_whitelist: ['127.0.0.0/8', '::1/128']\nfederation_verify_certificates: false");
    try {
      const keys = await client.request<{ server_name: string }>(b.name, { method: 'GET', path: '/_matrix/key/v2/server' });
      expect(keys.server_name).toBe(b.name);
    } finally {
      await client.close();
    }
  });

  it('sends only to federation_domain_whitelist destinations', async () => {
    const ca = a.config.federation_custom_ca_list[0];
    const client = clientOf(a, `ip_range_whitelist: ['127.0.0.0/8']\nfederation_custom_ca_list: ["${ca}"]\nfederation_domain_whitelist: ["friend.example"]`);
    try {
      const err = await client.request(b.name, { method: 'GET', path: '/_matrix/key/v2/server' }).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/federation_domain_whitelist/);
    } finally {
      await client.close();
    }
  });

  it('sees a stopped server as unreachable, and the same server again after a restart', async () => {
    const keyId = b.server.ctx.keys.signingKey.keyId;
    await b.stop();
    expect(b.running).toBe(false);
    const err = await a.server.ctx.federation.client.request(b.name, { method: 'GET', path: '/_matrix/key/v2/server' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FederationRequestError);
    expect((err as FederationRequestError).status).toBeUndefined();
    await b.start();
    const keys = await a.server.ctx.federation.client.request<{ server_name: string; verify_keys: object }>(b.name, {
      method: 'GET',
      path: '/_matrix/key/v2/server',
    });
    expect(keys.server_name).toBe(b.name);
    expect(Object.keys(keys.verify_keys)).toEqual([keyId]);
    await b.restart();
    expect(b.running).toBe(true);
  });

  it('times out a destination that accepts connections but never answers', async () => {
    const { createServer } = await import('node:net');
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      const err = await a.server.ctx.federation.client
        .request(`127.0.0.1:${port}`, { method: 'GET', path: '/_matrix/key/v2/server', timeoutMs: 300 })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FederationRequestError);
      expect((err as FederationRequestError).status).toBeUndefined();
    } finally {
      silent.close();
    }
  });
});

describe('IpRangeFilter', () => {
  it('blocks the default ranges, loopback always, and honours the whitelist', () => {
    const filter = new IpRangeFilter(['10.0.0.0/8', 'fc00::/7'], ['10.1.0.0/16']);
    expect(filter.isAllowed('8.8.8.8')).toBe(true);
    expect(filter.isAllowed('10.2.3.4')).toBe(false);
    expect(filter.isAllowed('10.1.3.4')).toBe(true);
    expect(filter.isAllowed('127.0.0.1')).toBe(false);
    expect(filter.isAllowed('::1')).toBe(false);
    expect(filter.isAllowed('::ffff:10.2.3.4')).toBe(false);
    expect(filter.isAllowed('fd00::1')).toBe(false);
    expect(filter.isAllowed('2a00:1450::1')).toBe(true);
    expect(new IpRangeFilter([], ['127.0.0.0/8']).isAllowed('127.0.0.1')).toBe(true);
  });
});
