/**
 * Client transaction ids (`PUT …/send/{type}/{txnId}`): the same request retried by the same
 * device returns the event it created the first time instead of sending again.
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import { arg, PreparedQuery } from './prepared.js';

// Both run for every message sent with a transaction id: compiled once (prepared.ts).
const FIND = new PreparedQuery<[userId: string, deviceId: string, txnId: string], { room_id: string; event_id: string }>((db) =>
  db
    .selectFrom('event_txn_ids')
    .select(['room_id', 'event_id'])
    .where('user_id', '=', arg(0))
    .where('device_id', '=', arg(1))
    .where('txn_id', '=', arg(2)),
);
const RECORD = new PreparedQuery<[userId: string, deviceId: string, txnId: string, roomId: string, eventId: string, ts: number]>(
  (db) =>
    db
      .insertInto('event_txn_ids')
      .values({ user_id: arg(0), device_id: arg(1), txn_id: arg(2), room_id: arg(3), event_id: arg(4), created_ts: arg(5) })
      .onConflict((oc) => oc.columns(['user_id', 'device_id', 'txn_id']).doNothing()),
);

export interface TxnKey {
  userId: string;
  deviceId: string | undefined;
  txnId: string;
}

export class TxnIdsStore {
  constructor(private readonly db: Kysely<Database>) {}

  async find(key: TxnKey): Promise<{ roomId: string; eventId: string } | undefined> {
    const row = await FIND.first(this.db, key.userId, key.deviceId ?? '', key.txnId);
    return row && { roomId: row.room_id, eventId: row.event_id };
  }

  /** Call inside the event's persist transaction, so the id and the event commit together. */
  async record(trx: Kysely<Database>, key: TxnKey, roomId: string, eventId: string): Promise<void> {
    await RECORD.execute(trx, key.userId, key.deviceId ?? '', key.txnId, roomId, eventId, Date.now());
  }

  /** The transaction ids this device used for the given events (echoed to it in `unsigned`). */
  async forEvents(userId: string, deviceId: string | undefined, eventIds: readonly string[]): Promise<Map<string, string>> {
    if (eventIds.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('event_txn_ids')
      .select(['event_id', 'txn_id'])
      .where('user_id', '=', userId)
      .where('device_id', '=', deviceId ?? '')
      .where('event_id', 'in', [...eventIds])
      .execute();
    return new Map(rows.map((r) => [r.event_id, r.txn_id]));
  }
}
