/**
 * Reading a room's timeline for one user: a page of events between two events-stream positions
 * that pass a filter and history visibility, with whether more exist. Shared by /sync (the
 * timeline of each room) and /messages and /context.
 */
import type { RoomEvent, StateMap } from '../events/types.js';
import { factEventIds, factsFrom, filterVisibleEvents, maySee, type StateFacts } from '../rooms/visibility.js';
import type { Storage } from '../storage/database.js';
import type { TimelineEvent } from '../storage/events-store.js';
import { arg, PreparedQuery } from '../storage/prepared.js';
import type { SyncTimelineRow } from '../storage/sync-reads.js';
import { matchesRoomEventFilter, type RoomEventFilter } from './filter.js';

export interface TimelineQuery {
  roomId: string;
  userId: string;
  /**
   * Positions mean "after the event at that position". `'b'`: events in (to, from], newest
   * first; `'f'`: events in (from, to], oldest first.
   */
  from: number;
  to: number;
  dir: 'b' | 'f';
  limit: number;
  filter?: RoomEventFilter;
}

export interface TimelinePage {
  /** In the order of `dir`. */
  events: TimelineEvent[];
  /**
   * Where to continue to get further events (a position for the next query's `from`), or
   * undefined when the range holds no further event this user may see.
   */
  next: number | undefined;
}

/** Events read per query while looking for visible, matching ones. */
const BATCH = 100;
/** Give up looking after this many events in one call (a token lets the client go on). */
const MAX_SCAN = 5_000;

export async function readTimeline(storage: Storage, q: TimelineQuery): Promise<TimelinePage> {
  const out: TimelineEvent[] = [];
  let cursor = q.from;
  let scanned = 0;
  const ahead = () => (q.dir === 'b' ? cursor > q.to : cursor < q.to);
  while (ahead()) {
    const rows = await storage.events.getEventsBetween(q.roomId, cursor, q.to, Math.max(BATCH, q.limit + 1), q.dir);
    if (rows.length === 0) break;
    scanned += rows.length;
    const matching = rows.filter((r) => matchesRoomEventFilter(q.filter, r.event));
    const visible = new Set((await filterVisibleEvents(storage, q.userId, matching.map((r) => r.event))).map((e) => e.event_id));
    for (const row of matching) {
      if (!visible.has(row.event.event_id) && !isOwnMembership(row.event, q.userId)) continue;
      if (out.length === q.limit) {
        // One more exists: continue after the last one returned.
        const last = out[out.length - 1];
        return { events: out, next: last ? after(last.streamPosition, q.dir) : q.from };
      }
      out.push(row);
    }
    const last = rows[rows.length - 1]!;
    cursor = after(last.streamPosition, q.dir);
    if (scanned >= MAX_SCAN) return { events: out, next: ahead() ? cursor : undefined };
  }
  return { events: out, next: undefined };
}

/** A user always sees their own membership events (their invite, their leave, kick or ban). */
function isOwnMembership(event: RoomEvent, userId: string): boolean {
  return event.type === 'm.room.member' && event.state_key === userId;
}

/** The position just past an event in the direction of reading. */
function after(position: number, dir: 'b' | 'f'): number {
  return dir === 'b' ? position - 1 : position;
}

/**
 * The room state after the last timeline event at or before `position` (the state "at" a
 * token), or undefined when the room has no event there.
 */
export async function stateAtPosition(storage: Storage, roomId: string, position: number) {
  const [last] = await storage.events.getEventsBetween(roomId, position, 0, 1, 'b');
  if (!last) return undefined;
  return storage.events.getStateAtEvent(last.event.event_id, 'after');
}

export function eventsOf(rows: readonly TimelineEvent[]): RoomEvent[] {
  return rows.map((r) => r.event);
}

/**
 * The rooms with timeline events in (from, to]: one indexed range scan, so an incremental sync
 * looks closer only at rooms where something happened.
 */
export async function roomsWithEventsBetween(storage: Storage, from: number, to: number): Promise<Set<string>> {
  if (to <= from) return new Set();
  const rows = await ROOMS_WITH_EVENTS_BETWEEN.rows(storage.db, from, to);
  return new Set(rows.map((r) => r.room_id));
}

/** Compiled once: every incremental /sync runs it. */
const ROOMS_WITH_EVENTS_BETWEEN = new PreparedQuery<[from: number, to: number], { room_id: string }>((db) =>
  db
    .selectFrom('events')
    .select('room_id')
    .distinct()
    .where('stream_ordering', '>', arg(0))
    .where('stream_ordering', '<=', arg(1))
    .where('outlier', '=', 0)
    .where('rejected_reason', 'is', null)
    .where('soft_failed', '=', 0),
);

/** The newest events of one room as a bulk read found them (see latestTimelines). */
export interface BulkTimeline {
  /** Oldest first, at most the limit. */
  events: SyncTimelineRow[];
  limited: boolean;
  /** The room's newest timeline event (filtered or not), whose state is the state "at" the end. */
  newest: SyncTimelineRow | undefined;
}

/**
 * The room states of state groups, read in bulk and kept for the rest of one request (groups
 * never change once written).
 */
export class GroupStates {
  private readonly states = new Map<number, ReadonlyMap<string, string>>();

  constructor(private readonly storage: Storage) {}

  /**
   * Reads those of `groups` not read yet: from the state group store's cache (shared with the
   * send path and every other sync), the rest with one statement per 500, which then go into it.
   */
  async load(groups: Iterable<number | null>): Promise<void> {
    const wanted = new Set<number>();
    for (const g of groups) {
      if (g === null || this.states.has(g)) continue;
      const cached = this.storage.stateGroups.cached(g);
      if (cached) this.states.set(g, cached);
      else wanted.add(g);
    }
    if (wanted.size === 0) return;
    for (const [g, state] of await this.storage.syncReads.statesOfGroups(wanted)) {
      this.states.set(g, state);
      this.storage.stateGroups.rememberCommitted(g, state);
    }
  }

  /** A loaded group's state (do not modify); empty for null or unknown groups. */
  get(group: number | null): ReadonlyMap<string, string> {
    return (group !== null && this.states.get(group)) || EMPTY_STATE;
  }
}

const EMPTY_STATE: ReadonlyMap<string, string> = new Map();

/**
 * The timeline of an initial sync for many rooms at once: each room's newest `limit + 1` events
 * in one statement (storage/sync-reads.ts), then the filter and history visibility for all of
 * them together. The same page readTimeline would give, where the read decides it: when all of a
 * room's events read pass (limited, or the room has no more), or the room has fewer events than
 * read. A room where some were left out and more may exist is not in the result: read it with
 * readTimeline.
 */
export async function latestTimelines(
  storage: Storage,
  q: {
    userId: string;
    rooms: readonly { roomId: string; upTo: number; joinedNow: boolean }[];
    limit: number;
    filter: RoomEventFilter | undefined;
    groups: GroupStates;
  },
): Promise<Map<string, BulkTimeline>> {
  const read = q.limit + 1;
  const rowsByRoom = await storage.syncReads.latestEvents(
    q.rooms.map((r) => ({ roomId: r.roomId, after: 0, upTo: r.upTo })),
    read,
  );
  const matching = new Map<string, SyncTimelineRow[]>();
  for (const [roomId, rows] of rowsByRoom) matching.set(roomId, rows.filter((r) => matchesRoomEventFilter(q.filter, r.event)));
  const facts = await visibilityFacts(storage, q.userId, [...matching.values()].flat(), q.groups);

  const out = new Map<string, BulkTimeline>();
  for (const room of q.rooms) {
    const rows = rowsByRoom.get(room.roomId) ?? [];
    const visible = (matching.get(room.roomId) ?? []).filter((r) => {
      if (isOwnMembership(r.event, q.userId)) return true;
      const f = r.stateGroupAfter === null ? undefined : facts.get(r.stateGroupAfter);
      return f !== undefined && maySee(f, room.joinedNow);
    });
    let page: SyncTimelineRow[];
    let limited: boolean;
    if (visible.length === read) {
      page = visible.slice(0, q.limit);
      limited = true;
    } else if (rows.length < read) {
      page = visible;
      limited = false;
    } else {
      continue; // some left out, and older events may pass: the per-room reader goes on
    }
    out.set(room.roomId, { events: page.reverse(), limited, newest: rows[0] });
  }
  return out;
}

/** History visibility and the user's membership at each state group (rooms/visibility.ts's rules). */
async function visibilityFacts(
  storage: Storage,
  userId: string,
  rows: readonly SyncTimelineRow[],
  groups: GroupStates,
): Promise<Map<number, StateFacts>> {
  const ids = new Set<number>();
  for (const r of rows) if (r.stateGroupAfter !== null) ids.add(r.stateGroupAfter);
  await groups.load(ids);
  const wanted = new Set<string>();
  for (const g of ids) for (const id of factEventIds(groups.get(g), userId)) wanted.add(id);
  const loaded = await storage.syncReads.events(wanted);
  return new Map([...ids].map((g) => [g, factsFrom(groups.get(g), userId, loaded)]));
}
