/**
 * Server-Server API, room membership handshakes: "Joining rooms" (make_join, send_join v1/v2),
 * "Knocking upon a room" (make_knock, send_knock), "Leaving rooms" (make_leave, send_leave
 * v1/v2) and "Inviting to a room" (invite v2). This server answers as the resident server
 * (templates from current state, the signed event through the pipeline's receive path), and as
 * the invited server (countersign the invite, keep it as an outlier with its stripped state).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../../context.js';
import { computeEventId, roomIdFromCreateEvent } from '../../events/event-id.js';
import { signEvent, serverNameOf } from '../../events/event-signing.js';
import { stateKey as keyOf, type JsonObject, type JsonValue, type Pdu, type RoomEvent } from '../../events/types.js';
import { checkIncomingPdu, PduCheckError } from '../../federation/event-checks.js';
import { checkServerAcl } from '../../federation/server-acl.js';
import { requireServer } from '../../http/x-matrix.js';
import { forbidden, invalidParam, MatrixError, notFound } from '../../http/errors.js';
import { namedPowerLevel, userPowerLevel } from '../../rooms/auth.js';
import {
  buildMembershipTemplate,
  isResidentIn,
  loadCurrentAuthState,
  templateRefusal,
  type TemplateMembership,
} from '../../rooms/event-templates.js';
import { getRoomVersion, type RoomVersion } from '../../rooms/room-versions.js';
import { persistOutOfBandMembership, strippedStatePdus, toStrippedState } from '../../rooms/remote-membership.js';
import { servedPdus } from './events.js';

type Params = { roomId: string; userId?: string; eventId?: string };

export function registerFederationMembership(app: FastifyInstance, ctx: ServerContext): void {
  const makeRoute = (path: string, membership: TemplateMembership, requireVer: boolean) =>
    app.get(`/_matrix/federation/v1/${path}/:roomId/:userId`, async (req) => {
      const origin = await requireServer(ctx, req);
      const { roomId, userId } = req.params as Params;
      return makeMembership(ctx, origin, roomId, userId!, membership, versionsOf(req, requireVer));
    });
  makeRoute('make_join', 'join', false);
  makeRoute('make_leave', 'leave', false);
  makeRoute('make_knock', 'knock', true);

  const sendRoute = (path: string, membership: TemplateMembership, wrapV1: boolean) =>
    app.put(`/_matrix/federation/${path}/:roomId/:eventId`, async (req) => {
      const origin = await requireServer(ctx, req);
      const { roomId, eventId } = req.params as Params;
      const result = await sendMembership(ctx, origin, roomId, eventId!, req.body, membership);
      // v1 answers `[200, body]` (a historical mistake the v2 endpoints fixed).
      return wrapV1 ? [200, result] : result;
    });
  sendRoute('v2/send_join', 'join', false);
  sendRoute('v1/send_join', 'join', true);
  sendRoute('v2/send_leave', 'leave', false);
  sendRoute('v1/send_leave', 'leave', true);
  sendRoute('v1/send_knock', 'knock', false);

  app.put('/_matrix/federation/v2/invite/:roomId/:eventId', async (req) => {
    const origin = await requireServer(ctx, req);
    const { roomId, eventId } = req.params as Params;
    return receiveInvite(ctx, origin, roomId, eventId!, req.body);
  });
}

// ------------------------------------------------------------------------------------ make_*

async function makeMembership(
  ctx: ServerContext,
  origin: string,
  roomId: string,
  userId: string,
  membership: TemplateMembership,
  supported: string[],
): Promise<JsonObject> {
  if (serverNameOf(userId) !== origin) throw forbidden(`${userId} is not a user of ${origin}`);
  const version = await residentRoomVersion(ctx, roomId);
  await checkServerAcl(ctx, roomId, origin);
  if (!supported.includes(version.id)) {
    throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `The room has version ${version.id}, which your server does not support`, {
      room_version: version.id,
    });
  }
  const extra: JsonObject = {};
  if (membership === 'join') {
    const via = await authorisingUserFor(ctx, roomId, version, userId);
    if (via) extra.join_authorised_via_users_server = via;
  }
  const template = await buildMembershipTemplate(ctx.storage, ctx.config.server_name, roomId, version, userId, membership, extra);
  const refusal = templateRefusal(template, version);
  if (refusal) throw forbidden(`You may not ${membership === 'leave' ? 'leave' : membership} this room: ${refusal}`);
  return { room_version: version.id, event: template.pdu };
}

/** The `ver` query parameters: the versions the asking server supports (make_join: default ["1"]). */
function versionsOf(req: FastifyRequest, required: boolean): string[] {
  const raw = (req.query as Record<string, unknown>).ver;
  const list = Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? [raw] : [];
  if (list.length === 0 && required) throw new MatrixError(400, 'M_MISSING_PARAM', 'The ver query parameter is required');
  return list.length > 0 ? list : ['1'];
}

/** The version of a room this server is in; 404 when it is not in it. */
async function residentRoomVersion(ctx: ServerContext, roomId: string): Promise<RoomVersion> {
  const room = await ctx.storage.rooms.getRoom(roomId);
  if (!room || !(await isResidentIn(ctx.storage, ctx.config.server_name, roomId))) throw notFound(`This server is not in room ${roomId}`);
  const version = getRoomVersion(room.roomVersion);
  if (!version) throw notFound(`Room ${roomId} has an unsupported version`);
  return version;
}

// --------------------------------------------------------------------- restricted joins

/**
 * For a join to a restricted (or knock_restricted) room by a user who is neither invited nor
 * joined: a local user with the invite power who vouches for the join, once the user is seen to
 * be joined to one of the rooms the join rules allow. Undefined when no authorising user is
 * needed. Errors as the spec says: M_UNABLE_TO_AUTHORISE_JOIN when this server is in none of
 * the allowed rooms, M_UNABLE_TO_GRANT_JOIN when no local user may invite, 403 otherwise.
 */
async function authorisingUserFor(
  ctx: ServerContext,
  roomId: string,
  version: RoomVersion,
  userId: string,
): Promise<string | undefined> {
  const content = { membership: 'join' };
  const authState = await loadCurrentAuthState(ctx.storage, roomId, version, { type: 'm.room.member', sender: userId, state_key: userId, content });
  const joinRule = authState.get(keyOf('m.room.join_rules', ''))?.content;
  const rule = joinRule?.join_rule;
  const restricted =
    (version.restrictedJoinRule && rule === 'restricted') || (version.knockRestrictedJoinRule && rule === 'knock_restricted');
  if (!restricted) return undefined;
  const own = authState.get(keyOf('m.room.member', userId))?.content.membership;
  if (own === 'join' || own === 'invite') return undefined;

  await checkAllowConditions(ctx, joinRule!.allow, userId);

  const lookup = (type: string, sk: string) => authState.get(keyOf(type, sk));
  const inviteLevel = namedPowerLevel('invite', lookup, version);
  const members = await ctx.storage.memberships.members(roomId, ['join']);
  const candidates = members.filter((m) => serverNameOf(m.userId) === ctx.config.server_name);
  const memberEvents = await ctx.storage.events.getEvents(candidates.map((m) => m.eventId));
  let best: { userId: string; level: number } | undefined;
  for (const m of candidates) {
    const withMember = (type: string, sk: string) =>
      type === 'm.room.member' && sk === m.userId ? memberEvents.get(m.eventId) : lookup(type, sk);
    const level = userPowerLevel(m.userId, withMember, version);
    if (level >= inviteLevel && (!best || level > best.level)) best = { userId: m.userId, level };
  }
  if (!best) {
    throw new MatrixError(400, 'M_UNABLE_TO_GRANT_JOIN', 'No user of this server may invite to the room; try another server');
  }
  return best.userId;
}

/** Is the user joined to one of the rooms the join rule's `allow` list names? */
async function checkAllowConditions(ctx: ServerContext, allow: JsonValue | undefined, userId: string): Promise<void> {
  const roomIds = (Array.isArray(allow) ? allow : [])
    .filter((c): c is JsonObject => typeof c === 'object' && c !== null && !Array.isArray(c))
    .filter((c) => c.type === 'm.room_membership' && typeof c.room_id === 'string')
    .map((c) => c.room_id as string);
  let known = false;
  for (const allowed of roomIds) {
    if (!(await isResidentIn(ctx.storage, ctx.config.server_name, allowed))) continue;
    known = true;
    const member = await ctx.storage.events.getCurrentStateEvent(allowed, 'm.room.member', userId);
    if (member?.content.membership === 'join') return;
  }
  if (!known) {
    throw new MatrixError(400, 'M_UNABLE_TO_AUTHORISE_JOIN', 'This server is in none of the rooms the join rules allow');
  }
  throw forbidden(`${userId} is not joined to any of the rooms the join rules allow`);
}

// ------------------------------------------------------------------------------------ send_*

async function sendMembership(
  ctx: ServerContext,
  origin: string,
  roomId: string,
  eventId: string,
  body: unknown,
  membership: TemplateMembership,
): Promise<JsonObject> {
  const version = await residentRoomVersion(ctx, roomId);
  await checkServerAcl(ctx, roomId, origin);
  if (!isObject(body)) throw invalidParam('The body must be the signed event');
  let pdu: Pdu = body;
  checkMembershipShape(pdu, membership, origin, roomId);
  if (pdu.sender !== pdu.state_key) throw invalidParam('state_key must be the sender');
  if (eventIdOf(pdu, version) !== eventId) throw invalidParam(`The event's id is not ${eventId}`);

  let countersigned = false;
  if (membership === 'join') {
    const via = (pdu.content as JsonObject).join_authorised_via_users_server;
    if (typeof via === 'string' && serverNameOf(via) === ctx.config.server_name) {
      // Only vouch for joins we would have offered in make_join.
      const expected = await authorisingUserFor(ctx, roomId, version, pdu.sender as string);
      if (expected === undefined) throw invalidParam('This join needs no authorising user');
      const viaMember = await ctx.storage.events.getCurrentStateEvent(roomId, 'm.room.member', via);
      if (viaMember?.content.membership !== 'join') throw invalidParam(`${via} cannot authorise joins`);
      pdu = signEvent(pdu, ctx.config.server_name, ctx.keys.signingKey, version);
      countersigned = true;
    }
  }

  const stored = await receiveOrRefuse(ctx, pdu, origin, version);
  // We are the resident server: the other servers in the room hear of the event from us.
  const event = await ctx.storage.events.getEvent(stored);
  if (event) ctx.federation.sender.sendPdu(event);

  switch (membership) {
    case 'join':
      return joinResponse(ctx, stored, countersigned ? pdu : undefined);
    case 'knock':
      return { knock_room_state: await strippedStatePdus(ctx.storage, roomId) };
    case 'leave':
      return {};
  }
}

function checkMembershipShape(pdu: Pdu, membership: string, origin: string, roomId: string): void {
  if (pdu.type !== 'm.room.member') throw invalidParam('The event is not an m.room.member event');
  if (!isObject(pdu.content) || pdu.content.membership !== membership) {
    throw invalidParam(`The event's membership is not ${membership}`);
  }
  if (typeof pdu.sender !== 'string' || serverNameOf(pdu.sender) !== origin) {
    throw invalidParam(`The sender is not a user of ${origin}`);
  }
  if (pdu.room_id !== roomId) throw invalidParam(`The event is not in room ${roomId}`);
}

function eventIdOf(pdu: Pdu, version: RoomVersion): string | undefined {
  try {
    return computeEventId(pdu, version);
  } catch {
    return undefined;
  }
}

/** Runs the event through the pipeline's receive path; 403 when it is not accepted. */
async function receiveOrRefuse(ctx: ServerContext, pdu: Pdu, origin: string, version: RoomVersion): Promise<string> {
  let result;
  try {
    result = await ctx.pipeline.receive(pdu, { origin, roomVersion: version });
  } catch (err) {
    if (err instanceof PduCheckError) throw invalidParam(`The event failed its checks: ${err.message}`);
    throw err;
  }
  // A duplicate with a reason is one that was rejected before.
  if (result.outcome === 'rejected' || result.outcome === 'soft_failed' || (result.outcome === 'duplicate' && result.reason)) {
    throw forbidden(`The event was not accepted: ${result.reason ?? result.outcome}`);
  }
  return result.eventId;
}

/** The send_join v2 answer: the state before the join and the auth chain of it and of the join. */
async function joinResponse(ctx: ServerContext, eventId: string, countersigned: Pdu | undefined): Promise<JsonObject> {
  const { events } = ctx.storage;
  const stateMap = (await events.getStateAtEvent(eventId, 'before')) ?? new Map<string, string>();
  const stateIds = [...stateMap.values()];
  const stateEvents = [...(await events.getEvents(stateIds)).values()];
  const join = await events.getEvent(eventId);
  const chain = await authChain(ctx, [...stateEvents, ...(join ? [join] : [])]);
  const servers = new Set<string>();
  for (const e of stateEvents) {
    if (e.type === 'm.room.member' && e.content.membership === 'join' && e.state_key) {
      const server = serverNameOf(e.state_key);
      if (server) servers.add(server);
    }
  }
  const body: JsonObject = {
    origin: ctx.config.server_name,
    members_omitted: false,
    servers_in_room: [...servers],
    state: await servedPdus(ctx.storage, stateEvents),
    auth_chain: await servedPdus(ctx.storage, chain),
  };
  if (countersigned) body.event = countersigned;
  return body;
}

/** Every event reachable through auth_events from `start` (excluding `start` itself unless reached). */
async function authChain(ctx: ServerContext, start: RoomEvent[]): Promise<RoomEvent[]> {
  const seen = new Map<string, RoomEvent>();
  let frontier = start.flatMap((e) => e.auth_events);
  while (frontier.length > 0) {
    const wanted = [...new Set(frontier)].filter((id) => !seen.has(id));
    if (wanted.length === 0) break;
    const loaded = await ctx.storage.events.getEvents(wanted);
    frontier = [];
    for (const e of loaded.values()) {
      seen.set(e.event_id, e);
      frontier.push(...e.auth_events);
    }
  }
  return [...seen.values()];
}

// ------------------------------------------------------------------------------------ invite

async function receiveInvite(ctx: ServerContext, origin: string, roomId: string, eventId: string, body: unknown): Promise<JsonObject> {
  if (!isObject(body) || !isObject(body.event)) throw invalidParam('The body needs an event');
  const versionId = typeof body.room_version === 'string' ? body.room_version : undefined;
  if (versionId === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', 'room_version is required');
  const version = getRoomVersion(versionId);
  if (!version) {
    throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `This server does not support room version ${versionId}`, {
      room_version: versionId,
    });
  }
  await checkServerAcl(ctx, roomId, origin);
  const pdu = body.event;
  checkMembershipShape(pdu, 'invite', origin, roomId);
  const invitee = pdu.state_key;
  if (typeof invitee !== 'string' || serverNameOf(invitee) !== ctx.config.server_name) {
    throw invalidParam('The invitee is not a user of this server');
  }
  if (eventIdOf(pdu, version) !== eventId) throw invalidParam(`The event's id is not ${eventId}`);
  let checked: RoomEvent;
  try {
    checked = await checkIncomingPdu(ctx, pdu, version);
  } catch (err) {
    if (err instanceof PduCheckError) throw invalidParam(`The invite failed its checks: ${err.message}`);
    throw err;
  }
  if (checked.pdu !== pdu) throw invalidParam("The invite's content hash does not match");
  if (!(await ctx.storage.accounts.getUser(invitee))) throw forbidden(`${invitee} does not exist on this server`);

  const roomState = Array.isArray(body.invite_room_state) ? body.invite_room_state : [];
  checkInviteRoomState(roomState, roomId, version);

  const signed = signEvent(pdu, ctx.config.server_name, ctx.keys.signingKey, version);
  const room = await ctx.storage.rooms.getRoom(roomId);
  if (room && (await isResidentIn(ctx.storage, ctx.config.server_name, roomId))) {
    // We hold the room: the invite must pass auth against our copy, like any other event.
    if (room.roomVersion !== version.id) {
      throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room ${roomId} has version ${room.roomVersion}, not ${version.id}`, {
        room_version: room.roomVersion,
      });
    }
    await receiveOrRefuse(ctx, signed, origin, version);
    return { event: signed };
  }
  await persistOutOfBandMembership(ctx, signed, version, toStrippedState(roomState));
  return { event: signed };
}

/** v12 (SHOULD; MAY earlier, which we skip): the create event is there and names this room. */
function checkInviteRoomState(roomState: JsonValue[], roomId: string, version: RoomVersion): void {
  if (!version.privilegedCreators) return;
  const create = roomState.find((e): e is JsonObject => isObject(e) && e.type === 'm.room.create' && e.state_key === '');
  if (!create) throw invalidParam('invite_room_state has no m.room.create event');
  let derived: string | undefined;
  try {
    derived = roomIdFromCreateEvent(create, version);
  } catch {
    derived = undefined;
  }
  if (derived !== roomId) throw invalidParam("invite_room_state's create event is not this room's");
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
