/**
 * Outgoing HTTP for URL previews, safe against server-side request forgery:
 *
 * - only http and https URLs, never ones url_preview_url_blacklist matches;
 * - the host name is resolved here, every address is checked against
 *   url_preview_ip_range_blacklist (url_preview_ip_range_whitelist wins), and the connection goes
 *   to a checked address: the check sits in the connector's DNS lookup, so there is no window
 *   between checking and connecting (DNS rebinding); literal IP hosts are checked before;
 * - redirects are followed by hand (at most 5), each target checked again;
 * - the body is read up to `maxBytes` and the whole exchange is bounded in time.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import type { Agent, Dispatcher } from 'undici';
import { loadUndici } from '../../../homeserver/src/http/undici.js';
import { MatrixError } from '../../../homeserver/src/http/errors.js';

export class BlockedError extends MatrixError {
  constructor(message: string) {
    super(403, 'M_FORBIDDEN', message);
  }
}

/** Address ranges (CIDR or single addresses) to refuse, with exceptions. */
export class IpFilter {
  private readonly black = new BlockList();
  private readonly white = new BlockList();

  constructor(blacklist: readonly string[], whitelist: readonly string[]) {
    for (const range of blacklist) addRange(this.black, range);
    for (const range of whitelist) addRange(this.white, range);
  }

  /** True when connecting to `ip` is allowed. */
  allowed(ip: string): boolean {
    const address = unmapIpv4(ip);
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (this.white.check(address, family)) return true;
    return !this.black.check(address, family);
  }
}

function addRange(list: BlockList, range: string): void {
  const [address, prefix] = range.split('/');
  const family = isIP(address!) === 6 ? 'ipv6' : 'ipv4';
  if (prefix === undefined) list.addAddress(address!, family);
  else list.addSubnet(address!, Number(prefix), family);
}

/** `::ffff:127.0.0.1` (or `::ffff:7f00:1`, as URLs write it) is 127.0.0.1. */
function unmapIpv4(ip: string): string {
  const dotted = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (dotted) return dotted[1]!;
  const hex = /^(?:0{0,4}:){0,5}:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
  if (!hex) return ip;
  const hi = parseInt(hex[1]!, 16);
  const lo = parseInt(hex[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** URL parts matched by url_preview_url_blacklist entries (Synapse's names). */
function urlParts(url: URL): Record<string, string> {
  return {
    scheme: url.protocol.replace(/:$/, ''),
    netloc: url.host,
    hostname: url.hostname,
    port: url.port,
    path: url.pathname,
    params: '',
    query: url.search.replace(/^\?/, ''),
    fragment: url.hash.replace(/^#/, ''),
    username: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
  };
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'i');
}

/** True when one entry of the blacklist matches every one of its keys. */
export function urlBlacklisted(url: URL, blacklist: readonly Record<string, string>[]): boolean {
  const parts = urlParts(url);
  return blacklist.some((entry) =>
    Object.entries(entry).every(([key, pattern]) => {
      const value = parts[key];
      if (value === undefined) return false;
      const re = pattern.startsWith('^') ? safeRegExp(pattern) : globToRegExp(pattern);
      return re ? re.test(value) : false;
    }),
  );
}

function safeRegExp(pattern: string): RegExp | undefined {
  try {
    return new RegExp(pattern);
  } catch {
    return undefined;
  }
}

export interface SafeFetchOptions {
  ipBlacklist: readonly string[];
  ipWhitelist: readonly string[];
  urlBlacklist: readonly Record<string, string>[];
  acceptLanguage: readonly string[];
  userAgent?: string;
  timeoutMs?: number;
  maxRedirects?: number;
}

export interface FetchedResource {
  /** The final URL, after redirects. */
  url: URL;
  status: number;
  contentType: string | null;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export class SafeFetcher {
  private readonly filter: IpFilter;
  private agent: Agent | undefined;
  private closed = false;

  constructor(private readonly opts: SafeFetchOptions) {
    this.filter = new IpFilter(opts.ipBlacklist, opts.ipWhitelist);
  }

  /** The connection pool, made on the first fetch (undici loads then: http/undici.ts). */
  private async dispatcher(): Promise<Agent> {
    const { Agent } = await loadUndici();
    if (this.closed) throw new MatrixError(503, 'M_UNKNOWN', 'The server is shutting down');
    if (this.agent) return this.agent;
    const filter = this.filter;
    this.agent = new Agent({
      connect: {
        timeout: 10_000,
        // Every connection's DNS answer passes the filter; the socket connects to what is left.
        lookup: ((hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback) => {
          dnsLookup(hostname, { all: true, family: options.family ?? 0 }, (err, addresses: LookupAddress[]) => {
            if (err) return callback(err, []);
            const ok = addresses.filter((a) => filter.allowed(a.address));
            if (ok.length === 0) return callback(new BlockedError(`${hostname} resolves to a blocked IP address`), []);
            if (options.all) return callback(null, ok);
            return callback(null, ok[0]!.address, ok[0]!.family);
          });
        }) as never,
      },
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
      connections: 16,
    });
    return this.agent;
  }

  /** Throws BlockedError (403) when the URL may not be fetched. */
  checkUrl(url: URL): void {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new MatrixError(400, 'M_INVALID_PARAM', 'Only http and https URLs can be previewed');
    if (urlBlacklisted(url, this.opts.urlBlacklist)) throw new BlockedError('This URL is blocked by the server');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0 && !this.filter.allowed(host)) throw new BlockedError('This IP address is blocked by the server');
  }

  /** GETs the URL (following redirects), reading at most `maxBytes` of the body. */
  async fetch(start: URL, maxBytes: number, accept = '*/*'): Promise<FetchedResource> {
    const signal = AbortSignal.timeout(this.opts.timeoutMs ?? 15_000);
    let url = start;
    for (let hop = 0; ; hop++) {
      this.checkUrl(url);
      let res: Dispatcher.ResponseData;
      try {
        const { request } = await loadUndici();
        res = await request(url, {
          dispatcher: await this.dispatcher(),
          method: 'GET',
          signal,
          headers: {
            'user-agent': this.opts.userAgent ?? 'Mozilla/5.0 (compatible; Hearth URL preview)',
            'accept-language': this.opts.acceptLanguage.join(', '),
            accept,
          },
        });
      } catch (err) {
        throw asFetchError(err);
      }
      const location = res.headers.location;
      if ([301, 302, 303, 307, 308].includes(res.statusCode) && typeof location === 'string') {
        res.body.resume();
        if (hop >= (this.opts.maxRedirects ?? 5)) throw new MatrixError(502, 'M_UNKNOWN', 'Too many redirects');
        try {
          url = new URL(location, url);
        } catch {
          throw new MatrixError(502, 'M_UNKNOWN', 'Invalid redirect');
        }
        continue;
      }
      if (res.statusCode < 200 || res.statusCode >= 300) {
        res.body.resume();
        throw new MatrixError(502, 'M_UNKNOWN', `The page answered HTTP ${res.statusCode}`);
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.body.destroy();
        throw new MatrixError(502, 'M_TOO_LARGE', 'The content is too large to preview');
      }
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of res.body) {
          size += (chunk as Buffer).length;
          if (size > maxBytes) {
            res.body.destroy();
            throw new MatrixError(502, 'M_TOO_LARGE', 'The content is too large to preview');
          }
          chunks.push(chunk as Buffer);
        }
      } catch (err) {
        throw asFetchError(err);
      }
      const type = res.headers['content-type'];
      return {
        url,
        status: res.statusCode,
        contentType: typeof type === 'string' ? type : null,
        headers: res.headers,
        body: Buffer.concat(chunks, size),
      };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.agent?.close();
  }
}

type LookupCallback = (err: Error | null, address: string | LookupAddress[], family?: number) => void;

function asFetchError(err: unknown): MatrixError {
  if (err instanceof MatrixError) return err;
  // undici wraps the connector's errors: find ours inside.
  let cause: unknown = err;
  for (let i = 0; i < 5 && cause; i++) {
    if (cause instanceof MatrixError) return cause;
    cause = (cause as { cause?: unknown }).cause;
  }
  const e = err as Error;
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return new MatrixError(504, 'M_UNKNOWN', 'Fetching the URL timed out');
  return new MatrixError(502, 'M_UNKNOWN', `Could not fetch the URL: ${e.message ?? String(err)}`);
}
