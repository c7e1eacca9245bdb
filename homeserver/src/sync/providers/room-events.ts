/**
 * The events stream: the join and leave sections (timeline, state, summary) and the invite and
 * knock sections (stripped state) of /sync.
 */
import type { JsonObject, RoomEvent, StateMap } from '../../events/types.js';
import { stateKey } from '../../events/types.js';
import type { Storage } from '../../storage/database.js';
import type { RoomEventFilter } from '../filter.js';
import type { MembershipRow } from '../../storage/memberships-store.js';
import { formatForClient, strippedEvent } from '../format.js';
import { lazyLoadedState, roomStateEvents, roomSummary, stateEventsToSend, summaryOf, type RoomSummary } from '../room-state.js';
import { GroupStates, latestTimelines, type BulkTimeline, readTimeline, roomsWithEventsBetween } from '../timeline.js';
import { formatPaginationToken } from '../tokens.js';
import type { RoomPlan, SyncProvider, SyncRequest, TimelineBatch } from '../types.js';

/** Timeline events per room when the filter does not say. */
export const DEFAULT_TIMELINE_LIMIT = 10;
/** The most timeline events per room a filter may ask for. */
const MAX_TIMELINE_LIMIT = 500;
/** Rooms read together by an initial sync. */
const BULK_ROOMS = 100;

/** State sent to invitees and knockers (spec "Stripped state"), besides their own member event. */
const STRIPPED_TYPES = [
  'm.room.create',
  'm.room.join_rules',
  'm.room.name',
  'm.room.avatar',
  'm.room.canonical_alias',
  'm.room.encryption',
  'm.room.topic',
];

export const roomEventsProvider: SyncProvider = {
  stream: 'events',
  currentPosition: (ctx) => ctx.storage.events.getMaxStreamPosition(),
  async fill(req, out) {
    const active = req.since ? await roomsWithEventsBetween(req.ctx.storage, req.since.events, req.to.events) : undefined;
    // An initial sync reads its rooms in bulk; rooms the bulk read cannot decide, and every
    // incremental sync, go room by room.
    const bulk = new Map<string, SyncedRoom>();
    if (!req.since) {
      // In batches of rooms: what a batch reads (rows, parsed PDUs, group states) is garbage once
      // formatted, so the peak memory of a sync of many rooms stays bounded.
      const plans = [...req.rooms.join, ...req.rooms.leave];
      for (let i = 0; i < plans.length; i += BULK_ROOMS) {
        for (const [roomId, room] of await syncRoomsInBulk(req, plans.slice(i, i + BULK_ROOMS))) bulk.set(roomId, room);
      }
    }
    for (const plan of req.rooms.join) {
      if (!plan.fullState && active && !active.has(plan.roomId)) continue;
      const room = bulk.get(plan.roomId) ?? (await syncRoom(req, plan));
      if (!room) continue;
      const body = out.joined(plan.roomId);
      body.timeline = room.timeline;
      if (req.useStateAfter) body.state_after = { events: room.state };
      else body.state = { events: room.state };
      body.summary = room.summary as unknown as JsonObject;
      out.hasContent = true;
    }
    for (const plan of req.rooms.leave) {
      const room = bulk.get(plan.roomId) ?? (await syncRoom(req, plan));
      const body = out.left(plan.roomId);
      if (room) {
        body.timeline = room.timeline;
        if (req.useStateAfter) body.state_after = { events: room.state };
        else body.state = { events: room.state };
      }
      await addOutOfBandLeave(req, plan, body.timeline);
      out.hasContent = true;
    }
    for (const m of req.rooms.invite) {
      out.body.rooms.invite[m.roomId] = { invite_state: { events: await strippedState(req.ctx.storage, m) } };
      out.hasContent = true;
    }
    for (const m of req.rooms.knock) {
      out.body.rooms.knock[m.roomId] = { knock_state: { events: await strippedState(req.ctx.storage, m) } };
      out.hasContent = true;
    }
  },
};

interface SyncedRoom {
  timeline: TimelineBatch;
  state: JsonObject[];
  summary: unknown;
}

/** A room's timeline and state; undefined when nothing changed for an incremental sync. */
async function syncRoom(req: SyncRequest, plan: RoomPlan): Promise<SyncedRoom | undefined> {
  const { storage } = req.ctx;
  const timelineFilter = req.filter.room?.timeline;
  const limit = Math.min(timelineFilter?.limit ?? DEFAULT_TIMELINE_LIMIT, MAX_TIMELINE_LIMIT);
  const lower = plan.timelineSince ?? 0;
  if (!plan.fullState && lower >= plan.upTo) return undefined;
  const page =
    lower < plan.upTo
      ? await readTimeline(storage, {
          roomId: plan.roomId,
          userId: req.userId,
          from: plan.upTo,
          to: lower,
          dir: 'b',
          limit,
          filter: timelineFilter,
        })
      : { events: [], next: undefined };
  const timeline = page.events.reverse();
  const limited = page.next !== undefined;
  if (!plan.fullState && timeline.length === 0 && !limited) {
    // Nothing to show; state may still have changed through events the filter left out.
    const [any] = await storage.events.getEventsBetween(plan.roomId, plan.upTo, lower, 1, 'b');
    if (!any) return undefined;
  }

  const summary = await roomSummary(storage, plan.roomId, req.userId);
  const gapless = !limited && !narrowsEvents(timelineFilter);
  const stateEvents = await roomStateEvents(req, plan, timeline, summary['m.heroes'], gapless);
  if (!plan.fullState && timeline.length === 0 && stateEvents.length === 0) return undefined;

  const viewer = { userId: req.userId, deviceId: req.deviceId };
  const first = timeline[0];
  return {
    timeline: {
      events: await formatForClient(storage, timeline.map((t) => t.event), req.filter, viewer),
      limited,
      prev_batch: formatPaginationToken(first ? first.streamPosition - 1 : plan.upTo),
    },
    state: await formatForClient(storage, stateEvents, req.filter, viewer),
    summary,
  };
}

/**
 * The rooms of an initial sync (every plan has full state and no `since`), as syncRoom would
 * give them, read for all rooms together: the newest events of every room in one statement per
 * 100 rooms, the state groups at them and the member lists likewise, events loaded and formatted
 * together. Rooms whose timeline the bulk read cannot decide (latestTimelines) are left out.
 */
async function syncRoomsInBulk(req: SyncRequest, plans: readonly RoomPlan[]): Promise<Map<string, SyncedRoom>> {
  const out = new Map<string, SyncedRoom>();
  if (plans.length === 0) return out;
  const { storage } = req.ctx;
  const timelineFilter = req.filter.room?.timeline;
  const limit = Math.min(timelineFilter?.limit ?? DEFAULT_TIMELINE_LIMIT, MAX_TIMELINE_LIMIT);
  const groups = new GroupStates(storage);
  const timelines = await latestTimelines(storage, {
    userId: req.userId,
    rooms: plans.map((p) => ({ roomId: p.roomId, upTo: p.upTo, joinedNow: p.membership.membership === 'join' })),
    limit,
    filter: timelineFilter,
    groups,
  });
  const decided = plans.filter((p) => timelines.has(p.roomId));
  if (decided.length === 0) return out;

  // The state at the start of each timeline (`state_after`: at its end, the newest event).
  const targetGroup = (t: BulkTimeline): number | null => {
    const first = t.events[0];
    if (!req.useStateAfter && first) return first.stateGroupBefore;
    return t.newest?.stateGroupAfter ?? null;
  };
  await groups.load(decided.map((p) => targetGroup(timelines.get(p.roomId)!)));
  const members = await storage.syncReads.membersOfRooms(decided.map((p) => p.roomId));

  const lazy = req.filter.room?.state?.lazy_load_members === true;
  const chosenByRoom = new Map<string, { chosen: ReadonlyMap<string, string>; summary: RoomSummary }>();
  const wanted = new Set<string>();
  for (const plan of decided) {
    const t = timelines.get(plan.roomId)!;
    const summary = summaryOf(members.get(plan.roomId) ?? [], req.userId);
    const target = groups.get(targetGroup(t));
    const chosen = lazy ? lazyLoadedState(req, plan, target, target, t.events, summary['m.heroes']) : target;
    chosenByRoom.set(plan.roomId, { chosen, summary });
    for (const id of chosen.values()) wanted.add(id);
  }
  // Each event's redaction is read with it, for the formatting below.
  const redactedBy = new Map<string, string>();
  const loaded = await storage.syncReads.events(wanted, redactedBy);

  // Format every room's events together: one round of redaction, transaction id and relation
  // look-ups for the whole response.
  const viewer = { userId: req.userId, deviceId: req.deviceId };
  const timelineEvents: RoomEvent[] = [];
  const stateEvents: RoomEvent[] = [];
  const parts = decided.map((plan) => {
    const t = timelines.get(plan.roomId)!;
    const { chosen, summary } = chosenByRoom.get(plan.roomId)!;
    const state = stateEventsToSend(req, plan, chosen, loaded, t.events);
    const part = { plan, t, summary, timelineAt: timelineEvents.length, stateAt: stateEvents.length, stateCount: state.length };
    for (const row of t.events) {
      timelineEvents.push(row.event);
      if (row.redactedBecause !== null) redactedBy.set(row.event.event_id, row.redactedBecause);
    }
    stateEvents.push(...state);
    return part;
  });
  const formatted = await formatForClient(storage, [...timelineEvents, ...stateEvents], req.filter, viewer, false, redactedBy);
  const formattedTimeline = formatted.slice(0, timelineEvents.length);
  const formattedState = formatted.slice(timelineEvents.length);
  for (const { plan, t, summary, timelineAt, stateAt, stateCount } of parts) {
    const first = t.events[0];
    out.set(plan.roomId, {
      timeline: {
        events: formattedTimeline.slice(timelineAt, timelineAt + t.events.length),
        limited: t.limited,
        prev_batch: formatPaginationToken(first ? first.streamPosition - 1 : plan.upTo),
      },
      state: formattedState.slice(stateAt, stateAt + stateCount),
      summary,
    });
  }
  return out;
}

/** Does the filter leave some of a room's events out of its timeline? */
function narrowsEvents(filter: RoomEventFilter | undefined): boolean {
  if (!filter) return false;
  const { types, not_types, senders, not_senders, rooms, not_rooms, contains_url } = filter;
  return [types, not_types, senders, not_senders, rooms, not_rooms, contains_url].some((v) => v !== undefined);
}

/**
 * A rejected invite or rescinded knock of a room this server is not in is an outlier (not in any
 * timeline): the user's own leave event is still the news, so it goes into the leave timeline.
 */
async function addOutOfBandLeave(req: SyncRequest, plan: RoomPlan, timeline: TimelineBatch): Promise<void> {
  const { storage } = req.ctx;
  const eventId = plan.membership.eventId;
  if (!(await storage.events.getEventInfo(eventId))?.outlier) return;
  const event = await storage.events.getEvent(eventId);
  if (!event) return;
  const [formatted] = await formatForClient(storage, [event], req.filter, { userId: req.userId, deviceId: req.deviceId });
  if (formatted && !timeline.events.some((e) => e.event_id === eventId)) timeline.events.push(formatted);
}

/** The stripped state at the invite or knock, with the inviter's and the user's member events. */
async function strippedState(storage: Storage, m: MembershipRow): Promise<JsonObject[]> {
  const own = await storage.events.getEvent(m.eventId);
  // An invite or knock held outside the room's DAG: the stripped state that came with it.
  const outOfBand = await storage.memberships.strippedStateOf(m.eventId);
  if (outOfBand) return [...outOfBand.filter((e) => !(e.type === 'm.room.member' && e.state_key === m.userId)), ...(own ? [strippedEvent(own)] : [])];
  const state = await storage.events.getStateAtEvent(m.eventId, 'after');
  const ids: string[] = [];
  if (state) {
    for (const type of STRIPPED_TYPES) {
      const id = state.get(stateKey(type, ''));
      if (id) ids.push(id);
    }
    const inviter = own && own.sender !== m.userId ? state.get(stateKey('m.room.member', own.sender)) : undefined;
    if (inviter) ids.push(inviter);
  }
  const loaded = await storage.events.getEvents(ids);
  const events = ids.map((id) => loaded.get(id)).filter((e): e is RoomEvent => e !== undefined);
  if (own) events.push(own);
  return events.map(strippedEvent);
}
