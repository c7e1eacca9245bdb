/**
 * Membership in rooms this server is not in (Server-Server API "Joining rooms", "Knocking upon a
 * room", "Leaving rooms (rejecting invites)", "Inviting to a room"), for our users:
 *
 * - join: make_join on a resident server (candidates in turn), fill in and sign the template,
 *   send_join, then store the auth chain and state it answers with as outliers and the join
 *   itself with that state, all through the pipeline's receive path;
 * - knock and rejecting an invite / rescinding a knock: make_knock / make_leave, send_*, and the
 *   event kept out of band (an outlier with the user's membership row);
 * - inviting a remote user: the invitee's server countersigns the invite (pipeline.send's
 *   `countersign` option, `inviteCountersigner`);
 * - invites other servers send us are kept out of band as well (api/federation/membership.ts).
 */
import type { ServerContext } from '../context.js';
import { computeEventId, roomIdFromCreateEvent } from '../events/event-id.js';
import { serverNameOf, signEvent } from '../events/event-signing.js';
import { toRoomEvent } from '../events/pdu.js';
import { redactEvent } from '../events/redaction.js';
import { stateKey as keyOf, type JsonObject, type JsonValue, type Pdu, type StateMap } from '../events/types.js';
import { FederationRequestError } from '../federation/runtime.js';
import { MatrixError, notFound } from '../http/errors.js';
import type { Storage } from '../storage/database.js';
import { localJoinedMembers } from './event-templates.js';
import { randomId, type SentEvent } from './pipeline.js';
import { safeEventId } from './receive.js';
import { getRoomVersion, ROOM_VERSIONS, type RoomVersion } from './room-versions.js';

const FED = '/_matrix/federation';
/** Every room version this server implements: the `ver` of make_join / make_knock. */
const SUPPORTED_VERSIONS = [...ROOM_VERSIONS.keys()];

/** State that identifies a room to an invitee or knocker (spec "Stripped state"). */
export const STRIPPED_STATE_TYPES = [
  'm.room.create',
  'm.room.join_rules',
  'm.room.name',
  'm.room.avatar',
  'm.room.canonical_alias',
  'm.room.encryption',
  'm.room.topic',
];

type RemoteMembership = 'join' | 'leave' | 'knock';

// ---------------------------------------------------------------------------- stripped state

/**
 * The room's identifying current state as full PDUs (invite_room_state and knock_room_state
 * must be formatted per the room version since v1.16), with `memberOf`'s member event if given.
 */
export async function strippedStatePdus(storage: Storage, roomId: string, memberOf?: string): Promise<JsonObject[]> {
  const keys: Array<[string, string]> = STRIPPED_STATE_TYPES.map((t) => [t, '']);
  if (memberOf) keys.push(['m.room.member', memberOf]);
  const ids = await Promise.all(keys.map(([t, sk]) => storage.events.getCurrentStateEventId(roomId, t, sk)));
  const events = [...(await storage.events.getEvents(ids.filter((id): id is string => id !== undefined))).values()];
  // As other servers are served events: redacted where a redaction applied (api/federation/events.ts servedPdus).
  const redacted = await storage.events.getRedactedBecause(events.map((e) => e.event_id));
  const versionId = await storage.rooms.getRoomVersion(roomId);
  const version = versionId ? getRoomVersion(versionId) : undefined;
  return events.map((e) => {
    const { unsigned: _u, ...pdu } = e.pdu;
    return redacted.has(e.event_id) && version ? redactEvent(pdu, version) : pdu;
  });
}

/** Stripped state events (type, state_key, content, sender) from what another server sent. */
export function toStrippedState(list: readonly JsonValue[]): JsonObject[] {
  const out: JsonObject[] = [];
  for (const e of list) {
    if (!isObject(e) || typeof e.type !== 'string' || !isObject(e.content)) continue;
    if (typeof e.sender !== 'string') continue;
    out.push({ type: e.type, state_key: typeof e.state_key === 'string' ? e.state_key : '', content: e.content, sender: e.sender });
  }
  return out;
}

/** Keeps a membership event out of band (see pipeline.persistOutOfBandMembership). */
export async function persistOutOfBandMembership(
  ctx: ServerContext,
  pdu: Pdu,
  version: RoomVersion,
  strippedState?: JsonObject[],
): Promise<SentEvent> {
  const { unsigned: _unsigned, ...wire } = pdu;
  const event = toRoomEvent(wire, version);
  await ctx.storage.rooms.storeRoom({ roomId: event.room_id, roomVersion: version.id });
  return ctx.pipeline.persistOutOfBandMembership(event, strippedState);
}

// ---------------------------------------------------------------------------- which path

/**
 * Whether a membership change of a local user in this room needs the federation handshake: this
 * server holds no live copy of the room (no current state, or none of its users is joined while
 * other servers' users are).
 */
export async function needsRemoteHandshake(ctx: ServerContext, roomId: string, userId?: string): Promise<boolean> {
  const ours = ctx.config.server_name;
  if ((await ctx.storage.events.getCurrentStateEventId(roomId, 'm.room.create', '')) === undefined) return true;
  if (userId && (await heldOnlyOutOfBand(ctx, roomId, userId))) return true;
  if ((await localJoinedMembers(ctx.storage, ours, roomId)).length > 0) return false;
  const joined = await ctx.storage.memberships.members(roomId, ['join']);
  return joined.some((m) => serverNameOf(m.userId) !== ours);
}

/**
 * The user's membership is an invite or knock this server holds out of band that its copy of the
 * room does not show (yet): the resident servers must handle the user's next change.
 */
async function heldOnlyOutOfBand(ctx: ServerContext, roomId: string, userId: string): Promise<boolean> {
  const row = await ctx.storage.memberships.get(roomId, userId);
  if (!row || (row.membership !== 'invite' && row.membership !== 'knock')) return false;
  if (!(await ctx.storage.events.getEventInfo(row.eventId))?.outlier) return false;
  const inState = await ctx.storage.events.getCurrentStateEventId(roomId, 'm.room.member', userId);
  return inState !== row.eventId;
}

/**
 * Servers to try, in order: those the client named, the server of whoever invited the user (or
 * whom the user knocked through), the room id's server (v1–v11), then servers with joined members.
 */
async function candidateServers(ctx: ServerContext, roomId: string, userId: string, via: readonly string[]): Promise<string[]> {
  const out = new Set<string>(via);
  const own = await ctx.storage.memberships.get(roomId, userId);
  if (own) {
    const server = serverNameOf(own.sender);
    if (server) out.add(server);
    for (const e of (await ctx.storage.memberships.strippedStateOf(own.eventId)) ?? []) {
      const s = serverNameOf(e.sender);
      if (s) out.add(s);
    }
  }
  const roomServer = serverNameOf(roomId);
  if (roomServer) out.add(roomServer);
  for (const m of await ctx.storage.memberships.members(roomId, ['join'])) {
    const s = serverNameOf(m.userId);
    if (s) out.add(s);
  }
  out.delete(ctx.config.server_name);
  return [...out];
}

// ---------------------------------------------------------------------------- join

/** Joins a local user to a room through the candidate servers; the join is stored when this resolves. */
export async function joinRemoteRoom(
  ctx: ServerContext,
  userId: string,
  roomId: string,
  via: readonly string[],
  content: JsonObject,
): Promise<void> {
  await throughCandidates(ctx, roomId, userId, via, 'join', async (server) => {
    const { version, pdu, eventId } = await makeAndSign(ctx, server, roomId, userId, 'join', content);
    const answer = await ctx.federation.client.request<JsonObject>(server, {
      method: 'PUT',
      path: `${FED}/v2/send_join/${enc(roomId)}/${enc(eventId)}`,
      query: { omit_members: 'false' },
      body: pdu,
    });
    await persistJoin(ctx, server, roomId, version, pdu, eventId, answer);
  });
}

/**
 * Stores what send_join answered: the auth chain and state as outliers (auth events first), then
 * the join event with the returned state as the state before it. The room is then held here.
 */
async function persistJoin(
  ctx: ServerContext,
  server: string,
  roomId: string,
  version: RoomVersion,
  ourJoin: Pdu,
  eventId: string,
  answer: JsonObject,
): Promise<void> {
  const state = pduList(answer.state);
  const authChain = pduList(answer.auth_chain);
  checkCreateEvent(state, roomId, version, server);
  // A restricted join comes back countersigned by the authorising server.
  const join = isObject(answer.event) && safeEventId(answer.event, version) === eventId ? answer.event : ourJoin;

  const byId = new Map<string, Pdu>();
  for (const pdu of [...authChain, ...state]) {
    const id = safeEventId(pdu, version);
    if (id && id !== eventId) byId.set(id, pdu);
  }
  // Each checked (format, signatures, hash) and authorised against its own auth events.
  await ctx.pipeline.receiveOutliers(authEventsFirst(byId, version), { origin: server, roomVersion: version });

  const stateIds = state.map((p) => safeEventId(p, version)).filter((id) => id !== '');
  const stored = await ctx.storage.events.getEvents(stateIds);
  const rejected = await ctx.storage.events.getRejectedIds(stateIds);
  const stateBefore: StateMap = new Map();
  for (const e of stored.values()) {
    if (e.state_key !== undefined && e.room_id === roomId && !rejected.has(e.event_id)) stateBefore.set(keyOf(e.type, e.state_key), e.event_id);
  }
  const result = await ctx.pipeline.receive(join, { origin: server, roomVersion: version, stateBefore, fetched: true });
  if (result.outcome !== 'accepted' && !(result.outcome === 'duplicate' && !result.reason)) {
    throw new MatrixError(403, 'M_FORBIDDEN', `The join was not accepted here: ${result.reason ?? result.outcome}`);
  }
}

/** The state must hold this room's create event, of the version make_join named. */
function checkCreateEvent(state: Pdu[], roomId: string, version: RoomVersion, server: string): void {
  const create = state.find((p) => p.type === 'm.room.create' && p.state_key === '');
  const bad = (why: string) => new BadResponse(`${server} answered send_join with ${why}`);
  if (!create) throw bad('no m.room.create event in the state');
  const createRoomId = version.privilegedCreators ? safeRoomIdFromCreate(create, version) : create.room_id;
  if (createRoomId !== roomId) throw bad('the create event of another room');
  const content = isObject(create.content) ? create.content : {};
  const declared = typeof content.room_version === 'string' ? content.room_version : '1';
  if (declared !== version.id) throw bad(`a room of version ${declared}, not ${version.id}`);
}

function safeRoomIdFromCreate(create: Pdu, version: RoomVersion): string | undefined {
  try {
    return roomIdFromCreateEvent(create, version);
  } catch {
    return undefined;
  }
}

/** The PDUs ordered so that every event comes after the auth events it names (ties by depth). */
function authEventsFirst(byId: Map<string, Pdu>, version: RoomVersion): Pdu[] {
  const ordered: Pdu[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const authIds = (pdu: Pdu): string[] => {
    const refs = Array.isArray(pdu.auth_events) ? pdu.auth_events : [];
    const ids = refs.map((r) => (Array.isArray(r) ? r[0] : r)).filter((id): id is string => typeof id === 'string');
    // v12: the create event is implied by the room id.
    if (version.privilegedCreators && pdu.type !== 'm.room.create' && typeof pdu.room_id === 'string') {
      ids.push(`$${pdu.room_id.slice(1)}`);
    }
    return ids;
  };
  const visit = (id: string): void => {
    if (done.has(id) || visiting.has(id)) return;
    const pdu = byId.get(id);
    if (!pdu) return;
    visiting.add(id);
    for (const dep of authIds(pdu)) visit(dep);
    visiting.delete(id);
    done.add(id);
    ordered.push(pdu);
  };
  const depth = (p: Pdu) => (typeof p.depth === 'number' ? p.depth : 0);
  for (const [id] of [...byId].sort((a, b) => depth(a[1]) - depth(b[1]))) visit(id);
  return ordered;
}

// ---------------------------------------------------------------------------- knock, leave

/** Knocks on a room through the candidate servers; the knock is kept here out of band. */
export async function knockRemoteRoom(
  ctx: ServerContext,
  userId: string,
  roomId: string,
  via: readonly string[],
  content: JsonObject,
): Promise<void> {
  await throughCandidates(ctx, roomId, userId, via, 'knock', async (server) => {
    const { version, pdu, eventId } = await makeAndSign(ctx, server, roomId, userId, 'knock', content);
    const answer = await ctx.federation.client.request<JsonObject>(server, {
      method: 'PUT',
      path: `${FED}/v1/send_knock/${enc(roomId)}/${enc(eventId)}`,
      body: pdu,
    });
    const roomState = Array.isArray(answer.knock_room_state) ? answer.knock_room_state : [];
    await persistOutOfBandMembership(ctx, pdu, version, toStrippedState(roomState));
  });
}

/**
 * Rejects an invite (or rescinds a knock) in a room this server is not in, through the inviting
 * server or the room's others; the leave is kept out of band, so /sync shows the invite gone.
 */
export async function leaveRemoteRoom(ctx: ServerContext, userId: string, roomId: string, content: JsonObject): Promise<void> {
  await throughCandidates(ctx, roomId, userId, [], 'leave', async (server) => {
    const { version, pdu, eventId } = await makeAndSign(ctx, server, roomId, userId, 'leave', content);
    await ctx.federation.client.request<JsonObject>(server, {
      method: 'PUT',
      path: `${FED}/v2/send_leave/${enc(roomId)}/${enc(eventId)}`,
      body: pdu,
    });
    await persistOutOfBandMembership(ctx, pdu, version);
  });
}

// ---------------------------------------------------------------------------- invite

/**
 * The `countersign` step of pipeline.send for an invite of a remote user: PUT /v2/invite on the
 * invitee's server with the room's stripped state, and the event it returns, checked to carry
 * that server's valid signature.
 */
export function inviteCountersigner(ctx: ServerContext, roomId: string, invitee: string): (pdu: Pdu) => Promise<Pdu> {
  return async (pdu) => {
    const server = serverNameOf(invitee);
    const versionId = await ctx.storage.rooms.getRoomVersion(roomId);
    const version = versionId ? getRoomVersion(versionId) : undefined;
    if (!server || !version) throw notFound('Unknown room');
    const eventId = computeEventId(pdu, version);
    let answer: JsonObject;
    try {
      answer = await ctx.federation.client.request<JsonObject>(server, {
        method: 'PUT',
        path: `${FED}/v2/invite/${enc(roomId)}/${enc(eventId)}`,
        body: {
          room_version: version.id,
          event: pdu,
          invite_room_state: await strippedStatePdus(ctx.storage, roomId, pdu.sender as string),
        },
      });
    } catch (err) {
      throw asClientError(err, server, 'invite');
    }
    const signed = answer.event;
    if (!isObject(signed)) throw new MatrixError(502, 'M_UNKNOWN', `${server} answered the invite without an event`);
    try {
      await ctx.federation.keyring.verifySignedJson(server, redactEvent(signed, version), version.enforceKeyValidity ? (pdu.origin_server_ts as number) : 0);
    } catch (err) {
      throw new MatrixError(502, 'M_UNKNOWN', `${server} did not sign the invite validly: ${(err as Error).message}`);
    }
    return signed;
  };
}

// ---------------------------------------------------------------------------- the handshake

/** make_* on `server`: the template checked as the spec says, filled in and signed by us. */
async function makeAndSign(
  ctx: ServerContext,
  server: string,
  roomId: string,
  userId: string,
  membership: RemoteMembership,
  content: JsonObject,
): Promise<{ version: RoomVersion; pdu: Pdu; eventId: string }> {
  const made = await ctx.federation.client.request<JsonObject>(server, {
    method: 'GET',
    path: `${FED}/v1/make_${membership}/${enc(roomId)}/${enc(userId)}`,
    query: { ver: SUPPORTED_VERSIONS },
  });
  // Without room_version the room is version 1 or 2 (spec), which share an event format.
  const versionId = typeof made.room_version === 'string' ? made.room_version : '1';
  const version = getRoomVersion(versionId);
  if (!version) throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room version ${versionId} is not supported`, { room_version: versionId });
  const template = made.event;
  if (
    !isObject(template) ||
    template.room_id !== roomId ||
    template.sender !== userId ||
    template.state_key !== userId ||
    template.type !== 'm.room.member' ||
    !isObject(template.content) ||
    template.content.membership !== membership
  ) {
    throw new BadResponse(`${server} answered make_${membership} with a malformed template`);
  }
  const ours = ctx.config.server_name;
  const { signatures: _s, hashes: _h, unsigned: _u, event_id: _e, ...rest } = template;
  const filled: Pdu = {
    ...rest,
    // The template's content is the resident's (e.g. join_authorised_via_users_server); ours adds the profile.
    content: { ...content, ...template.content, membership },
    origin_server_ts: Date.now(),
  };
  if (version.updatedRedactionRules) delete filled.origin;
  else filled.origin = ours;
  if (version.eventFormat === 'v1') filled.event_id = `$${randomId(18)}:${ours}`;
  const pdu = signEvent(filled, ours, ctx.keys.signingKey, version);
  return { version, pdu, eventId: computeEventId(pdu, version) };
}

/**
 * Runs `attempt` against each candidate server until one succeeds. The client gets the most
 * telling failure: a Matrix error a server answered with before "could not reach".
 */
async function throughCandidates(
  ctx: ServerContext,
  roomId: string,
  userId: string,
  via: readonly string[],
  what: RemoteMembership,
  attempt: (server: string) => Promise<void>,
): Promise<void> {
  const servers = await candidateServers(ctx, roomId, userId, via);
  if (servers.length === 0) throw notFound(`No server to ${what} room ${roomId} through is known: name one with via`);
  let best: MatrixError | undefined;
  for (const server of servers) {
    try {
      await attempt(server);
      return;
    } catch (err) {
      const error = err instanceof MatrixError ? err : asClientError(err, server, what);
      ctx.log.info({ roomId, server, err: error.message }, `remote ${what} failed`);
      // A server's own refusal says more than an unreachable one.
      if (!best || (best.statusCode >= 500 && error.statusCode < 500)) best = error;
    }
  }
  throw best!;
}

class BadResponse extends MatrixError {
  constructor(message: string) {
    super(502, 'M_UNKNOWN', message);
  }
}

/**
 * A remote failure as the client sees it: the remote's own 4xx Matrix error passed on (except
 * M_INVALID_PARAM / M_MISSING_PARAM, which describe our request: 502 as the spec advises), and
 * unreachable or failing servers as 502.
 */
function asClientError(err: unknown, server: string, what: string): MatrixError {
  if (err instanceof MatrixError) return err;
  if (err instanceof FederationRequestError && err.status !== undefined && err.status >= 400 && err.status < 500 && err.errcode) {
    const remote = isObject(err.body) && typeof err.body.error === 'string' ? err.body.error : err.message;
    if (err.errcode === 'M_INVALID_PARAM' || err.errcode === 'M_MISSING_PARAM') {
      return new MatrixError(502, 'M_UNKNOWN', `${server} refused our ${what}: ${remote}`);
    }
    const extra = isObject(err.body) && typeof err.body.room_version === 'string' ? { room_version: err.body.room_version } : {};
    return new MatrixError(err.status, err.errcode, `${server}: ${remote}`, extra);
  }
  if (err instanceof FederationRequestError && err.status === 404) {
    return notFound(`${server} does not know the room`);
  }
  return new MatrixError(502, 'M_UNKNOWN', `Could not ${what} through ${server}: ${(err as Error).message}`);
}

function pduList(value: JsonValue | undefined): Pdu[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
