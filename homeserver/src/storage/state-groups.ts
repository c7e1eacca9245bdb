/**
 * State groups: immutable sets of room state, stored as a full snapshot or as a delta from another
 * group. A chain of deltas is at most `maxDeltaDepth` long; the next group after that is written as
 * a full snapshot, so reading any group touches at most `maxDeltaDepth + 1` groups (one recursive
 * query).
 *
 * Groups never change once committed and their ids are never reused, so the decoded state of a
 * group can be cached in memory, even with several processes on one database. The cache is only
 * filled from reads outside write transactions (which see committed data only): a group created
 * in a transaction that rolls back never gets into it.
 */
import { sql, type Kysely } from 'kysely';
import { parseStateKey, stateKey, type StateMap } from '../events/types.js';
import type { Database } from './schema.js';
import { arg, PreparedQuery, PreparedQueryFamily } from './prepared.js';

// Every accepted state event writes a delta group: these statements are compiled once (prepared.ts).
const DELTA_DEPTH = new PreparedQuery<[group: number], { delta_depth: number }>((db) =>
  db.selectFrom('state_groups').select('delta_depth').where('id', '=', arg(0)),
);
const INSERT_GROUP = new PreparedQuery<
  [roomId: string, eventId: string | null, prevGroup: number | null, deltaDepth: number],
  { id: number }
>((db) =>
  db
    .insertInto('state_groups')
    .values({ room_id: arg(0), event_id: arg(1), prev_group: arg(2), delta_depth: arg(3) })
    .returning('id'),
);
/** Entry rows per prepared statement (4 parameters each); bigger sets use INSERT_CHUNK unprepared. */
const PREPARED_ENTRIES = 8;
const INSERT_ENTRIES = new PreparedQueryFamily<unknown[]>((db, rows) =>
  db
    .insertInto('state_group_entries')
    .values(
      Array.from({ length: rows }, (_, i) => ({
        state_group: arg(i * 4),
        type: arg(i * 4 + 1),
        state_key: arg(i * 4 + 2),
        event_id: arg(i * 4 + 3),
      })),
    ),
);

/** A change of state: state key → new event id, or null when the key is removed. */
export type StateDelta = Map<string, string | null>;

export interface StateGroupOptions {
  /** Longest chain of deltas before a full snapshot is written (default 50). */
  maxDeltaDepth?: number;
  /** How many decoded groups to keep in memory (default 2,048). */
  cacheSize?: number;
  /** How many state entries, over all cached groups, to keep in memory (default 200,000). */
  cacheEntries?: number;
}

export const DEFAULT_MAX_DELTA_DEPTH = 50;

/** Rows per INSERT: far below SQLite's (32766) and PostgreSQL's (65535) bound-parameter limits. */
const INSERT_CHUNK = 500;

export class StateGroupStore {
  readonly maxDeltaDepth: number;
  private readonly cacheSize: number;
  private readonly cacheEntries: number;
  private readonly cache = new Map<number, ReadonlyMap<string, string>>();
  /** Entries over all cached groups: the bound that matters for memory (a group can hold thousands). */
  private cachedEntries = 0;

  constructor(
    private readonly db: Kysely<Database>,
    options: StateGroupOptions = {},
  ) {
    this.maxDeltaDepth = Math.max(0, options.maxDeltaDepth ?? DEFAULT_MAX_DELTA_DEPTH);
    // An initial /sync reads the state of every room of the user: a few hundred groups, one each.
    this.cacheSize = Math.max(0, options.cacheSize ?? 2_048);
    // About 100 bytes each: ≈ 20 MB at most.
    this.cacheEntries = Math.max(0, options.cacheEntries ?? 200_000);
  }

  /** The full state of a group (a fresh Map the caller may modify). */
  async getState(group: number): Promise<StateMap> {
    return new Map(await this.load(this.db, group));
  }

  /**
   * The decoded state of `group`, read through `executor` (pass the transaction when inside one).
   * The returned Map may be shared with the cache: do not modify it. Inside a write transaction,
   * pass `committed` only for groups read from rows that existed before the transaction began.
   */
  async load(
    executor: Kysely<Database>,
    group: number,
    /** True when `group` is known to be committed (then the result may be cached). */
    committed = executor === this.db,
  ): Promise<ReadonlyMap<string, string>> {
    const cached = this.cached(group);
    if (cached) return cached;
    const result = await sql<{ n: number; type: string; state_key: string; event_id: string | null }>`
      WITH RECURSIVE chain(id, prev_group, n) AS (
        SELECT id, prev_group, 0 FROM state_groups WHERE id = ${group}
        UNION ALL
        SELECT g.id, g.prev_group, chain.n + 1 FROM state_groups g JOIN chain ON g.id = chain.prev_group
      )
      SELECT chain.n AS n, e.type AS type, e.state_key AS state_key, e.event_id AS event_id
      FROM chain JOIN state_group_entries e ON e.state_group = chain.id
      ORDER BY chain.n DESC`.execute(executor);
    const state: StateMap = new Map();
    for (const row of result.rows) {
      const key = stateKey(row.type, row.state_key);
      if (row.event_id === null) state.delete(key);
      else state.set(key, row.event_id);
    }
    if (result.rows.length === 0) {
      // An empty group is legitimate (the state before a create event); a missing one is not.
      const exists = await executor.selectFrom('state_groups').select('id').where('id', '=', group).executeTakeFirst();
      if (!exists) throw new Error(`state group ${group} does not exist`);
    }
    if (committed) this.rememberCommitted(group, state);
    return state;
  }

  /** The cached state of `group`, if any (shared with the cache: do not modify it). */
  cached(group: number): ReadonlyMap<string, string> | undefined {
    const state = this.cache.get(group);
    if (state) {
      this.cache.delete(group); // LRU: move to the end
      this.cache.set(group, state);
    }
    return state;
  }

  /**
   * Keeps the decoded state of a committed group that was read elsewhere (the bulk reads of an
   * initial /sync). Groups never change once written, so an entry is never stale. The caller must
   * not modify `state` afterwards.
   */
  rememberCommitted(group: number, state: ReadonlyMap<string, string>): void {
    if (this.cacheSize === 0 || state.size > this.cacheEntries) return;
    const old = this.cache.get(group);
    if (old) {
      this.cache.delete(group);
      this.cachedEntries -= old.size;
    }
    this.cache.set(group, state);
    this.cachedEntries += state.size;
    while (this.cache.size > this.cacheSize || this.cachedEntries > this.cacheEntries) {
      const [oldest, evicted] = this.cache.entries().next().value!;
      this.cache.delete(oldest);
      this.cachedEntries -= evicted.size;
    }
  }

  /**
   * Writes a new group: `delta` applied to `base`, or the full state `delta` when `base` is null.
   * Written as a delta unless the chain below `base` is already `maxDeltaDepth` long, then as a
   * snapshot. Returns `base` itself when `delta` is empty.
   */
  async create(
    trx: Kysely<Database>,
    roomId: string,
    eventId: string | null,
    base: number | null,
    delta: StateDelta,
  ): Promise<number> {
    if (base !== null) {
      if (delta.size === 0) return base;
      const row = await DELTA_DEPTH.first(trx, base);
      if (!row) throw new Error(`state group ${base} does not exist`);
      if (row.delta_depth + 1 <= this.maxDeltaDepth) {
        const id = await this.insertGroup(trx, roomId, eventId, base, row.delta_depth + 1);
        await this.insertEntries(trx, id, delta);
        return id;
      }
      const full: StateMap = new Map(await this.load(trx, base, false));
      applyDelta(full, delta);
      return this.createSnapshot(trx, roomId, eventId, full);
    }
    const full: StateMap = new Map();
    applyDelta(full, delta);
    return this.createSnapshot(trx, roomId, eventId, full);
  }

  /**
   * Stores `state` as a group, as a delta from whichever `candidates` group is closest to it
   * (reusing that group when equal). Returns the group and the delta from the chosen base.
   */
  async createFromState(
    trx: Kysely<Database>,
    roomId: string,
    eventId: string | null,
    state: ReadonlyMap<string, string>,
    /** Groups to consider as the base; they must have been committed before `trx` began. */
    candidates: Iterable<number>,
  ): Promise<{ group: number; base: number | null; delta: StateDelta }> {
    let best: { base: number; delta: StateDelta } | undefined;
    for (const candidate of new Set(candidates)) {
      const delta = diffStates(await this.load(trx, candidate, true), state);
      if (!best || delta.size < best.delta.size) best = { base: candidate, delta };
      if (delta.size === 0) break;
    }
    if (best && best.delta.size === 0) return { group: best.base, base: best.base, delta: best.delta };
    if (best && best.delta.size < state.size) {
      return { group: await this.create(trx, roomId, eventId, best.base, best.delta), ...best };
    }
    const full: StateDelta = new Map(state);
    return { group: await this.createSnapshot(trx, roomId, eventId, state), base: null, delta: full };
  }

  private async createSnapshot(
    trx: Kysely<Database>,
    roomId: string,
    eventId: string | null,
    state: ReadonlyMap<string, string>,
  ): Promise<number> {
    const id = await this.insertGroup(trx, roomId, eventId, null, 0);
    await this.insertEntries(trx, id, state);
    return id;
  }

  private async insertGroup(
    trx: Kysely<Database>,
    roomId: string,
    eventId: string | null,
    prevGroup: number | null,
    deltaDepth: number,
  ): Promise<number> {
    const row = await INSERT_GROUP.first(trx, roomId, eventId, prevGroup, deltaDepth);
    if (!row) throw new Error('inserting a state group returned no id');
    return Number(row.id);
  }

  private async insertEntries(
    trx: Kysely<Database>,
    group: number,
    entries: ReadonlyMap<string, string | null>,
  ): Promise<void> {
    if (entries.size > 0 && entries.size <= PREPARED_ENTRIES) {
      const args = [...entries].flatMap(([key, eventId]) => [group, ...parseStateKey(key), eventId]);
      await INSERT_ENTRIES.of(entries.size).execute(trx, ...args);
      return;
    }
    const rows = [...entries].map(([key, eventId]) => {
      const [type, state_key] = parseStateKey(key);
      return { state_group: group, type, state_key, event_id: eventId };
    });
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      await trx.insertInto('state_group_entries').values(rows.slice(i, i + INSERT_CHUNK)).execute();
    }
  }
}

/** What to change in `from` to get `to`. */
export function diffStates(from: ReadonlyMap<string, string>, to: ReadonlyMap<string, string>): StateDelta {
  const delta: StateDelta = new Map();
  for (const [key, value] of to) {
    if (from.get(key) !== value) delta.set(key, value);
  }
  for (const key of from.keys()) {
    if (!to.has(key)) delta.set(key, null);
  }
  return delta;
}

export function applyDelta(state: StateMap, delta: ReadonlyMap<string, string | null>): void {
  for (const [key, value] of delta) {
    if (value === null) state.delete(key);
    else state.set(key, value);
  }
}
