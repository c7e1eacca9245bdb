/**
 * The `state` (or `state_after`) of a room in a sync response, and its summary.
 *
 * - full state (initial sync, newly joined, `full_state`): all of the state at the start of the
 *   timeline (`state_after`: at its end);
 * - otherwise: what differs between the state at `since` and there.
 * Then the state filter applies, and lazy-loading keeps only the member events the client needs:
 * the timeline's senders (unless it already has them), the user's own and the heroes' on full
 * state, and every membership change in a gap.
 */
import { parseStateKey, type RoomEvent, type StateMap } from '../events/types.js';
import type { Storage } from '../storage/database.js';
import type { TimelineEvent } from '../storage/events-store.js';
import { matchesRoomEventFilter } from './filter.js';
import { stateAtPosition } from './timeline.js';
import type { RoomPlan, SyncRequest } from './types.js';

export async function roomStateEvents(
  req: SyncRequest,
  plan: RoomPlan,
  timeline: readonly TimelineEvent[],
  heroes: readonly string[],
  /** The timeline holds every event since the token: the state at its start is the state at the token. */
  gapless: boolean,
): Promise<RoomEvent[]> {
  const { storage } = req.ctx;
  const stateFilter = req.filter.room?.state;
  const lazy = stateFilter?.lazy_load_members === true;
  const unchanged = gapless && !plan.fullState && !req.useStateAfter;
  if (unchanged && !lazy) return [];
  const target = await targetState(storage, plan, timeline, req.useStateAfter);
  let chosen: StateMap;
  if (plan.fullState || plan.timelineSince === undefined) {
    chosen = target;
  } else if (unchanged) {
    chosen = new Map();
  } else {
    const atSince = (await stateAtPosition(storage, plan.roomId, plan.timelineSince)) ?? new Map();
    chosen = new Map([...target].filter(([key, id]) => atSince.get(key) !== id));
  }

  if (lazy) chosen = lazyLoadedState(req, plan, target, chosen, timeline, heroes);
  const loaded = await storage.events.getEvents(chosen.values());
  return stateEventsToSend(req, plan, chosen, loaded, timeline);
}

/**
 * Lazy-loading members: of `target`'s member events, only those the client needs (the timeline's
 * senders unless it already has them; the user's own and the heroes' on full state; every
 * membership change in `chosen`, the gap); other state as `chosen` has it.
 */
export function lazyLoadedState(
  req: SyncRequest,
  plan: RoomPlan,
  target: ReadonlyMap<string, string>,
  chosen: ReadonlyMap<string, string>,
  timeline: readonly TimelineEvent[],
  heroes: readonly string[],
): StateMap {
  const stateFilter = req.filter.room?.state;
  const members = new Set<string>(timeline.map((t) => t.event.sender));
  if (plan.fullState) {
    members.add(req.userId);
    for (const h of heroes) members.add(h);
  }
  let known = new Map<string, string>();
  if (!stateFilter?.include_redundant_members && req.since && !plan.fullState) {
    known = req.ctx.sync.lazyMembers.known(req.userId, req.deviceId, plan.roomId, req.since.events);
  }
  const gap = plan.fullState ? new Set<string>() : new Set(chosen.keys());
  return new Map(
    [...target].filter(([key, id]) => {
      const [type, member] = parseStateKey(key);
      if (type !== 'm.room.member') return chosen.has(key);
      if (gap.has(key)) return true;
      return members.has(member) && known.get(member) !== id;
    }),
  );
}

/**
 * The chosen state's events as the response carries them: without those in the timeline (for
 * `state`), through the state filter; with lazy-loading, the member events sent are remembered
 * for the device.
 */
export function stateEventsToSend(
  req: SyncRequest,
  plan: RoomPlan,
  chosen: ReadonlyMap<string, string>,
  loaded: ReadonlyMap<string, RoomEvent>,
  timeline: readonly TimelineEvent[],
): RoomEvent[] {
  const stateFilter = req.filter.room?.state;
  const timelineIds = new Set(timeline.map((t) => t.event.event_id));
  const events = [...chosen.values()]
    .map((id) => loaded.get(id))
    .filter((e): e is RoomEvent => e !== undefined && (req.useStateAfter || !timelineIds.has(e.event_id)))
    .filter((e) => matchesRoomEventFilter(stateFilter, e));

  if (stateFilter?.lazy_load_members === true) {
    const sent = events.filter((e) => e.type === 'm.room.member').map((e) => [e.state_key!, e.event_id] as [string, string]);
    req.ctx.sync.lazyMembers.record(req.userId, req.deviceId, plan.roomId, sent, req.to.events);
  }
  return events;
}

/** The state at the start of the timeline, or at its end for `state_after`. */
async function targetState(storage: Storage, plan: RoomPlan, timeline: readonly TimelineEvent[], atEnd: boolean): Promise<StateMap> {
  if (!atEnd && timeline.length > 0) {
    return (await storage.events.getStateAtEvent(timeline[0]!.event.event_id, 'before')) ?? new Map();
  }
  return (await stateAtPosition(storage, plan.roomId, plan.upTo)) ?? new Map();
}

export interface RoomSummary {
  'm.heroes': string[];
  'm.joined_member_count': number;
  'm.invited_member_count': number;
}

/** Member counts and heroes: up to 5 other joined or invited members, oldest first (else former members). */
export async function roomSummary(storage: Storage, roomId: string, userId: string): Promise<RoomSummary> {
  const members = (await storage.memberships.members(roomId)).sort((a, b) => a.streamPosition - b.streamPosition);
  return summaryOf(members, userId);
}

/** The summary from a room's membership rows, oldest change first. */
export function summaryOf(members: readonly { userId: string; membership: string }[], userId: string): RoomSummary {
  const others = members.filter((m) => m.userId !== userId);
  let heroes = others.filter((m) => m.membership === 'join' || m.membership === 'invite');
  if (heroes.length === 0) heroes = others.filter((m) => m.membership === 'leave' || m.membership === 'ban');
  return {
    'm.heroes': heroes.slice(0, 5).map((m) => m.userId),
    'm.joined_member_count': members.filter((m) => m.membership === 'join').length,
    'm.invited_member_count': members.filter((m) => m.membership === 'invite').length,
  };
}
