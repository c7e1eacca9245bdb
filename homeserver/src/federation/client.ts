/**
 * Outgoing Server-Server requests: the destination is resolved by the spec's discovery rules
 * (federation/discovery.ts), each request is signed with `Authorization: X-Matrix`
 * (federation/request-signing.ts), and sent over HTTPS by undici with a keep-alive pool per
 * destination.
 *
 * Safety: every connection checks the addresses it really connects to against
 * `ip_range_blacklist` / `ip_range_whitelist` (federation/ip-ranges.ts), `federation_domain_whitelist`
 * limits the destinations, answers are capped in size, and every request has a deadline.
 * TLS certificates are verified unless `federation_verify_certificates` is false;
 * `federation_custom_ca_list` replaces the system's CAs, as in Synapse.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Agent, buildConnector, Dispatcher } from 'undici';
import { ConfigError, describeFsError, type HearthConfig } from '../config/load.js';
import { loadUndici } from '../http/undici.js';
import { HEARTH_VERSION } from '../version.js';
import { discardBody, hostForUrl, readLimited, ServerDiscovery, systemDnsResolver, type DnsResolver, type ResolvedServer } from './discovery.js';
import { BlockedAddressError, filteringLookup, IpRangeFilter } from './ip-ranges.js';
import type { ServerKeys } from './own-keys.js';
import { requestTarget, xMatrixAuthorization } from './request-signing.js';
import {
  FederationRequestError,
  type FederationClient,
  type FederationRequest,
  type FederationResponseStream,
} from './runtime.js';

export interface FederationClientDeps {
  config: HearthConfig;
  keys: ServerKeys;
  log: Logger;
  /** DNS used by discovery and connections (tests inject SRV records and names). */
  resolver?: DnsResolver;
  /** Port of `/.well-known/matrix/server` requests: 443 except in tests. */
  wellKnownPort?: number;
  /** Largest JSON answer accepted; default 100 MiB (state of large rooms). */
  maxResponseBytes?: number;
}

export const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_RESPONSE_BYTES = 100 * 1024 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;
const MAX_AGENTS = 1000;
const USER_AGENT = `Hearth/${HEARTH_VERSION}`;

export class HttpFederationClient implements FederationClient {
  readonly discovery: ServerDiscovery;
  private readonly filter: IpRangeFilter;
  private readonly resolver: DnsResolver;
  private readonly tls: { ca?: string[]; rejectUnauthorized: boolean };
  /** One agent (and so one keep-alive pool) per destination and resolved target. */
  private readonly agents = new Map<string, Agent>();
  private wellKnownAgent: Agent | undefined;
  private readonly maxResponseBytes: number;
  private closed = false;

  constructor(private readonly deps: FederationClientDeps) {
    this.filter = IpRangeFilter.fromConfig(deps.config);
    this.resolver = deps.resolver ?? systemDnsResolver;
    this.tls = tlsOptions(deps.config);
    this.maxResponseBytes = deps.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.discovery = new ServerDiscovery({
      resolver: this.resolver,
      dispatcher: { request: async (opts) => (await this.wellKnownDispatcher()).request(opts) },
      wellKnownPort: deps.wellKnownPort,
      log: deps.log,
    });
  }

  async request<T = unknown>(destination: string, req: FederationRequest): Promise<T> {
    const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    try {
      const res = await this.send(destination, req, deadline.signal, timeoutMs);
      const text = await this.readBody(destination, res, this.maxResponseBytes);
      if (res.statusCode < 200 || res.statusCode >= 300) throw errorFromResponse(destination, req, res.statusCode, text);
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new FederationRequestError(`${describe(req)} to ${destination}: the answer is not JSON`, destination, res.statusCode);
      }
    } catch (err) {
      throw asRequestError(destination, req, err, deadline.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  async requestStream(destination: string, req: FederationRequest): Promise<FederationResponseStream> {
    const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadline = new AbortController();
    // The deadline covers the wait for the headers; after that, a body idle for timeoutMs fails.
    const timer = setTimeout(() => deadline.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    try {
      const res = await this.send(destination, req, deadline.signal, timeoutMs);
      if (res.statusCode < 200 || res.statusCode >= 300) {
        const text = await this.readBody(destination, res, 64 * 1024);
        throw errorFromResponse(destination, req, res.statusCode, text);
      }
      // A caller that destroys the body must not crash the process with undici's AbortError.
      res.body.on('error', (err) => this.deps.log.debug({ err, destination }, 'federation response stream ended early'));
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (err) {
      throw asRequestError(destination, req, err, deadline.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const agents = [...this.agents.values(), ...(this.wellKnownAgent ? [this.wellKnownAgent] : [])];
    this.agents.clear();
    // Shutdown does not wait for destinations that are slow to answer.
    await Promise.allSettled(agents.map((a) => a.destroy()));
  }

  private async send(
    destination: string,
    req: FederationRequest,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<Dispatcher.ResponseData> {
    if (this.closed) throw new FederationRequestError('the federation client is closed', destination);
    this.assertDestinationAllowed(destination);
    const target = await untilAborted(this.discovery.resolve(destination), signal);
    const uri = requestTarget(req.path, req.query);
    // POST and PUT always carry a JSON object, possibly empty (spec "API standards").
    const content = req.body ?? (req.method === 'POST' || req.method === 'PUT' ? {} : undefined);
    const origin = this.deps.config.server_name;
    const headers: Record<string, string> = {
      host: target.hostHeader,
      authorization: xMatrixAuthorization({ method: req.method, uri, origin, destination, content }, this.deps.keys.signingKey),
      'user-agent': USER_AGENT,
      accept: 'application/json',
    };
    if (content !== undefined) headers['content-type'] = 'application/json';
    const agent = await this.agentFor(destination, target);
    const pending = agent.request({
      origin: `https://${hostForUrl(target.host)}:${target.port}`,
      path: uri,
      method: req.method,
      headers,
      body: content === undefined ? null : JSON.stringify(content),
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    return untilAborted(pending, signal, (late) => discardBody(late.body));
  }

  private assertDestinationAllowed(destination: string): void {
    const whitelist = this.deps.config.federation_domain_whitelist;
    if (whitelist && destination !== this.deps.config.server_name && !whitelist.includes(destination)) {
      throw new FederationRequestError(`${destination} is not in federation_domain_whitelist`, destination);
    }
  }

  private async wellKnownDispatcher(): Promise<Agent> {
    const { Agent, buildConnector } = await loadUndici();
    if (this.closed) throw new Error('the federation client is closed');
    return (this.wellKnownAgent ??= new Agent({ connect: this.connector(buildConnector, undefined), keepAliveTimeout: 10_000 }));
  }

  private async agentFor(destination: string, target: ResolvedServer): Promise<Agent> {
    const { Agent, buildConnector } = await loadUndici();
    const key = `${destination}\n${target.host}\n${target.port}\n${target.tlsServername ?? ''}`;
    let agent = this.agents.get(key);
    if (!agent) {
      agent = new Agent({
        connect: this.connector(buildConnector, target.tlsServername),
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 10 * 60_000,
      });
      this.agents.set(key, agent);
      if (this.agents.size > MAX_AGENTS) {
        const [oldestKey, oldest] = this.agents.entries().next().value!;
        this.agents.delete(oldestKey);
        void oldest.close().catch(() => undefined);
      }
    }
    return agent;
  }

  /**
   * Opens TLS connections with our CA and verification settings, SNI `servername` (default: the
   * Host header's hostname), and the address filter on every address actually connected to.
   */
  private connector(build: typeof buildConnector, servername: string | undefined): buildConnector.connector {
    const base = build({
      ...this.tls,
      timeout: CONNECT_TIMEOUT_MS,
      lookup: filteringLookup(this.filter, (hostname) => this.resolver.lookup(hostname)),
    });
    return (opts, callback) => {
      const host = opts.hostname.replace(/^\[(.*)\]$/, '$1');
      // Sockets skip the lookup for IP literals: check those here.
      if (isIP(host) !== 0 && !this.filter.isAllowed(host)) {
        callback(new BlockedAddressError(`refusing to connect to ${host}: the address is in ip_range_blacklist`), null);
        return;
      }
      base(servername ? { ...opts, servername } : opts, callback);
    };
  }

  private async readBody(destination: string, res: Dispatcher.ResponseData, limit: number): Promise<string> {
    try {
      return await readLimited(res.body, limit);
    } catch (err) {
      throw new FederationRequestError(`answer of ${destination}: ${(err as Error).message}`, destination, res.statusCode);
    }
  }
}

/**
 * undici does not give up a connection attempt when the signal aborts (only its own connect
 * timeout does): the caller's deadline must not wait for it.
 */
function untilAborted<T>(pending: Promise<T>, signal: AbortSignal, discard?: (late: T) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (res) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) discard?.(res);
        else resolve(res);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function tlsOptions(config: HearthConfig): { ca?: string[]; rejectUnauthorized: boolean } {
  const ca = config.federation_custom_ca_list.map((path) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`federation_custom_ca_list: cannot read ${path}: ${describeFsError(err)}`);
    }
  });
  return { ...(ca.length > 0 ? { ca } : {}), rejectUnauthorized: config.federation_verify_certificates };
}

function describe(req: FederationRequest): string {
  return `${req.method} ${req.path}`;
}

function errorFromResponse(destination: string, req: FederationRequest, status: number, text: string): FederationRequestError {
  let body: unknown = text;
  let errcode: string | undefined;
  let message = `${describe(req)} to ${destination}: HTTP ${status}`;
  try {
    body = JSON.parse(text);
    const e = body as { errcode?: unknown; error?: unknown };
    if (typeof e.errcode === 'string') errcode = e.errcode;
    if (errcode) message += ` ${errcode}`;
    if (typeof e.error === 'string') message += `: ${e.error}`;
  } catch {
    // Not JSON (a proxy's HTML page): keep the text.
  }
  return new FederationRequestError(message, destination, status, errcode, body);
}

function asRequestError(destination: string, req: FederationRequest, err: unknown, signal: AbortSignal): FederationRequestError {
  if (err instanceof FederationRequestError) return err;
  if (signal.aborted) {
    const reason = signal.reason instanceof Error ? signal.reason.message : 'timed out';
    return new FederationRequestError(`${describe(req)} to ${destination}: ${reason}`, destination);
  }
  const e = err as Error & { code?: string; cause?: { message?: string } };
  const detail = e.code && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : e.message;
  const wrapped = new FederationRequestError(`${describe(req)} to ${destination}: ${detail}`, destination);
  (wrapped as { cause?: unknown }).cause = err;
  return wrapped;
}
