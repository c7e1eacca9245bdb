import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { openDatabase, SCHEMA_VERSION, SchemaTooNewError } from '../../src/storage/index.js';
import { describeEachEngine } from '../helpers/databases.js';
import { buildWriterChild, startWriter } from './child-harness.js';

const EXPECTED_TABLES = [
  'current_state',
  'event_auth',
  'event_edges',
  'event_forward_extremities',
  'event_to_state_group',
  'events',
  'rooms',
  'schema_version',
  'server_keys',
  'state_group_entries',
  'state_groups',
  'stream_positions',
];

describeEachEngine('migrations', (getStorage, ctx) => {
  it('apply on an empty database and record the schema version', async () => {
    const storage = getStorage();
    expect(storage.schemaVersion).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(1);
    const tables = (await storage.db.introspection.getTables()).map((t) => t.name).sort();
    expect(tables).toEqual(expect.arrayContaining(EXPECTED_TABLES));
    const versions = await storage.db.selectFrom('schema_version').select(['version', 'name']).orderBy('version').execute();
    expect(versions.map((v) => v.version)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    expect(versions[0]!.name).toBe('event_core');
    expect(await storage.events.getMaxStreamPosition()).toBe(0);
  });

  it('are idempotent: re-opening changes nothing and keeps the data', async () => {
    await getStorage().rooms.storeRoom({ roomId: '!keep:test.example', roomVersion: '10', creator: '@a:test.example' });
    const logs: string[] = [];
    await ctx.storage().close();
    const reopened = await openDatabase(ctx.config(), (m) => logs.push(m));
    try {
      expect(logs).toEqual([]); // nothing applied
      const rows = await reopened.db.selectFrom('schema_version').select('version').execute();
      expect(rows).toHaveLength(SCHEMA_VERSION);
      expect(await reopened.rooms.getRoom('!keep:test.example')).toEqual({
        roomId: '!keep:test.example',
        roomVersion: '10',
        creator: '@a:test.example',
        isPublic: null,
      });
    } finally {
      await reopened.close();
    }
    await ctx.reopen(); // leave an open storage for the suite
  });

  it('log what they apply on a fresh database', async () => {
    const config = await ctx.freshDatabase();
    const logs: string[] = [];
    const storage = await openDatabase(config, (m) => logs.push(m));
    await storage.close();
    expect(logs[0]).toMatch(/applying database migration 0001_event_core/);
  });

  it('survive several processes starting at once on an empty database', async () => {
    const config = await ctx.freshDatabase();
    const built = buildWriterChild();
    try {
      const writers = [1, 2, 3].map((i) => startWriter(built.script, config, `!multi${i}:test.example`, 5));
      const results = await Promise.all(writers.map((w) => w.exited));
      for (const r of results) expect(r, r.stderr).toMatchObject({ code: 0 });
      const storage = await openDatabase(config);
      try {
        const rows = await storage.db.selectFrom('schema_version').select('version').execute();
        expect(rows).toHaveLength(SCHEMA_VERSION);
        expect(await storage.events.getMaxStreamPosition()).toBe(3 * 6);
      } finally {
        await storage.close();
      }
    } finally {
      built.cleanup();
    }
  });

  it('refuse a database whose schema is newer than the code, naming both versions', async () => {
    const config = await ctx.freshDatabase();
    const storage = await openDatabase(config);
    const future = SCHEMA_VERSION + 5;
    await storage.db.insertInto('schema_version').values({ version: future, name: 'from_the_future', applied_at: Date.now() }).execute();
    await storage.close();

    const error = await openDatabase(config).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SchemaTooNewError);
    const tooNew = error as SchemaTooNewError;
    expect(tooNew.databaseVersion).toBe(future);
    expect(tooNew.codeVersion).toBe(SCHEMA_VERSION);
    expect(tooNew.message).toContain(`version ${future}`);
    expect(tooNew.message).toContain(`up to ${SCHEMA_VERSION}`);

    // Nothing was touched: the future version is still there.
    const again = await openDatabase(config).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(SchemaTooNewError);
  });

  it('open from the configuration forms operators use', async () => {
    if (ctx.engine === 'postgres') {
      const config = ctx.config();
      if (config.engine !== 'postgres') throw new Error('unreachable');
      const url = new URL(config.connectionString!);
      const password = decodeURIComponent(url.password);
      const database = url.pathname.slice(1);
      url.password = 'wrong';
      url.pathname = '/postgres';
      // The separate fields win over the parts of the URL.
      const storage = await openDatabase({ engine: 'postgres', connectionString: url.toString(), password, database, poolMax: 2 });
      expect(await storage.rooms.getRoom('!keep:test.example')).toBeDefined();
      await storage.close();
    } else {
      const memory = await openDatabase({ engine: 'sqlite', path: ':memory:' });
      expect(memory.schemaVersion).toBe(SCHEMA_VERSION);
      await memory.close();
      // A missing directory is created.
      const config = await ctx.freshDatabase();
      if (config.engine !== 'sqlite') throw new Error('unreachable');
      const nested = await openDatabase({ engine: 'sqlite', path: `${config.path}.d/data/hearth.db`, synchronous: 'full' });
      const sync = await sql<{ synchronous: number }>`PRAGMA synchronous`.execute(nested.db);
      expect(sync.rows[0]!.synchronous).toBe(2); // FULL
      await nested.close();
    }
  });

  it('leave foreign keys enforced', async () => {
    const storage = getStorage();
    await expect(
      storage.db
        .insertInto('current_state')
        .values({ room_id: '!nowhere:test.example', type: 't', state_key: '', event_id: '$none' })
        .execute(),
    ).rejects.toThrow();
    if (ctx.engine === 'sqlite') {
      const mode = await sql<{ journal_mode: string }>`PRAGMA journal_mode`.execute(storage.db);
      expect(mode.rows[0]!.journal_mode).toBe('wal');
      const sync = await sql<{ synchronous: number }>`PRAGMA synchronous`.execute(storage.db);
      expect(sync.rows[0]!.synchronous).toBe(1); // NORMAL, the default (WAL: survives kill -9)
    }
  });
});
