/**
 * Server discovery (server-server API, "Resolving server names"): from a server name to the
 * host and port to connect to, the TLS server name (SNI) the certificate must match, and the
 * `Host` header to send.
 *
 *   1. IP literal: that address, the given port or 8448.
 *   2. Hostname with an explicit port: that hostname (A/AAAA at connect time) and port.
 *   3. `https://<hostname>/.well-known/matrix/server` (cached per Cache-Control/Expires between
 *      5 minutes and 48 hours, 24 hours by default; failures cached with a backoff up to an
 *      hour; during a web server outage — network error, 5xx — the last good answer stays in use
 *      for up to 48 hours): its `m.server` delegates, resolved by the same rules (IP literal,
 *      explicit port, SRV, 8448) with the delegated name in SNI and Host.
 *   4. SRV `_matrix-fed._tcp.<hostname>`, then the deprecated `_matrix._tcp.<hostname>`.
 *   5. The hostname on port 8448.
 *
 * DNS goes through a small resolver interface so that tests can give SRV records.
 */
import { promises as dnsPromises } from 'node:dns';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { ResolvedAddress } from './ip-ranges.js';

export const DEFAULT_FEDERATION_PORT = 8448;

/** Where and how to connect for one server name. */
export interface ResolvedServer {
  /** A hostname (resolved with A/AAAA when connecting) or an IP literal (without brackets). */
  host: string;
  port: number;
  /** The name the certificate must be valid for, sent as SNI; undefined for IP literals. */
  tlsServername: string | undefined;
  /** The `Host` header of requests. */
  hostHeader: string;
}

export interface SrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

/** The DNS lookups discovery and connections make; `systemDnsResolver` by default. */
export interface DnsResolver {
  /** SRV records of `name`; an empty list (or ENOTFOUND/ENODATA) when there are none. */
  resolveSrv(name: string): Promise<SrvRecord[]>;
  /** A and AAAA records of `hostname`. */
  lookup(hostname: string): Promise<ResolvedAddress[]>;
}

export const systemDnsResolver: DnsResolver = {
  resolveSrv: (name) => dnsPromises.resolveSrv(name),
  lookup: (hostname) => dnsPromises.lookup(hostname, { all: true, verbatim: true }),
};

export interface ParsedServerName {
  /** Hostname or IP literal (IPv6 without brackets). */
  host: string;
  port: number | undefined;
  isIpLiteral: boolean;
}

const HOSTNAME = /^[A-Za-z0-9.-]{1,255}$/;

/** Splits a server name (`host[:port]`, `[v6][:port]`) per the spec's grammar; undefined if malformed. */
export function parseServerName(name: string): ParsedServerName | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(name);
  if (!m) return undefined;
  const rawHost = m[1]!;
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  if (rawHost.startsWith('[')) {
    const host = rawHost.slice(1, -1);
    return isIP(host) === 6 ? { host, port, isIpLiteral: true } : undefined;
  }
  if (isIP(rawHost) === 4) return { host: rawHost, port, isIpLiteral: true };
  if (!HOSTNAME.test(rawHost)) return undefined;
  return { host: rawHost, port, isIpLiteral: false };
}

/** `host` as written in a URL or Host header (brackets around IPv6). */
export function hostForUrl(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

export class DiscoveryError extends Error {
  override name = 'DiscoveryError';
  /** A server error (5xx) rather than an answer saying "no delegation". */
  transient = false;
}

export interface DiscoveryOptions {
  resolver?: DnsResolver;
  /** Fetches `/.well-known/matrix/server` (the client's connection pool, with the IP filter). */
  dispatcher: Pick<Dispatcher, 'request'>;
  /** The port of well-known requests: 443, as the spec says; tests point it elsewhere. */
  wellKnownPort?: number;
  now?: () => number;
  log?: Logger;
}

const HOUR = 60 * 60 * 1000;
const WELL_KNOWN_DEFAULT_CACHE_MS = 24 * HOUR;
const WELL_KNOWN_MAX_CACHE_MS = 48 * HOUR;
const WELL_KNOWN_MIN_CACHE_MS = 5 * 60 * 1000;
const WELL_KNOWN_FIRST_ERROR_CACHE_MS = 5 * 60 * 1000;
const WELL_KNOWN_MAX_ERROR_CACHE_MS = HOUR;
const WELL_KNOWN_MAX_BYTES = 50 * 1024;
const WELL_KNOWN_TIMEOUT_MS = 10_000;
const WELL_KNOWN_MAX_REDIRECTS = 5;
/** SRV answers carry no TTL through node:dns; a resolution is reused this long at most. */
const RESOLUTION_CACHE_MS = 10 * 60 * 1000;
const MAX_CACHE_ENTRIES = 10_000;

interface WellKnownEntry {
  /** The delegated server name, or undefined when the lookup failed. */
  delegated: string | undefined;
  expiresAt: number;
  /** Consecutive failures, for the error backoff. */
  failures: number;
  error?: string;
  /** When the good answer still in use (during an outage) expired. */
  staleSince?: number;
}

export class ServerDiscovery {
  private readonly resolver: DnsResolver;
  private readonly now: () => number;
  private readonly wellKnownCache = new Map<string, WellKnownEntry>();
  private readonly wellKnownInFlight = new Map<string, Promise<WellKnownEntry>>();
  private readonly resolved = new Map<string, { server: ResolvedServer; expiresAt: number }>();

  constructor(private readonly opts: DiscoveryOptions) {
    this.resolver = opts.resolver ?? systemDnsResolver;
    this.now = opts.now ?? Date.now;
  }

  /** Resolves a server name; DiscoveryError when the name is malformed. */
  async resolve(serverName: string): Promise<ResolvedServer> {
    const cached = this.resolved.get(serverName);
    if (cached && cached.expiresAt > this.now()) return cached.server;
    const { server, expiresAt } = await this.resolveUncached(serverName);
    remember(this.resolved, serverName, { server, expiresAt });
    return server;
  }

  /** Forgets cached resolutions and well-known answers (tests; admin tooling). */
  clearCache(): void {
    this.resolved.clear();
    this.wellKnownCache.clear();
  }

  private async resolveUncached(serverName: string): Promise<{ server: ResolvedServer; expiresAt: number }> {
    const parsed = parseServerName(serverName);
    if (!parsed) throw new DiscoveryError(`"${serverName}" is not a valid server name`);
    const shortly = this.now() + RESOLUTION_CACHE_MS;
    // Steps 1 and 2: an IP literal or an explicit port need no lookup.
    if (parsed.isIpLiteral || parsed.port !== undefined) {
      return { server: direct(parsed, serverName), expiresAt: shortly };
    }
    // Step 3: delegation through .well-known.
    const wellKnown = await this.wellKnown(parsed.host);
    if (wellKnown.delegated !== undefined) {
      const delegated = parseServerName(wellKnown.delegated)!;
      const expiresAt = Math.min(shortly, wellKnown.expiresAt);
      if (delegated.isIpLiteral || delegated.port !== undefined) {
        return { server: direct(delegated, wellKnown.delegated), expiresAt };
      }
      return { server: await this.viaSrv(delegated.host), expiresAt };
    }
    // Steps 4 and 5: SRV on the server name itself, then port 8448.
    return { server: await this.viaSrv(parsed.host), expiresAt: Math.min(shortly, wellKnown.expiresAt) };
  }

  /** SRV `_matrix-fed._tcp`, then `_matrix._tcp`, then the hostname on 8448; SNI and Host stay `hostname`. */
  private async viaSrv(hostname: string): Promise<ResolvedServer> {
    for (const service of ['_matrix-fed._tcp', '_matrix._tcp']) {
      const target = await this.srvTarget(`${service}.${hostname}`);
      if (target) return { host: target.name, port: target.port, tlsServername: hostname, hostHeader: hostname };
    }
    return { host: hostname, port: DEFAULT_FEDERATION_PORT, tlsServername: hostname, hostHeader: hostname };
  }

  private async srvTarget(name: string): Promise<SrvRecord | undefined> {
    let records: SrvRecord[];
    try {
      records = await this.resolver.resolveSrv(name);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTFOUND' && code !== 'ENODATA') this.opts.log?.debug({ err, name }, 'SRV lookup failed');
      return undefined;
    }
    const usable = records
      .map((r) => ({ ...r, name: r.name.replace(/\.$/, '') }))
      // A target of "." means the service is decidedly not available at this domain (RFC 2782).
      .filter((r) => r.name !== '' && r.port > 0);
    return pickSrvRecord(usable);
  }

  /** The (cached) well-known answer for `hostname`. */
  private async wellKnown(hostname: string): Promise<WellKnownEntry> {
    const cached = this.wellKnownCache.get(hostname);
    if (cached && cached.expiresAt > this.now()) return cached;
    let inFlight = this.wellKnownInFlight.get(hostname);
    if (!inFlight) {
      inFlight = this.fetchWellKnown(hostname, cached).finally(() => this.wellKnownInFlight.delete(hostname));
      this.wellKnownInFlight.set(hostname, inFlight);
    }
    const entry = await inFlight;
    remember(this.wellKnownCache, hostname, entry);
    return entry;
  }

  private async fetchWellKnown(hostname: string, previous: WellKnownEntry | undefined): Promise<WellKnownEntry> {
    try {
      const { body, cacheMs } = await this.getWellKnown(hostname);
      const delegated = validDelegation(body);
      return { delegated, expiresAt: this.now() + cacheMs, failures: 0 };
    } catch (err) {
      const failures = (previous?.failures ?? 0) + 1;
      const backoff = Math.min(WELL_KNOWN_MAX_ERROR_CACHE_MS, WELL_KNOWN_FIRST_ERROR_CACHE_MS * 2 ** (failures - 1));
      const expiresAt = this.now() + backoff;
      this.opts.log?.debug({ hostname, err: (err as Error).message }, 'no usable .well-known/matrix/server');
      // A web server that is down for a while (network error, 5xx) does not undo a delegation
      // seen recently: the last good answer stays in use, within the longest cache time.
      const outage = !(err instanceof DiscoveryError) || err.transient;
      const staleSince = previous?.staleSince ?? previous?.expiresAt;
      if (outage && previous?.delegated !== undefined && staleSince !== undefined && this.now() - staleSince < WELL_KNOWN_MAX_CACHE_MS) {
        return { delegated: previous.delegated, expiresAt, failures, error: (err as Error).message, staleSince };
      }
      return { delegated: undefined, expiresAt, failures, error: (err as Error).message };
    }
  }

  /** GETs the well-known document, following up to 5 HTTPS redirects without loops. */
  private async getWellKnown(hostname: string): Promise<{ body: unknown; cacheMs: number }> {
    const port = this.opts.wellKnownPort ?? 443;
    let url = new URL(`https://${hostForUrl(hostname)}${port === 443 ? '' : `:${port}`}/.well-known/matrix/server`);
    const seen = new Set<string>();
    for (let redirects = 0; ; redirects++) {
      seen.add(url.href);
      const res = await this.opts.dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(WELL_KNOWN_TIMEOUT_MS),
        headersTimeout: WELL_KNOWN_TIMEOUT_MS,
        bodyTimeout: WELL_KNOWN_TIMEOUT_MS,
      });
      if (res.statusCode >= 300 && res.statusCode < 400 && res.statusCode !== 304) {
        discardBody(res.body);
        const location = headerValue(res.headers.location);
        if (!location) throw new DiscoveryError(`well-known redirect without Location (${res.statusCode})`);
        const next = new URL(location, url);
        if (next.protocol !== 'https:') throw new DiscoveryError(`well-known redirect to a non-HTTPS URL`);
        if (seen.has(next.href)) throw new DiscoveryError('well-known redirect loop');
        if (redirects + 1 > WELL_KNOWN_MAX_REDIRECTS) throw new DiscoveryError('too many well-known redirects');
        url = next;
        continue;
      }
      const text = await readLimited(res.body, WELL_KNOWN_MAX_BYTES);
      if (res.statusCode !== 200) {
        const err = new DiscoveryError(`well-known answered ${res.statusCode}`);
        err.transient = res.statusCode >= 500;
        throw err;
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new DiscoveryError('well-known is not JSON');
      }
      return { body, cacheMs: cachePeriod(res.headers, this.now()) };
    }
  }
}

/** Steps 1 and 2 (and their delegated forms): connect to the name as written. */
function direct(parsed: ParsedServerName, name: string): ResolvedServer {
  return {
    host: parsed.host,
    port: parsed.port ?? DEFAULT_FEDERATION_PORT,
    tlsServername: parsed.isIpLiteral ? undefined : parsed.host,
    hostHeader: name,
  };
}

function validDelegation(body: unknown): string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new DiscoveryError('well-known is not a JSON object');
  const server = (body as Record<string, unknown>)['m.server'];
  if (typeof server !== 'string') throw new DiscoveryError('well-known has no m.server string');
  if (!parseServerName(server)) throw new DiscoveryError(`well-known m.server "${server}" is not a server name`);
  return server;
}

/** How long a well-known answer is kept: Cache-Control max-age or Expires, within bounds. */
export function cachePeriod(headers: Record<string, string | string[] | undefined>, now: number): number {
  const cacheControl = headerValue(headers['cache-control'])?.toLowerCase() ?? '';
  let ms: number | undefined;
  if (/(^|,)\s*(no-store|no-cache)\s*(,|$)/.test(cacheControl)) ms = 0;
  const maxAge = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/.exec(cacheControl);
  if (ms === undefined && maxAge) ms = Number(maxAge[1]) * 1000;
  const expires = headerValue(headers.expires);
  if (ms === undefined && expires) {
    const at = Date.parse(expires);
    ms = Number.isNaN(at) ? 0 : at - now;
  }
  if (ms === undefined) return WELL_KNOWN_DEFAULT_CACHE_MS;
  return Math.min(WELL_KNOWN_MAX_CACHE_MS, Math.max(WELL_KNOWN_MIN_CACHE_MS, ms));
}

/** RFC 2782: the lowest priority wins; among equals, a random pick weighted by `weight`. */
export function pickSrvRecord(records: readonly SrvRecord[], random: () => number = Math.random): SrvRecord | undefined {
  if (records.length === 0) return undefined;
  const best = Math.min(...records.map((r) => r.priority));
  const candidates = records.filter((r) => r.priority === best);
  const total = candidates.reduce((sum, r) => sum + r.weight, 0);
  if (total === 0) return candidates[Math.floor(random() * candidates.length)]!;
  let point = random() * total;
  for (const r of candidates) {
    point -= r.weight;
    if (point < 0) return r;
  }
  return candidates[candidates.length - 1]!;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Reads a response body as UTF-8, failing once it passes `limit` bytes. */
export async function readLimited(body: AsyncIterable<Buffer | Uint8Array> & Discardable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      discardBody(body);
      throw new DiscoveryError(`response larger than ${limit} bytes`);
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}

interface Discardable {
  on(event: 'error', listener: () => void): unknown;
  destroy(): unknown;
}

/**
 * Drops a response body we do not read. undici's body emits an AbortError when destroyed: with
 * no listener that would be an uncaught exception, so one is added first.
 */
export function discardBody(body: Discardable): void {
  body.on('error', () => undefined);
  body.destroy();
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_CACHE_ENTRIES) map.delete(map.keys().next().value!);
}
