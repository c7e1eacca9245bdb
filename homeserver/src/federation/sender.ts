/**
 * The outgoing half of federation (spec "Transactions"): per-destination queues that batch PDUs
 * and EDUs into `PUT /_matrix/federation/v1/send/{txnId}`.
 *
 * - A PDU made here is queued to every server with joined members in its room (current state),
 *   plus, for a kick, ban or rescinded invite, the target user's server; never to ourselves.
 * - PDUs and most EDUs are queued in the database (federation_outbox, migration 0012) before
 *   anything is sent, and deleted once a transaction carrying them got its 200: a restart, or a
 *   destination that was down, resumes from the oldest item, in order. Typing and presence go
 *   stale quickly, so they are only kept in memory and dropped when the destination is down.
 * - At most one transaction in flight per destination, ≤ 50 PDUs and ≤ 100 EDUs each.
 * - A failing destination backs off exponentially (config `federation.destination_*`), and is
 *   tried again at once when it is seen up (`markDestinationUp`, e.g. when it sends us a request).
 *   Destinations are independent: one that never answers delays nobody else.
 * - The `pdus` high-water mark (events stream position) catches up events persisted just before a
 *   crash but never queued.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { HearthConfig } from '../config/load.js';
import { parseDuration } from '../config/units.js';
import type { JsonObject, RoomEvent } from '../events/types.js';
import type { Storage } from '../storage/database.js';
import { federationQueuesOf, type FederationQueuesStore, type OutboxItem, type OutboxRow } from '../storage/federation-queues-store.js';
import type { Database } from '../storage/schema.js';
import { FederationRequestError, type Edu, type FederationClient, type OutgoingFederation } from './runtime.js';

export interface SenderDeps {
  config: HearthConfig;
  storage: Storage;
  client: FederationClient;
  log: Logger;
}

export const MAX_PDUS_PER_TXN = 50;
export const MAX_EDUS_PER_TXN = 100;
/** EDU types kept in memory only (stale after seconds). */
const EPHEMERAL_EDUS = new Set(['m.typing', 'm.presence']);
const MAX_EPHEMERAL_PER_DESTINATION = 200;
const PDU_MARK = 'pdus';
/**
 * Events of rooms without other servers advance the mark in memory; it is written with the next
 * queued PDU, at shutdown, or after this many events, which bounds the catch-up scan at start.
 */
const MARK_WRITE_EVERY = 200;
const SEND_TIMEOUT_MS = 60_000;

export interface RetryPolicy {
  minMs: number;
  multiplier: number;
  maxMs: number;
}

/** The retry settings of the config (Synapse's `federation.destination_*` names). */
export function retryPolicy(config: HearthConfig): RetryPolicy {
  const section = ((config as unknown as Record<string, unknown>).federation ?? {}) as Record<string, unknown>;
  const duration = (v: unknown, fallback: number) =>
    typeof v === 'number' || typeof v === 'string' ? (parseDuration(v) ?? fallback) : fallback;
  const multiplier = typeof section.destination_retry_multiplier === 'number' ? section.destination_retry_multiplier : 2;
  return {
    minMs: Math.max(1, duration(section.destination_min_retry_interval, 10_000)),
    multiplier: Math.max(1, multiplier),
    maxMs: Math.max(1, duration(section.destination_max_retry_interval, 3_600_000)),
  };
}

class Destination {
  busy = false;
  /** Something was queued while a drain ran: drain again after it. */
  again = false;
  backoffMs = 0;
  retryAt = 0;
  timer: NodeJS.Timeout | undefined;
  ephemeral: Edu[] = [];
  constructor(readonly name: string) {}
}

export class FederationSender implements OutgoingFederation {
  private readonly destinations = new Map<string, Destination>();
  private readonly store: FederationQueuesStore;
  private readonly serverName: string;
  private readonly retry: RetryPolicy;
  private readonly enabled: boolean;
  /** Queueing runs one item after another, so the outbox keeps the order of the calls. */
  private chain: Promise<void>;
  private readonly inFlight = new Set<Promise<void>>();
  private txnCounter = 0;
  private closed = false;
  /** The crash catch-up mark: in memory, and as last written. */
  private mark = 0;
  private markWritten = 0;
  private unwrittenEvents = 0;

  constructor(private readonly deps: SenderDeps) {
    this.store = federationQueuesOf(deps.storage);
    this.serverName = deps.config.server_name;
    this.retry = retryPolicy(deps.config);
    this.enabled = (deps.config as unknown as { send_federation?: boolean }).send_federation !== false;
    this.chain = this.enabled ? this.start() : Promise.resolve();
  }

  /** A PDU made on this server; `streamPosition` advances the crash catch-up mark. */
  sendPdu(event: RoomEvent, streamPosition?: number): void {
    if (!this.enabled || this.closed) return;
    this.queue(() => this.queuePdu(event, streamPosition));
  }

  sendEdu(destinations: Iterable<string>, edu: Edu): void {
    if (!this.enabled || this.closed) return;
    const targets = [...new Set(destinations)].filter((d) => d !== this.serverName);
    if (targets.length === 0) return;
    if (EPHEMERAL_EDUS.has(edu.edu_type)) {
      const now = Date.now();
      for (const name of targets) {
        const dest = this.destination(name);
        // A destination that is down would only get stale news later.
        if (dest.retryAt > now) continue;
        if (dest.ephemeral.length >= MAX_EPHEMERAL_PER_DESTINATION) dest.ephemeral.shift();
        dest.ephemeral.push(edu);
        this.wake(dest);
      }
      return;
    }
    this.queue(async () => {
      await this.store.enqueue(targets.map((destination) => ({ destination, kind: 'edu', value: edu as unknown as JsonObject })));
      for (const name of targets) this.wake(this.destination(name));
    });
  }

  /** The destination answered or contacted us: forget its backoff and send what waits for it. */
  markDestinationUp(server: string): void {
    const dest = this.destinations.get(server);
    if (!dest || dest.backoffMs === 0 || this.closed) return;
    dest.backoffMs = 0;
    dest.retryAt = 0;
    if (dest.timer) clearTimeout(dest.timer);
    dest.timer = undefined;
    this.wake(dest);
  }

  /** Resolves once everything queued so far is in the outbox (tests, shutdown). */
  async flushQueue(): Promise<void> {
    await this.chain;
  }

  /** Destinations currently backing off, with when they are tried next (status, tests). */
  backoffs(): Map<string, number> {
    const out = new Map<string, number>();
    for (const d of this.destinations.values()) if (d.backoffMs > 0) out.set(d.name, d.retryAt);
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Whatever is being queued reaches the outbox first, so nothing acknowledged is lost.
    await this.chain.catch(() => {});
    if (this.enabled && this.mark > this.markWritten) {
      await this.store.enqueue([], { name: PDU_MARK, position: this.mark }).catch(() => {});
    }
    this.closed = true;
    for (const dest of this.destinations.values()) if (dest.timer) clearTimeout(dest.timer);
    // Requests in flight are aborted by the client's close(); their results are ignored.
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, 100).unref())]);
  }

  // ------------------------------------------------------------------ queueing

  private queue(fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn).catch((err: unknown) => {
      if (!this.closed) this.deps.log.warn({ err }, 'could not queue for federation');
    });
  }

  /** Startup: queue local events the last run persisted but did not queue, then resume every queue. */
  private async start(): Promise<void> {
    try {
      await this.catchUpPdus();
      for (const name of await this.store.pendingDestinations()) this.wake(this.destination(name));
    } catch (err) {
      if (!this.closed) this.deps.log.warn({ err }, 'federation sender could not resume its queues');
    }
  }

  private async catchUpPdus(): Promise<void> {
    const stored = await this.store.position(PDU_MARK);
    const db = this.deps.storage.db as Kysely<Database>;
    if (stored === undefined) {
      // First start: history made before federation existed is not sent.
      const max = await this.deps.storage.events.getMaxStreamPosition();
      await this.store.enqueue([], { name: PDU_MARK, position: max });
      this.mark = this.markWritten = max;
      return;
    }
    this.mark = this.markWritten = stored;
    let after = stored;
    for (;;) {
      const rows = await db
        .selectFrom('events')
        .select(['event_id', 'stream_ordering'])
        .where('stream_ordering', '>', after)
        .where('sender', 'like', `%:${this.serverName}`)
        .where('outlier', '=', 0)
        .where('rejected_reason', 'is', null)
        .orderBy('stream_ordering')
        .limit(200)
        .execute();
      if (rows.length === 0) return;
      const events = await this.deps.storage.events.getEvents(rows.map((r) => r.event_id));
      for (const r of rows) {
        const event = events.get(r.event_id);
        if (event) await this.queuePdu(event, Number(r.stream_ordering));
      }
      after = Number(rows[rows.length - 1]!.stream_ordering);
    }
  }

  private async queuePdu(event: RoomEvent, streamPosition?: number): Promise<void> {
    const destinations = await this.pduDestinations(event);
    const items: OutboxItem[] = destinations.map((destination) => ({ destination, kind: 'pdu', value: event.event_id }));
    if (streamPosition !== undefined && streamPosition > this.mark) this.mark = streamPosition;
    this.unwrittenEvents++;
    const writeMark = this.mark > this.markWritten && (items.length > 0 || this.unwrittenEvents >= MARK_WRITE_EVERY);
    if (items.length === 0 && !writeMark) return;
    const position = this.mark;
    await this.store.enqueue(items, writeMark ? { name: PDU_MARK, position } : undefined);
    if (writeMark) {
      this.markWritten = position;
      this.unwrittenEvents = 0;
    }
    for (const name of destinations) this.wake(this.destination(name));
  }

  /**
   * Every server with joined members in the room; and for a kick, ban or rescinded invite, the
   * target's server, which may have nobody left in the room to hear of it. (An invite or knock
   * reaches a server outside the room through /invite and /send_knock only: the same event in a
   * transaction would arrive there without its auth events.)
   */
  private async pduDestinations(event: RoomEvent): Promise<string[]> {
    const servers = await serversInRoom(this.deps.storage, event.room_id);
    const membership = event.content.membership;
    if (event.type === 'm.room.member' && event.state_key !== undefined && (membership === 'leave' || membership === 'ban')) {
      const target = serverOfUser(event.state_key);
      if (target) servers.add(target);
    }
    servers.delete(this.serverName);
    return [...servers].sort();
  }

  // ------------------------------------------------------------------ sending

  private destination(name: string): Destination {
    let dest = this.destinations.get(name);
    if (!dest) this.destinations.set(name, (dest = new Destination(name)));
    return dest;
  }

  private wake(dest: Destination): void {
    if (this.closed || dest.retryAt > Date.now()) return;
    if (dest.busy) {
      dest.again = true;
      return;
    }
    dest.busy = true;
    dest.again = false;
    const run = this.drain(dest)
      .catch((err: unknown) => {
        if (!this.closed) this.deps.log.warn({ err, destination: dest.name }, 'federation queue failed');
      })
      .finally(() => {
        dest.busy = false;
        this.inFlight.delete(run);
        if (dest.again) this.wake(dest);
      });
    this.inFlight.add(run);
  }

  /** Sends transactions until the destination's queue is empty or a send fails. */
  private async drain(dest: Destination): Promise<void> {
    while (!this.closed) {
      const pdus = await this.store.peek(dest.name, 'pdu', MAX_PDUS_PER_TXN);
      const edus = await this.store.peek(dest.name, 'edu', MAX_EDUS_PER_TXN);
      const ephemeral = dest.ephemeral.splice(0, MAX_EDUS_PER_TXN - edus.length);
      if (pdus.length === 0 && edus.length === 0 && ephemeral.length === 0) return;
      const ok = await this.sendTransaction(dest, pdus, edus, ephemeral);
      if (this.closed) return;
      if (!ok) {
        this.backOff(dest);
        return;
      }
      dest.backoffMs = 0;
      dest.retryAt = 0;
      await this.store.remove([...pdus, ...edus].map((r) => r.id));
    }
  }

  /** True when the transaction was delivered (or refused for good: then it is dropped). */
  private async sendTransaction(dest: Destination, pdus: OutboxRow[], edus: OutboxRow[], ephemeral: Edu[]): Promise<boolean> {
    const events = await this.deps.storage.events.getEvents(pdus.map((r) => r.value as string));
    const body: JsonObject = {
      origin: this.serverName,
      origin_server_ts: Date.now(),
      pdus: pdus.flatMap((r) => {
        const event = events.get(r.value as string);
        return event ? [event.pdu] : [];
      }),
      edus: [...edus.map((r) => r.value as JsonObject), ...(ephemeral as unknown as JsonObject[])],
    };
    const txnId = `${Date.now()}_${++this.txnCounter}`;
    try {
      const answer = await this.deps.client.request<JsonObject>(dest.name, {
        method: 'PUT',
        path: `/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`,
        body,
        timeoutMs: SEND_TIMEOUT_MS,
      });
      logRejectedPdus(this.deps.log, dest.name, answer);
      return true;
    } catch (err) {
      if (this.closed) return false;
      if (err instanceof FederationRequestError && isPermanentRefusal(err)) {
        // A transaction the destination will never accept must not block its queue forever.
        this.deps.log.warn({ destination: dest.name, status: err.status, errcode: err.errcode }, 'federation transaction refused; dropped');
        return true;
      }
      this.deps.log.info({ destination: dest.name, err: (err as Error).message }, 'federation transaction failed; will retry');
      return false;
    }
  }

  private backOff(dest: Destination): void {
    const { minMs, multiplier, maxMs } = this.retry;
    dest.backoffMs = dest.backoffMs === 0 ? minMs : Math.min(maxMs, Math.round(dest.backoffMs * multiplier));
    dest.retryAt = Date.now() + dest.backoffMs;
    // Typing and presence would be stale by the next attempt.
    dest.ephemeral = [];
    if (dest.timer) clearTimeout(dest.timer);
    dest.timer = setTimeout(() => {
      dest.timer = undefined;
      dest.retryAt = 0;
      this.wake(dest);
    }, dest.backoffMs);
    dest.timer.unref();
  }
}

/** 400/404/413 mean "never": the same transaction would be refused again. */
function isPermanentRefusal(err: FederationRequestError): boolean {
  return err.status === 400 || err.status === 404 || err.status === 413;
}

function logRejectedPdus(log: Logger, destination: string, answer: JsonObject | undefined): void {
  const results = answer?.pdus;
  if (!results || typeof results !== 'object' || Array.isArray(results)) return;
  for (const [eventId, result] of Object.entries(results)) {
    if (result && typeof result === 'object' && !Array.isArray(result) && typeof result.error === 'string') {
      log.info({ destination, eventId, error: result.error }, 'remote server did not accept a PDU');
    }
  }
}

/** The server part of a user id (`@local:server`), or undefined when malformed. */
export function serverOfUser(userId: string): string | undefined {
  const colon = userId.indexOf(':');
  return colon > 0 && colon < userId.length - 1 ? userId.slice(colon + 1) : undefined;
}

/** The servers of the room's joined members (current state). */
export async function serversInRoom(storage: Storage, roomId: string): Promise<Set<string>> {
  const members = await storage.memberships.members(roomId, ['join']);
  const servers = new Set<string>();
  for (const m of members) {
    const server = serverOfUser(m.userId);
    if (server) servers.add(server);
  }
  return servers;
}

/** The servers of everyone sharing a joined room with the user. */
export async function serversSharingARoomWith(storage: Storage, userId: string): Promise<Set<string>> {
  const servers = new Set<string>();
  for (const { roomId } of await storage.memberships.roomsForUser(userId, ['join'])) {
    for (const s of await serversInRoom(storage, roomId)) servers.add(s);
  }
  return servers;
}
