/**
 * The tables of migration 0012: the outgoing federation queues (federation/sender.ts), our
 * users' device list streams as announced to other servers, and the device lists of remote
 * users (federation/edus.ts, federation/queries-client.ts). Not in schema.ts's `Database`: this
 * store types its tables itself over the shared connection.
 */
import type { Generated, Kysely } from 'kysely';
import type { JsonObject } from '../events/types.js';
import { chunks } from './device-lists-store.js';
import type { Database } from './schema.js';
import { writeTransaction, type Engine } from './transactions.js';

interface QueueTables {
  federation_outbox: { id: Generated<number>; destination: string; kind: string; json: string; created_ts: number };
  federation_positions: { name: string; position: number };
  federation_device_streams: { user_id: string; stream_id: number; device_ids_json: string };
  remote_device_lists: {
    user_id: string;
    stream_id: number;
    devices_json: string;
    master_key_json: string | null;
    self_signing_key_json: string | null;
    updated_ts: number;
  };
  openid_tokens: { token: string; user_id: string; expires_ts: number };
}

export type OutboxKind = 'pdu' | 'edu';

export interface OutboxItem {
  destination: string;
  kind: OutboxKind;
  /** pdu: the event id; edu: the EDU object. */
  value: string | JsonObject;
}

export interface OutboxRow {
  id: number;
  kind: OutboxKind;
  value: string | JsonObject;
}

export interface RemoteDevice {
  keys: JsonObject | null;
  device_display_name?: string;
}

export interface RemoteDeviceList {
  userId: string;
  streamId: number;
  devices: Record<string, RemoteDevice>;
  masterKey: JsonObject | null;
  selfSigningKey: JsonObject | null;
}

export class FederationQueuesStore {
  private readonly db: Kysely<QueueTables>;

  constructor(
    private readonly rawDb: Kysely<Database>,
    private readonly engine: Engine,
  ) {
    this.db = rawDb as unknown as Kysely<QueueTables>;
  }

  private tx<T>(fn: (trx: Kysely<QueueTables>, raw: Kysely<Database>) => Promise<T>): Promise<T> {
    return writeTransaction(this.rawDb, this.engine, (t) => fn(t as unknown as Kysely<QueueTables>, t));
  }

  // ---- outbox ----

  /** Queues items (all or none); `mark`, when given, becomes that named high-water mark. */
  async enqueue(items: readonly OutboxItem[], mark?: { name: string; position: number }): Promise<void> {
    if (items.length === 0 && !mark) return;
    const now = Date.now();
    await this.tx(async (trx) => {
      for (const chunk of chunks(items, 200)) {
        await trx
          .insertInto('federation_outbox')
          .values(
            chunk.map((i) => ({
              destination: i.destination,
              kind: i.kind,
              json: typeof i.value === 'string' ? i.value : JSON.stringify(i.value),
              created_ts: now,
            })),
          )
          .execute();
      }
      if (mark) {
        await trx
          .insertInto('federation_positions')
          .values({ name: mark.name, position: mark.position })
          .onConflict((oc) => oc.column('name').doUpdateSet({ position: mark.position }))
          .execute();
      }
    });
  }

  /** The oldest queued items of one kind for the destination. */
  async peek(destination: string, kind: OutboxKind, limit: number): Promise<OutboxRow[]> {
    const rows = await this.db
      .selectFrom('federation_outbox')
      .select(['id', 'json'])
      .where('destination', '=', destination)
      .where('kind', '=', kind)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ id: Number(r.id), kind, value: kind === 'pdu' ? r.json : (JSON.parse(r.json) as JsonObject) }));
  }

  async remove(ids: readonly number[]): Promise<void> {
    for (const chunk of chunks(ids, 500)) await this.db.deleteFrom('federation_outbox').where('id', 'in', chunk).execute();
  }

  /** Destinations with something queued. */
  async pendingDestinations(): Promise<string[]> {
    const rows = await this.db.selectFrom('federation_outbox').select('destination').distinct().execute();
    return rows.map((r) => r.destination);
  }

  /** How many items wait for the destination (status, tests). */
  async pendingCount(destination: string): Promise<number> {
    const row = await this.db
      .selectFrom('federation_outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('destination', '=', destination)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async position(name: string): Promise<number | undefined> {
    const row = await this.db.selectFrom('federation_positions').select('position').where('name', '=', name).executeTakeFirst();
    return row ? Number(row.position) : undefined;
  }

  // ---- our users' device list streams ----

  /**
   * Takes the next `count` stream ids of the user's outgoing device list updates and records the
   * devices now announced; returns the previous stream id (0: none) and the first new one.
   */
  async nextDeviceStream(userId: string, count: number, deviceIds: readonly string[]): Promise<{ prev: number; first: number }> {
    return this.tx(async (trx) => {
      const row = await trx.selectFrom('federation_device_streams').select('stream_id').where('user_id', '=', userId).executeTakeFirst();
      const prev = row ? Number(row.stream_id) : 0;
      const values = { stream_id: prev + count, device_ids_json: JSON.stringify(deviceIds) };
      await trx
        .insertInto('federation_device_streams')
        .values({ user_id: userId, ...values })
        .onConflict((oc) => oc.column('user_id').doUpdateSet(values))
        .execute();
      return { prev, first: prev + 1 };
    });
  }

  /** The device ids last announced for the user. */
  async announcedDevices(userId: string): Promise<string[]> {
    const row = await this.db.selectFrom('federation_device_streams').select('device_ids_json').where('user_id', '=', userId).executeTakeFirst();
    return row ? (JSON.parse(row.device_ids_json) as string[]) : [];
  }

  /** The last stream id sent for the user's device list (0: none). */
  async deviceStreamId(userId: string): Promise<number> {
    const row = await this.db.selectFrom('federation_device_streams').select('stream_id').where('user_id', '=', userId).executeTakeFirst();
    return row ? Number(row.stream_id) : 0;
  }

  // ---- remote users' device lists ----

  async remoteDeviceList(userId: string): Promise<RemoteDeviceList | undefined> {
    const row = await this.db.selectFrom('remote_device_lists').selectAll().where('user_id', '=', userId).executeTakeFirst();
    if (!row) return undefined;
    return {
      userId,
      streamId: Number(row.stream_id),
      devices: JSON.parse(row.devices_json) as Record<string, RemoteDevice>,
      masterKey: row.master_key_json === null ? null : (JSON.parse(row.master_key_json) as JsonObject),
      selfSigningKey: row.self_signing_key_json === null ? null : (JSON.parse(row.self_signing_key_json) as JsonObject),
    };
  }

  async remoteDeviceLists(userIds: readonly string[]): Promise<Map<string, RemoteDeviceList>> {
    const out = new Map<string, RemoteDeviceList>();
    for (const userId of userIds) {
      const list = await this.remoteDeviceList(userId);
      if (list) out.set(userId, list);
    }
    return out;
  }

  /**
   * Stores a remote user's device list; `markChanged` runs first in the same transaction (it
   * records the change in the device_lists stream, whose lock comes first).
   */
  async putRemoteDeviceList(list: RemoteDeviceList, markChanged: (trx: Kysely<Database>) => Promise<unknown>): Promise<void> {
    const values = {
      stream_id: list.streamId,
      devices_json: JSON.stringify(list.devices),
      master_key_json: list.masterKey === null ? null : JSON.stringify(list.masterKey),
      self_signing_key_json: list.selfSigningKey === null ? null : JSON.stringify(list.selfSigningKey),
      updated_ts: Date.now(),
    };
    await this.tx(async (trx, raw) => {
      await markChanged(raw);
      await trx
        .insertInto('remote_device_lists')
        .values({ user_id: list.userId, ...values })
        .onConflict((oc) => oc.column('user_id').doUpdateSet(values))
        .execute();
    });
  }
}

export class OpenIdTokensStore {
  private readonly db: Kysely<QueueTables>;

  constructor(db: Kysely<Database>) {
    this.db = db as unknown as Kysely<QueueTables>;
  }

  async create(token: string, userId: string, expiresTs: number): Promise<void> {
    // Expired tokens are forgotten as new ones are made.
    await this.db.deleteFrom('openid_tokens').where('expires_ts', '<=', Date.now()).execute();
    await this.db.insertInto('openid_tokens').values({ token, user_id: userId, expires_ts: expiresTs }).execute();
  }

  /** The user of a token that has not expired. */
  async userOf(token: string, now = Date.now()): Promise<string | undefined> {
    const row = await this.db.selectFrom('openid_tokens').select(['user_id', 'expires_ts']).where('token', '=', token).executeTakeFirst();
    return row && Number(row.expires_ts) > now ? row.user_id : undefined;
  }
}

const stores = new WeakMap<object, FederationQueuesStore>();

/** The queues store of an opened Storage (one per Storage). */
export function federationQueuesOf(storage: { db: Kysely<Database>; engine: Engine }): FederationQueuesStore {
  let store = stores.get(storage);
  if (!store) stores.set(storage, (store = new FederationQueuesStore(storage.db, storage.engine)));
  return store;
}
