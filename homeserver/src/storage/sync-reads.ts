/**
 * Bulk reads for an initial /sync: what the per-room path asks for with a dozen statements per
 * room (the newest timeline events, the state groups at them, the membership for the room
 * summary), read for many rooms with a few statements. docs/PERFORMANCE.md "initial sync".
 *
 * Every statement is plain SQL that SQLite and PostgreSQL both run: the newest events of each room
 * are a UNION ALL of one indexed `ORDER BY … LIMIT` per room (neither a window function, which
 * reads every event of every room, nor LATERAL, which SQLite lacks). The SQL text depends only on
 * how many rooms or ids a statement carries, so SQLite reuses its prepared statements.
 */
import { CompiledQuery, sql, type Kysely, type RawBuilder } from 'kysely';
import { stateKey, type RoomEvent, type StateMap } from '../events/types.js';
import { rowToEvent as eventFromRow } from './events-store.js';
import type { Database, EventsTable } from './schema.js';

/** A room's timeline to read: events at positions in (after, upTo]. */
export interface TimelineRange {
  roomId: string;
  /** Exclusive lower bound (0: the whole room; backfilled history has negative positions). */
  after: number;
  /** Inclusive upper bound. */
  upTo: number;
}

/** One timeline event with the state groups around it (null: none stored, treated as invisible). */
export interface SyncTimelineRow {
  streamPosition: number;
  event: RoomEvent;
  /** The redaction that redacted it, if any (read with the event: formatting needs no second look-up). */
  redactedBecause: string | null;
  stateGroupBefore: number | null;
  stateGroupAfter: number | null;
}

/** The part of a membership row a room summary needs. */
export interface SummaryMember {
  userId: string;
  membership: string;
  streamPosition: number;
}

/** Rooms per UNION ALL statement (3 parameters each). */
const ROOMS_PER_STATEMENT = 100;
/** Ids per `IN (…)` list. */
const ID_CHUNK = 500;

/** An event row as the raw statements below select it. */
type EventRow = Pick<
  EventsTable,
  'event_id' | 'room_id' | 'type' | 'state_key' | 'sender' | 'depth' | 'origin_server_ts' | 'redacts' | 'pdu_json' | 'redacted_because'
>;

/** Parsed events kept by SyncReadsStore (≈ 2-3 KB each with their JSON). */
const PARSED_EVENTS = 20_000;

export class SyncReadsStore {
  /** SQL text per statement shape, compiled once (building the long statements costs more than running them). */
  private readonly compiled = new Map<string, string>();
  /**
   * Events already parsed, with the JSON they came from: every initial /sync of a room's members
   * reads the same state events, and parsing them was a tenth of its CPU. A row is only taken from
   * here when its JSON is the very same text, so a rewritten row is parsed again. Least recently
   * used first; the events are shared between requests and must not be modified.
   */
  private readonly parsed = new Map<string, { json: string; event: RoomEvent }>();

  constructor(private readonly db: Kysely<Database>) {}

  /** The row's event, parsed once for as long as it stays in `parsed`. */
  private eventOf(row: EventRow): RoomEvent {
    const hit = this.parsed.get(row.event_id);
    this.parsed.delete(row.event_id);
    const event = hit && hit.json === row.pdu_json ? hit.event : rowToEvent(row);
    this.parsed.set(row.event_id, { json: row.pdu_json, event });
    if (this.parsed.size > PARSED_EVENTS) this.parsed.delete(this.parsed.keys().next().value!);
    return event;
  }

  /** Runs the statement of this shape (compiled on first use) with these parameters, in the order of its `${}` slots. */
  private async run<Row>(shape: string, build: () => RawBuilder<unknown>, parameters: readonly unknown[]) {
    let text = this.compiled.get(shape);
    if (text === undefined) {
      text = build().compile(this.db).sql;
      this.compiled.set(shape, text);
    }
    return this.db.executeQuery<Row>(CompiledQuery.raw(text, [...parameters]));
  }

  /**
   * The newest `perRoom` timeline events of each room in its range, newest first, with their
   * state groups. Outliers, rejected and soft-failed events are not part of any timeline. A room
   * without events in its range is absent from the map.
   */
  async latestEvents(ranges: readonly TimelineRange[], perRoom: number): Promise<Map<string, SyncTimelineRow[]>> {
    const out = new Map<string, SyncTimelineRow[]>();
    const limit = Math.max(0, Math.floor(perRoom));
    if (limit === 0) return out;
    for (let i = 0; i < ranges.length; i += ROOMS_PER_STATEMENT) {
      const chunk = ranges.slice(i, i + ROOMS_PER_STATEMENT);
      const parameters = chunk.flatMap((r) => [r.roomId, r.after, r.upTo, limit]);
      const result = await this.run<EventRow & { stream_ordering: number; state_group_before: number | null; state_group_after: number | null }>(
        `latest:${chunk.length}`,
        () => latestEventsQuery(chunk.length),
        parameters,
      );
      for (const row of result.rows) {
        let rows = out.get(row.room_id);
        if (!rows) out.set(row.room_id, (rows = []));
        rows.push({
          streamPosition: Number(row.stream_ordering),
          event: this.eventOf(row),
          redactedBecause: row.redacted_because,
          stateGroupBefore: row.state_group_before === null ? null : Number(row.state_group_before),
          stateGroupAfter: row.state_group_after === null ? null : Number(row.state_group_after),
        });
      }
    }
    for (const rows of out.values()) rows.sort((a, b) => b.streamPosition - a.streamPosition);
    return out;
  }

  /**
   * The full state of each group: every group's delta chain walked by one recursive statement
   * (a chain is at most the store's delta depth long). Unknown groups are absent.
   */
  async statesOfGroups(groups: Iterable<number>): Promise<Map<number, StateMap>> {
    const ids = [...new Set(groups)];
    const out = new Map<number, StateMap>();
    for (let i = 0; i < ids.length; i += ID_CHUNK) {
      const chunk = ids.slice(i, i + ID_CHUNK);
      const params = padded(chunk);
      const result = await this.run<{ start: number; n: number; type: string; state_key: string; event_id: string | null }>(
        `states:${params.length}`,
        () => statesOfGroupsQuery(params.length),
        params,
      );
      // Oldest delta first within each group, so later entries override earlier ones.
      for (const row of result.rows) {
        const group = Number(row.start);
        let state = out.get(group);
        if (!state) out.set(group, (state = new Map()));
        const key = stateKey(row.type, row.state_key);
        if (row.event_id === null) state.delete(key);
        else state.set(key, row.event_id);
      }
      // Groups with no entries at all (the state before a create event) are empty, not unknown.
      const missing = chunk.filter((g) => !out.has(g));
      if (missing.length > 0) {
        const rows = await this.db.selectFrom('state_groups').select('id').where('id', 'in', missing).execute();
        for (const r of rows) out.set(Number(r.id), new Map());
      }
    }
    return out;
  }

  /** Every membership row (any membership) of each room, oldest change first. */
  async membersOfRooms(roomIds: readonly string[]): Promise<Map<string, SummaryMember[]>> {
    const out = new Map<string, SummaryMember[]>(roomIds.map((id) => [id, []]));
    const unique = [...new Set(roomIds)];
    for (let i = 0; i < unique.length; i += ID_CHUNK) {
      const rows = await this.db
        .selectFrom('room_memberships')
        .select(['room_id', 'user_id', 'membership', 'stream_ordering'])
        .where('room_id', 'in', unique.slice(i, i + ID_CHUNK))
        .orderBy('user_id') // as MembershipsStore.members: the order of ties below
        .execute();
      for (const r of rows) {
        out.get(r.room_id)!.push({ userId: r.user_id, membership: r.membership, streamPosition: Number(r.stream_ordering) });
      }
    }
    for (const members of out.values()) members.sort((a, b) => a.streamPosition - b.streamPosition);
    return out;
  }

  /**
   * The stored events among `eventIds` (like EventsStore.getEvents, with longer id lists per
   * statement). The redacted ones go into `redactedBy` (event id → redaction id), when given.
   */
  async events(eventIds: Iterable<string>, redactedBy?: Map<string, string>): Promise<Map<string, RoomEvent>> {
    const ids = [...new Set(eventIds)];
    const out = new Map<string, RoomEvent>();
    for (let i = 0; i < ids.length; i += ID_CHUNK) {
      const chunk = padded(ids.slice(i, i + ID_CHUNK));
      const { rows } = await this.run<EventRow>(`events:${chunk.length}`, () => eventsQuery(chunk.length), chunk);
      for (const row of rows) {
        out.set(row.event_id, this.eventOf(row));
        if (row.redacted_because !== null) redactedBy?.set(row.event_id, row.redacted_because);
      }
    }
    return out;
  }
}

/** n placeholders, comma-separated. */
function slots(n: number): RawBuilder<unknown> {
  return sql.join(Array.from({ length: n }, () => sql`${null}`));
}

/** List lengths used (a longer list is cut in chunks): few shapes, so few compiled statements. */
const LIST_SIZES = [10, 50, 100, 200, ID_CHUNK];

/** `ids` lengthened to the next list size by repeating its last id (harmless inside `IN (…)`). */
function padded<T>(ids: readonly T[]): T[] {
  const size = LIST_SIZES.find((n) => n >= ids.length) ?? ids.length;
  const out = ids.slice();
  while (out.length < size) out.push(ids[ids.length - 1]!);
  return out;
}

/** The newest events of `rooms` rooms: (room id, after, up to, limit) per room. */
function latestEventsQuery(rooms: number): RawBuilder<unknown> {
  const branches = Array.from(
    { length: rooms },
    (_, j) => sql`SELECT * FROM (
        SELECT event_id, room_id, type, state_key, sender, depth, origin_server_ts, redacts, pdu_json, redacted_because, stream_ordering
        FROM events
        WHERE room_id = ${null} AND stream_ordering > ${null} AND stream_ordering <= ${null}
          AND outlier = 0 AND soft_failed = 0 AND rejected_reason IS NULL
        ORDER BY stream_ordering DESC LIMIT ${null}
      ) AS ${sql.raw(`b${j}`)}`,
  );
  return sql`SELECT t.*, g.state_group_before, g.state_group_after
    FROM (${sql.join(branches, sql` UNION ALL `)}) AS t
    LEFT JOIN event_to_state_group g ON g.event_id = t.event_id`;
}

/** Every entry of the delta chains of n groups, each chain's oldest delta first. */
function statesOfGroupsQuery(n: number): RawBuilder<unknown> {
  return sql`
    WITH RECURSIVE chain(start, id, prev_group, n) AS (
      SELECT id, id, prev_group, 0 FROM state_groups WHERE id IN (${slots(n)})
      UNION ALL
      SELECT chain.start, g.id, g.prev_group, chain.n + 1 FROM state_groups g JOIN chain ON g.id = chain.prev_group
    )
    SELECT chain.start AS start, chain.n AS n, e.type AS type, e.state_key AS state_key, e.event_id AS event_id
    FROM chain JOIN state_group_entries e ON e.state_group = chain.id
    ORDER BY chain.start, chain.n DESC`;
}

function eventsQuery(n: number): RawBuilder<unknown> {
  return sql`SELECT event_id, room_id, type, state_key, sender, depth, origin_server_ts, redacts, pdu_json, redacted_because
    FROM events WHERE event_id IN (${slots(n)})`;
}

/** The normalised event, as EventsStore reads it; raw SQL may give PostgreSQL's bigints as strings. */
function rowToEvent(row: EventRow): RoomEvent {
  return eventFromRow({ ...row, depth: Number(row.depth), origin_server_ts: Number(row.origin_server_ts) });
}
