/**
 * `database.args.synchronous`: SQLite's durability setting (docs/configuration.md), and what the
 * opened database really runs with.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { openDatabase } from '../../src/storage/index.js';

const parse = (args: string) =>
  parseConfig([{ file: '/etc/hearth/homeserver.yaml', text: `server_name: example.com\ndatabase: {name: sqlite3, args: ${args}}\n` }]);

describe('database.args.synchronous', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-sync-mode-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is passed to the storage layer when given, and left to its default otherwise', () => {
    expect(parse('{database: a.db, synchronous: full}').config.databaseSettings).toEqual({
      engine: 'sqlite',
      path: '/etc/hearth/a.db',
      synchronous: 'full',
    });
    expect(parse('{database: a.db, synchronous: normal}').config.databaseSettings).toMatchObject({ synchronous: 'normal' });
    expect(parse('{database: a.db}').config.databaseSettings).not.toHaveProperty('synchronous');
  });

  it('refuses anything but normal or full, naming the key', () => {
    expect(() => parse('{database: a.db, synchronous: off}')).toThrow(ConfigError);
    expect(() => parse('{database: a.db, synchronous: off}')).toThrow(/database\.args\.synchronous/);
  });

  it('opens SQLite with NORMAL by default and FULL when asked', async () => {
    const modes: Record<string, number> = {};
    for (const [name, synchronous] of [['default', undefined], ['full', 'full' as const]] as const) {
      const storage = await openDatabase({ engine: 'sqlite', path: join(dir, `${name}.db`), ...(synchronous ? { synchronous } : {}) });
      try {
        const row = await sql<{ synchronous: number }>`PRAGMA synchronous`.execute(storage.db);
        modes[name] = row.rows[0]!.synchronous;
      } finally {
        await storage.close();
      }
    }
    expect(modes).toEqual({ default: 1, full: 2 });
  });
});
