/**
 * Server-Server API: what other servers may ask about this server's users and rooms.
 *
 *   GET  /v1/query/profile?user_id[&field]        a local user's profile (or one field)
 *   GET  /v1/query/directory?room_alias           a local alias → room id and resident servers
 *   GET  /v1/user/devices/{userId}                a local user's devices, keys and stream id
 *   POST /v1/user/keys/query                      device and cross-signing keys of local users
 *   POST /v1/user/keys/claim                      one-time keys of local users' devices
 *   GET/POST /v1/publicRooms                      the published room directory
 *   GET  /v1/hierarchy/{roomId}                   a space and its direct children (as far as known)
 *   GET  /v1/openid/userinfo?access_token         the user of an OpenID token (no X-Matrix)
 *
 * Every route but the last needs a valid X-Matrix signature (requireServer). Questions about
 * users or aliases of other servers are answered 404, never forwarded.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../../context.js';
import { parseClaim, parseQuery, queryKeys, claimKeys } from '../../e2ee/keys.js';
import { parseStateKey, type JsonObject } from '../../events/types.js';
import { serversInRoom } from '../../federation/sender.js';
import { badJson, MatrixError, notFound } from '../../http/errors.js';
import { requireServer } from '../../http/x-matrix.js';
import { federationQueuesOf, OpenIdTokensStore } from '../../storage/federation-queues-store.js';
import { parseUserId } from '../../accounts/user-ids.js';
import { fullProfile } from '../client/profile.js';
import { listPublicRooms, parseAlias } from '../client/room-directory.js';
import { summariseRooms } from '../client/room-summary.js';
import { stringQuery } from '../client/params.js';

const V1 = '/_matrix/federation/v1';
const PROFILE_FIELDS = new Set(['displayname', 'avatar_url']);
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

export function registerFederationQueries(app: FastifyInstance, ctx: ServerContext): void {
  const local = (userId: string) => parseUserId(userId)?.serverName === ctx.config.server_name;

  app.get(`${V1}/query/profile`, async (req) => {
    await authenticated(ctx, req);
    const userId = requiredQuery(req, 'user_id');
    const field = stringQuery(req, 'field');
    if (field !== undefined && !PROFILE_FIELDS.has(field)) throw new MatrixError(400, 'M_INVALID_PARAM', 'field must be displayname or avatar_url');
    if (!local(userId)) throw notFound('The user is not on this server');
    const user = await ctx.storage.accounts.getUser(userId);
    if (!user || user.deactivated) throw notFound('Profile not found');
    const profile = await fullProfile(ctx, userId);
    if (field === undefined) return profile;
    return profile[field] !== undefined ? { [field]: profile[field]! } : {};
  });

  app.get(`${V1}/query/directory`, async (req) => {
    await authenticated(ctx, req);
    const alias = parseAlias(requiredQuery(req, 'room_alias'));
    if (alias.server !== ctx.config.server_name) throw notFound('The alias is not on this server');
    const found = await ctx.storage.aliases.get(alias.alias);
    if (!found) throw notFound(`Room alias ${alias.alias} not found`);
    const servers = await serversInRoom(ctx.storage, found.roomId);
    servers.delete(ctx.config.server_name);
    return { room_id: found.roomId, servers: [ctx.config.server_name, ...[...servers].sort()] };
  });

  app.get(`${V1}/user/devices/:userId`, async (req) => {
    await authenticated(ctx, req);
    const userId = (req.params as { userId: string }).userId;
    if (!local(userId)) throw notFound('The user is not on this server');
    const user = await ctx.storage.accounts.getUser(userId);
    if (!user) throw notFound('Unknown user');
    const [devices, keys, crossSigning, streamId] = await Promise.all([
      ctx.storage.accounts.listDevices(userId),
      ctx.storage.e2eKeys.deviceKeys(new Map([[userId, []]])),
      ctx.storage.e2eKeys.crossSigningKeys([userId]),
      federationQueuesOf(ctx.storage).deviceStreamId(userId),
    ]);
    const byDevice = keys.get(userId);
    const answer: JsonObject = {
      user_id: userId,
      stream_id: streamId,
      devices: devices.map((d) => {
        const entry: JsonObject = { device_id: d.deviceId };
        const stored = byDevice?.get(d.deviceId);
        if (stored) entry.keys = stored.keys;
        if (d.displayName) entry.device_display_name = d.displayName;
        return entry;
      }),
    };
    const master = crossSigning.get(userId)?.get('master');
    const selfSigning = crossSigning.get(userId)?.get('self_signing');
    if (master) answer.master_key = master.key;
    if (selfSigning) answer.self_signing_key = selfSigning.key;
    return answer;
  });

  app.post(`${V1}/user/keys/query`, { schema: { body: { type: 'object' } } }, async (req) => {
    await authenticated(ctx, req);
    const query = parseQuery((req.body as JsonObject).device_keys);
    for (const userId of [...query.keys()]) if (!local(userId)) query.delete(userId);
    // No requester: only the owners' own signatures are shown, and no user-signing keys.
    const answer = await queryKeys(ctx, '', query);
    return { device_keys: answer.device_keys, master_keys: answer.master_keys, self_signing_keys: answer.self_signing_keys };
  });

  app.post(`${V1}/user/keys/claim`, { schema: { body: { type: 'object' } } }, async (req) => {
    await authenticated(ctx, req);
    const claims = parseClaim((req.body as JsonObject).one_time_keys).filter((c) => local(c.userId));
    const answer = await claimKeys(ctx, claims);
    return { one_time_keys: answer.one_time_keys };
  });

  app.get(`${V1}/publicRooms`, async (req) => {
    await authenticated(ctx, req);
    const limit = stringQuery(req, 'limit');
    if (limit !== undefined && !/^\d{1,9}$/.test(limit)) throw new MatrixError(400, 'M_INVALID_PARAM', 'limit must be a non-negative integer');
    const since = stringQuery(req, 'since');
    const instance = stringQuery(req, 'third_party_instance_id');
    return listPublicRooms(ctx, {
      ...(limit !== undefined ? { limit: Number(limit) } : {}),
      ...(since !== undefined ? { since } : {}),
      ...(instance !== undefined ? { third_party_instance_id: instance } : {}),
      include_all_networks: stringQuery(req, 'include_all_networks') === 'true',
    });
  });

  app.post(`${V1}/publicRooms`, { schema: { body: { type: 'object' } } }, async (req) => {
    await authenticated(ctx, req);
    const body = req.body as JsonObject;
    if (body.limit !== undefined && (typeof body.limit !== 'number' || !Number.isInteger(body.limit) || body.limit < 0)) {
      throw new MatrixError(400, 'M_INVALID_PARAM', 'limit must be a non-negative integer');
    }
    if (body.since !== undefined && typeof body.since !== 'string') throw badJson('since must be a string');
    const filter = body.filter;
    if (filter !== undefined && !isObject(filter)) throw badJson('filter must be an object');
    const term = filter?.generic_search_term;
    const types = filter?.room_types;
    if (term !== undefined && typeof term !== 'string') throw badJson('generic_search_term must be a string');
    if (types !== undefined && (!Array.isArray(types) || !types.every((t) => t === null || typeof t === 'string'))) {
      throw badJson('room_types must be a list of strings or null');
    }
    return listPublicRooms(ctx, {
      ...(body.limit !== undefined ? { limit: body.limit } : {}),
      ...(body.since !== undefined ? { since: body.since } : {}),
      filter: {
        ...(term !== undefined ? { generic_search_term: term } : {}),
        ...(types !== undefined ? { room_types: types as (string | null)[] } : {}),
      },
      ...(typeof body.third_party_instance_id === 'string' ? { third_party_instance_id: body.third_party_instance_id } : {}),
      include_all_networks: body.include_all_networks === true,
    });
  });

  app.get(`${V1}/hierarchy/:roomId`, async (req) => {
    await authenticated(ctx, req);
    const roomId = (req.params as { roomId: string }).roomId;
    return hierarchy(ctx, roomId, stringQuery(req, 'suggested_only') === 'true');
  });

  app.get(`${V1}/openid/userinfo`, async (req) => {
    const token = stringQuery(req, 'access_token');
    if (!token) throw new MatrixError(401, 'M_MISSING_TOKEN', 'access_token is required');
    const userId = await new OpenIdTokensStore(ctx.storage.db).userOf(token);
    if (!userId) throw new MatrixError(401, 'M_UNKNOWN_TOKEN', 'Unknown or expired OpenID token');
    return { sub: userId };
  });
}

/** The requesting server (requireServer also tells the sender it is up). */
async function authenticated(ctx: ServerContext, req: FastifyRequest): Promise<string> {
  return requireServer(ctx, req);
}

function requiredQuery(req: FastifyRequest, name: string): string {
  const value = stringQuery(req, name);
  if (value === undefined || value === '') throw new MatrixError(400, 'M_MISSING_PARAM', `${name} is required`);
  return value;
}

/**
 * A room the requesting server may learn about: world-readable or joinable without an invite
 * (public, knock); its m.space.child events, and the children this server knows, one level deep.
 */
async function hierarchy(ctx: ServerContext, roomId: string, suggestedOnly: boolean): Promise<JsonObject> {
  const summaries = await summariseRooms(ctx.storage, [roomId]);
  const room = summaries.get(roomId);
  if (!room || !peekable(room)) throw notFound('Room not found or not accessible');
  const childrenState = await spaceChildren(ctx, roomId, suggestedOnly);
  const childIds = childrenState.map((e) => e.state_key as string);
  const childSummaries = await summariseRooms(ctx.storage, childIds);
  const children: JsonObject[] = [];
  const inaccessible: string[] = [];
  for (const childId of childIds) {
    const child = childSummaries.get(childId);
    if (!child) continue;
    if (!peekable(child)) {
      inaccessible.push(childId);
      continue;
    }
    children.push({ ...publicFields(child), children_state: [] });
  }
  return { room: { ...publicFields(room), children_state: childrenState }, children, inaccessible_children: inaccessible };
}

type Summary = NonNullable<Awaited<ReturnType<typeof summariseRooms>> extends Map<string, infer S> ? S : never>;

function peekable(room: Summary): boolean {
  return room.world_readable || room.join_rule === 'public' || room.join_rule === 'knock' || room.join_rule === 'knock_restricted';
}

function publicFields(room: Summary): JsonObject {
  const { room_version, encryption: _e, allowed_room_ids, ...rest } = room;
  const out: JsonObject = { ...(rest as unknown as JsonObject) };
  if (room_version !== undefined) out.room_version = room_version;
  if (allowed_room_ids !== undefined) out.allowed_room_ids = allowed_room_ids;
  return out;
}

/** The room's m.space.child state events with a `via` (stripped: type, state_key, content, sender, origin_server_ts). */
async function spaceChildren(ctx: ServerContext, roomId: string, suggestedOnly: boolean): Promise<JsonObject[]> {
  const state = await ctx.storage.events.getCurrentState(roomId);
  const ids = [...state].filter(([key]) => parseStateKey(key)[0] === 'm.space.child').map(([, id]) => id);
  const events = await ctx.storage.events.getEvents(ids);
  const out: JsonObject[] = [];
  for (const e of events.values()) {
    if (e.type !== 'm.space.child' || e.state_key === undefined) continue;
    if (!Array.isArray(e.content.via) || e.content.via.length === 0) continue;
    if (suggestedOnly && e.content.suggested !== true) continue;
    out.push({ type: e.type, state_key: e.state_key, content: e.content, sender: e.sender, origin_server_ts: e.origin_server_ts });
  }
  return out;
}
