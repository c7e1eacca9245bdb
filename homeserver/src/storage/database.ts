/**
 * Opening the database: SQLite (embedded default, one file) or PostgreSQL, the same schema and
 * the same stores on both. `openDatabase` applies pending migrations before returning.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import type pg from 'pg';
import { EventsStore } from './events-store.js';
import { MIGRATIONS, migrate, latestSchemaVersion } from './migrations/index.js';
import { RoomsStore } from './rooms-store.js';
import type { Database } from './schema.js';
import { ServerKeysStore } from './server-keys-store.js';
import { AccountsStore } from './accounts-store.js';
import { MembershipsStore } from './memberships-store.js';
import { RoomAliasesStore } from './room-aliases-store.js';
import { TxnIdsStore } from './txn-ids-store.js';
import { RelationsStore } from './relations-store.js';
import { SearchStore } from './search-store.js';
import { ProfileStore } from './profile-store.js';
import { DirectoryStore } from './directory-store.js';
import { StateGroupStore, type StateGroupOptions } from './state-groups.js';
import type { Engine } from './transactions.js';
import { SyncFiltersStore } from './sync-filters-store.js';
import { withStatementCache } from './sqlite-statement-cache.js';
import { startCheckpointer, type Checkpointer } from './sqlite-checkpointer.js';
import { ReceiptsStore } from './receipts-store.js';
import { AccountDataStore } from './account-data-store.js';
import { PresenceStore } from './presence-store.js';
import { PushStore } from './push-store.js';
import { DeviceListsStore } from './device-lists-store.js';
import { E2eKeysStore } from './e2e-keys-store.js';
import { KeyBackupStore } from './key-backup-store.js';
import { ToDeviceStore } from './to-device-store.js';
import { DehydratedDevicesStore } from './dehydrated-devices-store.js';
import { SyncReadsStore } from './sync-reads.js';

/**
 * SQLite: open ONE `Storage` per database file per process. better-sqlite3 waits for another
 * connection's write lock synchronously, so two handles in one process would block each other's
 * event loop; several processes on one file are fine (each waits up to `busy_timeout`).
 */
export interface SqliteConfig {
  engine: 'sqlite';
  /** The database file (created with its directory if missing), or `:memory:`. */
  path: string;
  /**
   * `normal` (default): in WAL mode a commit is in the log before it returns, so it survives a
   * crash of the process (kill -9); only an OS crash or power loss can lose the last commits (the
   * database stays consistent). `full`: every commit is also fsynced, so it survives those too, at
   * about 1–2 ms per commit on a typical disk (docs/PERFORMANCE.md).
   */
  synchronous?: 'full' | 'normal';
}

export interface PostgresConfig {
  engine: 'postgres';
  /** `postgres://user:password@host:port/database`; the fields below override its parts. */
  connectionString?: string;
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  poolMin?: number;
  /** Default 10. */
  poolMax?: number;
}

export type DatabaseConfig = SqliteConfig | PostgresConfig;

export interface OpenOptions {
  /** Tuning of state-group storage (tests use a short delta chain). */
  stateGroups?: StateGroupOptions;
}

export interface Storage {
  readonly db: Kysely<Database>;
  readonly engine: Engine;
  /** The schema version after migrations (the newest this code knows). */
  readonly schemaVersion: number;
  readonly rooms: RoomsStore;
  readonly events: EventsStore;
  readonly stateGroups: StateGroupStore;
  readonly serverKeys: ServerKeysStore;
  readonly accounts: AccountsStore;
  readonly memberships: MembershipsStore;
  readonly aliases: RoomAliasesStore;
  readonly txnIds: TxnIdsStore;
  readonly relations: RelationsStore;
  readonly search: SearchStore;
  /** Extended profile fields (v1.16). */
  readonly profiles: ProfileStore;
  /** Cross-room reads of the user and room directories. */
  readonly directory: DirectoryStore;
  readonly filters: SyncFiltersStore;
  readonly receipts: ReceiptsStore;
  readonly accountData: AccountDataStore;
  readonly presence: PresenceStore;
  /** Push rules, pushers, push actions and unread notification counts. */
  readonly push: PushStore;
  /** End-to-end encryption: device, one-time, fallback and cross-signing keys, signatures. */
  readonly e2eKeys: E2eKeysStore;
  /** The device_lists stream. */
  readonly deviceLists: DeviceListsStore;
  readonly toDevice: ToDeviceStore;
  readonly keyBackup: KeyBackupStore;
  /** MSC3814 dehydrated devices. */
  readonly dehydratedDevices: DehydratedDevicesStore;
  /** Bulk reads of many rooms at once for an initial /sync. */
  readonly syncReads: SyncReadsStore;
  /** Closes the connection(s). Committed writes are already durable; this only releases resources. */
  close(): Promise<void>;
}

/** The schema version this code creates and understands. */
export const SCHEMA_VERSION = latestSchemaVersion(MIGRATIONS);

/**
 * Opens (creating if needed) and migrates the database. Throws `SchemaTooNewError` if a newer
 * Hearth has migrated it; the connection is closed again on any error.
 */
export async function openDatabase(
  config: DatabaseConfig,
  log: (msg: string) => void = () => {},
  options: OpenOptions = {},
): Promise<Storage> {
  const { db, checkpointer } =
    config.engine === 'sqlite' ? openSqlite(config) : { db: await openPostgres(config, log), checkpointer: undefined };
  try {
    const { from, to } = await migrate(db, config.engine, MIGRATIONS, log);
    if (from !== to) log(`database schema migrated from version ${from} to ${to}`);
    const stateGroups = new StateGroupStore(db, options.stateGroups);
    const accounts = new AccountsStore(db, config.engine);
    const e2eKeys = new E2eKeysStore(db, config.engine);
    const toDevice = new ToDeviceStore(db, config.engine);
    const dehydratedDevices = new DehydratedDevicesStore(db, config.engine, accounts);
    // A deleted device takes its keys and pending to-device messages with it.
    accounts.onDevicesRemoved(async (trx, userId, deviceIds) => {
      await e2eKeys.removeDevices(trx, userId, deviceIds);
      await toDevice.removeDevices(trx, userId, deviceIds);
      await dehydratedDevices.removeDevices(trx, userId, deviceIds);
    });
    let closed = false;
    return {
      db,
      engine: config.engine,
      schemaVersion: to,
      rooms: new RoomsStore(db),
      events: new EventsStore(db, config.engine, stateGroups),
      stateGroups,
      serverKeys: new ServerKeysStore(db, config.engine),
      accounts,
      memberships: new MembershipsStore(db),
      aliases: new RoomAliasesStore(db),
      txnIds: new TxnIdsStore(db),
      relations: new RelationsStore(db),
      search: new SearchStore(db, config.engine),
      profiles: new ProfileStore(db),
      directory: new DirectoryStore(db),
      filters: new SyncFiltersStore(db),
      receipts: new ReceiptsStore(db, config.engine),
      accountData: new AccountDataStore(db, config.engine),
      presence: new PresenceStore(db, config.engine),
      push: new PushStore(db, config.engine),
      e2eKeys,
      deviceLists: new DeviceListsStore(db),
      toDevice,
      keyBackup: new KeyBackupStore(db, config.engine),
      dehydratedDevices,
      syncReads: new SyncReadsStore(db),
      async close() {
        if (closed) return;
        closed = true;
        await db.destroy();
        await checkpointer?.stop();
      },
    };
  } catch (err) {
    await db.destroy().catch(() => {});
    await checkpointer?.stop();
    throw err;
  }
}

function openSqlite(config: SqliteConfig): { db: Kysely<Database>; checkpointer: Checkpointer | undefined } {
  const memory = config.path === ':memory:' || config.path === '';
  if (!memory) mkdirSync(dirname(config.path), { recursive: true });
  // `timeout` is SQLite's busy_timeout: how long to wait for another process's write lock.
  const sqlite = new SqliteDatabase(config.path, { timeout: 10_000 });
  try {
    if (!memory) {
      const mode = sqlite.pragma('journal_mode = WAL', { simple: true });
      if (String(mode).toLowerCase() !== 'wal') {
        throw new Error(`could not switch ${config.path} to WAL mode (journal_mode is ${String(mode)})`);
      }
    }
    sqlite.pragma(`synchronous = ${config.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    sqlite.pragma('foreign_keys = ON');
    // Statement journals (every multi-row INSERT … ON CONFLICT writes one) and temporary b-trees
    // in memory: on disk each was a file created, written and unlinked per statement, which was a
    // large share of the send path's system CPU (docs/PERFORMANCE.md).
    sqlite.pragma('temp_store = MEMORY');
    sqlite.pragma('cache_size = -65536');
  } catch (err) {
    sqlite.close();
    throw err;
  }
  const checkpointer = memory ? undefined : startCheckpointer(sqlite, config.path);
  return { db: new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) }), checkpointer };
}

async function openPostgres(config: PostgresConfig, log: (msg: string) => void): Promise<Kysely<Database>> {
  // Loaded only when configured: a SQLite server starts without it (startup time, memory).
  const { default: pg } = await import('pg');
  const poolConfig: pg.PoolConfig = {
    application_name: 'hearth',
    max: config.poolMax ?? 10,
    types: { getTypeParser: pgTypeParser(pg) },
  };
  if (config.connectionString !== undefined) {
    poolConfig.connectionString = withOverrides(config.connectionString, config);
  }
  if (config.host !== undefined) poolConfig.host = config.host;
  if (config.port !== undefined) poolConfig.port = config.port;
  if (config.user !== undefined) poolConfig.user = config.user;
  if (config.password !== undefined) poolConfig.password = config.password;
  if (config.database !== undefined) poolConfig.database = config.database;
  if (config.poolMin !== undefined) poolConfig.min = config.poolMin;
  const pool = new pg.Pool(poolConfig);
  // An idle connection dropped by the server must not crash the process; the pool replaces it.
  pool.on('error', (err) => log(`PostgreSQL connection error (the pool will reconnect): ${err.message}`));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/**
 * pg lets the parts of a connection string win over separate settings; we want the opposite (a
 * URL in the config file, a password from the environment), so the separate settings are written
 * into the URL.
 */
function withOverrides(connectionString: string, config: PostgresConfig): string {
  const { host, port, user, password, database } = config;
  if ([host, port, user, password, database].every((v) => v === undefined)) return connectionString;
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    throw new Error('database.connectionString must be a postgres:// URL when host/port/user/password/database are also set');
  }
  if (host !== undefined) url.hostname = host;
  if (port !== undefined) url.port = String(port);
  if (user !== undefined) url.username = user;
  if (password !== undefined) url.password = password;
  if (database !== undefined) url.pathname = `/${database}`;
  return url.toString();
}

/**
 * BIGINT (int8) as a JS number, so that both engines return the same types. Our int8 columns
 * (stream positions, timestamps, depths, group ids) stay far below 2^53; a larger value is a bug
 * and is refused rather than silently rounded.
 */
function parseInt8(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`BIGINT value ${value} does not fit a JS number`);
  return n;
}

const pgTypeParser = (pg: typeof import('pg').default) =>
  ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 && format !== 'binary'
      ? parseInt8
      : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser;
