/**
 * Server-Server API, "Retrieving events", "Backfilling and retrieving missing events" and
 * "Timestamp to event": other servers read the events, state and auth chains this server holds.
 *
 *   GET  /_matrix/federation/v1/event/{eventId}
 *   GET  /_matrix/federation/v1/state/{roomId}?event_id=
 *   GET  /_matrix/federation/v1/state_ids/{roomId}?event_id=
 *   GET  /_matrix/federation/v1/event_auth/{roomId}/{eventId}
 *   POST /_matrix/federation/v1/get_missing_events/{roomId}
 *   GET  /_matrix/federation/v1/backfill/{roomId}?v=&limit=
 *   GET  /_matrix/federation/v1/timestamp_to_event/{roomId}?ts=&dir=
 *
 * Every request is authenticated (X-Matrix), checked against the room's server ACL, and answered
 * only with events the requesting server may see (federation/server-visibility.ts). State is the
 * state *before* the event, as the spec's /state and /state_ids define it.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../../context.js';
import { redactEvent } from '../../events/redaction.js';
import type { JsonObject, Pdu, RoomEvent } from '../../events/types.js';
import { checkServerAcl } from '../../federation/server-acl.js';
import { filterEventsForServer, serverInRoom } from '../../federation/server-visibility.js';
import { forbidden, MatrixError, notFound } from '../../http/errors.js';
import { requireServer } from '../../http/x-matrix.js';
import { getRoomVersion, type RoomVersion } from '../../rooms/room-versions.js';
import type { Storage } from '../../storage/database.js';
import { intQuery, pathParam, stringQuery } from '../client/params.js';

const FED = '/_matrix/federation/v1';
/** /backfill answers at most this many events, whatever is asked. */
const MAX_BACKFILL = 100;
/** /get_missing_events answers at most this many. */
const MAX_MISSING = 20;
/** How many events /get_missing_events and /backfill look at while walking the DAG. */
const MAX_WALK = 2000;

export function registerEventRetrieval(app: FastifyInstance, ctx: ServerContext): void {
  app.get(`${FED}/event/:eventId`, async (req) => {
    const origin = await requireServer(ctx, req);
    const eventId = pathParam(req, 'eventId');
    // The room's ACL first (from the event's room alone), before the event itself is loaded.
    const info = await ctx.storage.events.getEventInfo(eventId);
    if (!info) throw notFound('Event not found');
    await checkServerAcl(ctx, info.roomId, origin);
    const event = await ctx.storage.events.getEvent(eventId);
    if (!event) throw notFound('Event not found');
    if (!(await mayFetch(ctx.storage, origin, event))) throw notFound('Event not found');
    return { origin: ctx.config.server_name, origin_server_ts: Date.now(), pdus: [await servedPdu(ctx.storage, event)] };
  });

  app.get(`${FED}/state/:roomId`, async (req) => {
    const { event } = await stateRequest(ctx, req);
    const state = await stateBefore(ctx.storage, event);
    const pdus = await ctx.storage.events.getEvents(state);
    const authChain = await authChainOf(ctx.storage, [...pdus.values()]);
    return {
      pdus: await servedPdus(ctx.storage, [...pdus.values()]),
      auth_chain: await servedPdus(ctx.storage, authChain),
    };
  });

  app.get(`${FED}/state_ids/:roomId`, async (req) => {
    const { event } = await stateRequest(ctx, req);
    const state = await stateBefore(ctx.storage, event);
    const pdus = await ctx.storage.events.getEvents(state);
    const authChain = await authChainOf(ctx.storage, [...pdus.values()]);
    return { pdu_ids: [...pdus.keys()], auth_chain_ids: authChain.map((e) => e.event_id) };
  });

  app.get(`${FED}/event_auth/:roomId/:eventId`, async (req) => {
    const origin = await requireServer(ctx, req);
    const roomId = await knownRoom(ctx, req, origin);
    const event = await ctx.storage.events.getEvent(pathParam(req, 'eventId'));
    if (!event || event.room_id !== roomId || !(await mayFetch(ctx.storage, origin, event))) throw notFound('Event not found');
    return { auth_chain: await servedPdus(ctx.storage, await authChainOf(ctx.storage, [event])) };
  });

  app.post(`${FED}/get_missing_events/:roomId`, async (req) => {
    const origin = await requireServer(ctx, req);
    const roomId = await knownRoom(ctx, req, origin);
    if (!(await serverInRoom(ctx.storage, roomId, origin))) throw forbidden(`${origin} is not in the room`);
    const body = (req.body ?? {}) as JsonObject;
    const earliest = stringList(body.earliest_events, 'earliest_events');
    const latest = stringList(body.latest_events, 'latest_events');
    const limit = Math.min(optionalInt(body.limit, 'limit') ?? 10, MAX_MISSING);
    const minDepth = optionalInt(body.min_depth, 'min_depth') ?? 0;
    const found = await walkBack(ctx.storage, roomId, latest, { stop: new Set([...earliest, ...latest]), limit, minDepth, includeStart: false });
    const visible = await filterEventsForServer(ctx.storage, origin, found.reverse());
    return { events: await servedPdus(ctx.storage, visible) };
  });

  app.get(`${FED}/backfill/:roomId`, async (req) => {
    const origin = await requireServer(ctx, req);
    const roomId = await knownRoom(ctx, req, origin);
    const v = queryList(req, 'v');
    if (v.length === 0) throw new MatrixError(400, 'M_MISSING_PARAM', 'The query parameter v is required');
    const limit = Math.min(intQuery(req, 'limit', { min: 0 }) ?? 10, MAX_BACKFILL);
    const found = await walkBack(ctx.storage, roomId, v, { stop: new Set(), limit, minDepth: 0, includeStart: true });
    const visible = await filterEventsForServer(ctx.storage, origin, found);
    return { origin: ctx.config.server_name, origin_server_ts: Date.now(), pdus: await servedPdus(ctx.storage, visible) };
  });

  app.get(`${FED}/timestamp_to_event/:roomId`, async (req) => {
    const origin = await requireServer(ctx, req);
    const roomId = await knownRoom(ctx, req, origin);
    const ts = intQuery(req, 'ts', { min: 0 });
    if (ts === undefined) throw new MatrixError(400, 'M_MISSING_PARAM', 'The query parameter ts is required');
    const dir = stringQuery(req, 'dir');
    if (dir !== 'f' && dir !== 'b') throw new MatrixError(400, 'M_INVALID_PARAM', 'dir must be f or b');
    const near = await ctx.storage.directory.eventsNearTimestamp(roomId, ts, dir, 200);
    const events = await ctx.storage.events.getEvents(near.map((e) => e.eventId));
    const ordered = near.map((e) => events.get(e.eventId)).filter((e): e is RoomEvent => e !== undefined);
    const [found] = await filterEventsForServer(ctx.storage, origin, ordered);
    if (!found) throw notFound(`Unable to find an event from ${ts} in the ${dir === 'f' ? 'forward' : 'backward'} direction`);
    return { event_id: found.event_id, origin_server_ts: found.origin_server_ts };
  });
}

/** The room of the request: known here (404), and the origin not denied by its ACL (403). */
async function knownRoom(ctx: ServerContext, req: FastifyRequest, origin: string): Promise<string> {
  const roomId = pathParam(req, 'roomId');
  if (!(await ctx.storage.rooms.getRoom(roomId))) throw notFound('Unknown room');
  await checkServerAcl(ctx, roomId, origin);
  return roomId;
}

/** /state and /state_ids: the event named by `event_id`, in the room, held with state, visible. */
async function stateRequest(ctx: ServerContext, req: FastifyRequest): Promise<{ event: RoomEvent }> {
  const origin = await requireServer(ctx, req);
  const roomId = await knownRoom(ctx, req, origin);
  const eventId = stringQuery(req, 'event_id');
  if (!eventId) throw new MatrixError(400, 'M_MISSING_PARAM', 'The query parameter event_id is required');
  const event = await ctx.storage.events.getEvent(eventId);
  if (!event || event.room_id !== roomId) throw notFound('Event not found');
  if (!(await serverInRoom(ctx.storage, roomId, origin)) && (await filterEventsForServer(ctx.storage, origin, [event])).length === 0) {
    throw forbidden(`${origin} is not in the room`);
  }
  if (!(await ctx.storage.events.getStateAtEvent(eventId, 'before'))) throw notFound('No state is held at that event');
  return { event };
}

async function stateBefore(storage: Storage, event: RoomEvent): Promise<string[]> {
  return [...((await storage.events.getStateAtEvent(event.event_id, 'before')) ?? new Map()).values()];
}

/**
 * /event and /event_auth: a timeline event the server may see, or an outlier or rejected event
 * (auth events other servers need to check what we hold) when the server is in the room now.
 */
async function mayFetch(storage: Storage, server: string, event: RoomEvent): Promise<boolean> {
  const info = await storage.events.getEventInfo(event.event_id);
  if (!info) return false;
  if (info.outlier || info.rejectedReason !== null) return serverInRoom(storage, event.room_id, server);
  return (await filterEventsForServer(storage, server, [event])).length === 1;
}

/** The full auth chain of the events (their auth events, recursively), oldest-first by depth. */
export async function authChainOf(storage: Storage, events: readonly RoomEvent[]): Promise<RoomEvent[]> {
  const chain = new Map<string, RoomEvent>();
  let frontier = [...new Set(events.flatMap((e) => e.auth_events))];
  while (frontier.length > 0) {
    const loaded = await storage.events.getEvents(frontier.filter((id) => !chain.has(id)));
    const next = new Set<string>();
    for (const [id, e] of loaded) {
      chain.set(id, e);
      for (const a of e.auth_events) if (!chain.has(a)) next.add(a);
    }
    frontier = [...next];
  }
  return [...chain.values()].sort((a, b) => a.depth - b.depth);
}

/**
 * Walks back from `start` through prev_events, newest (deepest) first, collecting up to `limit`
 * timeline events of the room (outliers, rejected and soft-failed ones are walked through, not
 * returned), never past `stop` or below `minDepth`.
 */
async function walkBack(
  storage: Storage,
  roomId: string,
  start: string[],
  opts: { stop: Set<string>; limit: number; minDepth: number; includeStart: boolean },
): Promise<RoomEvent[]> {
  const out: RoomEvent[] = [];
  const seen = new Set<string>(start);
  const queue: RoomEvent[] = [];
  const startEvents = await storage.events.getEvents(start);
  const push = (e: RoomEvent) => {
    queue.push(e);
    queue.sort((a, b) => b.depth - a.depth);
  };
  for (const e of startEvents.values()) if (e.room_id === roomId) push(e);
  const startIds = new Set(start);
  let walked = 0;
  while (queue.length > 0 && out.length < opts.limit && walked < MAX_WALK) {
    const event = queue.shift()!;
    walked++;
    const isStart = startIds.has(event.event_id);
    if ((!isStart || opts.includeStart) && !opts.stop.has(event.event_id) && event.depth >= opts.minDepth) {
      const hidden = await storage.events.getHiddenIds([event.event_id]);
      if (!hidden.has(event.event_id)) out.push(event);
    }
    if (opts.stop.has(event.event_id) && !isStart) continue;
    const prevs = event.prev_events.filter((id) => !seen.has(id));
    for (const id of prevs) seen.add(id);
    const loaded = await storage.events.getEvents(prevs.filter((id) => !opts.stop.has(id)));
    for (const e of loaded.values()) if (e.room_id === roomId && e.depth >= opts.minDepth) push(e);
  }
  return out;
}

/** The PDU as served to other servers: redacted if a redaction applied, without `unsigned`. */
export async function servedPdu(storage: Storage, event: RoomEvent): Promise<Pdu> {
  return (await servedPdus(storage, [event]))[0]!;
}

export async function servedPdus(storage: Storage, events: readonly RoomEvent[]): Promise<Pdu[]> {
  const redacted = await storage.events.getRedactedBecause(events.map((e) => e.event_id));
  const versions = new Map<string, RoomVersion | undefined>();
  const out: Pdu[] = [];
  for (const event of events) {
    if (!versions.has(event.room_id)) {
      const id = await storage.rooms.getRoomVersion(event.room_id);
      versions.set(event.room_id, id ? getRoomVersion(id) : undefined);
    }
    const version = versions.get(event.room_id);
    const { unsigned: _u, ...pdu } = event.pdu;
    out.push(redacted.has(event.event_id) && version ? redactEvent(pdu, version) : pdu);
  }
  return out;
}

function stringList(value: unknown, name: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new MatrixError(400, 'M_BAD_JSON', `${name} must be an array of event ids`);
  }
  return value as string[];
}

function optionalInt(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new MatrixError(400, 'M_BAD_JSON', `${name} must be a non-negative integer`);
  }
  return value;
}

function queryList(req: FastifyRequest, name: string): string[] {
  const raw = (req.query as Record<string, unknown>)[name];
  if (Array.isArray(raw)) return raw.filter((v): v is string => typeof v === 'string');
  return typeof raw === 'string' ? [raw] : [];
}
