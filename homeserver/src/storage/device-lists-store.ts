/**
 * The `device_lists` stream (spec "Tracking the device list for a user"): a row per user whose
 * devices or cross-signing keys changed, numbered in the stream, written in the same transaction
 * as the change. Plus the room lookups that turn membership changes in encrypted rooms into
 * device list changes (e2ee/device-lists.ts puts them together).
 */
import type { Kysely } from 'kysely';
import { argList, PreparedQueryFamily } from './prepared.js';
import type { Database } from './schema.js';
import { currentStreamPosition, nextStreamPosition, type Engine } from './transactions.js';

export const DEVICE_LISTS_STREAM = 'device_lists';

/** Rooms per query of `encryptedRooms` (run by every incremental /sync: compiled once per count, prepared.ts). */
const ENCRYPTED_ROOMS_CHUNK = 100;
const ENCRYPTED_ROOMS = new PreparedQueryFamily<string[], { room_id: string; stream_ordering: number | string }>(
  (db, n) =>
    db
      .selectFrom('current_state as cs')
      .innerJoin('events as e', 'e.event_id', 'cs.event_id')
      .select(['cs.room_id', 'e.stream_ordering'])
      .where('cs.type', '=', 'm.room.encryption')
      .where('cs.state_key', '=', '')
      .where('cs.room_id', 'in', argList(0, n)),
  ENCRYPTED_ROOMS_CHUNK,
);

/**
 * Records, inside the caller's write transaction, that the users' device lists changed; returns
 * the new position of the stream.
 */
export async function markDeviceListsChanged(trx: Kysely<Database>, engine: Engine, userIds: readonly string[]): Promise<number> {
  const position = await nextStreamPosition(trx, engine, DEVICE_LISTS_STREAM);
  const unique = [...new Set(userIds)];
  for (const chunk of chunks(unique, 500)) {
    await trx
      .insertInto('device_list_changes')
      .values(chunk.map((user_id) => ({ stream_ordering: position, user_id })))
      .execute();
  }
  return position;
}

export interface MembershipChange {
  roomId: string;
  userId: string;
  membership: string;
}

export class DeviceListsStore {
  constructor(private readonly db: Kysely<Database>) {}

  async currentPosition(): Promise<number> {
    return currentStreamPosition(this.db, DEVICE_LISTS_STREAM);
  }

  /** Users whose device lists changed in (from, to]. */
  async changedUsers(from: number, to: number): Promise<string[]> {
    if (to <= from) return [];
    const rows = await this.db
      .selectFrom('device_list_changes')
      .select('user_id')
      .distinct()
      .where('stream_ordering', '>', from)
      .where('stream_ordering', '<=', to)
      .execute();
    return rows.map((r) => r.user_id);
  }

  /** Of the given rooms, the encrypted ones (m.room.encryption in current state) → that event's stream position. */
  async encryptedRooms(roomIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const chunk of chunks(roomIds, ENCRYPTED_ROOMS_CHUNK)) {
      const rows = await ENCRYPTED_ROOMS.of(chunk.length).rows(this.db, ...chunk);
      for (const r of rows) out.set(r.room_id, Number(r.stream_ordering));
    }
    return out;
  }

  /** Current memberships in the rooms that changed in (from, to] (events stream positions). */
  async membershipChanges(roomIds: readonly string[], from: number, to: number): Promise<MembershipChange[]> {
    const out: MembershipChange[] = [];
    if (to <= from) return out;
    for (const chunk of chunks(roomIds, 500)) {
      const rows = await this.db
        .selectFrom('room_memberships')
        .select(['room_id', 'user_id', 'membership'])
        .where('room_id', 'in', chunk)
        .where('stream_ordering', '>', from)
        .where('stream_ordering', '<=', to)
        .execute();
      for (const r of rows) out.push({ roomId: r.room_id, userId: r.user_id, membership: r.membership });
    }
    return out;
  }

  /** The joined members of the rooms (each user once). */
  async joinedMembers(roomIds: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const chunk of chunks(roomIds, 500)) {
      const rows = await this.db
        .selectFrom('room_memberships')
        .select('user_id')
        .distinct()
        .where('room_id', 'in', chunk)
        .where('membership', '=', 'join')
        .execute();
      for (const r of rows) out.add(r.user_id);
    }
    return out;
  }

  /** Of `candidates`, those who share a joined room with `userId`. */
  async usersSharingARoom(userId: string, candidates: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const chunk of chunks(candidates, 500)) {
      const rows = await this.db
        .selectFrom('room_memberships as a')
        .innerJoin('room_memberships as b', 'a.room_id', 'b.room_id')
        .select('b.user_id')
        .distinct()
        .where('a.user_id', '=', userId)
        .where('a.membership', '=', 'join')
        .where('b.membership', '=', 'join')
        .where('b.user_id', 'in', chunk)
        .execute();
      for (const r of rows) out.add(r.user_id);
    }
    return out;
  }

  /** The rooms the user is joined to. */
  async joinedRooms(userId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('room_memberships')
      .select('room_id')
      .where('user_id', '=', userId)
      .where('membership', '=', 'join')
      .execute();
    return rows.map((r) => r.room_id);
  }
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
