/**
 * Asking other servers on behalf of local clients (Server-Server API "Querying for information",
 * "Device Management", "End-to-End Encryption", "Public Room Directory"): profiles, room
 * aliases, public rooms, device keys and one-time keys of remote users; and keeping the cached
 * device lists of remote users (remote_device_lists) in sync.
 */
import type { ServerContext } from '../context.js';
import type { JsonObject, JsonValue } from '../events/types.js';
import { MatrixError } from '../http/errors.js';
import { markDeviceListsChanged } from '../storage/device-lists-store.js';
import { federationQueuesOf, type RemoteDevice, type RemoteDeviceList } from '../storage/federation-queues-store.js';
import { announceDeviceListChange } from '../e2ee/device-lists.js';
import { FederationRequestError, type FederationRequest } from './runtime.js';

/** Queries a client waits for: short, a client is waiting (the spec's examples use 10 s). */
export const QUERY_TIMEOUT_MS = 10_000;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A query to `destination`; a remote Matrix error (4xx) is passed on as it came. A server that
 * cannot be reached (or answers 5xx) gives 404 M_NOT_FOUND: the look-ups that use this (profile,
 * alias, public rooms) have 404 as their only "not found" answer in the spec, and clients
 * handle it; the message says why.
 */
export async function queryRemote<T = JsonObject>(ctx: ServerContext, destination: string, req: FederationRequest): Promise<T> {
  try {
    return await ctx.federation.client.request<T>(destination, { timeoutMs: QUERY_TIMEOUT_MS, ...req });
  } catch (err) {
    throw asClientError(err, destination);
  }
}

export function asClientError(err: unknown, destination: string): MatrixError {
  if (err instanceof MatrixError) return err;
  if (err instanceof FederationRequestError && err.status !== undefined && err.status >= 400 && err.status < 500 && err.errcode) {
    const body = isObject(err.body) && typeof err.body.error === 'string' ? err.body.error : err.message;
    return new MatrixError(err.status, err.errcode, body);
  }
  return new MatrixError(404, 'M_NOT_FOUND', `Could not get an answer from ${destination}: ${(err as Error).message}`);
}

/** GET /_matrix/federation/v1/query/profile. */
export async function remoteProfile(ctx: ServerContext, userId: string, field?: string): Promise<JsonObject> {
  const query: Record<string, string> = { user_id: userId };
  if (field !== undefined) query.field = field;
  return queryRemote(ctx, serverName(userId), { method: 'GET', path: '/_matrix/federation/v1/query/profile', query });
}

/** GET /_matrix/federation/v1/query/directory → { room_id, servers }. */
export async function remoteDirectory(ctx: ServerContext, alias: string): Promise<{ room_id: string; servers: string[] }> {
  const answer = await queryRemote<JsonObject>(ctx, serverName(alias), {
    method: 'GET',
    path: '/_matrix/federation/v1/query/directory',
    query: { room_alias: alias },
  });
  if (typeof answer.room_id !== 'string' || !Array.isArray(answer.servers)) {
    throw new MatrixError(404, 'M_NOT_FOUND', 'The remote server answered the directory query with a malformed response');
  }
  return { room_id: answer.room_id, servers: answer.servers.filter((s): s is string => typeof s === 'string') };
}

/** The public rooms of another server: GET with limit/since, or POST with a filter. */
export async function remotePublicRooms(ctx: ServerContext, server: string, params: JsonObject, withFilter: boolean): Promise<JsonObject> {
  const path = '/_matrix/federation/v1/publicRooms';
  if (withFilter) return queryRemote(ctx, server, { method: 'POST', path, body: params });
  const query: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(params)) if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') query[k] = v;
  return queryRemote(ctx, server, { method: 'GET', path, query });
}

export interface RemoteKeysAnswer {
  device_keys: Record<string, Record<string, JsonObject>>;
  master_keys: Record<string, JsonObject>;
  self_signing_keys: Record<string, JsonObject>;
  failures: Record<string, JsonObject>;
}

/**
 * /keys/query for users of other servers, one request per server in parallel. An unreachable
 * server is listed in `failures`; its users are answered from the device list cache when it
 * has them.
 */
export async function queryRemoteKeys(ctx: ServerContext, query: ReadonlyMap<string, readonly string[]>): Promise<RemoteKeysAnswer> {
  const answer: RemoteKeysAnswer = { device_keys: {}, master_keys: {}, self_signing_keys: {}, failures: {} };
  const byServer = new Map<string, Record<string, string[]>>();
  for (const [userId, devices] of query) {
    const server = serverName(userId);
    let users = byServer.get(server);
    if (!users) byServer.set(server, (users = {}));
    users[userId] = [...devices];
  }
  await Promise.all(
    [...byServer].map(async ([server, users]) => {
      try {
        const remote = await ctx.federation.client.request<JsonObject>(server, {
          method: 'POST',
          path: '/_matrix/federation/v1/user/keys/query',
          body: { device_keys: users },
          timeoutMs: QUERY_TIMEOUT_MS,
        });
        mergeRemoteKeys(answer, remote, server, Object.keys(users));
      } catch (err) {
        answer.failures[server] = failureOf(err);
        await answerFromCache(ctx, answer, users);
      }
    }),
  );
  return answer;
}

/** Takes from a remote answer only what concerns users of that server who were asked about. */
function mergeRemoteKeys(answer: RemoteKeysAnswer, remote: JsonObject, server: string, asked: string[]): void {
  const ours = (userId: string) => asked.includes(userId) && serverName(userId) === server;
  if (isObject(remote.device_keys)) {
    for (const [userId, devices] of Object.entries(remote.device_keys)) {
      if (!ours(userId) || !isObject(devices)) continue;
      const checked: Record<string, JsonObject> = {};
      for (const [deviceId, keys] of Object.entries(devices)) {
        if (isObject(keys) && keys.user_id === userId && keys.device_id === deviceId) checked[deviceId] = keys;
      }
      answer.device_keys[userId] = checked;
    }
  }
  for (const field of ['master_keys', 'self_signing_keys'] as const) {
    const keys = remote[field];
    if (!isObject(keys)) continue;
    for (const [userId, key] of Object.entries(keys)) if (ours(userId) && isObject(key) && key.user_id === userId) answer[field][userId] = key;
  }
}

async function answerFromCache(ctx: ServerContext, answer: RemoteKeysAnswer, users: Record<string, string[]>): Promise<void> {
  const cached = await federationQueuesOf(ctx.storage).remoteDeviceLists(Object.keys(users));
  for (const [userId, list] of cached) {
    const wanted = users[userId] ?? [];
    const devices: Record<string, JsonObject> = {};
    for (const [deviceId, d] of Object.entries(list.devices)) {
      if (!d.keys || (wanted.length > 0 && !wanted.includes(deviceId))) continue;
      devices[deviceId] = d.device_display_name ? { ...d.keys, unsigned: { device_display_name: d.device_display_name } } : d.keys;
    }
    answer.device_keys[userId] = devices;
    if (list.masterKey) answer.master_keys[userId] = list.masterKey;
    if (list.selfSigningKey) answer.self_signing_keys[userId] = list.selfSigningKey;
  }
}

/**
 * The master keys of users of other servers (for signing them with a user-signing key): asked
 * from their servers, the cached ones for servers that do not answer.
 */
export async function remoteMasterKeys(ctx: ServerContext, userIds: readonly string[]): Promise<Map<string, { publicKey: string; key: JsonObject }>> {
  const out = new Map<string, { publicKey: string; key: JsonObject }>();
  if (userIds.length === 0) return out;
  const answer = await queryRemoteKeys(ctx, new Map(userIds.map((u) => [u, []])));
  for (const [userId, key] of Object.entries(answer.master_keys)) {
    const keys = isObject(key.keys) ? Object.values(key.keys) : [];
    if (keys.length === 1 && typeof keys[0] === 'string') out.set(userId, { publicKey: keys[0], key });
  }
  return out;
}

/** /keys/claim for users of other servers, one request per server in parallel. */
export async function claimRemoteKeys(
  ctx: ServerContext,
  claims: readonly { userId: string; deviceId: string; algorithm: string }[],
): Promise<{ one_time_keys: Record<string, Record<string, Record<string, JsonValue>>>; failures: Record<string, JsonObject> }> {
  const out = { one_time_keys: {} as Record<string, Record<string, Record<string, JsonValue>>>, failures: {} as Record<string, JsonObject> };
  const byServer = new Map<string, Record<string, Record<string, string>>>();
  for (const c of claims) {
    const server = serverName(c.userId);
    let users = byServer.get(server);
    if (!users) byServer.set(server, (users = {}));
    (users[c.userId] ??= {})[c.deviceId] = c.algorithm;
  }
  await Promise.all(
    [...byServer].map(async ([server, users]) => {
      try {
        const remote = await ctx.federation.client.request<JsonObject>(server, {
          method: 'POST',
          path: '/_matrix/federation/v1/user/keys/claim',
          body: { one_time_keys: users },
          timeoutMs: QUERY_TIMEOUT_MS,
        });
        if (!isObject(remote.one_time_keys)) return;
        for (const [userId, byDevice] of Object.entries(remote.one_time_keys)) {
          if (!users[userId] || !isObject(byDevice)) continue;
          for (const [deviceId, keys] of Object.entries(byDevice)) {
            if (users[userId]![deviceId] !== undefined && isObject(keys)) (out.one_time_keys[userId] ??= {})[deviceId] = keys;
          }
        }
      } catch (err) {
        out.failures[server] = failureOf(err);
      }
    }),
  );
  return out;
}

function failureOf(err: unknown): JsonObject {
  if (err instanceof FederationRequestError && err.status !== undefined) return { status: err.status, message: err.message };
  return { status: 503, message: (err as Error).message ?? 'unreachable' };
}

// ---------------------------------------------------------------- remote device lists

const resyncs = new WeakMap<ServerContext, Map<string, Promise<void>>>();

/**
 * Fetches a remote user's whole device list (GET /user/devices/{userId}) into the cache and
 * tells local users sharing a room that it changed. Concurrent calls for a user share one request.
 */
export function resyncRemoteDevices(ctx: ServerContext, userId: string): Promise<void> {
  let running = resyncs.get(ctx);
  if (!running) resyncs.set(ctx, (running = new Map()));
  const existing = running.get(userId);
  if (existing) return existing;
  const map = running;
  const p = fetchRemoteDevices(ctx, userId).finally(() => map.delete(userId));
  map.set(userId, p);
  return p;
}

async function fetchRemoteDevices(ctx: ServerContext, userId: string): Promise<void> {
  const server = serverName(userId);
  const answer = await ctx.federation.client.request<JsonObject>(server, {
    method: 'GET',
    path: `/_matrix/federation/v1/user/devices/${encodeURIComponent(userId)}`,
    timeoutMs: QUERY_TIMEOUT_MS,
  });
  if (answer.user_id !== userId || typeof answer.stream_id !== 'number' || !Array.isArray(answer.devices)) {
    throw new Error(`malformed /user/devices answer from ${server}`);
  }
  const devices: Record<string, RemoteDevice> = {};
  for (const d of answer.devices) {
    if (!isObject(d) || typeof d.device_id !== 'string') continue;
    const keys = isObject(d.keys) && d.keys.user_id === userId && d.keys.device_id === d.device_id ? d.keys : null;
    devices[d.device_id] = { keys, ...(typeof d.device_display_name === 'string' ? { device_display_name: d.device_display_name } : {}) };
  }
  await storeRemoteDeviceList(ctx, {
    userId,
    streamId: answer.stream_id,
    devices,
    masterKey: isObject(answer.master_key) ? answer.master_key : null,
    selfSigningKey: isObject(answer.self_signing_key) ? answer.self_signing_key : null,
  });
}

/** Stores a remote user's device list, marks it changed in the device_lists stream and wakes syncs. */
export async function storeRemoteDeviceList(ctx: ServerContext, list: RemoteDeviceList): Promise<void> {
  await federationQueuesOf(ctx.storage).putRemoteDeviceList(list, (trx) => markDeviceListsChanged(trx, ctx.storage.engine, [list.userId]));
  await announceDeviceListChange(ctx, list.userId);
}

function serverName(id: string): string {
  return id.slice(id.indexOf(':') + 1);
}
