/**
 * The events stream: the join and leave sections (timeline, state, summary) and the invite and
 * knock sections (stripped state) of /sync.
 */
import type { JsonObject, RoomEvent } from '../../events/types.js';
import { stateKey } from '../../events/types.js';
import type { Storage } from '../../storage/database.js';
import type { RoomEventFilter } from '../filter.js';
import type { MembershipRow } from '../../storage/memberships-store.js';
import { formatForClient, strippedEvent } from '../format.js';
import { roomStateEvents, roomSummary } from '../room-state.js';
import { readTimeline, roomsWithEventsBetween } from '../timeline.js';
import { formatPaginationToken } from '../tokens.js';
import type { RoomPlan, SyncProvider, SyncRequest, TimelineBatch } from '../types.js';

/** Timeline events per room when the filter does not say. */
export const DEFAULT_TIMELINE_LIMIT = 10;
/** The most timeline events per room a filter may ask for. */
const MAX_TIMELINE_LIMIT = 500;

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
    for (const plan of req.rooms.join) {
      if (!plan.fullState && active && !active.has(plan.roomId)) continue;
      const room = await syncRoom(req, plan);
      if (!room) continue;
      const body = out.joined(plan.roomId);
      body.timeline = room.timeline;
      if (req.useStateAfter) body.state_after = { events: room.state };
      else body.state = { events: room.state };
      body.summary = room.summary as unknown as JsonObject;
      out.hasContent = true;
    }
    for (const plan of req.rooms.leave) {
      const room = await syncRoom(req, plan);
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
