/**
 * Send-to-device messages (spec "Send-to-Device messaging"): pending messages per recipient
 * device, each with its own position in the `to_device` stream.
 *
 * Exactly-once delivery: /sync hands out the messages between its `since` token and the position
 * it answers with, and deletes nothing; a message is deleted when the device syncs again with a
 * token at or past its position, which proves the response carrying it arrived. A response lost
 * on the way (the request cut off) is simply sent again from the old token.
 *
 * Idempotency: the sending device's transaction id is recorded in the same transaction as the
 * messages, so a retried request adds nothing.
 */
import type { Kysely } from 'kysely';
import type { JsonObject } from '../events/types.js';
import { chunks } from './device-lists-store.js';
import type { Database } from './schema.js';
import { currentStreamPosition, lockStream, setStreamPosition, writeTransaction, type Engine } from './transactions.js';

export const TO_DEVICE_STREAM = 'to_device';

/** Every device of the user (`*` in a request). */
export const ALL_DEVICES = '*';

export interface ToDeviceSend {
  sender: string;
  /** The sending device; '' when the requester has none. */
  senderDeviceId: string;
  txnId: string;
  type: string;
  /** Recipient user → device id (or `*`) → content. Only local users. */
  messages: ReadonlyMap<string, ReadonlyMap<string, JsonObject>>;
}

export interface ToDeviceSendResult {
  /** False when the transaction id was used before (nothing was sent again). */
  sent: boolean;
  /** Users with at least one message queued. */
  recipients: string[];
  /** The stream position of the last message, when any was queued. */
  position: number | undefined;
}

export interface PendingToDevice {
  position: number;
  event: JsonObject;
}

/** Devices whose last acknowledged position is remembered, at most. */
const ACKNOWLEDGED_LIMIT = 20_000;

export class ToDeviceStore {
  /** user, device → the highest position acknowledged (all messages up to it are deleted). */
  private readonly acknowledged = new Map<string, number>();
  constructor(
    private readonly db: Kysely<Database>,
    private readonly engine: Engine,
  ) {}

  /**
   * Queues the messages for every existing device they name (unknown devices are skipped, as a
   * message for them could never be delivered) and records the transaction id.
   */
  async send(s: ToDeviceSend): Promise<ToDeviceSendResult> {
    return writeTransaction(this.db, this.engine, async (trx) => {
      // The stream lock first: it orders every writer of the stream (transactions.ts).
      const before = await lockStream(trx, this.engine, TO_DEVICE_STREAM);
      const recorded = await trx
        .insertInto('to_device_txns')
        .values({ user_id: s.sender, device_id: s.senderDeviceId, txn_id: s.txnId, created_ts: Date.now() })
        .onConflict((oc) => oc.columns(['user_id', 'device_id', 'txn_id']).doNothing())
        .executeTakeFirst();
      if (Number(recorded.numInsertedOrUpdatedRows ?? 0n) === 0) return { sent: false, recipients: [], position: undefined };

      const rows: { user_id: string; device_id: string; stream_ordering: number; message_json: string }[] = [];
      let position = before;
      for (const [userId, byDevice] of s.messages) {
        const existing = await trx.selectFrom('devices').select('device_id').where('user_id', '=', userId).execute();
        const known = new Set(existing.map((d) => d.device_id));
        for (const [deviceId, content] of byDevice) {
          const targets = deviceId === ALL_DEVICES ? [...known] : known.has(deviceId) ? [deviceId] : [];
          const text = JSON.stringify({ type: s.type, sender: s.sender, content });
          for (const target of targets) {
            rows.push({ user_id: userId, device_id: target, stream_ordering: ++position, message_json: text });
          }
        }
      }
      for (const chunk of chunks(rows, 200)) await trx.insertInto('to_device_messages').values(chunk).execute();
      if (rows.length === 0) return { sent: true, recipients: [], position: undefined };
      await setStreamPosition(trx, TO_DEVICE_STREAM, position);
      return { sent: true, recipients: [...new Set(rows.map((r) => r.user_id))], position };
    });
  }

  /** The device's messages in (after, upTo], oldest first, at most `limit`. */
  async pending(userId: string, deviceId: string, after: number, upTo: number, limit: number): Promise<PendingToDevice[]> {
    if (upTo <= after) return [];
    const rows = await this.db
      .selectFrom('to_device_messages')
      .select(['stream_ordering', 'message_json'])
      .where('user_id', '=', userId)
      .where('device_id', '=', deviceId)
      .where('stream_ordering', '>', after)
      .where('stream_ordering', '<=', upTo)
      .orderBy('stream_ordering')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ position: Number(r.stream_ordering), event: JSON.parse(r.message_json) as JsonObject }));
  }

  /** The device has received everything up to `upTo`: those messages are deleted. */
  async acknowledge(userId: string, deviceId: string, upTo: number): Promise<number> {
    if (upTo <= 0) return 0;
    // Every /sync acknowledges its token: a DELETE only when the token moved past what was
    // deleted before. Exact: a message committed later is numbered above every committed position.
    const key = `${userId}\u0000${deviceId}`;
    if ((this.acknowledged.get(key) ?? 0) >= upTo) return 0;
    const result = await this.db
      .deleteFrom('to_device_messages')
      .where('user_id', '=', userId)
      .where('device_id', '=', deviceId)
      .where('stream_ordering', '<=', upTo)
      .executeTakeFirst();
    this.acknowledged.delete(key);
    if (this.acknowledged.size >= ACKNOWLEDGED_LIMIT) this.acknowledged.delete(this.acknowledged.keys().next().value!);
    this.acknowledged.set(key, upTo);
    return Number(result.numDeletedRows);
  }

  /** Inside a transaction that deletes devices: their pending messages and transaction ids go too. */
  async removeDevices(trx: Kysely<Database>, userId: string, deviceIds: readonly string[]): Promise<void> {
    for (const chunk of chunks(deviceIds, 200)) {
      await trx.deleteFrom('to_device_messages').where('user_id', '=', userId).where('device_id', 'in', chunk).execute();
      await trx.deleteFrom('to_device_txns').where('user_id', '=', userId).where('device_id', 'in', chunk).execute();
    }
  }

  async currentPosition(): Promise<number> {
    return currentStreamPosition(this.db, TO_DEVICE_STREAM);
  }
}
