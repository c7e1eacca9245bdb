/**
 * Room events: the DAG, the state at every event, current state, and the global event stream.
 *
 * Vocabulary used below:
 * - *outlier*: an event stored without knowing the state at it (e.g. an auth event fetched over
 *   federation). It has no state groups, is not in the timeline, not a forward extremity, and does
 *   not change current state. Persisting it again without `outlier` "de-outliers" it: it gets its
 *   state and a new (higher) stream position, so /sync picks it up then.
 * - *rejected*: failed authorisation. Stored (so we do not fetch it again), its state before is
 *   kept, but it changes no state, is not a forward extremity and is not in the timeline.
 * - *soft-failed*: passed auth against its own state but not against current state. The state
 *   after it does include it (other events may build on it), but it is not a forward extremity,
 *   does not change current state and is not in the timeline.
 *
 * State: every non-outlier event has a state group BEFORE it and one AFTER it
 * (`event_to_state_group`). Both are stored because both are asked for: the state before an event
 * is what authorises it and what federation's /state and /state_ids return; the state after it is
 * what the events built on it start from. For non-state and rejected events the two are the same
 * group; for an accepted state event `after` is a one-entry delta on `before`.
 *
 * Stream positions: see transactions.ts. `persistEvent` locks the `events` stream first, so event
 * persistence is serialised (also across processes) and commit order equals position order.
 */
import type { Kysely } from 'kysely';
import { stateKey, type JsonObject, type JsonValue, type Pdu, type RoomEvent, type StateMap } from '../events/types.js';
import { MissingStateError, UnknownRoomError } from './errors.js';
import type { Database, EventsTable } from './schema.js';
import { applyDelta, diffStates, type StateDelta, type StateGroupStore } from './state-groups.js';
import { currentStreamPosition, lockStream, setStreamPosition, writeTransaction, type Engine } from './transactions.js';
import { arg, argList, PREPARED_LIST_CHUNK, PreparedQuery, PreparedQueryFamily, rowsForList } from './prepared.js';
import { RoomCache, type JoinedMember, type RoomWrite, type WriteTicket } from './room-cache.js';

const CURRENT_STATE_EVENT_ID = new PreparedQuery<[roomId: string, type: string, stateKey: string], { event_id: string }>((db) =>
  db.selectFrom('current_state').select('event_id').where('room_id', '=', arg(0)).where('type', '=', arg(1)).where('state_key', '=', arg(2)),
);

export const EVENTS_STREAM = 'events';
/** Counts the positions handed to backfilled events (which get -1, -2, …). */
export const BACKFILL_STREAM = 'backfill';

export interface PersistEventOptions {
  /**
   * The state before the event: what the caller authorised it against, e.g. the result of state
   * resolution over its prev_events, or the state a remote server sent (/state_ids, send_join).
   * Optional when all of the event's prev_events are stored with the same state after them
   * (always so in a linear room), and for events without prev_events (the create event: empty).
   */
  stateBefore?: StateMap;
  /**
   * The room's current state after this event, when the caller resolved it (the room has several
   * forward extremities). Without it: if the event becomes the room's only forward extremity,
   * current state becomes the state after the event; otherwise the event's own state entry (if
   * it is an accepted state event) is applied on top of current state.
   */
  resolvedCurrentState?: StateMap;
  /** Store without state (see above). Ignores the state options. */
  outlier?: boolean;
  /** Authorisation failed: why (stored, for diagnostics). */
  rejectedReason?: string;
  softFailed?: boolean;
  /**
   * A backfilled event (older history fetched from another server): stored at this (negative)
   * stream position from `allocateBackfillPositions`, so it sorts before every event already held
   * and never counts as new for /sync. It changes neither forward extremities nor current state.
   */
  backfillPosition?: number;
  /** When the event arrived (ms); default now. */
  receivedTs?: number;
  /**
   * Runs at the end of the same transaction, with the executor to write through (push actions,
   * unread counts, membership tables …): if it throws, nothing of the event is stored. It runs
   * while the events stream is locked: keep it short. Not called when nothing was written.
   */
  withinTransaction?: (trx: Kysely<Database>, result: PersistEventResult) => Promise<void>;
}

export interface PersistEventResult {
  eventId: string;
  /** The event's stream position (its existing one when `alreadyStored`). */
  streamPosition: number;
  /** True when the event was already stored (at least as fully as asked): nothing was written. */
  alreadyStored: boolean;
  /** Null for outliers. */
  stateGroupBefore: number | null;
  stateGroupAfter: number | null;
  /** How current state changed: state key → new event id, null when removed. */
  currentStateDelta: StateDelta;
}

/** What the store knows about a stored event beyond the event itself. */
export interface StoredEventInfo {
  eventId: string;
  roomId: string;
  streamPosition: number;
  outlier: boolean;
  rejectedReason: string | null;
  softFailed: boolean;
  redactedBecause: string | null;
  receivedTs: number;
  stateGroupBefore: number | null;
  stateGroupAfter: number | null;
}

export interface TimelineEvent {
  streamPosition: number;
  event: RoomEvent;
}

type EventRow = Pick<
  EventsTable,
  'event_id' | 'room_id' | 'type' | 'state_key' | 'sender' | 'depth' | 'origin_server_ts' | 'redacts' | 'pdu_json'
>;
const EVENT_COLUMNS = [
  'event_id',
  'room_id',
  'type',
  'state_key',
  'sender',
  'depth',
  'origin_server_ts',
  'redacts',
  'pdu_json',
] as const;

/** Ids per `IN (…)` list. */
const ID_CHUNK = 500;
/** getEventsBetween results kept (oldest dropped first), each of at most this many events. */
const RANGE_CACHE_ENTRIES = 1_000;
const RANGE_CACHE_MAX_ROWS = 16;

// The statements of the local send path, compiled once (prepared.ts): building and compiling them
// with kysely cost more CPU than SQLite running them (docs/PERFORMANCE.md, third round).
const EXISTING_EVENT = new PreparedQuery<[eventId: string], { outlier: number; stream_ordering: number }>((db) =>
  db.selectFrom('events').select(['outlier', 'stream_ordering']).where('event_id', '=', arg(0)),
);
const STATE_GROUPS_OF_EVENT = new PreparedQuery<
  [eventId: string],
  { state_group_before: number; state_group_after: number }
>((db) => db.selectFrom('event_to_state_group').select(['state_group_before', 'state_group_after']).where('event_id', '=', arg(0)));
const ROOM_FOR_PERSIST = new PreparedQuery<[roomId: string], { room_version: string; current_state_group: number | null }>((db) =>
  db.selectFrom('rooms').select(['room_version', 'current_state_group']).where('room_id', '=', arg(0)),
);
const LOCK_STREAM = new PreparedQuery<[stream: string], { position: number }>((db) =>
  db.selectFrom('stream_positions').select('position').where('stream', '=', arg(0)),
);
const LOCK_STREAM_FOR_UPDATE = new PreparedQuery<[stream: string], { position: number }>((db) =>
  db.selectFrom('stream_positions').select('position').where('stream', '=', arg(0)).forUpdate(),
);
const SET_STREAM_POSITION = new PreparedQuery<[position: number, stream: string]>((db) =>
  db.updateTable('stream_positions').set({ position: arg(0) }).where('stream', '=', arg(1)),
);
/** The columns of `events` written by persistEvent, in argument order (after event_id). */
const EVENT_ROW_COLUMNS = [
  'room_id',
  'type',
  'state_key',
  'sender',
  'depth',
  'origin_server_ts',
  'received_ts',
  'stream_ordering',
  'redacts',
  'pdu_json',
  'outlier',
  'rejected_reason',
  'soft_failed',
] as const;
const INSERT_EVENT = new PreparedQuery<unknown[]>((db) =>
  db.insertInto('events').values({
    event_id: arg(0),
    ...Object.fromEntries(EVENT_ROW_COLUMNS.map((c, i) => [c, arg(i + 1)])),
    redacted_because: null,
  } as never),
);
const UPDATE_EVENT = new PreparedQuery<unknown[]>((db) =>
  db
    .updateTable('events')
    .set(Object.fromEntries(EVENT_ROW_COLUMNS.map((c, i) => [c, arg(i + 1)])) as never)
    .where('event_id', '=', arg(0)),
);
/** Edge rows per statement (3 parameters each). */
const EDGE_CHUNK = 100;
const INSERT_PREV_EDGES = new PreparedQueryFamily<unknown[]>((db, rows) =>
  db
    .insertInto('event_edges')
    .values(Array.from({ length: rows }, (_, i) => ({ event_id: arg(i * 3), prev_event_id: arg(i * 3 + 1), room_id: arg(i * 3 + 2) })))
    .onConflict((oc) => oc.columns(['event_id', 'prev_event_id']).doNothing()),
);
const INSERT_AUTH_EDGES = new PreparedQueryFamily<unknown[]>((db, rows) =>
  db
    .insertInto('event_auth')
    .values(Array.from({ length: rows }, (_, i) => ({ event_id: arg(i * 3), auth_event_id: arg(i * 3 + 1), room_id: arg(i * 3 + 2) })))
    .onConflict((oc) => oc.columns(['event_id', 'auth_event_id']).doNothing()),
);
const AFTER_GROUPS_OF = new PreparedQueryFamily<unknown[], { event_id: string; state_group_after: number }>((db, n) =>
  db
    .selectFrom('event_to_state_group')
    .select(['event_id', 'state_group_after'])
    .where('event_id', 'in', argList(0, n)),
);
const EVENTS_BY_ID = new PreparedQueryFamily<unknown[], EventRow>((db, n) =>
  db.selectFrom('events').select(EVENT_COLUMNS).where('event_id', 'in', argList(0, n)),
);
// The read side of /sync and /messages, compiled once as well.
const EVENTS_BETWEEN = (['asc', 'desc'] as const).map(
  (order) =>
    new PreparedQuery<[roomId: string, low: number, high: number, limit: number], EventRow & { stream_ordering: number }>((db) =>
      db
        .selectFrom('events')
        .select([...EVENT_COLUMNS, 'stream_ordering'])
        .where('room_id', '=', arg(0))
        .where('stream_ordering', '>', arg(1))
        .where('stream_ordering', '<=', arg(2))
        .where('outlier', '=', 0)
        .where('soft_failed', '=', 0)
        .where('rejected_reason', 'is', null)
        .orderBy('stream_ordering', order)
        .limit(arg(3)),
    ),
);
const HIDDEN_AMONG = new PreparedQueryFamily<unknown[], { event_id: string }>((db, n) =>
  db
    .selectFrom('events')
    .select('event_id')
    .where('event_id', 'in', argList(0, n))
    .where((eb) => eb.or([eb('outlier', '<>', 0), eb('soft_failed', '<>', 0), eb('rejected_reason', 'is not', null)])),
);
const REJECTED_AMONG = new PreparedQueryFamily<unknown[], { event_id: string }>((db, n) =>
  db.selectFrom('events').select('event_id').where('event_id', 'in', argList(0, n)).where('rejected_reason', 'is not', null),
);
const REDACTED_AMONG = new PreparedQueryFamily<unknown[], { event_id: string; redacted_because: string | null }>((db, n) =>
  db
    .selectFrom('events')
    .select(['event_id', 'redacted_because'])
    .where('event_id', 'in', argList(0, n))
    .where('redacted_because', 'is not', null),
);
const INSERT_EVENT_STATE_GROUPS = new PreparedQuery<[eventId: string, roomId: string, before: number, after: number]>((db) =>
  db
    .insertInto('event_to_state_group')
    .values({ event_id: arg(0), room_id: arg(1), state_group_before: arg(2), state_group_after: arg(3) }),
);
const DELETE_FORWARD_EXTREMITIES = new PreparedQueryFamily<string[]>((db, n) =>
  db
    .deleteFrom('event_forward_extremities')
    .where('room_id', '=', arg(0))
    .where('event_id', 'in', argList(1, n)),
);
/** Inserts the event as a forward extremity unless a stored, accepted event has it as a prev event. */
const INSERT_FORWARD_EXTREMITY = new PreparedQuery<[roomId: string, eventId: string]>((db) =>
  db
    .insertInto('event_forward_extremities')
    .columns(['room_id', 'event_id'])
    .expression(
      db
        .selectNoFrom((eb) => [eb.val(arg(0)).as('room_id'), eb.val(arg(1)).as('event_id')])
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('event_edges as e')
                .innerJoin('events as c', 'c.event_id', 'e.event_id')
                .select('c.event_id')
                .where('e.prev_event_id', '=', arg(1))
                .where('c.outlier', '=', 0)
                .where('c.rejected_reason', 'is', null)
                .where('c.soft_failed', '=', 0),
            ),
          ),
        ),
    )
    .onConflict((oc) => oc.columns(['room_id', 'event_id']).doNothing()),
);
const FORWARD_EXTREMITIES = new PreparedQuery<[roomId: string], { event_id: string }>((db) =>
  db.selectFrom('event_forward_extremities').select('event_id').where('room_id', '=', arg(0)).orderBy('event_id'),
);
const DELETE_CURRENT_STATE = new PreparedQuery<[roomId: string, type: string, stateKey: string]>((db) =>
  db.deleteFrom('current_state').where('room_id', '=', arg(0)).where('type', '=', arg(1)).where('state_key', '=', arg(2)),
);
const UPSERT_CURRENT_STATE = new PreparedQuery<[roomId: string, type: string, stateKey: string, eventId: string]>((db) =>
  db
    .insertInto('current_state')
    .values({ room_id: arg(0), type: arg(1), state_key: arg(2), event_id: arg(3) })
    .onConflict((oc) => oc.columns(['room_id', 'type', 'state_key']).doUpdateSet((eb) => ({ event_id: eb.ref('excluded.event_id') }))),
);
const SET_CURRENT_STATE_GROUP = new PreparedQuery<[group: number | null, roomId: string]>((db) =>
  db.updateTable('rooms').set({ current_state_group: arg(0) }).where('room_id', '=', arg(1)),
);
const EVENT_BY_ID = new PreparedQuery<[eventId: string], EventRow>((db) =>
  db.selectFrom('events').select(EVENT_COLUMNS).where('event_id', '=', arg(0)),
);

export class EventsStore {
  /** Per-room data the send path re-reads (room-cache.ts), kept exact by `persistEvent`. */
  readonly roomCache = new RoomCache();
  /** The persist whose `withinTransaction` is running (persists are serialised by the stream lock). */
  private inHooks: { trx: Kysely<Database>; roomId: string; ticket: WriteTicket; write: RoomWrite } | undefined;

  /**
   * Recent getEventsBetween results over closed ranges, by their arguments: the ~10 syncs one
   * event wakes read the same few ranges. See `closedRange`.
   */
  private readonly ranges = new Map<string, TimelineEvent[]>();
  /** The highest events-stream position this process knows to be committed. */
  private committedMax = 0;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly engine: Engine,
    private readonly stateGroups: StateGroupStore,
  ) {}

  /**
   * Stores an event in one transaction: the event, its DAG edges, the state before and after it,
   * the room's forward extremities and current state, and its stream position. Idempotent: an
   * event already stored (and not being de-outliered) is left as it is.
   */
  async persistEvent(event: RoomEvent, opts: PersistEventOptions = {}): Promise<PersistEventResult> {
    checkEvent(event);
    let ticket: WriteTicket | undefined;
    let write: RoomWrite | undefined;
    try {
      const result = await writeTransaction(this.db, this.engine, async (trx) => {
        const lastPosition = await this.lockEventsStream(trx);
        const existing = await EXISTING_EVENT.first(trx, event.event_id);
        if (existing && (existing.outlier === 0 || opts.outlier === true)) {
          const groups = await STATE_GROUPS_OF_EVENT.first(trx, event.event_id);
          return {
            eventId: event.event_id,
            streamPosition: existing.stream_ordering,
            alreadyStored: true,
            stateGroupBefore: groups?.state_group_before ?? null,
            stateGroupAfter: groups?.state_group_after ?? null,
            currentStateDelta: new Map(),
          };
        }
        // From here on the room's cached data is being changed (room-cache.ts).
        ticket = this.roomCache.beginWrite(event.room_id);
        const persisted = await this.writeEvent(trx, event, opts, lastPosition, existing !== undefined, ticket);
        write = persisted.write;
        return persisted.result;
      });
      if (ticket) this.roomCache.endWrite(ticket, write);
      this.noteCommitted(result.streamPosition);
      return result;
    } catch (err) {
      if (ticket) this.roomCache.endWrite(ticket, undefined);
      throw err;
    }
  }

  /** persistEvent's writes, once the event is known to be new (or an outlier getting its state). */
  private async writeEvent(
    trx: Kysely<Database>,
    event: RoomEvent,
    opts: PersistEventOptions,
    lastPosition: number,
    existing: boolean,
    ticket: WriteTicket,
  ): Promise<{ result: PersistEventResult; write: RoomWrite }> {
    const outlier = opts.outlier === true;
    const cached = ticket.data;
    const room =
      cached?.version !== undefined && cached.currentStateGroup !== undefined
        ? { room_version: cached.version, current_state_group: cached.currentStateGroup }
        : await this.ensureRoom(trx, event);
    const backfilled = opts.backfillPosition !== undefined && !outlier;
    const position = backfilled ? opts.backfillPosition! : lastPosition + 1;
    if (!backfilled) await SET_STREAM_POSITION.execute(trx, position, EVENTS_STREAM);

    const rejected = opts.rejectedReason !== undefined;
    const softFailed = opts.softFailed === true;
    const pduJson = JSON.stringify(event.pdu);
    // In EVENT_ROW_COLUMNS' order, after the event id.
    const row = [
      event.event_id,
      event.room_id,
      event.type,
      event.state_key ?? null,
      event.sender,
      event.depth,
      event.origin_server_ts,
      opts.receivedTs ?? Date.now(),
      position,
      event.redacts ?? null,
      pduJson,
      outlier ? 1 : 0,
      opts.rejectedReason ?? null,
      softFailed ? 1 : 0,
    ];
    // De-outliering: same event, now with state and a place in the stream.
    await (existing ? UPDATE_EVENT : INSERT_EVENT).execute(trx, ...row);
    await this.insertEdges(trx, event);

    const result: PersistEventResult = {
      eventId: event.event_id,
      streamPosition: position,
      alreadyStored: false,
      stateGroupBefore: null,
      stateGroupAfter: null,
      currentStateDelta: new Map(),
    };
    // What the room's cache learns from this write; unchanged extremities unless they move.
    const write: RoomWrite = {
      version: room.room_version,
      currentStateGroup: room.current_state_group,
      ...(cached?.extremities ? { extremities: cached.extremities } : {}),
    };
    if (!outlier) {
      // --- the state before and after the event
      const prevGroups = await this.afterGroupsOf(trx, event.prev_events, cached?.afterGroups);
      let before: number;
      if (opts.stateBefore) {
        const candidates = [...prevGroups.values()];
        if (room.current_state_group !== null) candidates.push(room.current_state_group);
        before = (await this.stateGroups.createFromState(trx, event.room_id, event.event_id, opts.stateBefore, candidates))
          .group;
      } else if (event.prev_events.length === 0) {
        before = await this.stateGroups.create(trx, event.room_id, event.event_id, null, new Map());
      } else {
        const missing = event.prev_events.filter((id) => !prevGroups.has(id));
        if (missing.length > 0) {
          throw new MissingStateError(event.event_id, `no state is stored for prev event(s) ${missing.join(', ')}`);
        }
        const distinct = new Set(prevGroups.values());
        if (distinct.size > 1) {
          throw new MissingStateError(event.event_id, 'its prev events have different states (resolve them)');
        }
        before = [...distinct][0]!;
      }
      const ownDelta: StateDelta = new Map();
      if (event.state_key !== undefined && !rejected) {
        ownDelta.set(stateKey(event.type, event.state_key), event.event_id);
      }
      const after = await this.stateGroups.create(trx, event.room_id, event.event_id, before, ownDelta);
      await INSERT_EVENT_STATE_GROUPS.execute(trx, event.event_id, event.room_id, before, after);
      result.stateGroupBefore = before;
      result.stateGroupAfter = after;

      if (!rejected && !softFailed && !backfilled) {
        const isExtremity = await this.updateForwardExtremities(trx, event);
        const known = cached?.extremities && nextExtremities(cached.extremities, event, isExtremity);
        const current = await this.updateCurrentState(trx, event, room.current_state_group, known, {
          before,
          after,
          ownDelta,
          resolved: opts.resolvedCurrentState,
        });
        result.currentStateDelta = current.delta;
        write.currentStateGroup = current.group;
        write.stateDelta = current.delta;
        if (current.extremities) write.extremities = current.extremities;
        else delete write.extremities;
        if (isExtremity) write.afterGroup = { eventId: event.event_id, group: after };
      }
    }

    write.membersChanged =
      event.type === 'm.room.member' || [...result.currentStateDelta.keys()].some((key) => key.startsWith('["m.room.member",'));
    if (opts.withinTransaction) {
      this.inHooks = { trx, roomId: event.room_id, ticket, write };
      try {
        await opts.withinTransaction(trx, result);
      } finally {
        this.inHooks = undefined;
      }
    }
    return { result, write };
  }

  /** Marks `eventId` as redacted by the (accepted) redaction `redactionId`; first one wins. */
  async markRedacted(eventId: string, redactionId: string): Promise<boolean> {
    const res = await this.db
      .updateTable('events')
      .set({ redacted_because: redactionId })
      .where('event_id', '=', eventId)
      .where('redacted_because', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /**
   * `count` stream positions for backfilled events, below every position handed out before:
   * ascending, so that events persisted oldest first keep their order. Always negative.
   */
  async allocateBackfillPositions(count: number): Promise<number[]> {
    if (count <= 0) return [];
    return writeTransaction(this.db, this.engine, async (trx) => {
      const used = await lockStream(trx, this.engine, BACKFILL_STREAM);
      await setStreamPosition(trx, BACKFILL_STREAM, used + count);
      return Array.from({ length: count }, (_, i) => -(used + count - i));
    });
  }

  /** Which of the given events were stored as rejected. */
  async getRejectedIds(eventIds: Iterable<string>): Promise<Set<string>> {
    return this.idsAmong(eventIds, REJECTED_AMONG);
  }

  /**
   * Which of the given events a client must never see: outliers, rejected and soft-failed events
   * (received over federation, kept apart from the timeline). Unknown ids are not listed.
   */
  async getHiddenIds(eventIds: Iterable<string>): Promise<Set<string>> {
    return this.idsAmong(eventIds, HIDDEN_AMONG);
  }

  /** The given event ids that `query` (a family over `IN (…)` lengths) selects. */
  private async idsAmong(eventIds: Iterable<string>, query: PreparedQueryFamily<unknown[], { event_id: string }>): Promise<Set<string>> {
    const rows = await rowsForList(this.db, query, [], [...new Set(eventIds)]);
    return new Set(rows.map((row) => row.event_id));
  }

  /**
   * The user's membership in the room as of the accepted member event at or before the events
   * stream position (undefined when there is none).
   */
  async membershipAt(roomId: string, userId: string, position: number): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('events')
      .select('event_id')
      .where('room_id', '=', roomId)
      .where('type', '=', 'm.room.member')
      .where('state_key', '=', userId)
      .where('stream_ordering', '<=', position)
      .where('outlier', '=', 0)
      .where('rejected_reason', 'is', null)
      .where('soft_failed', '=', 0)
      .orderBy('stream_ordering', 'desc')
      .limit(1)
      .executeTakeFirst();
    const event = row && (await this.getEvent(row.event_id));
    const membership = event?.content.membership;
    return typeof membership === 'string' ? membership : undefined;
  }

  /**
   * The room's backward extremities: events that accepted timeline events name as prev events but
   * that are not stored with state (history not held yet: where backfill continues).
   */
  async getBackwardExtremities(roomId: string, limit = 20): Promise<string[]> {
    const rows = await this.db
      .selectFrom('event_edges as e')
      .innerJoin('events as c', 'c.event_id', 'e.event_id')
      .leftJoin('event_to_state_group as g', 'g.event_id', 'e.prev_event_id')
      .select('e.prev_event_id')
      .distinct()
      .where('e.room_id', '=', roomId)
      .where('c.outlier', '=', 0)
      .where('c.rejected_reason', 'is', null)
      .where('g.event_id', 'is', null)
      .orderBy('e.prev_event_id')
      .limit(limit)
      .execute();
    return rows.map((r) => r.prev_event_id);
  }

  /** The lowest stream position of the room's timeline events (backfilled ones are negative). */
  async getMinStreamPosition(roomId: string): Promise<number | undefined> {
    const row = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.min('stream_ordering').as('low'))
      .where('room_id', '=', roomId)
      .where('outlier', '=', 0)
      .executeTakeFirst();
    return row?.low === null || row?.low === undefined ? undefined : Number(row.low);
  }

  // ------------------------------------------------------------------ reads

  /** For each of the given events that was redacted, the id of the redaction that applied. */
  async getRedactedBecause(eventIds: Iterable<string>): Promise<Map<string, string>> {
    const rows = await rowsForList(this.db, REDACTED_AMONG, [], [...new Set(eventIds)]);
    return new Map(rows.map((row) => [row.event_id, row.redacted_because!]));
  }


  async getEvent(eventId: string): Promise<RoomEvent | undefined> {
    const row = await EVENT_BY_ID.first(this.db, eventId);
    return row && rowToEvent(row);
  }

  /**
   * The stored events among `eventIds` (outliers, rejected and soft-failed ones included: ask
   * `getEventInfo` for those flags). Unknown ids are absent from the map. Suits state resolution's
   * event source.
   */
  async getEvents(eventIds: Iterable<string>): Promise<Map<string, RoomEvent>> {
    const rows = await rowsForList(this.db, EVENTS_BY_ID, [], [...new Set(eventIds)]);
    return new Map(rows.map((row) => [row.event_id, rowToEvent(row)]));
  }

  async hasEvents(eventIds: Iterable<string>): Promise<Set<string>> {
    const ids = [...new Set(eventIds)];
    const out = new Set<string>();
    for (let i = 0; i < ids.length; i += ID_CHUNK) {
      const rows = await this.db.selectFrom('events').select('event_id').where('event_id', 'in', ids.slice(i, i + ID_CHUNK)).execute();
      for (const row of rows) out.add(row.event_id);
    }
    return out;
  }

  async getEventInfo(eventId: string): Promise<StoredEventInfo | undefined> {
    const row = await this.db
      .selectFrom('events')
      .leftJoin('event_to_state_group as g', 'g.event_id', 'events.event_id')
      .select([
        'events.event_id',
        'events.room_id',
        'events.stream_ordering',
        'events.outlier',
        'events.rejected_reason',
        'events.soft_failed',
        'events.redacted_because',
        'events.received_ts',
        'g.state_group_before',
        'g.state_group_after',
      ])
      .where('events.event_id', '=', eventId)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      eventId: row.event_id,
      roomId: row.room_id,
      streamPosition: row.stream_ordering,
      outlier: row.outlier !== 0,
      rejectedReason: row.rejected_reason,
      softFailed: row.soft_failed !== 0,
      redactedBecause: row.redacted_because,
      receivedTs: row.received_ts,
      stateGroupBefore: row.state_group_before ?? null,
      stateGroupAfter: row.state_group_after ?? null,
    };
  }

  /**
   * The room state before or after an event. Undefined when the event is unknown or an outlier
   * (no state stored for it).
   */
  async getStateAtEvent(eventId: string, at: 'before' | 'after'): Promise<StateMap | undefined> {
    const row = await STATE_GROUPS_OF_EVENT.first(this.db, eventId);
    if (!row) return undefined;
    return this.stateGroups.getState(at === 'before' ? row.state_group_before : row.state_group_after);
  }

  /** The state group after each of the given events (absent for outliers and unknown ids). */
  async getStateGroupsAfter(eventIds: Iterable<string>): Promise<Map<string, number>> {
    const rows = await rowsForList(this.db, AFTER_GROUPS_OF, [], [...new Set(eventIds)]);
    return new Map(rows.map((row) => [row.event_id, Number(row.state_group_after)]));
  }

  /** The state of a group (from `PersistEventResult` / `StoredEventInfo`). */
  async getStateOfGroup(group: number): Promise<StateMap> {
    return this.stateGroups.getState(group);
  }

  async getCurrentState(roomId: string): Promise<StateMap> {
    const rows = await this.db
      .selectFrom('current_state')
      .select(['type', 'state_key', 'event_id'])
      .where('room_id', '=', roomId)
      .execute();
    return new Map(rows.map((r) => [stateKey(r.type, r.state_key), r.event_id]));
  }

  async getCurrentStateEventId(roomId: string, type: string, stateKeyValue: string): Promise<string | undefined> {
    // Authorising every event reads a few of these: kept per room (room-cache.ts).
    const key = stateKey(type, stateKeyValue);
    const cached = this.roomCache.get(roomId)?.stateIds.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const token = this.roomCache.readToken(roomId);
    const row = await CURRENT_STATE_EVENT_ID.first(this.db, roomId, type, stateKeyValue);
    this.roomCache.fill(roomId, token, (data) => data.stateIds.set(key, row?.event_id ?? null));
    return row?.event_id;
  }

  /**
   * For persist hooks (inside `withinTransaction`, through its `trx`): the room's joined members,
   * from the room cache when the event being persisted does not change memberships, else from
   * `load` (read in the transaction; kept for the next event when memberships did not change).
   */
  async joinedMembersInPersist(
    trx: Kysely<Database>,
    roomId: string,
    load: () => Promise<readonly JoinedMember[]>,
  ): Promise<readonly JoinedMember[]> {
    const active = this.inHooks;
    if (!active || active.trx !== trx || active.roomId !== roomId || active.write.membersChanged) return load();
    const known = active.write.joined ?? active.ticket.data?.joined;
    if (known) return known;
    const members = await load();
    active.write.joined = members;
    return members;
  }

  /** The room's version (undefined for an unknown room); cached, it never changes. */
  async getRoomVersion(roomId: string): Promise<string | undefined> {
    const cached = this.roomCache.get(roomId)?.version;
    if (cached !== undefined) return cached;
    const token = this.roomCache.readToken(roomId);
    const row = await ROOM_FOR_PERSIST.first(this.db, roomId);
    if (row) {
      this.roomCache.fill(roomId, token, (data) => {
        data.version = row.room_version;
        data.currentStateGroup = row.current_state_group;
      });
    }
    return row?.room_version;
  }

  async getCurrentStateEvent(roomId: string, type: string, stateKeyValue: string): Promise<RoomEvent | undefined> {
    const row = await this.db
      .selectFrom('current_state as cs')
      .innerJoin('events as e', 'e.event_id', 'cs.event_id')
      .select(EVENT_COLUMNS.map((c) => `e.${c}` as const))
      .where('cs.room_id', '=', roomId)
      .where('cs.type', '=', type)
      .where('cs.state_key', '=', stateKeyValue)
      .executeTakeFirst();
    return row && rowToEvent(row);
  }

  /** The room's forward extremities (the events new local events point at), sorted. */
  async getForwardExtremities(roomId: string): Promise<string[]> {
    const cached = this.roomCache.get(roomId)?.extremities;
    if (cached) return cached.slice();
    const token = this.roomCache.readToken(roomId);
    // Sorted here too, so that cached and read lists agree whatever the database's collation.
    const ids = (await FORWARD_EXTREMITIES.rows(this.db, roomId)).map((r) => r.event_id).sort(compareIds);
    this.roomCache.fill(roomId, token, (data) => {
      data.extremities = ids.slice();
      for (const id of data.afterGroups.keys()) if (!ids.includes(id)) data.afterGroups.delete(id);
    });
    return ids;
  }

  /**
   * The highest committed event stream position (0 for an empty database). Every position up to
   * it is committed, so it is safe to put in a sync token.
   */
  async getMaxStreamPosition(): Promise<number> {
    const position = await currentStreamPosition(this.db, EVENTS_STREAM);
    this.noteCommitted(position);
    return position;
  }

  private noteCommitted(position: number): void {
    if (position > this.committedMax) this.committedMax = position;
  }

  /**
   * Whether the events in stream positions (low, high] can no longer change: every position in it
   * was committed, and positive positions are only ever handed out above the newest (a backfilled
   * event gets a negative one; an outlier given its place in the timeline moves to a new position;
   * rejection and soft failure are decided before an event is stored). Redactions are kept apart
   * (redacted_because), so they do not change the rows read here.
   */
  private closedRange(low: number, high: number): boolean {
    return low >= 0 && high <= this.committedMax;
  }

  /**
   * Timeline events of a room between two stream positions, as for /sync and /messages tokens
   * (a position means "after the event at that position"):
   * - `'f'`: positions in (from, to], oldest first;
   * - `'b'`: positions in (to, from], newest first (`from` ≥ `to`).
   * Outliers, rejected and soft-failed events are not part of the timeline.
   */
  async getEventsBetween(
    roomId: string,
    fromPos: number,
    toPos: number,
    limit: number,
    direction: 'f' | 'b',
  ): Promise<TimelineEvent[]> {
    const [low, high] = direction === 'f' ? [fromPos, toPos] : [toPos, fromPos];
    const n = Math.max(0, Math.floor(limit));
    const key = this.closedRange(low, high) ? `${roomId}\n${low}\n${high}\n${n}\n${direction}` : undefined;
    const cached = key !== undefined ? this.ranges.get(key) : undefined;
    if (cached) return cached.slice();
    const query = EVENTS_BETWEEN[direction === 'f' ? 0 : 1]!;
    const rows = await query.rows(this.db, roomId, low, high, n);
    const events = rows.map((row) => ({ streamPosition: row.stream_ordering, event: rowToEvent(row) }));
    if (key !== undefined && events.length <= RANGE_CACHE_MAX_ROWS) {
      this.ranges.set(key, events.slice());
      if (this.ranges.size > RANGE_CACHE_ENTRIES) this.ranges.delete(this.ranges.keys().next().value!);
    }
    return events;
  }

  // ------------------------------------------------------------------ persistence helpers

  private async ensureRoom(
    trx: Kysely<Database>,
    event: RoomEvent,
  ): Promise<{ room_version: string; current_state_group: number | null }> {
    const room = await ROOM_FOR_PERSIST.first(trx, event.room_id);
    if (room) return room;
    if (event.type !== 'm.room.create' || event.state_key !== '') throw new UnknownRoomError(event.room_id);
    const version = event.content.room_version;
    const creator = event.content.creator;
    const row = {
      room_id: event.room_id,
      // Absent room_version means version 1 (spec: m.room.create).
      room_version: typeof version === 'string' ? version : '1',
      // v1–v10 name the creator in content; v11+ make the sender the creator.
      creator: typeof creator === 'string' ? creator : event.sender,
      is_public: null,
      current_state_group: null,
    };
    await trx.insertInto('rooms').values(row).execute();
    return row;
  }

  private async insertEdges(trx: Kysely<Database>, event: RoomEvent): Promise<void> {
    await insertEdgeRows(trx, INSERT_PREV_EDGES, event, event.prev_events);
    await insertEdgeRows(trx, INSERT_AUTH_EDGES, event, event.auth_events);
  }

  /** The events stream's position, locked for this transaction (transactions.ts lockStream, prepared). */
  private async lockEventsStream(trx: Kysely<Database>): Promise<number> {
    const lock = this.engine === 'postgres' ? LOCK_STREAM_FOR_UPDATE : LOCK_STREAM;
    const row = await lock.first(trx, EVENTS_STREAM);
    return row ? row.position : lockStream(trx, this.engine, EVENTS_STREAM); // first use: creates the row
  }

  /** event id → its state-after group, for those of `eventIds` that have state. */
  private async afterGroupsOf(
    trx: Kysely<Database>,
    eventIds: readonly string[],
    cached?: ReadonlyMap<string, number>,
  ): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (cached && eventIds.every((id) => cached.has(id))) {
      for (const id of eventIds) out.set(id, cached.get(id)!);
      return out;
    }
    const rows = await rowsForList(trx, AFTER_GROUPS_OF, [], [...new Set(eventIds)]);
    for (const r of rows) out.set(r.event_id, r.state_group_after);
    return out;
  }

  /**
   * The new event replaces its prev events as forward extremities, and becomes one itself unless
   * an accepted event already builds on it (it filled a gap).
   */
  private async updateForwardExtremities(trx: Kysely<Database>, event: RoomEvent): Promise<boolean> {
    const prev = [...new Set(event.prev_events)];
    for (let i = 0; i < prev.length; i += PREPARED_LIST_CHUNK) {
      const chunk = prev.slice(i, i + PREPARED_LIST_CHUNK);
      await DELETE_FORWARD_EXTREMITIES.of(chunk.length).execute(trx, event.room_id, ...chunk);
    }
    // One statement: insert unless a stored, accepted event already has it as a prev event.
    const inserted = await INSERT_FORWARD_EXTREMITY.execute(trx, event.room_id, event.event_id);
    return Number(inserted.numAffectedRows ?? 0n) > 0;
  }

  /**
   * Applies the event to current state. `knownExtremities`: the room's extremities after the event
   * when the cache knew them (else they are read). Returns the change, the room's new current
   * state group, and the extremities when they were known or read.
   */
  private async updateCurrentState(
    trx: Kysely<Database>,
    event: RoomEvent,
    currentGroup: number | null,
    knownExtremities: string[] | undefined,
    s: { before: number; after: number; ownDelta: StateDelta; resolved: StateMap | undefined },
  ): Promise<{ delta: StateDelta; group: number | null; extremities: string[] | undefined }> {
    const roomId = event.room_id;
    let delta: StateDelta;
    let newGroup: number | null;
    let extremityIds = knownExtremities;
    if (s.resolved) {
      delta = diffStates(await this.loadCurrentState(trx, roomId, currentGroup), s.resolved);
      newGroup = null;
    } else {
      extremityIds ??= (await FORWARD_EXTREMITIES.rows(trx, roomId)).map((r) => r.event_id);
      const extremities = extremityIds;
      if (extremities.length === 1 && extremities[0] === event.event_id) {
        // The event is the tip of the room: current state is the state after it.
        if (currentGroup !== null && currentGroup === s.before) {
          delta = s.ownDelta; // the common case: one entry, nothing to load
        } else {
          const current = await this.loadCurrentState(trx, roomId, currentGroup);
          delta = diffStates(current, await this.stateGroups.load(trx, s.after, false));
        }
        newGroup = s.after;
      } else if (extremities.includes(event.event_id)) {
        // A fork the caller did not resolve: apply the event's own change.
        delta = s.ownDelta;
        newGroup = delta.size === 0 ? currentGroup : null;
      } else {
        // It filled a gap in history: current state is unchanged.
        return { delta: new Map(), group: currentGroup, extremities: extremityIds };
      }
    }

    for (const [key, eventId] of delta) {
      const [type, state_key] = JSON.parse(key) as [string, string];
      if (eventId === null) await DELETE_CURRENT_STATE.execute(trx, roomId, type, state_key);
      else await UPSERT_CURRENT_STATE.execute(trx, roomId, type, state_key, eventId);
    }
    if (newGroup !== currentGroup) await SET_CURRENT_STATE_GROUP.execute(trx, newGroup, roomId);
    return { delta, group: newGroup, extremities: extremityIds };
  }

  private async loadCurrentState(
    trx: Kysely<Database>,
    roomId: string,
    currentGroup: number | null,
  ): Promise<ReadonlyMap<string, string>> {
    if (currentGroup !== null) return this.stateGroups.load(trx, currentGroup, true);
    const rows = await trx
      .selectFrom('current_state')
      .select(['type', 'state_key', 'event_id'])
      .where('room_id', '=', roomId)
      .execute();
    const state: StateMap = new Map();
    applyDelta(state, new Map(rows.map((r) => [stateKey(r.type, r.state_key), r.event_id])));
    return state;
  }
}

/** One (event, other event, room) row per distinct id in `ids`, in chunks of EDGE_CHUNK. */
async function insertEdgeRows(
  trx: Kysely<Database>,
  query: PreparedQueryFamily<unknown[]>,
  event: RoomEvent,
  ids: readonly string[],
): Promise<void> {
  const distinct = [...new Set(ids)];
  for (let i = 0; i < distinct.length; i += EDGE_CHUNK) {
    const chunk = distinct.slice(i, i + EDGE_CHUNK);
    const args = chunk.flatMap((id) => [event.event_id, id, event.room_id]);
    await query.of(chunk.length).execute(trx, ...args);
  }
}

/**
 * The room's forward extremities after `event` (as updateForwardExtremities leaves them), from
 * those before it: its prev events are no longer extremities; it is one when it was inserted.
 */
function nextExtremities(before: readonly string[], event: RoomEvent, isExtremity: boolean): string[] {
  const prev = new Set(event.prev_events);
  const next = before.filter((id) => !prev.has(id) && id !== event.event_id);
  if (isExtremity) next.push(event.event_id);
  return next.sort(compareIds);
}

/** The order of `ORDER BY event_id` (binary collation on SQLite, "C" on PostgreSQL: code units for ASCII ids). */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function checkEvent(event: RoomEvent): void {
  for (const [name, value] of [
    ['depth', event.depth],
    ['origin_server_ts', event.origin_server_ts],
  ] as const) {
    if (!Number.isSafeInteger(value)) {
      throw new RangeError(`event ${event.event_id}: ${name} ${value} is not an integer within ±(2^53−1)`);
    }
  }
}

/** Rebuilds the normalised event from its columns (ids, normalised `redacts`) and its PDU. */
export function rowToEvent(row: EventRow): RoomEvent {
  const pdu = JSON.parse(row.pdu_json) as Pdu;
  const content = pdu.content;
  const event: RoomEvent = {
    event_id: row.event_id,
    room_id: row.room_id,
    type: row.type,
    sender: row.sender,
    content: isObject(content) ? content : {},
    origin_server_ts: row.origin_server_ts,
    depth: row.depth,
    prev_events: referencedIds(pdu.prev_events),
    auth_events: referencedIds(pdu.auth_events),
    pdu,
  };
  if (row.state_key !== null) event.state_key = row.state_key;
  if (row.redacts !== null) event.redacts = row.redacts;
  return event;
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** prev_events / auth_events: bare ids (v3+) or `[id, hashes]` pairs (v1, v2). */
function referencedIds(value: JsonValue | undefined): string[] {
  if (!Array.isArray(value)) return [];
  const ids: string[] = [];
  for (const item of value) {
    if (typeof item === 'string') ids.push(item);
    else if (Array.isArray(item) && typeof item[0] === 'string') ids.push(item[0]);
  }
  return ids;
}
