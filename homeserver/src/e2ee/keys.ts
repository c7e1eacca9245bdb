/**
 * Key distribution (spec "Key management API"): uploading a device's keys, querying the keys of
 * users' devices (with their cross-signing keys and the signatures the requester may see), and
 * claiming one-time keys. Users of other servers are asked over federation
 * (federation/queries-client.ts); an unreachable server gets a `failures` entry.
 */
import type { ServerContext } from '../context.js';
import type { JsonObject, JsonValue } from '../events/types.js';
import { claimRemoteKeys, queryRemoteKeys } from '../federation/queries-client.js';
import { badJson, invalidParam, tooLarge } from '../http/errors.js';
import { OneTimeKeyConflictError, type ClaimRequest, type StoredSignature } from '../storage/e2e-keys-store.js';
import { announceDeviceListChange } from './device-lists.js';
import { checkDeviceKeys, checkKeyMap, deviceEd25519, isObject, isUserId, serverOf } from './validation.js';

/** Users in one /keys/query (a client asks for the members of its encrypted rooms). */
export const MAX_QUERY_USERS = 5000;
/** Devices named in one /keys/query or /keys/claim. */
export const MAX_QUERY_DEVICES = 20_000;

export interface UploadAnswer {
  one_time_key_counts: Record<string, number>;
}

export async function uploadKeys(ctx: ServerContext, userId: string, deviceId: string, body: JsonObject): Promise<UploadAnswer> {
  const deviceKeys = body.device_keys === undefined || body.device_keys === null ? undefined : checkDeviceKeys(body.device_keys, userId, deviceId);
  let signingKey = deviceEd25519(deviceKeys, deviceId);
  if (signingKey === undefined) {
    const stored = await ctx.storage.e2eKeys.deviceKeys(new Map([[userId, [deviceId]]]));
    signingKey = deviceEd25519(stored.get(userId)?.get(deviceId)?.keys, deviceId);
  }
  const oneTimeKeys = checkKeyMap(body.one_time_keys, 'one_time_keys', userId, deviceId, signingKey);
  const fallbackKeys = checkKeyMap(body.fallback_keys, 'fallback_keys', userId, deviceId, signingKey);
  let result;
  try {
    result = await ctx.storage.e2eKeys.upload({ userId, deviceId, deviceKeys, oneTimeKeys, fallbackKeys });
  } catch (err) {
    if (err instanceof OneTimeKeyConflictError) throw invalidParam(err.message);
    throw err;
  }
  if (result.deviceListPosition !== undefined) await announceDeviceListChange(ctx, userId);
  return { one_time_key_counts: result.counts };
}

export interface QueryAnswer {
  device_keys: Record<string, Record<string, JsonObject>>;
  master_keys: Record<string, JsonObject>;
  self_signing_keys: Record<string, JsonObject>;
  user_signing_keys: Record<string, JsonObject>;
  failures: Record<string, JsonObject>;
}

/** Reads `device_keys` of a /keys/query body: user id → device ids (empty: all). */
export function parseQuery(raw: unknown): Map<string, string[]> {
  if (!isObject(raw)) throw badJson('device_keys must be an object');
  const entries = Object.entries(raw);
  if (entries.length > MAX_QUERY_USERS) throw tooLarge(`At most ${MAX_QUERY_USERS} users per query`);
  const out = new Map<string, string[]>();
  let devices = 0;
  for (const [userId, ids] of entries) {
    if (!isUserId(userId)) throw invalidParam(`${JSON.stringify(userId.slice(0, 100))} is not a user id`);
    if (!Array.isArray(ids) || !ids.every((d) => typeof d === 'string')) throw badJson('device_keys must map user ids to lists of device ids');
    devices += ids.length;
    out.set(userId, ids as string[]);
  }
  if (devices > MAX_QUERY_DEVICES) throw tooLarge(`At most ${MAX_QUERY_DEVICES} devices per query`);
  return out;
}

export async function queryKeys(ctx: ServerContext, requester: string, query: ReadonlyMap<string, readonly string[]>): Promise<QueryAnswer> {
  const serverName = ctx.config.server_name;
  const answer: QueryAnswer = { device_keys: {}, master_keys: {}, self_signing_keys: {}, user_signing_keys: {}, failures: {} };
  const local = new Map<string, readonly string[]>();
  const remote = new Map<string, readonly string[]>();
  for (const [userId, devices] of query) {
    if (serverOf(userId) === serverName) local.set(userId, devices);
    else remote.set(userId, devices);
  }
  if (remote.size > 0) await addRemoteAnswers(ctx, requester, answer, remote);
  if (local.size === 0) return answer;
  const users = [...local.keys()];
  const [deviceKeys, crossSigning, signatures] = await Promise.all([
    ctx.storage.e2eKeys.deviceKeys(local),
    ctx.storage.e2eKeys.crossSigningKeys(users),
    ctx.storage.e2eKeys.signaturesOf(users),
  ]);
  const sigsByTarget = new Map<string, StoredSignature[]>();
  for (const s of signatures) {
    const key = `${s.targetUserId}\u0000${s.targetKeyId}`;
    let list = sigsByTarget.get(key);
    if (!list) sigsByTarget.set(key, (list = []));
    list.push(s);
  }
  // Signatures of a user's keys the requester may see (spec "Key and signature security"): the
  // owner's own, and those the requester made; never another user's user-signing signatures.
  const withSignatures = (obj: JsonObject, userId: string, keyId: string): JsonObject => {
    const extra = (sigsByTarget.get(`${userId}\u0000${keyId}`) ?? []).filter((s) => s.signerUserId === userId || s.signerUserId === requester);
    if (extra.length === 0) return obj;
    const sigs: Record<string, Record<string, JsonValue>> = {};
    if (isObject(obj.signatures)) for (const [u, byKey] of Object.entries(obj.signatures)) if (isObject(byKey)) sigs[u] = { ...byKey };
    for (const s of extra) (sigs[s.signerUserId] ??= {})[s.signerKeyId] = s.signature;
    return { ...obj, signatures: sigs };
  };

  for (const userId of users) {
    const devices: Record<string, JsonObject> = {};
    for (const [deviceId, stored] of deviceKeys.get(userId) ?? []) {
      const keys = withSignatures(stored.keys, userId, deviceId);
      devices[deviceId] = stored.displayName !== null ? { ...keys, unsigned: { device_display_name: stored.displayName } } : keys;
    }
    answer.device_keys[userId] = devices;
    const cs = crossSigning.get(userId);
    const master = cs?.get('master');
    if (master) answer.master_keys[userId] = withSignatures(master.key, userId, master.publicKey);
    const selfSigning = cs?.get('self_signing');
    if (selfSigning) answer.self_signing_keys[userId] = selfSigning.key;
    const userSigning = cs?.get('user_signing');
    if (userSigning && userId === requester) answer.user_signing_keys[userId] = userSigning.key;
  }
  return answer;
}

/**
 * The answers of other servers for their users, added to `answer`, with the signatures the
 * requester made here of those users' master keys (with their user-signing key).
 */
async function addRemoteAnswers(ctx: ServerContext, requester: string, answer: QueryAnswer, remote: ReadonlyMap<string, readonly string[]>): Promise<void> {
  const fromRemote = await queryRemoteKeys(ctx, remote);
  Object.assign(answer.device_keys, fromRemote.device_keys);
  Object.assign(answer.self_signing_keys, fromRemote.self_signing_keys);
  Object.assign(answer.failures, fromRemote.failures);
  const users = Object.keys(fromRemote.master_keys);
  const mine = users.length > 0 ? (await ctx.storage.e2eKeys.signaturesOf(users)).filter((s) => s.signerUserId === requester) : [];
  for (const [userId, master] of Object.entries(fromRemote.master_keys)) {
    const publicKeys = isObject(master.keys) ? Object.values(master.keys) : [];
    const extra = mine.filter((s) => s.targetUserId === userId && publicKeys.includes(s.targetKeyId));
    if (extra.length === 0) {
      answer.master_keys[userId] = master;
      continue;
    }
    const sigs: Record<string, Record<string, JsonValue>> = {};
    if (isObject(master.signatures)) for (const [u, byKey] of Object.entries(master.signatures)) if (isObject(byKey)) sigs[u] = { ...byKey };
    for (const s of extra) (sigs[s.signerUserId] ??= {})[s.signerKeyId] = s.signature;
    answer.master_keys[userId] = { ...master, signatures: sigs };
  }
}

export interface ClaimAnswer {
  one_time_keys: Record<string, Record<string, Record<string, JsonValue>>>;
  failures: Record<string, JsonObject>;
}

/** Reads `one_time_keys` of a /keys/claim body: user id → device id → algorithm. */
export function parseClaim(raw: unknown): ClaimRequest[] {
  if (!isObject(raw)) throw badJson('one_time_keys must be an object');
  const out: ClaimRequest[] = [];
  for (const [userId, byDevice] of Object.entries(raw)) {
    if (!isUserId(userId)) throw invalidParam(`${JSON.stringify(userId.slice(0, 100))} is not a user id`);
    if (!isObject(byDevice)) throw badJson('one_time_keys must map user ids to device ids to algorithms');
    for (const [deviceId, algorithm] of Object.entries(byDevice)) {
      if (typeof algorithm !== 'string' || algorithm === '') throw badJson('one_time_keys must map device ids to algorithm names');
      out.push({ userId, deviceId, algorithm });
      if (out.length > MAX_QUERY_DEVICES) throw tooLarge(`At most ${MAX_QUERY_DEVICES} devices per claim`);
    }
  }
  return out;
}

export async function claimKeys(ctx: ServerContext, requests: readonly ClaimRequest[]): Promise<ClaimAnswer> {
  const serverName = ctx.config.server_name;
  const answer: ClaimAnswer = { one_time_keys: {}, failures: {} };
  const local = requests.filter((r) => serverOf(r.userId) === serverName);
  const remote = requests.filter((r) => serverOf(r.userId) !== serverName);
  if (remote.length > 0) {
    const fromRemote = await claimRemoteKeys(ctx, remote);
    Object.assign(answer.one_time_keys, fromRemote.one_time_keys);
    Object.assign(answer.failures, fromRemote.failures);
  }
  for (const c of await ctx.storage.e2eKeys.claim(local)) {
    ((answer.one_time_keys[c.userId] ??= {})[c.deviceId] ??= {})[c.keyId] = c.key;
  }
  return answer;
}
