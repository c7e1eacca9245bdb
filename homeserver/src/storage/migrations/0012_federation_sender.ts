/**
 * The outgoing federation queues and the remote device lists (federation/sender.ts,
 * federation/edus.ts, storage/federation-store.ts):
 *
 *   federation_outbox          PDUs (by event id) and persistent EDUs waiting for one destination,
 *                              in `id` order; a row is deleted once a transaction carrying it got
 *                              its 200. Typing and presence are not persisted (they go stale).
 *   federation_positions       named high-water marks: `pdus` is the events stream position up to
 *                              which local events have been queued (a crash between persisting an
 *                              event and queueing it is caught up at the next start).
 *   federation_device_streams  per local user: the last m.device_list_update stream_id sent and
 *                              the device ids announced (so deletions can be announced too).
 *   remote_device_lists        per remote user we track: the devices (signed keys), cross-signing
 *                              keys and the last stream_id received from their server.
 *   openid_tokens              tokens of POST /user/{userId}/openid/request_token, which other
 *                              servers check with GET /_matrix/federation/v1/openid/userinfo.
 */
import type { Kysely } from 'kysely';
import type { Migration } from './runner.js';

export const migration0012: Migration = {
  version: 12,
  name: 'federation_sender',
  async up(db: Kysely<any>, engine) {
    await db.schema
      .createTable('federation_outbox')
      .addColumn('id', engine === 'postgres' ? 'bigint' : 'integer', (c: any) =>
        engine === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
      )
      .addColumn('destination', 'text', (c) => c.notNull())
      // 'pdu' (json: the event id) or 'edu' (json: the EDU object)
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('json', 'text', (c) => c.notNull())
      .addColumn('created_ts', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('federation_outbox_destination').on('federation_outbox').columns(['destination', 'kind', 'id']).execute();

    await db.schema
      .createTable('federation_positions')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('position', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('federation_device_streams')
      .addColumn('user_id', 'text', (c) => c.primaryKey())
      .addColumn('stream_id', 'bigint', (c) => c.notNull())
      .addColumn('device_ids_json', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('remote_device_lists')
      .addColumn('user_id', 'text', (c) => c.primaryKey())
      .addColumn('stream_id', 'bigint', (c) => c.notNull())
      // device id → { keys, device_display_name? }
      .addColumn('devices_json', 'text', (c) => c.notNull())
      .addColumn('master_key_json', 'text')
      .addColumn('self_signing_key_json', 'text')
      .addColumn('updated_ts', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('openid_tokens')
      .addColumn('token', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('expires_ts', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('openid_tokens_expiry').on('openid_tokens').column('expires_ts').execute();
  },
};
