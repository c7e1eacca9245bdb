/**
 * Reading a room's timeline for one user: a page of events between two events-stream positions
 * that pass a filter and history visibility, with whether more exist. Shared by /sync (the
 * timeline of each room) and /messages and /context.
 */
import type { RoomEvent } from '../events/types.js';
import { filterVisibleEvents } from '../rooms/visibility.js';
import type { Storage } from '../storage/database.js';
import type { TimelineEvent } from '../storage/events-store.js';
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
  const rows = await storage.db
    .selectFrom('events')
    .select('room_id')
    .distinct()
    .where('stream_ordering', '>', from)
    .where('stream_ordering', '<=', to)
    .where('outlier', '=', 0)
    .where('rejected_reason', 'is', null)
    .where('soft_failed', '=', 0)
    .execute();
  return new Set(rows.map((r) => r.room_id));
}
