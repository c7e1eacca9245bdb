/**
 * Current membership per (room, user), kept in step with m.room.member events inside the event's
 * persist transaction, so "which rooms is Alice in" and "who is in this room" are one lookup.
 */
import { SqliteAdapter, type Kysely, type Selectable } from 'kysely';
import type { JsonObject, RoomEvent } from '../events/types.js';
import type { Database, RoomMembershipsTable } from './schema.js';
import { arg, argList, PreparedQuery, PreparedQueryFamily } from './prepared.js';

/** Runs in the persist transaction of every membership event: compiled once (prepared.ts). */
const UPSERT_MEMBERSHIP = new PreparedQuery<
  [roomId: string, userId: string, membership: string, eventId: string, position: number, sender: string, displayName: string | null, avatarUrl: string | null]
>((db) =>
  db
    .insertInto('room_memberships')
    .values({
      room_id: arg(0),
      user_id: arg(1),
      membership: arg(2),
      event_id: arg(3),
      stream_ordering: arg(4),
      sender: arg(5),
      display_name: arg(6),
      avatar_url: arg(7),
      forgotten: 0,
    })
    .onConflict((oc) =>
      oc.columns(['room_id', 'user_id']).doUpdateSet((eb) => ({
        membership: eb.ref('excluded.membership'),
        event_id: eb.ref('excluded.event_id'),
        stream_ordering: eb.ref('excluded.stream_ordering'),
        sender: eb.ref('excluded.sender'),
        display_name: eb.ref('excluded.display_name'),
        avatar_url: eb.ref('excluded.avatar_url'),
        forgotten: eb.ref('excluded.forgotten'),
      })),
    ),
);

/** Migration 0013's table (not in schema.ts's Database): stripped state of out-of-band memberships. */
interface OutOfBandTables {
  out_of_band_room_state: { event_id: string; room_id: string; state_json: string };
}

/** A room's members with one of n memberships (federation's sender asks for every local event). */
const MEMBERS_WITH = new PreparedQueryFamily<string[], Selectable<RoomMembershipsTable>>(
  (db, n) =>
    db
      .selectFrom('room_memberships')
      .selectAll()
      .where('room_id', '=', arg(0))
      .where('membership', 'in', argList(1, n))
      .orderBy('user_id'),
  5,
);

/** All of a user's membership rows, forgotten ones included (the cache keeps them all). */
const USER_MEMBERSHIPS = new PreparedQuery<[userId: string], Selectable<RoomMembershipsTable>>((db) =>
  db.selectFrom('room_memberships').selectAll().where('user_id', '=', arg(0)),
);

/** All of a room's membership rows, by user id. */
const ROOM_MEMBERSHIPS = new PreparedQuery<[roomId: string], Selectable<RoomMembershipsTable>>((db) =>
  db.selectFrom('room_memberships').selectAll().where('room_id', '=', arg(0)).orderBy('user_id'),
);

const ONE_MEMBERSHIP = new PreparedQuery<[roomId: string, userId: string], Selectable<RoomMembershipsTable>>((db) =>
  db.selectFrom('room_memberships').selectAll().where('room_id', '=', arg(0)).where('user_id', '=', arg(1)),
);

/** Users and rooms whose memberships are kept in memory, at most (the least recently used go first). */
const CACHED_USERS = 20_000;
const CACHED_ROOMS = 2_000;

export type Membership = 'join' | 'invite' | 'leave' | 'ban' | 'knock';

export interface MembershipRow {
  roomId: string;
  userId: string;
  membership: Membership;
  eventId: string;
  streamPosition: number;
  sender: string;
  displayName: string | null;
  avatarUrl: string | null;
  forgotten: boolean;
}

/**
 * Every /sync reads the user's memberships (and the summary of each room with news its members),
 * so on SQLite they are kept in memory: per user (all their rows) and per room (all its rows).
 *
 * Why this is exact: this store is the only writer of `room_memberships`, and on SQLite the
 * process has one connection, which a write transaction holds from BEGIN to COMMIT or ROLLBACK.
 * `record` and `forget` drop the entries they change before writing, so a read after that waits
 * for the transaction's end and sees what it committed (or, rolled back, what was there); and a
 * read already in flight when they ran is not kept (`generation`). PostgreSQL reads run beside
 * an open transaction and could keep what it is about to replace, with no hook at its commit
 * here: there every read goes to the database.
 */
class MembershipCache {
  private readonly users = new Map<string, MembershipRow[]>();
  private readonly rooms = new Map<string, MembershipRow[]>();
  /** Increases with every change: a read that started before one is not kept. */
  generation = 0;

  user(userId: string): MembershipRow[] | undefined {
    return touch(this.users, userId);
  }

  room(roomId: string): MembershipRow[] | undefined {
    return touch(this.rooms, roomId);
  }

  keepUser(userId: string, rows: MembershipRow[], readAt: number): void {
    if (readAt === this.generation) keep(this.users, userId, rows, CACHED_USERS);
  }

  keepRoom(roomId: string, rows: MembershipRow[], readAt: number): void {
    if (readAt === this.generation) keep(this.rooms, roomId, rows, CACHED_ROOMS);
  }

  /** (room, user)'s membership is about to change. */
  changing(roomId: string, userId: string): void {
    this.generation++;
    this.users.delete(userId);
    this.rooms.delete(roomId);
  }
}

export class MembershipsStore {
  /** Undefined on PostgreSQL (see MembershipCache). */
  private readonly cache: MembershipCache | undefined;

  constructor(private readonly db: Kysely<Database>) {
    this.cache = db.getExecutor().adapter instanceof SqliteAdapter ? new MembershipCache() : undefined;
  }

  /** Call inside the persist transaction of an accepted m.room.member event that became current state. */
  async record(trx: Kysely<Database>, event: RoomEvent, streamPosition: number): Promise<void> {
    if (event.type !== 'm.room.member' || event.state_key === undefined) return;
    this.cache?.changing(event.room_id, event.state_key);
    const membership = String(event.content.membership ?? 'leave');
    await UPSERT_MEMBERSHIP.execute(
      trx,
      event.room_id,
      event.state_key,
      membership,
      event.event_id,
      streamPosition,
      event.sender,
      typeof event.content.displayname === 'string' ? event.content.displayname : null,
      typeof event.content.avatar_url === 'string' ? event.content.avatar_url : null,
    );
  }

  async get(roomId: string, userId: string): Promise<MembershipRow | undefined> {
    const known = this.cache?.user(userId) ?? this.cache?.room(roomId);
    if (known) {
      const row = known.find((m) => m.roomId === roomId && m.userId === userId);
      return row && { ...row };
    }
    const row = await ONE_MEMBERSHIP.first(this.db, roomId, userId);
    return row && toRow(row);
  }

  /** The user's rooms with one of the given memberships, forgotten rooms left out. */
  async roomsForUser(userId: string, memberships: readonly Membership[]): Promise<MembershipRow[]> {
    if (memberships.length === 0) return [];
    const rows = await this.allOfUser(userId);
    return rows.filter((m) => !m.forgotten && memberships.includes(m.membership)).map((m) => ({ ...m }));
  }

  /** Members of a room, optionally only those with the given memberships, by user id. */
  async members(roomId: string, memberships?: readonly Membership[]): Promise<MembershipRow[]> {
    if (!this.cache && memberships && memberships.length > 0) {
      return (await MEMBERS_WITH.of(memberships.length).rows(this.db, roomId, ...memberships)).map(toRow);
    }
    const rows = await this.allOfRoom(roomId);
    return rows.filter((m) => !memberships || memberships.includes(m.membership)).map((m) => ({ ...m }));
  }

  /** Every row of the user (forgotten ones too); shared with the cache: do not change them. */
  private async allOfUser(userId: string): Promise<readonly MembershipRow[]> {
    const cached = this.cache?.user(userId);
    if (cached) return cached;
    const readAt = this.cache?.generation;
    const rows = (await USER_MEMBERSHIPS.rows(this.db, userId)).map(toRow);
    if (readAt !== undefined) this.cache?.keepUser(userId, rows, readAt);
    return rows;
  }

  private async allOfRoom(roomId: string): Promise<readonly MembershipRow[]> {
    const cached = this.cache?.room(roomId);
    if (cached) return cached;
    const readAt = this.cache?.generation;
    const rows = (await ROOM_MEMBERSHIPS.rows(this.db, roomId)).map(toRow);
    if (readAt !== undefined) this.cache?.keepRoom(roomId, rows, readAt);
    return rows;
  }

  /** Hides a left room from the user (`/forget`). Returns false when the user is still in it. */
  async forget(roomId: string, userId: string): Promise<boolean> {
    this.cache?.changing(roomId, userId);
    try {
      const result = await this.db
        .updateTable('room_memberships')
        .set({ forgotten: 1 })
        .where('room_id', '=', roomId)
        .where('user_id', '=', userId)
        .where('membership', 'in', ['leave', 'ban'])
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    } finally {
      // Not in a transaction: nothing stops a read between the first drop and the update.
      this.cache?.changing(roomId, userId);
    }
  }

  /**
   * Keeps the stripped state that came with an invite or knock this server holds outside the
   * room's DAG (rooms/remote-membership.ts). Call inside the event's persist transaction.
   */
  async saveStrippedState(trx: Kysely<Database>, event: RoomEvent, state: readonly JsonObject[]): Promise<void> {
    await (trx as unknown as Kysely<OutOfBandTables>)
      .insertInto('out_of_band_room_state')
      .values({ event_id: event.event_id, room_id: event.room_id, state_json: JSON.stringify(state) })
      .onConflict((oc) => oc.column('event_id').doNothing())
      .execute();
  }

  /** The stripped state kept with an out-of-band invite or knock, if any. */
  async strippedStateOf(eventId: string): Promise<JsonObject[] | undefined> {
    const row = await (this.db as unknown as Kysely<OutOfBandTables>)
      .selectFrom('out_of_band_room_state')
      .select('state_json')
      .where('event_id', '=', eventId)
      .executeTakeFirst();
    return row ? (JSON.parse(row.state_json) as JsonObject[]) : undefined;
  }

  /** Do two users share a joined room? (Profile and directory visibility.) */
  async shareARoom(userA: string, userB: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('room_memberships as a')
      .innerJoin('room_memberships as b', 'a.room_id', 'b.room_id')
      .select('a.room_id')
      .where('a.user_id', '=', userA)
      .where('b.user_id', '=', userB)
      .where('a.membership', '=', 'join')
      .where('b.membership', '=', 'join')
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }
}

/** The entry, made the most recently used. */
function touch<V>(map: Map<string, V>, key: string): V | undefined {
  const value = map.get(key);
  if (value !== undefined) {
    map.delete(key);
    map.set(key, value);
  }
  return value;
}

function keep<V>(map: Map<string, V>, key: string, value: V, limit: number): void {
  if (map.size >= limit) map.delete(map.keys().next().value!);
  map.set(key, value);
}

function toRow(r: Selectable<RoomMembershipsTable>): MembershipRow {
  return {
    roomId: r.room_id,
    userId: r.user_id,
    membership: r.membership as Membership,
    eventId: r.event_id,
    streamPosition: Number(r.stream_ordering),
    sender: r.sender,
    displayName: r.display_name,
    avatarUrl: r.avatar_url,
    forgotten: r.forgotten !== 0,
  };
}
