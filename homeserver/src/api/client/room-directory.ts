/**
 * Client-Server API, "Room aliases" and "Published room directory":
 *
 *   PUT/GET/DELETE /directory/room/{roomAlias}   local aliases (#name:our.server)
 *   GET  /rooms/{roomId}/aliases                 the local aliases of a room
 *   GET/PUT /directory/list/room/{roomId}        whether a room is published
 *   GET/POST /publicRooms                        the published rooms, searched and paginated
 *
 * Permissions (where the spec leaves them to the server, as Synapse does):
 * - creating an alias: members of the room;
 * - deleting one: its creator, a server admin, or a member with the power to send
 *   m.room.canonical_alias (the alias is then also dropped from that event, if allowed);
 * - publishing: a server admin, or a member with the power to send m.room.canonical_alias.
 *
 * The published list shows rooms that can be joined or read without an invite (join rule
 * `public`, `knock`, `knock_restricted`, or world-readable history) and that have members,
 * largest first. Pagination tokens are offsets: `n<offset>` (next batch), `p<offset>` (the batch
 * before it).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../../context.js';
import type { JsonObject } from '../../events/types.js';
import { readAccessToken, requireUser, type Requester } from '../../http/auth.js';
import { forbidden, MatrixError, notFound } from '../../http/errors.js';
import { domainOf, requiredPowerLevel, userPowerLevel } from '../../rooms/power-levels.js';
import { getRoomVersion } from '../../rooms/room-versions.js';
import { remoteDirectory, remotePublicRooms } from '../../federation/queries-client.js';
import { emptyBodyAsObject, intQuery, pathParam, roomIdParam, stringQuery } from './params.js';
import { summariseRooms, type RoomSummary } from './room-summary.js';

const V3 = '/_matrix/client/v3';
const MAX_ALIAS_BYTES = 255;
const DEFAULT_PUBLIC_ROOMS_LIMIT = 100;
const MAX_PUBLIC_ROOMS_LIMIT = 500;

const aliasBody = {
  type: 'object',
  required: ['room_id'],
  properties: { room_id: { type: 'string' } },
} as const;

const visibilityBody = {
  type: 'object',
  properties: { visibility: { type: 'string', enum: ['public', 'private'] } },
} as const;

const publicRoomsBody = {
  type: 'object',
  properties: {
    limit: { type: 'integer' },
    since: { type: 'string' },
    filter: {
      type: 'object',
      properties: {
        generic_search_term: { type: 'string' },
        room_types: { type: 'array', items: { anyOf: [{ type: 'string' }, { type: 'null' }] } },
      },
    },
    include_all_networks: { type: 'boolean' },
    third_party_instance_id: { type: 'string' },
  },
} as const;

export interface PublicRoomsQuery {
  limit?: number;
  since?: string;
  filter?: { generic_search_term?: string; room_types?: Array<string | null> };
  include_all_networks?: boolean;
  third_party_instance_id?: string;
}

export function registerRoomDirectory(app: FastifyInstance, ctx: ServerContext): void {
  // ---- room aliases ----

  app.put(`${V3}/directory/room/:roomAlias`, { schema: { body: aliasBody } }, async (req) => {
    const requester = await requireUser(ctx, req);
    const alias = localAlias(ctx, pathParam(req, 'roomAlias'));
    const roomId = (req.body as { room_id: string }).room_id;
    if (!roomId.startsWith('!') || roomId.length > 255) throw new MatrixError(400, 'M_INVALID_PARAM', 'room_id is not a room id');
    if (!(await ctx.storage.rooms.getRoom(roomId))) throw notFound('Unknown room');
    if (!(await isAdmin(ctx, requester)) && (await ctx.storage.memberships.get(roomId, requester.userId))?.membership !== 'join') {
      throw forbidden('You must be in the room to give it an alias');
    }
    if (!(await ctx.storage.aliases.create(alias, roomId, requester.userId))) {
      throw new MatrixError(409, 'M_UNKNOWN', `Room alias ${alias} already exists`);
    }
    return {};
  });

  app.get(`${V3}/directory/room/:roomAlias`, async (req) => {
    const alias = parseAlias(pathParam(req, 'roomAlias'));
    if (alias.server !== ctx.config.server_name) return remoteDirectory(ctx, alias.alias);
    const found = await ctx.storage.aliases.get(alias.alias);
    if (!found) throw notFound(`Room alias ${alias.alias} not found`);
    return { room_id: found.roomId, servers: await residentServers(ctx, found.roomId) };
  });

  app.delete(`${V3}/directory/room/:roomAlias`, async (req) => {
    const requester = await requireUser(ctx, req);
    const alias = localAlias(ctx, pathParam(req, 'roomAlias'));
    const found = await ctx.storage.aliases.get(alias);
    if (!found) throw notFound(`Room alias ${alias} not found`);
    const mayDelete =
      found.creator === requester.userId ||
      (await isAdmin(ctx, requester)) ||
      ((await ctx.storage.memberships.get(found.roomId, requester.userId))?.membership === 'join' &&
        (await canSendState(ctx, found.roomId, requester.userId, 'm.room.canonical_alias')));
    if (!mayDelete) throw forbidden('You may not delete this alias');
    await ctx.storage.aliases.delete(alias);
    await dropFromCanonicalAlias(ctx, found.roomId, requester.userId, alias);
    return {};
  });

  app.get(`${V3}/rooms/:roomId/aliases`, async (req) => {
    const requester = await requireUser(ctx, req, { allowGuest: true });
    const roomId = roomIdParam(req);
    if (!(await ctx.storage.rooms.getRoom(roomId))) throw notFound('Unknown room');
    const joined = (await ctx.storage.memberships.get(roomId, requester.userId))?.membership === 'join';
    if (!joined && !(await isAdmin(ctx, requester))) {
      const hv = await ctx.storage.events.getCurrentStateEvent(roomId, 'm.room.history_visibility', '');
      if (hv?.content.history_visibility !== 'world_readable') throw forbidden('You are not a member of the room');
    }
    return { aliases: await ctx.storage.aliases.forRoom(roomId) };
  });

  // ---- published room directory ----

  app.get(`${V3}/directory/list/room/:roomId`, async (req) => {
    const roomId = roomIdParam(req);
    const room = await ctx.storage.rooms.getRoom(roomId);
    if (!room) throw notFound('Room not found');
    return { visibility: room.isPublic ? 'public' : 'private' };
  });

  app.put(
    `${V3}/directory/list/room/:roomId`,
    { preValidation: emptyBodyAsObject, schema: { body: visibilityBody } },
    async (req) => {
      const requester = await requireUser(ctx, req);
      const roomId = roomIdParam(req);
      if (!(await ctx.storage.rooms.getRoom(roomId))) throw notFound('Room not found');
      const allowed =
        (await isAdmin(ctx, requester)) ||
        ((await ctx.storage.memberships.get(roomId, requester.userId))?.membership === 'join' &&
          (await canSendState(ctx, roomId, requester.userId, 'm.room.canonical_alias')));
      if (!allowed) throw forbidden('You may not change the directory visibility of this room');
      const visibility = (req.body as { visibility?: string }).visibility ?? 'public';
      await ctx.storage.rooms.setPublic(roomId, visibility === 'public');
      return {};
    },
  );

  app.get(`${V3}/publicRooms`, async (req) => {
    if (!ctx.config.allow_public_rooms_without_auth || readAccessToken(req) !== undefined) {
      await requireUser(ctx, req, { allowGuest: true });
    }
    const remote = otherServer(ctx, req);
    const limit = intQuery(req, 'limit', { min: 0 });
    const since = stringQuery(req, 'since');
    if (remote) return remotePublicRooms(ctx, remote, { ...(limit !== undefined ? { limit } : {}), ...(since !== undefined ? { since } : {}) }, false);
    return listPublicRooms(ctx, { ...(limit !== undefined ? { limit } : {}), ...(since !== undefined ? { since } : {}) });
  });

  app.post(`${V3}/publicRooms`, { preValidation: emptyBodyAsObject, schema: { body: publicRoomsBody } }, async (req) => {
    await requireUser(ctx, req, { allowGuest: true });
    const remote = otherServer(ctx, req);
    const body = req.body as PublicRoomsQuery;
    if (body.limit !== undefined && body.limit < 0) throw new MatrixError(400, 'M_INVALID_PARAM', 'limit must not be negative');
    if (remote) return remotePublicRooms(ctx, remote, body as unknown as JsonObject, true);
    return listPublicRooms(ctx, body);
  });
}

export async function listPublicRooms(ctx: ServerContext, query: PublicRoomsQuery) {
  // No application service networks exist here: a request for one finds nothing.
  if (query.third_party_instance_id !== undefined && !query.include_all_networks) {
    return { chunk: [], total_room_count_estimate: 0 };
  }
  const limit = Math.min(query.limit ?? DEFAULT_PUBLIC_ROOMS_LIMIT, MAX_PUBLIC_ROOMS_LIMIT);
  const term = query.filter?.generic_search_term?.trim().toLowerCase() ?? '';
  const types = query.filter?.room_types;

  const summaries = await summariseRooms(ctx.storage, await ctx.storage.rooms.getPublicRoomIds());
  const rooms = [...summaries.values()]
    .filter((r) => r.num_joined_members > 0)
    .filter((r) => r.world_readable || r.join_rule === 'public' || r.join_rule === 'knock' || r.join_rule === 'knock_restricted')
    .filter((r) => types === undefined || types.includes(r.room_type ?? null))
    .filter((r) => term === '' || matchesTerm(r, term))
    .sort((a, b) => b.num_joined_members - a.num_joined_members || (a.room_id < b.room_id ? -1 : a.room_id > b.room_id ? 1 : 0));

  let start = 0;
  let end = Math.min(rooms.length, limit);
  if (query.since !== undefined) {
    const token = /^([np])(\d{1,9})$/.exec(query.since);
    if (!token) throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid pagination token');
    const offset = Math.min(Number(token[2]), rooms.length);
    if (token[1] === 'n') [start, end] = [offset, Math.min(rooms.length, offset + limit)];
    else [start, end] = [Math.max(0, offset - limit), offset];
  }
  const response: { chunk: PublishedRoom[]; next_batch?: string; prev_batch?: string; total_room_count_estimate: number } = {
    chunk: rooms.slice(start, end).map(publishedRoom),
    total_room_count_estimate: rooms.length,
  };
  if (end < rooms.length) response.next_batch = `n${end}`;
  if (start > 0) response.prev_batch = `p${start}`;
  return response;
}

type PublishedRoom = Omit<RoomSummary, 'room_version' | 'encryption' | 'allowed_room_ids'>;

function publishedRoom(summary: RoomSummary): PublishedRoom {
  const { room_version: _v, encryption: _e, allowed_room_ids: _a, ...entry } = summary;
  return entry;
}

function matchesTerm(room: RoomSummary, term: string): boolean {
  return (
    room.room_id.toLowerCase() === term ||
    [room.name, room.topic, room.canonical_alias].some((text) => text !== undefined && text.toLowerCase().includes(term))
  );
}

/** The server named by `server=` when it is another one: its directory comes over federation. */
function otherServer(ctx: ServerContext, req: FastifyRequest): string | undefined {
  const server = stringQuery(req, 'server');
  if (server === undefined || server === '' || server === ctx.config.server_name) return undefined;
  if (!/^[A-Za-z0-9.:[\]-]{1,255}$/.test(server)) throw new MatrixError(400, 'M_INVALID_PARAM', 'Invalid server name');
  return server;
}

export interface ParsedAlias {
  alias: string;
  localpart: string;
  server: string;
}

/** `#localpart:server`: a localpart without `:` or white space, at most 255 bytes in all. */
export function parseAlias(raw: string): ParsedAlias {
  const colon = raw.indexOf(':');
  const localpart = raw.slice(1, colon);
  const server = raw.slice(colon + 1);
  if (
    !raw.startsWith('#') ||
    colon < 2 ||
    server === '' ||
    /[\s\u0000-\u001f#]/.test(localpart) ||
    /[\s/\u0000-\u001f]/.test(server) ||
    Buffer.byteLength(raw, 'utf8') > MAX_ALIAS_BYTES
  ) {
    throw new MatrixError(400, 'M_INVALID_PARAM', `Room alias ${JSON.stringify(raw)} is invalid`);
  }
  return { alias: raw, localpart, server };
}

/** An alias this server may hold: on its own domain. */
function localAlias(ctx: ServerContext, raw: string): string {
  const alias = parseAlias(raw);
  if (alias.server !== ctx.config.server_name) {
    throw new MatrixError(400, 'M_INVALID_PARAM', `Room aliases here must end in :${ctx.config.server_name}`);
  }
  return alias.alias;
}

/** Servers with joined members (this one first): where a client may join the room through. */
async function residentServers(ctx: ServerContext, roomId: string): Promise<string[]> {
  const servers = new Set([ctx.config.server_name]);
  for (const member of await ctx.storage.memberships.members(roomId, ['join'])) {
    const server = domainOf(member.userId);
    if (server) servers.add(server);
  }
  return [...servers];
}

async function isAdmin(ctx: ServerContext, requester: Requester): Promise<boolean> {
  return (await ctx.storage.accounts.getUser(requester.userId))?.admin === true;
}

/** Whether the user's power level in the room's current state lets them send this state event type. */
export async function canSendState(ctx: ServerContext, roomId: string, userId: string, eventType: string): Promise<boolean> {
  const room = await ctx.storage.rooms.getRoom(roomId);
  const version = room && getRoomVersion(room.roomVersion);
  if (!version) return false;
  const create = await ctx.storage.events.getCurrentStateEvent(roomId, 'm.room.create', '');
  const powerLevels = await ctx.storage.events.getCurrentStateEvent(roomId, 'm.room.power_levels', '');
  const lookup = (type: string, stateKey: string) =>
    stateKey !== '' ? undefined : type === 'm.room.create' ? create : type === 'm.room.power_levels' ? powerLevels : undefined;
  try {
    return userPowerLevel(userId, lookup, version) >= requiredPowerLevel(eventType, true, lookup, version);
  } catch {
    return false; // malformed power levels: nobody may
  }
}

/** After an alias is deleted: removes it from the room's m.room.canonical_alias, if the user may. */
async function dropFromCanonicalAlias(ctx: ServerContext, roomId: string, userId: string, alias: string): Promise<void> {
  const current = await ctx.storage.events.getCurrentStateEvent(roomId, 'm.room.canonical_alias', '');
  if (!current) return;
  const content: JsonObject = { ...current.content };
  let changed = false;
  if (content.alias === alias) {
    delete content.alias;
    changed = true;
  }
  if (Array.isArray(content.alt_aliases) && content.alt_aliases.includes(alias)) {
    content.alt_aliases = content.alt_aliases.filter((a) => a !== alias);
    changed = true;
  }
  if (!changed) return;
  try {
    await ctx.pipeline.send(roomId, userId, { type: 'm.room.canonical_alias', state_key: '', content });
  } catch (err) {
    ctx.log.info({ err, roomId, alias }, 'deleted alias left in m.room.canonical_alias (no permission to update it)');
  }
}
