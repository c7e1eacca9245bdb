/**
 * Relations between events ("Event relationships", "Threading", "Event replacements",
 * "Reference relations", "Event annotations and reactions"), indexed at persist time.
 */
import type { Kysely, Selectable } from 'kysely';
import type { JsonObject, RoomEvent } from '../events/types.js';
import { argList, PREPARED_LIST_CHUNK, PreparedQueryFamily, rowsForList } from './prepared.js';
import type { Database, EventRelationsTable } from './schema.js';

/**
 * Relations of some relation types to a list of parents, oldest first: one family per number of
 * types (callers pass a fixed list), compiled once per list length. /sync runs it for every response.
 */
const relationsOfTypes = new Map<number, PreparedQueryFamily<unknown[], Selectable<EventRelationsTable>>>();
function relationsQuery(types: number): PreparedQueryFamily<unknown[], Selectable<EventRelationsTable>> {
  let family = relationsOfTypes.get(types);
  if (!family) {
    family = new PreparedQueryFamily((db, parents) =>
      db
        .selectFrom('event_relations')
        .selectAll()
        .where('rel_type', 'in', argList(0, types))
        .where('relates_to_id', 'in', argList(types, parents))
        .orderBy('stream_ordering', 'asc'),
    );
    relationsOfTypes.set(types, family);
  }
  return family;
}

export interface Relation {
  eventId: string;
  relatesToId: string;
  relType: string;
  roomId: string;
  sender: string;
  type: string;
  aggregationKey: string | null;
  streamPosition: number;
  originServerTs: number;
}

export interface RelationQuery {
  relType?: string;
  eventType?: string;
  /** Events with stream position strictly below (dir b) or above (dir f) this. */
  from?: number;
  /** Stop at this position (inclusive bound on the other side). */
  to?: number;
  dir: 'b' | 'f';
  limit: number;
}

/** The `m.relates_to` of an event's content, when it names a relation type and a target. */
export function relationOf(event: RoomEvent): { relType: string; eventId: string; key: string | null } | undefined {
  const rel = event.content['m.relates_to'];
  if (!rel || typeof rel !== 'object' || Array.isArray(rel)) return undefined;
  const { rel_type: relType, event_id: eventId, key } = rel as JsonObject;
  if (typeof relType !== 'string' || typeof eventId !== 'string') return undefined;
  return { relType, eventId, key: typeof key === 'string' ? key : null };
}

export class RelationsStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records the event's relation, if it has one. Call inside its persist transaction. */
  async record(trx: Kysely<Database>, event: RoomEvent, streamPosition: number): Promise<void> {
    const rel = relationOf(event);
    if (!rel || event.state_key !== undefined) return;
    await trx
      .insertInto('event_relations')
      .values({
        event_id: event.event_id,
        relates_to_id: rel.eventId,
        rel_type: rel.relType,
        room_id: event.room_id,
        sender: event.sender,
        type: event.type,
        aggregation_key: rel.key,
        stream_ordering: streamPosition,
        origin_server_ts: event.origin_server_ts,
      })
      .onConflict((oc) => oc.column('event_id').doNothing())
      .execute();
  }

  /** A redacted event no longer relates to anything (spec: redactions remove relations). */
  async forget(trx: Kysely<Database>, eventId: string): Promise<void> {
    await trx.deleteFrom('event_relations').where('event_id', '=', eventId).execute();
  }

  async children(parentId: string, q: RelationQuery): Promise<Relation[]> {
    let query = this.db.selectFrom('event_relations').selectAll().where('relates_to_id', '=', parentId);
    if (q.relType) query = query.where('rel_type', '=', q.relType);
    if (q.eventType) query = query.where('type', '=', q.eventType);
    if (q.dir === 'b') {
      if (q.from !== undefined) query = query.where('stream_ordering', '<', q.from);
      if (q.to !== undefined) query = query.where('stream_ordering', '>=', q.to);
    } else {
      if (q.from !== undefined) query = query.where('stream_ordering', '>', q.from);
      if (q.to !== undefined) query = query.where('stream_ordering', '<=', q.to);
    }
    const rows = await query.orderBy('stream_ordering', q.dir === 'b' ? 'desc' : 'asc').limit(q.limit).execute();
    return rows.map(toRelation);
  }

  /** All relations of the given types pointing at any of the given events (for bundling). */
  async forParents(parentIds: readonly string[], relTypes: readonly string[]): Promise<Relation[]> {
    if (parentIds.length === 0 || relTypes.length === 0) return [];
    const rows = await rowsForList(this.db, relationsQuery(relTypes.length), relTypes, parentIds);
    // Chunks are each in order; all of them together must be too.
    if (parentIds.length > PREPARED_LIST_CHUNK) rows.sort((a, b) => Number(a.stream_ordering) - Number(b.stream_ordering));
    return rows.map(toRelation);
  }

  /** Thread roots of a room, newest activity first, with the position of their latest reply. */
  async threadRoots(
    roomId: string,
    opts: { participant?: string; before?: number; limit: number },
  ): Promise<Array<{ rootId: string; latest: number }>> {
    let query = this.db
      .selectFrom('event_relations')
      .select(['relates_to_id'])
      .select((eb) => eb.fn.max<number>('stream_ordering').as('latest'))
      .where('room_id', '=', roomId)
      .where('rel_type', '=', 'm.thread')
      .groupBy('relates_to_id');
    if (opts.participant) {
      query = query.having((eb) =>
        eb.fn.sum<number>(eb.case().when('sender', '=', opts.participant!).then(1).else(0).end()),
        '>',
        0,
      );
    }
    if (opts.before !== undefined) query = query.having((eb) => eb.fn.max('stream_ordering'), '<', opts.before);
    const rows = await query.orderBy('latest', 'desc').limit(opts.limit).execute();
    return rows.map((r) => ({ rootId: r.relates_to_id, latest: Number(r.latest) }));
  }
}

function toRelation(r: Selectable<EventRelationsTable>): Relation {
  return {
    eventId: r.event_id,
    relatesToId: r.relates_to_id,
    relType: r.rel_type,
    roomId: r.room_id,
    sender: r.sender,
    type: r.type,
    aggregationKey: r.aggregation_key,
    streamPosition: Number(r.stream_ordering),
    originServerTs: Number(r.origin_server_ts),
  };
}
