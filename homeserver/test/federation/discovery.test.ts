/**
 * Server discovery (spec "Resolving server names") against a real local HTTPS server that
 * serves `/.well-known/matrix/server` for several test host names, with DNS (A/AAAA and SRV)
 * given by an injected resolver.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Agent } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { generateSigningKey } from '../../src/events/signing.js';
import { HttpFederationClient } from '../../src/federation/client.js';
import { cachePeriod, parseServerName, pickSrvRecord, ServerDiscovery, type DnsResolver, type SrvRecord } from '../../src/federation/discovery.js';
import { FederationRequestError } from '../../src/federation/runtime.js';
import { generateTestCertificate, type TestCertificate } from '../helpers/federation.js';

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;

interface WellKnownAnswer {
  status?: number;
  body?: string;
  headers?: Record<string, string>;
}

/** What each test host name's well-known answers (keyed by Host header, without port). */
const answers = new Map<string, WellKnownAnswer | ((path: string) => WellKnownAnswer)>();
const hits = new Map<string, number>();
const HOSTS = [
  'plain.test', 'port.test', 'noport.test', 'srv.test', 'ip.test', 'missing.test', 'badjson.test', 'noserver.test',
  'big.test', 'redirect.test', 'loop.test', 'cached.test', 'errors.test', 'long.test', 'private.test', 'rebind.test',
  'delegated.test', 'fed.test', 'legacy.test',
];

/** DNS for the tests: every test name is 127.0.0.1, except those the test maps elsewhere. */
function testResolver(srv: Record<string, SrvRecord[]>, addresses: Record<string, string> = {}): DnsResolver {
  return {
    async resolveSrv(name) {
      const records = srv[name];
      if (!records) throw Object.assign(new Error(`no SRV for ${name}`), { code: 'ENOTFOUND' });
      return records;
    },
    async lookup(hostname) {
      const address = addresses[hostname] ?? (hostname.endsWith('.test') || hostname === 'localhost' ? '127.0.0.1' : undefined);
      if (!address) throw Object.assign(new Error(`${hostname} not found`), { code: 'ENOTFOUND' });
      return [{ address, family: address.includes(':') ? 6 : 4 }];
    },
  };
}

describe('server discovery', () => {
  let cert: TestCertificate;
  let server: Server;
  let port: number;
  let dispatcher: Agent;
  let clock: number;
  const srv: Record<string, SrvRecord[]> = {};

  beforeAll(async () => {
    cert = generateTestCertificate(['localhost', ...HOSTS, '127.0.0.1']);
    server = createServer({ cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath) }, (req, res) => {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      hits.set(host, (hits.get(host) ?? 0) + 1);
      const entry = answers.get(host);
      const answer = typeof entry === 'function' ? entry(req.url ?? '') : (entry ?? { status: 404, body: '{}' });
      res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body ?? '');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
    dispatcher = new Agent({
      connect: {
        ca: readFileSync(cert.certPath, 'utf8'),
        lookup: (hostname, _opts, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }] as never, 4),
      },
    });
  });
  afterAll(async () => {
    await dispatcher?.close();
    await new Promise((r) => server?.close(r));
  });
  beforeEach(() => {
    answers.clear();
    hits.clear();
    for (const k of Object.keys(srv)) delete srv[k];
    clock = Date.parse('2026-01-01T00:00:00Z');
  });

  const discovery = () =>
    new ServerDiscovery({ resolver: testResolver(srv), dispatcher, wellKnownPort: port, now: () => clock });
  const json = (body: unknown, headers: Record<string, string> = {}): WellKnownAnswer => ({ body: JSON.stringify(body), headers });

  it('uses an IP literal as it is, with port 8448 by default and no SNI', async () => {
    const d = discovery();
    expect(await d.resolve('1.2.3.4')).toEqual({ host: '1.2.3.4', port: 8448, tlsServername: undefined, hostHeader: '1.2.3.4' });
    expect(await d.resolve('[2001:db8::1]:8000')).toEqual({
      host: '2001:db8::1',
      port: 8000,
      tlsServername: undefined,
      hostHeader: '[2001:db8::1]:8000',
    });
    expect(hits.size).toBe(0);
  });

  it('connects to a hostname with an explicit port without asking .well-known', async () => {
    answers.set('port.test', json({ 'm.server': 'elsewhere.test:1' }));
    expect(await discovery().resolve('port.test:1234')).toEqual({
      host: 'port.test',
      port: 1234,
      tlsServername: 'port.test',
      hostHeader: 'port.test:1234',
    });
    expect(hits.size).toBe(0);
  });

  it('follows a .well-known delegation with a port', async () => {
    answers.set('plain.test', json({ 'm.server': 'delegated.test:9000' }));
    expect(await discovery().resolve('plain.test')).toEqual({
      host: 'delegated.test',
      port: 9000,
      tlsServername: 'delegated.test',
      hostHeader: 'delegated.test:9000',
    });
  });

  it('follows a delegation to an IP literal: no SNI, Host is the IP with its port', async () => {
    answers.set('ip.test', json({ 'm.server': '127.0.0.1:8999' }));
    expect(await discovery().resolve('ip.test')).toEqual({
      host: '127.0.0.1',
      port: 8999,
      tlsServername: undefined,
      hostHeader: '127.0.0.1:8999',
    });
  });

  it('resolves a delegation without a port by SRV on the delegated name, then 8448', async () => {
    answers.set('noport.test', json({ 'm.server': 'delegated.test' }));
    expect(await discovery().resolve('noport.test')).toEqual({
      host: 'delegated.test',
      port: 8448,
      tlsServername: 'delegated.test',
      hostHeader: 'delegated.test',
    });
    srv['_matrix-fed._tcp.delegated.test'] = [{ name: 'target.example.', port: 7000, priority: 0, weight: 0 }];
    expect(await discovery().resolve('noport.test')).toEqual({
      host: 'target.example',
      port: 7000,
      tlsServername: 'delegated.test',
      hostHeader: 'delegated.test',
    });
  });

  it('without .well-known: SRV _matrix-fed._tcp first, the deprecated _matrix._tcp next, lowest priority first', async () => {
    srv['_matrix._tcp.fed.test'] = [{ name: 'legacy-target.example', port: 1111, priority: 0, weight: 0 }];
    expect(await discovery().resolve('fed.test')).toMatchObject({ host: 'legacy-target.example', port: 1111, tlsServername: 'fed.test', hostHeader: 'fed.test' });
    srv['_matrix-fed._tcp.fed.test'] = [
      { name: 'second.example', port: 2222, priority: 20, weight: 100 },
      { name: 'first.example', port: 3333, priority: 10, weight: 1 },
    ];
    expect(await discovery().resolve('fed.test')).toMatchObject({ host: 'first.example', port: 3333, tlsServername: 'fed.test', hostHeader: 'fed.test' });
    // A target of "." says there is no such service here.
    srv['_matrix-fed._tcp.legacy.test'] = [{ name: '.', port: 0, priority: 0, weight: 0 }];
    expect(await discovery().resolve('legacy.test')).toMatchObject({ host: 'legacy.test', port: 8448 });
  });

  it('falls back to the hostname on port 8448', async () => {
    expect(await discovery().resolve('missing.test')).toEqual({
      host: 'missing.test',
      port: 8448,
      tlsServername: 'missing.test',
      hostHeader: 'missing.test',
    });
    expect(hits.get('missing.test')).toBe(1);
  });

  it('treats a malformed .well-known as absent (bad JSON, no m.server, invalid name, too large)', async () => {
    answers.set('badjson.test', { body: '{"m.server": ' });
    answers.set('noserver.test', json({ 'm.homeserver': 'x' }));
    answers.set('plain.test', json({ 'm.server': 'not a server name' }));
    answers.set('big.test', json({ 'm.server': 'delegated.test:1', padding: 'x'.repeat(100 * 1024) }));
    for (const name of ['badjson.test', 'noserver.test', 'plain.test', 'big.test']) {
      expect(await discovery().resolve(name)).toMatchObject({ host: name, port: 8448, hostHeader: name });
    }
  });

  it('follows redirects and stops at a redirect loop', async () => {
    answers.set('redirect.test', (path) =>
      path === '/.well-known/matrix/server'
        ? { status: 302, headers: { location: '/elsewhere' } }
        : json({ 'm.server': 'delegated.test:4443' }),
    );
    expect(await discovery().resolve('redirect.test')).toMatchObject({ host: 'delegated.test', port: 4443 });
    answers.set('loop.test', (path) => ({ status: 301, headers: { location: path === '/a' ? '/b' : '/a' } }));
    expect(await discovery().resolve('loop.test')).toMatchObject({ host: 'loop.test', port: 8448 });
    expect(hits.get('loop.test')).toBeLessThanOrEqual(6);
  });

  it('caches a .well-known answer for its max-age', async () => {
    answers.set('cached.test', json({ 'm.server': 'delegated.test:1' }, { 'cache-control': 'public, max-age=1800' }));
    const d = discovery();
    await d.resolve('cached.test');
    clock += 25 * MINUTE;
    answers.set('cached.test', json({ 'm.server': 'delegated.test:2' }));
    expect(await d.resolve('cached.test')).toMatchObject({ port: 1 });
    expect(hits.get('cached.test')).toBe(1);
    clock += 10 * MINUTE;
    expect(await d.resolve('cached.test')).toMatchObject({ port: 2 });
    expect(hits.get('cached.test')).toBe(2);
  });

  it('caches for 24 hours by default and at most 48 hours', async () => {
    answers.set('long.test', json({ 'm.server': 'delegated.test:1' }));
    const d = discovery();
    await d.resolve('long.test');
    clock += 23 * HOUR;
    await d.resolve('long.test');
    expect(hits.get('long.test')).toBe(1);
    clock += 2 * HOUR;
    answers.set('long.test', json({ 'm.server': 'delegated.test:1' }, { 'cache-control': 'max-age=31536000' }));
    await d.resolve('long.test');
    expect(hits.get('long.test')).toBe(2);
    clock += 47 * HOUR;
    await d.resolve('long.test');
    expect(hits.get('long.test')).toBe(2);
    clock += 2 * HOUR;
    await d.resolve('long.test');
    expect(hits.get('long.test')).toBe(3);
  });

  it('caches errors with a backoff growing to an hour', async () => {
    answers.set('errors.test', { status: 500, body: 'oops' });
    const d = discovery();
    const fetches: number[] = [];
    // Ask every minute for three hours: the gaps between fetches grow and stop at an hour.
    for (let minute = 0; minute <= 180; minute++) {
      const before = hits.get('errors.test') ?? 0;
      await d.resolve('errors.test');
      if ((hits.get('errors.test') ?? 0) > before) fetches.push(minute);
      clock += MINUTE;
    }
    const gaps = fetches.slice(1).map((m, i) => m - fetches[i]!);
    expect(gaps.slice(0, 4)).toEqual([5, 10, 20, 40]);
    expect(gaps.slice(4).every((g) => g === 60)).toBe(true);
    expect(hits.get('errors.test')).toBeLessThan(12);
  });

  it('keeps a delegation through a web server outage (5xx), not past 48 hours, but not through a 404', async () => {
    answers.set('cached.test', json({ 'm.server': 'delegated.test:1' }, { 'cache-control': 'max-age=3600' }));
    const d = discovery();
    await d.resolve('cached.test');
    answers.set('cached.test', { status: 503, body: 'down' });
    clock += 2 * HOUR;
    expect(await d.resolve('cached.test')).toMatchObject({ host: 'delegated.test', port: 1 });
    expect(hits.get('cached.test')).toBe(2);
    // Still down two days after the answer expired: the delegation is given up.
    for (let i = 0; i < 50; i++) {
      clock += HOUR;
      await d.resolve('cached.test');
    }
    expect(await d.resolve('cached.test')).toMatchObject({ host: 'cached.test', port: 8448 });
    // A 404 says "no delegation" at once.
    answers.set('long.test', json({ 'm.server': 'delegated.test:2' }, { 'cache-control': 'max-age=3600' }));
    await d.resolve('long.test');
    answers.set('long.test', { status: 404, body: '{}' });
    clock += 2 * HOUR;
    expect(await d.resolve('long.test')).toMatchObject({ host: 'long.test', port: 8448 });
  });

  it('computes cache periods from Cache-Control and Expires', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(cachePeriod({ 'cache-control': 'max-age=3600' }, now)).toBe(HOUR);
    expect(cachePeriod({ 'cache-control': 'no-store' }, now)).toBe(5 * MINUTE);
    expect(cachePeriod({ expires: new Date(now + 2 * HOUR).toUTCString() }, now)).toBe(2 * HOUR);
    expect(cachePeriod({}, now)).toBe(24 * HOUR);
    expect(cachePeriod({ 'cache-control': 'max-age=99999999' }, now)).toBe(48 * HOUR);
  });

  it('parses server names by the grammar', () => {
    expect(parseServerName('example.org')).toEqual({ host: 'example.org', port: undefined, isIpLiteral: false });
    expect(parseServerName('[::1]:8448')).toEqual({ host: '::1', port: 8448, isIpLiteral: true });
    expect(parseServerName('1.2.3.4:80')).toEqual({ host: '1.2.3.4', port: 80, isIpLiteral: true });
    for (const bad of ['', 'a b', 'example.org:', 'example.org:99999', '[::1', '[example.org]', 'a:b:c']) {
      expect(parseServerName(bad)).toBeUndefined();
    }
  });

  it('picks SRV records by priority, then by weight', () => {
    const records = [
      { name: 'a', port: 1, priority: 5, weight: 0 },
      { name: 'b', port: 1, priority: 1, weight: 10 },
      { name: 'c', port: 1, priority: 1, weight: 30 },
    ];
    expect(pickSrvRecord(records, () => 0)?.name).toBe('b');
    expect(pickSrvRecord(records, () => 0.5)?.name).toBe('c');
    expect(pickSrvRecord([])).toBeUndefined();
  });

  describe('through the client: the outgoing address filter after discovery', () => {
    const clientWith = (addresses: Record<string, string>) => {
      const { config } = parseConfig([
        {
          file: '/tmp/discovery-test.yaml',
          text: `server_name: origin.test\nip_range_whitelist: ['127.0.0.1/32']\nfederation_custom_ca_list: ["${cert.certPath}"]`,
        },
      ]);
      return new HttpFederationClient({
        config,
        keys: { signingKey: generateSigningKey(), verifyKeys: [], oldVerifyKeys: {} },
        log: pino({ level: 'silent' }),
        resolver: testResolver(srv, addresses),
        wellKnownPort: port,
      });
    };

    it('refuses a .well-known that delegates to a private IP', async () => {
      answers.set('private.test', json({ 'm.server': '10.1.2.3:8448' }));
      const client = clientWith({});
      try {
        const err = await client.requestStream('private.test', { method: 'GET', path: '/_matrix/key/v2/server' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(FederationRequestError);
        expect((err as Error).message).toMatch(/10\.1\.2\.3.*ip_range_blacklist/);
      } finally {
        await client.close();
      }
    });

    it('refuses a name that resolves to a private address when connecting (DNS rebinding)', async () => {
      // Discovery sees no .well-known for the name (its lookup is refused too) and falls back to 8448.
      const client = clientWith({ 'rebind.test': '192.168.1.20' });
      try {
        const err = await client.request('rebind.test:8448', { method: 'GET', path: '/x' }).catch((e: unknown) => e);
        expect((err as Error).message).toMatch(/192\.168\.1\.20.*ip_range_blacklist/);
        const viaDiscovery = await client.request('rebind.test', { method: 'GET', path: '/x' }).catch((e: unknown) => e);
        expect((viaDiscovery as Error).message).toMatch(/ip_range_blacklist/);
        expect(hits.get('rebind.test')).toBeUndefined();
      } finally {
        await client.close();
      }
    });
  });
});
