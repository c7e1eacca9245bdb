/**
 * Push notifications storage: each user's push rules (their own ones, and their changes to the
 * server-default rules), pushers, the push actions of events that notified a user, unread
 * notification counts per (user, room, thread), and how far each user has read.
 *
 * Unread counts are counters: the persist hook adds to them in the event's transaction, a read
 * receipt (`markRead`) recounts the affected threads from the stored push actions past the new
 * read position. On PostgreSQL the recount locks the counters first, so a notification committed
 * meanwhile is either counted by the recount or added after it, never lost.
 *
 * A user's rules are cached in memory (per process) and dropped on every change made through this
 * store.
 */
import type { Kysely, Selectable } from 'kysely';
import type { JsonObject } from '../events/types.js';
import type { PushCondition } from '../push/conditions.js';
import type { PushAction, RuleKind } from '../push/rules.js';
import { arg, argList, PreparedQuery, PreparedQueryFamily, rowsForList } from './prepared.js';
import type { Database, EventPushSummaryTable } from './schema.js';
import { writeTransaction, type Engine } from './transactions.js';

/** A user-defined rule as stored. */
export interface StoredUserRule {
  kind: RuleKind;
  ruleId: string;
  /** Higher is more important (within the kind). */
  priority: number;
  conditions: PushCondition[] | null;
  pattern: string | null;
  actions: PushAction[];
  enabled: boolean;
}

/** A user's change to a server-default rule; absent fields keep the default. */
export interface DefaultRuleSetting {
  enabled?: boolean;
  actions?: PushAction[];
}

/** Everything stored about one user's push rules. Treat as immutable: it is shared via the cache. */
export interface UserPushRules {
  /** Sorted by priority, most important first (all kinds mixed). */
  rules: readonly StoredUserRule[];
  defaults: ReadonlyMap<string, DefaultRuleSetting>;
}

export interface NewUserRule {
  kind: RuleKind;
  ruleId: string;
  conditions: PushCondition[] | null;
  pattern: string | null;
  actions: PushAction[];
}

/** `before`/`after` named a rule that does not exist or cannot be used as an anchor. */
export class PushRuleOrderError extends Error {
  override name = 'PushRuleOrderError';
}

export interface Pusher {
  userId: string;
  appId: string;
  pushkey: string;
  kind: string;
  appDisplayName: string;
  deviceDisplayName: string;
  profileTag: string | null;
  lang: string;
  data: JsonObject;
  deviceId: string | null;
}

export interface PushActionRecord {
  userId: string;
  roomId: string;
  eventId: string;
  streamPosition: number;
  /** `main` or the thread root's event id. */
  threadId: string;
  actions: PushAction[];
  highlight: boolean;
  ts: number;
}

export interface NotificationRecord extends PushActionRecord {
  /** The user has read up to (or past) this event. */
  read: boolean;
}

export interface NotificationCounts {
  notification_count: number;
  highlight_count: number;
}

/**
 * A user's unread counts in one room: the main timeline (events not in a thread, thread roots
 * included), each thread by its root event id, and the sum of all of them (what a client that
 * does not ask for thread counts is shown).
 */
export interface UnreadCounts extends NotificationCounts {
  threads: Record<string, NotificationCounts>;
  total: NotificationCounts;
}

/** The thread id of the main timeline. */
export const MAIN_THREAD = 'main';
/** The read position key of unthreaded receipts. */
const UNTHREADED = '';

const CACHE_LIMIT = 10_000;
const ID_CHUNK = 500;
/** Push action rows per statement (8 parameters each). */
const RECORD_CHUNK = 100;

// The statements of the persist path, compiled once (prepared.ts).
const INSERT_ACTIONS = new PreparedQueryFamily<unknown[]>((db, rows) =>
  db
    .insertInto('event_push_actions')
    .values(
      Array.from({ length: rows }, (_, i) => ({
        user_id: arg(i * 8),
        room_id: arg(i * 8 + 1),
        event_id: arg(i * 8 + 2),
        stream_ordering: arg(i * 8 + 3),
        thread_id: arg(i * 8 + 4),
        actions: arg(i * 8 + 5),
        highlight: arg(i * 8 + 6),
        ts: arg(i * 8 + 7),
      })),
    )
    .onConflict((oc) => oc.columns(['user_id', 'event_id']).doNothing()),
);
/** One row per (user, room, thread) of one event: each counter gains 1 and the event's highlight. */
const ADD_TO_COUNTERS = new PreparedQueryFamily<unknown[]>((db, rows) =>
  db
    .insertInto('event_push_summary')
    .values(
      Array.from({ length: rows }, (_, i) => ({
        user_id: arg(i * 4),
        room_id: arg(i * 4 + 1),
        thread_id: arg(i * 4 + 2),
        notification_count: 1,
        highlight_count: arg(i * 4 + 3),
      })),
    )
    .onConflict((oc) =>
      oc.columns(['user_id', 'room_id', 'thread_id']).doUpdateSet((eb) => ({
        notification_count: eb(eb.ref('event_push_summary.notification_count'), '+', eb.ref('excluded.notification_count')),
        highlight_count: eb(eb.ref('event_push_summary.highlight_count'), '+', eb.ref('excluded.highlight_count')),
      })),
    ),
);
const SET_READ_POSITION = new PreparedQuery<[userId: string, roomId: string, threadId: string, position: number]>((db) =>
  db
    .insertInto('push_read_positions')
    .values({ user_id: arg(0), room_id: arg(1), thread_id: arg(2), stream_ordering: arg(3) })
    .onConflict((oc) =>
      oc
        .columns(['user_id', 'room_id', 'thread_id'])
        .doUpdateSet((eb) => ({ stream_ordering: eb.ref('excluded.stream_ordering') }))
        .whereRef('push_read_positions.stream_ordering', '<', 'excluded.stream_ordering'),
    ),
);
const DELETE_COUNTER = new PreparedQuery<[userId: string, roomId: string, threadId: string]>((db) =>
  db.deleteFrom('event_push_summary').where('user_id', '=', arg(0)).where('room_id', '=', arg(1)).where('thread_id', '=', arg(2)),
);
const countersOfRoom = (db: Kysely<Database>) =>
  db.selectFrom('event_push_summary').select('thread_id').where('user_id', '=', arg(0)).where('room_id', '=', arg(1)).orderBy('thread_id');
const countersOfThread = (db: Kysely<Database>) => countersOfRoom(db).where('thread_id', '=', arg(2));
const COUNTERS_OF_ROOM = new PreparedQuery<[userId: string, roomId: string], { thread_id: string }>(countersOfRoom);
const COUNTERS_OF_ROOM_LOCKED = new PreparedQuery<[userId: string, roomId: string], { thread_id: string }>((db) =>
  countersOfRoom(db).forUpdate(),
);
const COUNTERS_OF_THREAD = new PreparedQuery<[userId: string, roomId: string, threadId: string], { thread_id: string }>(
  countersOfThread,
);
const COUNTERS_OF_THREAD_LOCKED = new PreparedQuery<[userId: string, roomId: string, threadId: string], { thread_id: string }>(
  (db) => countersOfThread(db).forUpdate(),
);

/** A user's counters in a list of rooms (compiled once per list length: every /sync reads them). */
const COUNTERS_IN_ROOMS = new PreparedQueryFamily<unknown[], Selectable<EventPushSummaryTable>>((db, n) =>
  db.selectFrom('event_push_summary').selectAll().where('user_id', '=', arg(0)).where('room_id', 'in', argList(1, n)),
);

export class PushStore {
  private readonly cache = new Map<string, UserPushRules>();
  private readonly generations = new Map<string, number>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly engine: Engine,
  ) {}

  // ---------------------------------------------------------------- rules

  /** One user's rules (cached). */
  async userRules(userId: string): Promise<UserPushRules> {
    return (await this.rulesFor(this.db, [userId])).get(userId)!;
  }

  /**
   * The rules of several users (an entry for every one, empty when they have none), from the cache
   * or loaded with `exec` (pass the transaction when inside one).
   */
  async rulesFor(exec: Kysely<Database>, userIds: readonly string[]): Promise<Map<string, UserPushRules>> {
    const out = new Map<string, UserPushRules>();
    const missing: string[] = [];
    for (const userId of new Set(userIds)) {
      const cached = this.cache.get(userId);
      if (cached) out.set(userId, cached);
      else missing.push(userId);
    }
    if (missing.length === 0) return out;
    const generations = new Map(missing.map((u) => [u, this.generations.get(u) ?? 0]));
    const loaded = new Map<string, { rules: StoredUserRule[]; defaults: Map<string, DefaultRuleSetting> }>();
    for (const u of missing) loaded.set(u, { rules: [], defaults: new Map() });
    for (let i = 0; i < missing.length; i += ID_CHUNK) {
      const chunk = missing.slice(i, i + ID_CHUNK);
      const rules = await exec.selectFrom('push_rules').selectAll().where('user_id', 'in', chunk).execute();
      for (const r of rules) {
        loaded.get(r.user_id)!.rules.push({
          kind: r.kind as RuleKind,
          ruleId: r.rule_id,
          priority: Number(r.priority),
          conditions: r.conditions === null ? null : (JSON.parse(r.conditions) as PushCondition[]),
          pattern: r.pattern,
          actions: JSON.parse(r.actions) as PushAction[],
          enabled: r.enabled !== 0,
        });
      }
      const defaults = await exec.selectFrom('push_rule_defaults').selectAll().where('user_id', 'in', chunk).execute();
      for (const d of defaults) {
        const setting: DefaultRuleSetting = {};
        if (d.enabled !== null) setting.enabled = d.enabled !== 0;
        if (d.actions !== null) setting.actions = JSON.parse(d.actions) as PushAction[];
        loaded.get(d.user_id)!.defaults.set(d.rule_id, setting);
      }
    }
    for (const [userId, data] of loaded) {
      data.rules.sort((a, b) => b.priority - a.priority);
      out.set(userId, data);
      // A change made while we were loading must not be hidden behind a stale cache entry.
      if ((this.generations.get(userId) ?? 0) === generations.get(userId)) this.remember(userId, data);
    }
    return out;
  }

  /**
   * Adds or replaces a user-defined rule. A new rule without `before`/`after` becomes the most
   * important of its kind; an existing one keeps its place (and its `enabled`) unless moved.
   * Throws PushRuleOrderError when the anchor is unknown, server-default or the rule itself.
   */
  async putRule(userId: string, rule: NewUserRule, position: { before?: string; after?: string } = {}): Promise<void> {
    await writeTransaction(this.db, this.engine, async (trx) => {
      const rows = await trx
        .selectFrom('push_rules')
        .select(['rule_id', 'priority'])
        .where('user_id', '=', userId)
        .where('kind', '=', rule.kind)
        .orderBy('priority', 'desc')
        .execute();
      const exists = rows.some((r) => r.rule_id === rule.ruleId);
      let order = rows.map((r) => r.rule_id);
      const anchor = position.before ?? position.after;
      if (anchor !== undefined) {
        if (anchor.startsWith('.')) throw new PushRuleOrderError(`a rule cannot be placed relative to the server-default rule ${anchor}`);
        if (anchor === rule.ruleId) throw new PushRuleOrderError('a rule cannot be placed relative to itself');
        if (!order.includes(anchor)) throw new PushRuleOrderError(`before/after rule not found: ${anchor}`);
        order = order.filter((id) => id !== rule.ruleId);
        const at = order.indexOf(anchor) + (position.before !== undefined ? 0 : 1);
        order.splice(at, 0, rule.ruleId);
      } else if (!exists) {
        order.unshift(rule.ruleId);
      }
      const priorities = new Map(order.map((id, i) => [id, order.length - i]));
      const values = {
        conditions: rule.conditions === null ? null : JSON.stringify(rule.conditions),
        pattern: rule.pattern,
        actions: JSON.stringify(rule.actions),
        priority: priorities.get(rule.ruleId)!,
      };
      if (exists) {
        await trx
          .updateTable('push_rules')
          .set(values)
          .where('user_id', '=', userId)
          .where('kind', '=', rule.kind)
          .where('rule_id', '=', rule.ruleId)
          .execute();
      } else {
        await trx
          .insertInto('push_rules')
          .values({ user_id: userId, kind: rule.kind, rule_id: rule.ruleId, enabled: 1, ...values })
          .execute();
      }
      for (const row of rows) {
        const priority = priorities.get(row.rule_id)!;
        if (row.rule_id === rule.ruleId || Number(row.priority) === priority) continue;
        await trx
          .updateTable('push_rules')
          .set({ priority })
          .where('user_id', '=', userId)
          .where('kind', '=', rule.kind)
          .where('rule_id', '=', row.rule_id)
          .execute();
      }
    });
    this.invalidate(userId);
  }

  /** Deletes a user-defined rule; false when there was none. */
  async deleteRule(userId: string, kind: RuleKind, ruleId: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('push_rules')
      .where('user_id', '=', userId)
      .where('kind', '=', kind)
      .where('rule_id', '=', ruleId)
      .executeTakeFirst();
    this.invalidate(userId);
    return Number(result.numDeletedRows) > 0;
  }

  /** Changes `enabled` and/or `actions` of a user-defined rule; false when there is none. */
  async updateUserRule(
    userId: string,
    kind: RuleKind,
    ruleId: string,
    change: { enabled?: boolean; actions?: PushAction[] },
  ): Promise<boolean> {
    const set: { enabled?: number; actions?: string } = {};
    if (change.enabled !== undefined) set.enabled = change.enabled ? 1 : 0;
    if (change.actions !== undefined) set.actions = JSON.stringify(change.actions);
    if (Object.keys(set).length === 0) return true;
    const result = await this.db
      .updateTable('push_rules')
      .set(set)
      .where('user_id', '=', userId)
      .where('kind', '=', kind)
      .where('rule_id', '=', ruleId)
      .executeTakeFirst();
    this.invalidate(userId);
    return Number(result.numUpdatedRows) > 0;
  }

  /** Records the user's `enabled` and/or `actions` for a server-default rule. */
  async updateDefaultRule(userId: string, ruleId: string, change: { enabled?: boolean; actions?: PushAction[] }): Promise<void> {
    const set: { enabled?: number; actions?: string } = {};
    if (change.enabled !== undefined) set.enabled = change.enabled ? 1 : 0;
    if (change.actions !== undefined) set.actions = JSON.stringify(change.actions);
    if (Object.keys(set).length === 0) return;
    await this.db
      .insertInto('push_rule_defaults')
      .values({ user_id: userId, rule_id: ruleId, enabled: set.enabled ?? null, actions: set.actions ?? null })
      .onConflict((oc) => oc.columns(['user_id', 'rule_id']).doUpdateSet(set))
      .execute();
    this.invalidate(userId);
  }

  /** Forgets the cached rules of a user (every change through this store does it). */
  invalidate(userId: string): void {
    this.generations.set(userId, (this.generations.get(userId) ?? 0) + 1);
    this.cache.delete(userId);
  }

  private remember(userId: string, data: UserPushRules): void {
    if (this.cache.size >= CACHE_LIMIT) {
      // Drop the oldest entry (Map keeps insertion order).
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(userId, data);
  }

  // ---------------------------------------------------------------- pushers

  /**
   * Adds or updates the pusher (user, app_id, pushkey). Unless `append`, the same app_id and
   * pushkey are removed from every other user (the device now belongs to this one).
   */
  async setPusher(pusher: Pusher, append: boolean): Promise<void> {
    await writeTransaction(this.db, this.engine, async (trx) => {
      if (!append) {
        await trx
          .deleteFrom('pushers')
          .where('app_id', '=', pusher.appId)
          .where('pushkey', '=', pusher.pushkey)
          .where('user_id', '!=', pusher.userId)
          .execute();
      }
      const values = {
        kind: pusher.kind,
        app_display_name: pusher.appDisplayName,
        device_display_name: pusher.deviceDisplayName,
        profile_tag: pusher.profileTag,
        lang: pusher.lang,
        data: JSON.stringify(pusher.data),
        device_id: pusher.deviceId,
      };
      await trx
        .insertInto('pushers')
        .values({ user_id: pusher.userId, app_id: pusher.appId, pushkey: pusher.pushkey, created_ts: Date.now(), ...values })
        .onConflict((oc) => oc.columns(['user_id', 'app_id', 'pushkey']).doUpdateSet(values))
        .execute();
    });
  }

  async deletePusher(userId: string, appId: string, pushkey: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('pushers')
      .where('user_id', '=', userId)
      .where('app_id', '=', appId)
      .where('pushkey', '=', pushkey)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** Removes the pushers a device set (for logout and device deletion). */
  async deletePushersForDevice(userId: string, deviceId: string): Promise<number> {
    const result = await this.db
      .deleteFrom('pushers')
      .where('user_id', '=', userId)
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async pushers(userId: string): Promise<Pusher[]> {
    const rows = await this.db
      .selectFrom('pushers')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_ts')
      .orderBy('app_id')
      .orderBy('pushkey')
      .execute();
    return rows.map((r) => ({
      userId: r.user_id,
      appId: r.app_id,
      pushkey: r.pushkey,
      kind: r.kind,
      appDisplayName: r.app_display_name,
      deviceDisplayName: r.device_display_name,
      profileTag: r.profile_tag,
      lang: r.lang,
      data: JSON.parse(r.data) as JsonObject,
      deviceId: r.device_id,
    }));
  }

  // ---------------------------------------------------------------- push actions and counts

  /**
   * Inside the event's persist transaction: stores the notifications and adds them to the counts.
   * The records are of one event (one row per user), so each chunk is two statements whatever the
   * room's size: one multi-row insert of the actions, one multi-row upsert of the counters.
   */
  async recordActions(trx: Kysely<Database>, records: readonly PushActionRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i += RECORD_CHUNK) {
      const chunk = records.slice(i, i + RECORD_CHUNK);
      const actions: unknown[] = [];
      const counters: unknown[] = [];
      for (const r of chunk) {
        const highlight = r.highlight ? 1 : 0;
        actions.push(r.userId, r.roomId, r.eventId, r.streamPosition, r.threadId, JSON.stringify(r.actions), highlight, r.ts);
        counters.push(r.userId, r.roomId, r.threadId, highlight);
      }
      await INSERT_ACTIONS.of(chunk.length).execute(trx, ...actions);
      await ADD_TO_COUNTERS.of(chunk.length).execute(trx, ...counters);
    }
  }

  /**
   * The user has read the room up to the event at `streamPosition` (a read receipt, `m.read` or
   * `m.read.private`): clears the notifications up to and including it. `threadId`: undefined or
   * '' for an unthreaded receipt (the whole room, every thread), `main` for the main timeline, or a
   * thread root's event id. A position behind an earlier one changes nothing.
   */
  async markRead(userId: string, roomId: string, streamPosition: number, threadId?: string): Promise<void> {
    await writeTransaction(this.db, this.engine, (trx) => this.markReadIn(trx, userId, roomId, streamPosition, threadId));
  }

  /** `markRead` inside a transaction the caller holds. */
  async markReadIn(trx: Kysely<Database>, userId: string, roomId: string, streamPosition: number, threadId?: string): Promise<void> {
    const key = threadId ?? UNTHREADED;
    await SET_READ_POSITION.execute(trx, userId, roomId, key, streamPosition);
    await this.recount(trx, userId, roomId, key === UNTHREADED ? undefined : [key]);
  }

  /**
   * `markReadIn` for the event being persisted in `trx` (a user's own message reads the room or
   * thread up to it): it has the newest stream position, so nothing in the thread is left unread
   * and its counter goes without a recount. Two statements instead of up to five.
   */
  async markReadAtNewestIn(trx: Kysely<Database>, userId: string, roomId: string, streamPosition: number, threadId: string): Promise<void> {
    await SET_READ_POSITION.execute(trx, userId, roomId, threadId, streamPosition);
    await DELETE_COUNTER.execute(trx, userId, roomId, threadId);
  }

  /**
   * Inside a redaction's persist transaction: the redacted event no longer counts as a
   * notification for anyone.
   */
  async forgetEvent(trx: Kysely<Database>, eventId: string): Promise<void> {
    const rows = await trx
      .selectFrom('event_push_actions')
      .select(['user_id', 'room_id', 'thread_id'])
      .where('event_id', '=', eventId)
      .execute();
    if (rows.length === 0) return;
    await trx.deleteFrom('event_push_actions').where('event_id', '=', eventId).execute();
    for (const r of rows) await this.recount(trx, r.user_id, r.room_id, [r.thread_id]);
  }

  /**
   * Recounts the existing counters of (user, room) — only the given threads, or all — from the
   * push actions past the read position of each thread. Counters that reach zero are removed.
   */
  private async recount(trx: Kysely<Database>, userId: string, roomId: string, threads: string[] | undefined): Promise<void> {
    // Lock the counters: a concurrent notification waits, then adds to the recounted value.
    const locked = this.engine === 'postgres';
    const existing = (
      threads?.length === 1
        ? await (locked ? COUNTERS_OF_THREAD_LOCKED : COUNTERS_OF_THREAD).rows(trx, userId, roomId, threads[0]!)
        : await (locked ? COUNTERS_OF_ROOM_LOCKED : COUNTERS_OF_ROOM).rows(trx, userId, roomId)
    )
      .map((r) => r.thread_id)
      .filter((t) => !threads || threads.includes(t));
    if (existing.length === 0) return;
    const positions = await this.readPositions(trx, userId, [roomId]);
    for (const thread of existing) {
      const readUpTo = readPositionOf(positions.get(roomId), thread);
      const counts = await trx
        .selectFrom('event_push_actions')
        .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number | null>('highlight').as('h')])
        .where('user_id', '=', userId)
        .where('room_id', '=', roomId)
        .where('thread_id', '=', thread)
        .where('stream_ordering', '>', readUpTo)
        .executeTakeFirst();
      const n = Number(counts?.n ?? 0);
      const h = Number(counts?.h ?? 0);
      if (n === 0) {
        await trx
          .deleteFrom('event_push_summary')
          .where('user_id', '=', userId)
          .where('room_id', '=', roomId)
          .where('thread_id', '=', thread)
          .execute();
      } else {
        await trx
          .updateTable('event_push_summary')
          .set({ notification_count: n, highlight_count: h })
          .where('user_id', '=', userId)
          .where('room_id', '=', roomId)
          .where('thread_id', '=', thread)
          .execute();
      }
    }
  }

  /** The user's unread notification counts in one room. */
  async unreadCounts(userId: string, roomId: string): Promise<UnreadCounts> {
    return (await this.unreadCountsForRooms(userId, [roomId])).get(roomId)!;
  }

  /** The user's unread counts in each of the rooms (an entry for every room, zeros included). */
  async unreadCountsForRooms(userId: string, roomIds: readonly string[]): Promise<Map<string, UnreadCounts>> {
    const out = new Map<string, UnreadCounts>();
    for (const roomId of roomIds) {
      out.set(roomId, {
        notification_count: 0,
        highlight_count: 0,
        threads: {},
        total: { notification_count: 0, highlight_count: 0 },
      });
    }
    for (const r of await rowsForList(this.db, COUNTERS_IN_ROOMS, [userId], [...new Set(roomIds)])) {
      const counts = out.get(r.room_id)!;
      const n = Number(r.notification_count);
      const h = Number(r.highlight_count);
      if (r.thread_id === MAIN_THREAD) {
        counts.notification_count = n;
        counts.highlight_count = h;
      } else {
        counts.threads[r.thread_id] = { notification_count: n, highlight_count: h };
      }
      counts.total.notification_count += n;
      counts.total.highlight_count += h;
    }
    return out;
  }

  /**
   * The user's notifications, newest first: those before `before` (a stream position, exclusive),
   * at most `limit`, optionally only highlights.
   */
  async notifications(
    userId: string,
    opts: { before?: number; limit: number; onlyHighlight?: boolean },
  ): Promise<NotificationRecord[]> {
    let query = this.db.selectFrom('event_push_actions').selectAll().where('user_id', '=', userId);
    if (opts.before !== undefined) query = query.where('stream_ordering', '<', opts.before);
    if (opts.onlyHighlight) query = query.where('highlight', '=', 1);
    const rows = await query.orderBy('stream_ordering', 'desc').limit(opts.limit).execute();
    const positions = await this.readPositions(this.db, userId, [...new Set(rows.map((r) => r.room_id))]);
    return rows.map((r) => {
      const streamPosition = Number(r.stream_ordering);
      return {
        userId: r.user_id,
        roomId: r.room_id,
        eventId: r.event_id,
        streamPosition,
        threadId: r.thread_id,
        actions: JSON.parse(r.actions) as PushAction[],
        highlight: r.highlight !== 0,
        ts: Number(r.ts),
        read: streamPosition <= readPositionOf(positions.get(r.room_id), r.thread_id),
      };
    });
  }

  /** Read positions per room: thread ('' unthreaded, `main`, root id) → stream position. */
  private async readPositions(
    exec: Kysely<Database>,
    userId: string,
    roomIds: readonly string[],
  ): Promise<Map<string, Map<string, number>>> {
    const out = new Map<string, Map<string, number>>();
    for (let i = 0; i < roomIds.length; i += ID_CHUNK) {
      const rows = await exec
        .selectFrom('push_read_positions')
        .selectAll()
        .where('user_id', '=', userId)
        .where('room_id', 'in', roomIds.slice(i, i + ID_CHUNK))
        .execute();
      for (const r of rows) {
        let room = out.get(r.room_id);
        if (!room) out.set(r.room_id, (room = new Map()));
        room.set(r.thread_id, Number(r.stream_ordering));
      }
    }
    return out;
  }
}

/** How far a thread is read: the later of the unthreaded receipt and the thread's own. */
function readPositionOf(positions: Map<string, number> | undefined, thread: string): number {
  if (!positions) return 0;
  return Math.max(positions.get(UNTHREADED) ?? 0, positions.get(thread) ?? 0);
}
