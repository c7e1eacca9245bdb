/**
 * Client-Server API, "Getting events for a room": `/messages` (paginating a room's history in
 * either direction with `t{position}` tokens) and `/context/{eventId}`. History visibility
 * applies to every event returned; lazy-loading filters get the senders' member events in `state`.
 */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../context.js';
import type { RoomEvent, StateMap } from '../../events/types.js';
import { parseStateKey, stateKey } from '../../events/types.js';
import { requireUser, type Requester } from '../../http/auth.js';
import { forbidden, invalidParam, notFound } from '../../http/errors.js';
import { backfillRoom } from '../../federation/backfill.js';
import { canSeeEvent } from '../../rooms/visibility.js';
import type { Storage } from '../../storage/database.js';
import { parseRoomEventFilterParam, type RoomEventFilter } from '../../sync/filter.js';
import { formatForClient } from '../../sync/format.js';
import { eventsOf, readTimeline } from '../../sync/timeline.js';
import { formatPaginationToken, parsePaginationToken } from '../../sync/tokens.js';
import { intQuery, pathParam, roomIdParam, stringQuery } from './params.js';

/** Below every stream position (backfilled events have negative ones); fits a `t` token. */
const BEFORE_ALL = -999_999_999_999_999;

/** Events per page at most, whatever the client asks. */
const MAX_LIMIT = 1000;

export function registerMessages(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/_matrix/client/v3/rooms/:roomId/messages', async (req) => {
    const requester = await requireUser(ctx, req, { allowGuest: true });
    const roomId = roomIdParam(req);
    const dir = stringQuery(req, 'dir');
    if (dir !== 'b' && dir !== 'f') throw invalidParam('dir must be "b" or "f"');
    const filter = parseRoomEventFilterParam(stringQuery(req, 'filter'));
    const limit = Math.min(intQuery(req, 'limit', { min: 0 }) ?? filter.limit ?? 10, filter.limit ?? MAX_LIMIT, MAX_LIMIT);
    const fromText = stringQuery(req, 'from');
    const toText = stringQuery(req, 'to');
    const from = fromText ? parsePaginationToken(fromText) : undefined;
    const to = toText ? parsePaginationToken(toText) : undefined;
    await requireRoomAccess(ctx, requester, roomId);

    const max = await ctx.storage.events.getMaxStreamPosition();
    // Backfilled history sits at negative positions: the start of the room is below them all.
    const start = from ?? (dir === 'b' ? max : BEFORE_ALL);
    const end = to ?? (dir === 'b' ? BEFORE_ALL : max);
    const read = async () =>
      (dir === 'b' ? start > end : start < end)
        ? await readTimeline(ctx.storage, { roomId, userId: requester.userId, from: start, to: end, dir, limit, filter })
        : { events: [], next: undefined };
    let page = await read();
    // Reached the oldest events held without a full page: older history may be on other servers.
    if (dir === 'b' && to === undefined && page.next === undefined) {
      if (page.events.length < limit && (await backfillRoom(ctx, roomId, limit)) > 0) page = await read();
      // Older history still on other servers: the client may ask again from here.
      const last = page.events.at(-1);
      if (page.next === undefined && last && (await ctx.storage.events.getBackwardExtremities(roomId, 1)).length > 0) {
        page = { ...page, next: last.streamPosition - 1 };
      }
    }

    const events = page.events.map((t) => t.event);
    const body: Record<string, unknown> = {
      start: fromText ?? formatPaginationToken(start),
      chunk: await formatForClient(ctx.storage, events, {}, requester, true),
    };
    if (page.next !== undefined) body.end = formatPaginationToken(page.next);
    if (filter.lazy_load_members && events.length > 0) {
      body.state = await formatForClient(ctx.storage, await sendersMembers(ctx.storage, events, dir), {}, requester, true);
    }
    return body;
  });

  app.get('/_matrix/client/v3/rooms/:roomId/context/:eventId', async (req) => {
    const requester = await requireUser(ctx, req, { allowGuest: true });
    const roomId = roomIdParam(req);
    const limit = Math.min(intQuery(req, 'limit', { min: 0 }) ?? 10, MAX_LIMIT);
    const filter = parseRoomEventFilterParam(stringQuery(req, 'filter'));
    await requireRoomAccess(ctx, requester, roomId);
    const event = await ctx.storage.events.getEvent(pathParam(req, 'eventId'));
    const info = event && (await ctx.storage.events.getEventInfo(event.event_id));
    if (!event || !info || event.room_id !== roomId || info.outlier || !(await canSeeEvent(ctx.storage, requester.userId, event))) {
      throw notFound('Event not found');
    }
    return eventContext(ctx, requester, event, info.streamPosition, limit, filter);
  });
}

async function eventContext(
  ctx: ServerContext,
  requester: Requester,
  event: RoomEvent,
  position: number,
  limit: number,
  filter: RoomEventFilter,
): Promise<Record<string, unknown>> {
  const { storage } = ctx;
  const base = { roomId: event.room_id, userId: requester.userId, filter };
  const beforeLimit = Math.floor(limit / 2);
  const max = await storage.events.getMaxStreamPosition();
  const before = await readTimeline(storage, { ...base, from: position - 1, to: BEFORE_ALL, dir: 'b', limit: beforeLimit });
  const after = await readTimeline(storage, { ...base, from: position, to: max, dir: 'f', limit: limit - beforeLimit });
  const lastBefore = before.events.at(-1);
  const lastAfter = after.events.at(-1);

  // The state at the last event returned.
  const stateAt = lastAfter?.event.event_id ?? event.event_id;
  let state = (await storage.events.getStateAtEvent(stateAt, 'after')) ?? new Map();
  const all = [...before.events, ...after.events].map((t) => t.event).concat(event);
  if (filter.lazy_load_members) state = onlyMembersOf(state, all);
  const loaded = await storage.events.getEvents(state.values());
  const stateEvents = [...state.values()].map((id) => loaded.get(id)).filter((e): e is RoomEvent => e !== undefined);

  const format = (events: RoomEvent[]) => formatForClient(storage, events, {}, requester, true);
  return {
    start: formatPaginationToken(before.next ?? (lastBefore ? lastBefore.streamPosition - 1 : position - 1)),
    end: formatPaginationToken(after.next ?? (lastAfter ? lastAfter.streamPosition : position)),
    events_before: await format(eventsOf(before.events)),
    event: (await format([event]))[0],
    events_after: await format(eventsOf(after.events)),
    state: await format(stateEvents),
  };
}

/**
 * Reading a room's history needs having been in it (history visibility then decides event by
 * event), or a world-readable room. 404 for a room this server does not know.
 */
async function requireRoomAccess(ctx: ServerContext, requester: Requester, roomId: string): Promise<void> {
  const membership = await ctx.storage.memberships.get(roomId, requester.userId);
  if (membership && !membership.forgotten) return;
  if (!(await ctx.storage.rooms.getRoom(roomId))) throw notFound('Unknown room');
  const hv = await ctx.storage.events.getCurrentStateEvent(roomId, 'm.room.history_visibility', '');
  if (hv?.content.history_visibility === 'world_readable') return;
  throw forbidden('You are not in this room');
}

/** The member events of the senders of `events`: as of the oldest one, else the newest. */
async function sendersMembers(storage: Storage, events: RoomEvent[], dir: 'b' | 'f'): Promise<RoomEvent[]> {
  const oldest = dir === 'b' ? events.at(-1)! : events[0]!;
  const newest = dir === 'b' ? events[0]! : events.at(-1)!;
  const senders = new Set(events.map((e) => e.sender));
  const ids = new Map<string, string>();
  for (const at of [oldest, newest]) {
    const state = (await storage.events.getStateAtEvent(at.event_id, 'after')) ?? new Map<string, string>();
    for (const sender of senders) {
      const id = state.get(stateKey('m.room.member', sender));
      if (id && !ids.has(sender)) ids.set(sender, id);
    }
  }
  const loaded = await storage.events.getEvents(ids.values());
  return [...ids.values()].map((id) => loaded.get(id)).filter((e): e is RoomEvent => e !== undefined);
}

function onlyMembersOf(state: StateMap, events: readonly RoomEvent[]): StateMap {
  const senders = new Set(events.map((e) => e.sender));
  return new Map(
    [...state].filter(([key]) => {
      const [type, sk] = parseStateKey(key);
      return type !== 'm.room.member' || senders.has(sk);
    }),
  );
}
