/**
 * Client-Server API, "Room membership": join (by id or alias), invite, leave, forget, kick, ban,
 * unban, knock, and `/joined_rooms`. Each change is an m.room.member event sent through the room
 * event pipeline, so the room version's auth rules decide who may do what.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { JsonObject } from '../../events/types.js';
import type { ServerContext } from '../../context.js';
import { requireUser, type Requester } from '../../http/auth.js';
import { badJson, forbidden, MatrixError, notFound } from '../../http/errors.js';
import { isValidUserId } from '../../rooms/power-levels.js';
import { serverNameOf } from '../../events/event-signing.js';
import { remoteDirectory } from '../../federation/queries-client.js';
import {
  inviteCountersigner,
  joinRemoteRoom,
  knockRemoteRoom,
  leaveRemoteRoom,
  needsRemoteHandshake,
} from '../../rooms/remote-membership.js';
import { emptyBodyAsObject, roomIdParam } from './params.js';

const reasonBody = {
  type: 'object',
  properties: { reason: { type: 'string' } },
} as const;

const targetBody = {
  type: 'object',
  required: ['user_id'],
  properties: { user_id: { type: 'string' }, reason: { type: 'string' } },
} as const;

interface TargetBody {
  user_id: string;
  reason?: string;
}

export function registerRoomMembership(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/_matrix/client/v3/join/:roomIdOrAlias', { preValidation: emptyBodyAsObject, schema: { body: reasonBody } }, async (req) => {
    const requester = await requireUser(ctx, req, { allowGuest: true });
    const { roomId, servers } = await resolveRoomAndServers(ctx, req);
    await join(ctx, requester, roomId, reasonOf(req), servers);
    return { room_id: roomId };
  });

  app.post('/_matrix/client/v3/rooms/:roomId/join', { preValidation: emptyBodyAsObject, schema: { body: reasonBody } }, async (req) => {
    const requester = await requireUser(ctx, req, { allowGuest: true });
    const roomId = roomIdParam(req);
    await join(ctx, requester, roomId, reasonOf(req));
    return { room_id: roomId };
  });

  app.post('/_matrix/client/v3/knock/:roomIdOrAlias', { preValidation: emptyBodyAsObject, schema: { body: reasonBody } }, async (req) => {
    const requester = await requireUser(ctx, req);
    const { roomId, servers } = await resolveRoomAndServers(ctx, req);
    const content = withReason(await profileOf(ctx, requester.userId), reasonOf(req));
    if (await needsRemoteHandshake(ctx, roomId, requester.userId)) await knockRemoteRoom(ctx, requester.userId, roomId, servers, { membership: 'knock', ...content });
    else await sendMembership(ctx, requester, roomId, requester.userId, 'knock', reasonOf(req), await profileOf(ctx, requester.userId));
    return { room_id: roomId };
  });

  app.post('/_matrix/client/v3/rooms/:roomId/leave', { preValidation: emptyBodyAsObject, schema: { body: reasonBody } }, async (req) => {
    const requester = await requireUser(ctx, req, { allowGuest: true });
    const roomId = roomIdParam(req);
    const current = await ctx.storage.memberships.get(roomId, requester.userId);
    if (!current || current.membership === 'leave') {
      // Leaving a room one is not in: nothing to do (the spec makes leave idempotent).
      if (!current && !(await ctx.storage.rooms.getRoom(roomId))) throw notFound('Unknown room');
      return {};
    }
    // Rejecting an invite (or rescinding a knock) to a room this server is not in.
    if ((current.membership === 'invite' || current.membership === 'knock') && (await needsRemoteHandshake(ctx, roomId, requester.userId))) {
      await leaveRemoteRoom(ctx, requester.userId, roomId, withReason({ membership: 'leave' }, reasonOf(req)));
      return {};
    }
    await sendMembership(ctx, requester, roomId, requester.userId, 'leave', reasonOf(req));
    return {};
  });

  app.post('/_matrix/client/v3/rooms/:roomId/forget', { preValidation: emptyBodyAsObject }, async (req) => {
    const requester = await requireUser(ctx, req, { allowGuest: true });
    const roomId = roomIdParam(req);
    const current = await ctx.storage.memberships.get(roomId, requester.userId);
    if (!current) throw notFound('You have never been in this room');
    if (current.membership === 'join' || current.membership === 'invite' || current.membership === 'knock') {
      throw new MatrixError(400, 'M_UNKNOWN', 'Leave the room before forgetting it');
    }
    await ctx.storage.memberships.forget(roomId, requester.userId);
    return {};
  });

  const targetAction = (path: string, membership: 'invite' | 'leave' | 'ban', check?: (ctx: ServerContext, roomId: string, target: string) => Promise<void>) => {
    app.post(`/_matrix/client/v3/rooms/:roomId/${path}`, { schema: { body: targetBody } }, async (req) => {
      const requester = await requireUser(ctx, req);
      const roomId = roomIdParam(req);
      const body = req.body as TargetBody;
      if (!isValidUserId(body.user_id)) throw badJson(`Invalid user_id ${JSON.stringify(body.user_id)}`);
      await check?.(ctx, roomId, body.user_id);
      const extra = membership === 'invite' ? await profileOf(ctx, body.user_id) : {};
      await sendMembership(ctx, requester, roomId, body.user_id, membership, body.reason, extra);
      return {};
    });
  };
  targetAction('invite', 'invite', refuseInviteOfMember);
  targetAction('kick', 'leave', requireMembership(['join', 'invite', 'knock'], 'The user is not in the room'));
  targetAction('ban', 'ban');
  targetAction('unban', 'leave', requireMembership(['ban'], 'The user is not banned'));

  app.get('/_matrix/client/v3/joined_rooms', async (req) => {
    const requester = await requireUser(ctx, req, { allowGuest: true });
    const rooms = await ctx.storage.memberships.roomsForUser(requester.userId, ['join']);
    return { joined_rooms: rooms.map((r) => r.roomId) };
  });
}

/** Joins a room: through the pipeline when this server is in it, else over federation via `servers`. */
async function join(ctx: ServerContext, requester: Requester, roomId: string, reason: string | undefined, servers: string[] = []): Promise<void> {
  const current = await ctx.storage.memberships.get(roomId, requester.userId);
  if (current?.membership === 'ban') throw forbidden('You are banned from this room');
  const profile = await profileOf(ctx, requester.userId);
  if (await needsRemoteHandshake(ctx, roomId, requester.userId)) {
    await joinRemoteRoom(ctx, requester.userId, roomId, servers, withReason({ membership: 'join', ...profile }, reason));
    return;
  }
  await sendMembership(ctx, requester, roomId, requester.userId, 'join', reason, profile);
}

function withReason(content: JsonObject, reason: string | undefined): JsonObject {
  return reason === undefined ? content : { ...content, reason };
}

/**
 * The room a join/knock names (id, or alias resolved here or by the alias's server) and the
 * servers to try when this server is not in it: `via` / `server_name`, then the directory's.
 */
async function resolveRoomAndServers(ctx: ServerContext, req: FastifyRequest): Promise<{ roomId: string; servers: string[] }> {
  const param = (req.params as { roomIdOrAlias: string }).roomIdOrAlias;
  const query = req.query as Record<string, unknown>;
  const named = [query.via, query.server_name].flatMap((v) => (Array.isArray(v) ? v : v === undefined ? [] : [v])).map(String);
  const aliasServer = param.startsWith('#') ? serverNameOf(param) : undefined;
  if (aliasServer && aliasServer !== ctx.config.server_name) {
    const answer = await remoteDirectory(ctx, param);
    return { roomId: answer.room_id, servers: [...named, ...answer.servers] };
  }
  return { roomId: await resolveRoom(ctx, param), servers: named };
}

async function sendMembership(
  ctx: ServerContext,
  requester: Requester,
  roomId: string,
  target: string,
  membership: string,
  reason: string | undefined,
  extra: JsonObject = {},
): Promise<void> {
  const content: JsonObject = { membership, ...extra };
  if (reason !== undefined) content.reason = reason;
  // A remote invitee's server countersigns the invite before it is stored (/v2/invite).
  const remoteInvitee = membership === 'invite' && serverNameOf(target) !== ctx.config.server_name;
  const opts = remoteInvitee ? { countersign: inviteCountersigner(ctx, roomId, target) } : {};
  await ctx.pipeline.send(roomId, requester.userId, { type: 'm.room.member', state_key: target, content }, opts);
}

async function resolveRoom(ctx: ServerContext, roomIdOrAlias: string): Promise<string> {
  if (roomIdOrAlias.startsWith('!')) return roomIdOrAlias;
  if (!roomIdOrAlias.startsWith('#') || !roomIdOrAlias.includes(':')) {
    throw new MatrixError(400, 'M_INVALID_PARAM', 'Expected a room id (!…) or a room alias (#…:server)');
  }
  const alias = await ctx.storage.aliases.get(roomIdOrAlias);
  if (!alias) throw notFound(`Room alias ${roomIdOrAlias} not found`);
  return alias.roomId;
}

/** The user's global profile, copied into their member events as the spec asks. */
export async function profileOf(ctx: ServerContext, userId: string): Promise<JsonObject> {
  const user = await ctx.storage.accounts.getUser(userId);
  const profile: JsonObject = {};
  if (user?.displayname) profile.displayname = user.displayname;
  if (user?.avatarUrl) profile.avatar_url = user.avatarUrl;
  return profile;
}

async function refuseInviteOfMember(ctx: ServerContext, roomId: string, target: string): Promise<void> {
  const current = await ctx.storage.memberships.get(roomId, target);
  if (current?.membership === 'join') throw forbidden(`${target} is already in the room`);
  if (current?.membership === 'ban') throw forbidden(`${target} is banned from the room`);
}

function requireMembership(allowed: string[], message: string) {
  return async (ctx: ServerContext, roomId: string, target: string): Promise<void> => {
    const current = await ctx.storage.memberships.get(roomId, target);
    if (!current || !allowed.includes(current.membership)) throw forbidden(message);
  };
}

function reasonOf(req: FastifyRequest): string | undefined {
  return (req.body as { reason?: string } | undefined)?.reason;
}
