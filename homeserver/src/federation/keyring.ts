/**
 * Other servers' verify keys (server-server API, "Retrieving server keys"), and checking
 * signatures with them.
 *
 * A key is looked up in memory, then in the `server_keys` table, and fetched when unknown or not
 * valid at the time asked: first from the server itself (`GET /_matrix/key/v2/server`, which must
 * be self-signed and name the server), then through each of `trusted_key_servers`
 * (`POST /_matrix/key/v2/query`, signed by the notary with a configured key). Concurrent fetches
 * for one server share one request. Our own signatures are checked with our own keys, locally.
 *
 * Validity: a key under `verify_keys` is valid until the response's `valid_until_ts`, at most 7
 * days after we fetched it (spec: "the lesser of this field and 7 days into the future"); a key
 * under `old_verify_keys` until its `expired_ts`.
 */
import type { Logger } from 'pino';
import type { HearthConfig } from '../config/load.js';
import type { JsonObject } from '../events/types.js';
import { publicKeyBase64, verifyJsonSignature } from '../events/signing.js';
import type { Storage } from '../storage/database.js';
import type { StoredServerKey } from '../storage/server-keys-store.js';
import type { ServerKeys } from './own-keys.js';
import { SignatureError, type FederationClient, type Keyring } from './runtime.js';

export interface KeyringDeps {
  config: HearthConfig;
  keys: ServerKeys;
  storage: Storage;
  client: FederationClient;
  log: Logger;
  now?: () => number;
  /** After a fetch for a server, further fetches for it wait this long (default 30 s). */
  minRefetchIntervalMs?: number;
}

/** A key response (direct or from a notary) as the spec defines it. */
export interface ServerKeyResponse extends JsonObject {
  server_name: string;
  valid_until_ts: number;
  verify_keys: { [keyId: string]: { key: string } };
  old_verify_keys: { [keyId: string]: { key: string; expired_ts: number } };
  signatures: { [server: string]: { [keyId: string]: string } };
}

export class KeyFetchError extends Error {
  override name = 'KeyFetchError';
}

const SEVEN_DAYS = 7 * 24 * 60 * 60 * 1000;
const FETCH_TIMEOUT_MS = 20_000;
const MAX_MEMORY_SERVERS = 10_000;

export class RemoteKeyring implements Keyring {
  private readonly now: () => number;
  private readonly minRefetchIntervalMs: number;
  /** serverName → keyId → key. */
  private readonly memory = new Map<string, Map<string, StoredServerKey>>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly lastFetch = new Map<string, number>();
  /**
   * The newest self-signed key response of each server, kept for the notary endpoint (which
   * must pass the origin's signature on). In memory only: after a restart it is fetched again.
   */
  private readonly signedResponses = new Map<string, ServerKeyResponse>();

  constructor(private readonly deps: KeyringDeps) {
    this.now = deps.now ?? Date.now;
    this.minRefetchIntervalMs = deps.minRefetchIntervalMs ?? 30_000;
    if (deps.config.trusted_key_servers.some((n) => n.server_name === 'matrix.org') && !deps.config.suppress_key_server_warning) {
      deps.log.warn(
        'trusted_key_servers includes matrix.org: other servers\' keys may be obtained through it (set suppress_key_server_warning: true to silence this)',
      );
    }
    for (const notary of deps.config.trusted_key_servers) {
      if (!notary.verify_keys && !notary.accept_keys_insecurely && !deps.config.federation_verify_certificates) {
        deps.log.warn(
          `trusted_key_servers: ${notary.server_name} has no verify_keys and certificates are not verified: it is not used (set accept_keys_insecurely to use it anyway)`,
        );
      }
    }
  }

  async verifySignedJson(serverName: string, json: JsonObject, validAtTs: number = this.now()): Promise<void> {
    const signatures = json.signatures;
    const byServer =
      typeof signatures === 'object' && signatures !== null && !Array.isArray(signatures) ? signatures[serverName] : undefined;
    const keyIds =
      typeof byServer === 'object' && byServer !== null && !Array.isArray(byServer)
        ? Object.keys(byServer).filter((k) => k.startsWith('ed25519:'))
        : [];
    if (keyIds.length === 0) throw new SignatureError(`not signed by ${serverName}`);
    let lastProblem = '';
    for (const keyId of keyIds) {
      const key = await this.keyValidAt(serverName, keyId, validAtTs);
      if (!key) {
        lastProblem = `no key ${keyId} of ${serverName} valid at ${validAtTs} could be found`;
        continue;
      }
      if (!verifyJsonSignature(json, serverName, keyId, key)) {
        throw new SignatureError(`the signature of ${serverName} with ${keyId} does not verify`);
      }
      return;
    }
    throw new SignatureError(lastProblem);
  }

  /**
   * The public key (unpadded base64) of `serverName`'s `keyId` valid at `validAtTs`, fetching it
   * when needed; undefined when no such key can be found.
   */
  async keyValidAt(serverName: string, keyId: string, validAtTs: number): Promise<string | undefined> {
    if (serverName === this.deps.config.server_name) return this.ownKeyValidAt(keyId, validAtTs);
    const known = await this.knownKey(serverName, keyId);
    if (known && isValidAt(known, validAtTs)) return known.publicKey;
    await this.fetchKeys(serverName, keyId, validAtTs);
    const fetched = await this.knownKey(serverName, keyId);
    return fetched && isValidAt(fetched, validAtTs) ? fetched.publicKey : undefined;
  }

  /**
   * The key responses of `serverName` as it signed them, for the notary endpoint
   * (`/_matrix/key/v2/query`): fetched again when the one we hold expires before
   * `minimumValidUntilTs`; the one we hold when that fails; none when we never had one.
   */
  async keyResponsesFor(serverName: string, minimumValidUntilTs: number): Promise<ServerKeyResponse[]> {
    const held = this.signedResponses.get(serverName);
    if (!held || held.valid_until_ts < minimumValidUntilTs) await this.fetchKeys(serverName, undefined, minimumValidUntilTs);
    const response = this.signedResponses.get(serverName);
    return response ? [response] : [];
  }

  private ownKeyValidAt(keyId: string, validAtTs: number): string | undefined {
    const current = this.deps.keys.verifyKeys.find((k) => k.keyId === keyId);
    if (current) return publicKeyBase64(current);
    const old = this.deps.keys.oldVerifyKeys[keyId];
    return old && validAtTs < old.expired_ts ? old.key : undefined;
  }

  private async knownKey(serverName: string, keyId: string): Promise<StoredServerKey | undefined> {
    const inMemory = this.memory.get(serverName)?.get(keyId);
    if (inMemory) return inMemory;
    const stored = await this.deps.storage.serverKeys.getKey(serverName, keyId);
    if (stored) this.remember([stored]);
    return stored;
  }

  private remember(keys: readonly StoredServerKey[]): void {
    for (const key of keys) {
      let byId = this.memory.get(key.serverName);
      if (!byId) {
        byId = new Map();
        this.memory.set(key.serverName, byId);
        if (this.memory.size > MAX_MEMORY_SERVERS) this.memory.delete(this.memory.keys().next().value!);
      }
      byId.set(key.keyId, key);
    }
  }

  /** One fetch per server at a time, and not more often than minRefetchIntervalMs. */
  private async fetchKeys(serverName: string, keyId: string | undefined, validAtTs: number): Promise<void> {
    const running = this.inFlight.get(serverName);
    if (running) return running;
    const last = this.lastFetch.get(serverName);
    if (last !== undefined && this.now() - last < this.minRefetchIntervalMs) return;
    const fetching = this.fetchFromSources(serverName, keyId, validAtTs).finally(() => {
      this.inFlight.delete(serverName);
      this.lastFetch.delete(serverName);
      this.lastFetch.set(serverName, this.now());
      if (this.lastFetch.size > MAX_MEMORY_SERVERS) this.lastFetch.delete(this.lastFetch.keys().next().value!);
    });
    this.inFlight.set(serverName, fetching);
    return fetching;
  }

  private async fetchFromSources(serverName: string, keyId: string | undefined, validAtTs: number): Promise<void> {
    const satisfied = (keys: StoredServerKey[]) =>
      keyId === undefined ? keys.some((k) => k.expiredTs === null) : keys.some((k) => k.keyId === keyId && isValidAt(k, validAtTs));
    try {
      const keys = await this.fetchDirect(serverName);
      await this.store(keys);
      if (satisfied(keys)) return;
    } catch (err) {
      this.deps.log.info({ server: serverName, err: (err as Error).message }, 'fetching keys directly failed');
    }
    for (const notary of this.deps.config.trusted_key_servers) {
      if (notary.server_name === serverName) continue;
      if (!notary.verify_keys && !notary.accept_keys_insecurely && !this.deps.config.federation_verify_certificates) continue;
      try {
        const keys = await this.fetchFromNotary(notary, serverName, keyId, validAtTs);
        await this.store(keys);
        if (satisfied(keys)) return;
      } catch (err) {
        this.deps.log.info({ server: serverName, notary: notary.server_name, err: (err as Error).message }, 'fetching keys from a notary failed');
      }
    }
  }

  /** Stores fetched keys, except where an older answer (a notary's cache) would shorten a validity we know. */
  private async store(keys: StoredServerKey[]): Promise<void> {
    const newer: StoredServerKey[] = [];
    for (const key of keys) {
      const known = await this.knownKey(key.serverName, key.keyId);
      const older = known && known.expiredTs === null && key.expiredTs === null && known.validUntilTs > key.validUntilTs;
      if (!older) newer.push(key);
    }
    if (newer.length === 0) return;
    await this.deps.storage.serverKeys.storeKeys(newer);
    this.remember(newer);
  }

  private async fetchDirect(serverName: string): Promise<StoredServerKey[]> {
    const response = await this.deps.client.request<unknown>(serverName, {
      method: 'GET',
      path: '/_matrix/key/v2/server',
      timeoutMs: FETCH_TIMEOUT_MS,
    });
    const keys = keysOfResponse(response, serverName, this.now());
    this.keepSignedResponse(serverName, response as ServerKeyResponse);
    return keys;
  }

  /** Keeps the newest response, with only the origin's own signatures. */
  private keepSignedResponse(serverName: string, response: ServerKeyResponse): void {
    const held = this.signedResponses.get(serverName);
    if (held && held.valid_until_ts > response.valid_until_ts) return;
    this.signedResponses.delete(serverName);
    this.signedResponses.set(serverName, { ...response, signatures: { [serverName]: response.signatures[serverName]! } });
    if (this.signedResponses.size > MAX_MEMORY_SERVERS) this.signedResponses.delete(this.signedResponses.keys().next().value!);
  }

  private async fetchFromNotary(
    notary: HearthConfig['trusted_key_servers'][number],
    serverName: string,
    keyId: string | undefined,
    validAtTs: number,
  ): Promise<StoredServerKey[]> {
    const criteria = { minimum_valid_until_ts: validAtTs };
    const answer = await this.deps.client.request<{ server_keys?: unknown }>(notary.server_name, {
      method: 'POST',
      path: '/_matrix/key/v2/query',
      body: { server_keys: { [serverName]: keyId ? { [keyId]: criteria } : {} } },
      timeoutMs: FETCH_TIMEOUT_MS,
    });
    if (!Array.isArray(answer.server_keys)) throw new KeyFetchError(`${notary.server_name}: the answer has no server_keys list`);
    const keys: StoredServerKey[] = [];
    for (const response of answer.server_keys) {
      if (!isObject(response) || response.server_name !== serverName) continue;
      if (notary.verify_keys && !signedByOneOf(response, notary.server_name, notary.verify_keys)) {
        throw new KeyFetchError(`${notary.server_name}: a key response is not signed with its configured verify_keys`);
      }
      // Without configured verify_keys: the notary's own keys, fetched like any server's, must verify its signature.
      if (!notary.verify_keys && !(await this.signedByNotary(notary.server_name, response))) {
        this.deps.log.info({ server: serverName, notary: notary.server_name }, 'ignoring a key response the notary did not sign validly');
        continue;
      }
      keys.push(...keysOfResponse(response, serverName, this.now()));
      this.keepSignedResponse(serverName, response as ServerKeyResponse);
    }
    return keys;
  }

  private async signedByNotary(notary: string, response: JsonObject): Promise<boolean> {
    try {
      await this.verifySignedJson(notary, response);
      return true;
    } catch {
      return false;
    }
  }
}

/** The keys of a key response, after checking it names `serverName` and is signed by it. */
export function keysOfResponse(response: unknown, serverName: string, fetchedAt: number): StoredServerKey[] {
  const r = validKeyResponse(response, serverName);
  const keys: StoredServerKey[] = [];
  for (const [keyId, { key }] of Object.entries(r.verify_keys)) {
    keys.push({ serverName, keyId, publicKey: key, validUntilTs: r.valid_until_ts, expiredTs: null, fetchedAt });
  }
  for (const [keyId, { key, expired_ts }] of Object.entries(r.old_verify_keys)) {
    if (r.verify_keys[keyId]) continue;
    keys.push({ serverName, keyId, publicKey: key, validUntilTs: expired_ts, expiredTs: expired_ts, fetchedAt });
  }
  return keys;
}

/**
 * Checks the shape of a key response and its self-signature: every signature of the server
 * made with one of the listed verify_keys must verify, and there must be at least one.
 */
export function validKeyResponse(response: unknown, serverName: string): ServerKeyResponse {
  if (!isObject(response)) throw new KeyFetchError(`${serverName}: the key response is not a JSON object`);
  if (response.server_name !== serverName) {
    throw new KeyFetchError(`${serverName}: the key response is for ${JSON.stringify(response.server_name)}`);
  }
  if (typeof response.valid_until_ts !== 'number') throw new KeyFetchError(`${serverName}: the key response has no valid_until_ts`);
  const verifyKeys = response.verify_keys;
  if (!isObject(verifyKeys) || !Object.values(verifyKeys).every((v) => isObject(v) && typeof v.key === 'string')) {
    throw new KeyFetchError(`${serverName}: malformed verify_keys`);
  }
  const oldKeys = response.old_verify_keys ?? {};
  if (
    !isObject(oldKeys) ||
    !Object.values(oldKeys).every((v) => isObject(v) && typeof v.key === 'string' && typeof v.expired_ts === 'number')
  ) {
    throw new KeyFetchError(`${serverName}: malformed old_verify_keys`);
  }
  const keys = Object.fromEntries(Object.entries(verifyKeys).map(([id, v]) => [id, (v as { key: string }).key]));
  const sigs = isObject(response.signatures) ? response.signatures[serverName] : undefined;
  const signedWith = isObject(sigs) ? Object.keys(sigs).filter((id) => keys[id] !== undefined) : [];
  if (signedWith.length === 0) throw new KeyFetchError(`${serverName}: the key response is not signed by the server`);
  for (const keyId of signedWith) {
    if (!verifyJsonSignature(response, serverName, keyId, keys[keyId]!)) {
      throw new KeyFetchError(`${serverName}: the key response's signature with ${keyId} does not verify`);
    }
  }
  return { ...response, old_verify_keys: oldKeys } as ServerKeyResponse;
}

function signedByOneOf(json: JsonObject, serverName: string, keys: Record<string, string>): boolean {
  return Object.entries(keys).some(([keyId, key]) => verifyJsonSignature(json, serverName, keyId, key));
}

/** `valid_until_ts`, capped at 7 days after the fetch (spec, room versions 5+). */
export function effectiveValidUntil(key: StoredServerKey): number {
  return key.expiredTs !== null ? key.expiredTs : Math.min(key.validUntilTs, key.fetchedAt + SEVEN_DAYS);
}

function isValidAt(key: StoredServerKey, ts: number): boolean {
  return key.expiredTs !== null ? ts < key.expiredTs : ts <= effectiveValidUntil(key);
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
