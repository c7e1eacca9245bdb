/**
 * The receiving half of the room event pipeline: a PDU another server sent (in a transaction, or
 * fetched as a missing, auth, state or backfilled event) goes through the checks of the spec's
 * "Checks performed on receipt of a PDU", in order:
 *
 *   1. valid format for the room version          → dropped (not stored)
 *   2. signatures of the servers that must sign    → dropped
 *   3. content hash                                → redacted: only the redacted form is kept
 *   4. auth against its own auth_events            → rejected (stored, flagged)
 *   5. auth against the state before the event     → rejected
 *   6. auth against the room's current state       → soft-failed (stored, hidden, not built on)
 *
 * Missing pieces are fetched from the sending server, bounded: auth events (/event_auth, /event),
 * prev events (/get_missing_events once, then /state_ids at each prev event still missing and
 * /event or /state for the state events not held), and forks are resolved with the room version's
 * state resolution. Fetched auth and state events are stored as outliers after their own checks.
 *
 * The pipeline (pipeline.ts) calls `receive` under the same per-room lock as `send`.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { computeEventId } from '../events/event-id.js';
import type { JsonObject, Pdu, RoomEvent, StateMap } from '../events/types.js';
import { stateKey as keyOf } from '../events/types.js';
import { checkIncomingPduDetailed, PduCheckError } from '../federation/event-checks.js';
import { FederationRequestError, type FederationClient, type Keyring } from '../federation/runtime.js';
import type { Storage } from '../storage/database.js';
import type { Database } from '../storage/schema.js';
import type { Notifier } from '../sync/notifier.js';
import {
  AuthError,
  authEventTypes,
  checkAuthEventsList,
  checkAuthRules,
  createEventIdForRoom,
  shouldApplyRedaction,
  type AuthStateLookup,
} from './auth.js';
import { domainOf } from './power-levels.js';
import type { RoomVersion } from './room-versions.js';
import { resolveState, type EventSource } from './state-res.js';

export interface ReceiveOptions {
  /** The server the PDU came from (transaction origin, or the server it was fetched from). */
  origin: string;
  roomVersion: RoomVersion;
  /** Store without state (auth and state events of a join, fetched auth events). */
  outlier?: boolean;
  /** The state before the event, when the caller knows it (send_join, /state_ids). */
  stateBefore?: StateMap;
  /** Older history fetched with /backfill: sorts before everything held, never "new" for /sync. */
  backfilled?: boolean;
  /** The stream position for a backfilled event (EventsStore.allocateBackfillPositions). */
  backfillPosition?: number;
  /**
   * The event was fetched (missing, auth, state events), not pushed in a transaction: its sender
   * need not be on `origin`. (Neither need it for outliers, backfilled events, or events given
   * with their `stateBefore`, e.g. a join made through another server.)
   */
  fetched?: boolean;
}

export type ReceiveOutcome = 'accepted' | 'soft_failed' | 'rejected' | 'duplicate';

export interface ReceiveResult {
  eventId: string;
  outcome: ReceiveOutcome;
  reason?: string;
}

/** The work function the persist hooks are (see pipeline.ts PersistHook). */
type Hook = (trx: Kysely<Database>, event: RoomEvent, streamPosition: number) => Promise<void>;

export interface ReceiverDeps {
  storage: Storage;
  notifier: Notifier;
  log: Logger;
  /** The federation runtime's client and keyring, once attached (pipeline.useFederation). */
  federation: () => { client: FederationClient; keyring: Keyring } | undefined;
  persistHooks: readonly Hook[];
}

/** The most events one received PDU may make us fetch (auth, missing and state events together). */
const FETCH_BUDGET = 500;
/** The most events one received PDU may make us process (checked, authorised), fetched or not. */
const PROCESS_BUDGET = 10_000;
/** Wall-clock bound on one top-level receive (it holds the room's lock all along). */
const RECEIVE_DEADLINE_MS = 120_000;
/** Timeout of each fetch from the sending server (the client's default is far longer). */
const FETCH_TIMEOUT_MS = 15_000;
/** A /state_ids answer listing more ids than this (pdu_ids + auth_chain_ids) is not followed. */
const MAX_STATE_IDS = 10_000;
/** How many missing prev events /get_missing_events asks for. */
const MISSING_EVENTS_LIMIT = 20;
/** Above this many unknown state events, one /state request instead of one /event each. */
const STATE_FETCH_THRESHOLD = 20;
/** Concurrent /event requests. */
const FETCH_CONCURRENCY = 5;
const FED = '/_matrix/federation/v1';

/** A problem that stops processing without storing the event (it may be offered again later). */
class NotProcessable extends Error {
  override name = 'NotProcessable';
}

/** Counts `events` against the processing budget; past it, or past the deadline, nothing more is done. */
function spend(work: Work, events: number): void {
  if ((work.processBudget -= events) < 0) throw new NotProcessable('too many events to process for one event');
  if (Date.now() > work.deadline) throw new NotProcessable('gave up: receiving this event took too long');
}

/** Per top-level PDU: the fetch budget, events seen in this walk, and PDUs fetched in bulk. */
interface Work {
  budget: number;
  /** Events that may still be processed (PROCESS_BUDGET), and the time (ms) to give up at. */
  processBudget: number;
  deadline: number;
  visiting: Set<string>;
  /** PDUs from /event_auth or /state responses, by event id, to use before asking again. */
  pool: Map<string, Pdu>;
  /** /get_missing_events is tried once per top-level PDU. */
  missingEventsTried: boolean;
}

export class EventReceiver {
  constructor(private readonly deps: ReceiverDeps) {}

  /** Receives one PDU. The caller holds the room's lock. */
  async receive(pdu: JsonObject, opts: ReceiveOptions): Promise<ReceiveResult> {
    const work: Work = {
      budget: FETCH_BUDGET,
      processBudget: PROCESS_BUDGET,
      deadline: Date.now() + RECEIVE_DEADLINE_MS,
      visiting: new Set(),
      pool: new Map(),
      missingEventsTried: false,
    };
    return this.receiveOne(pdu, opts, work);
  }

  /**
   * Receives a batch of events as outliers (the state and auth chain of a send_join answer): each
   * is checked and stored, its auth events taken from the batch before anything is fetched.
   * Results in the order given. The caller holds the room's lock.
   */
  async receiveOutliers(pdus: readonly JsonObject[], opts: Pick<ReceiveOptions, 'origin' | 'roomVersion'>): Promise<ReceiveResult[]> {
    // The batch itself is bounded by the answer it came in; only what it makes us fetch is budgeted.
    const work: Work = {
      budget: FETCH_BUDGET,
      processBudget: pdus.length + PROCESS_BUDGET,
      deadline: Infinity,
      visiting: new Set(),
      pool: new Map(),
      missingEventsTried: true,
    };
    this.addToPool(work, pdus, opts.roomVersion);
    const results: ReceiveResult[] = [];
    // The create event first: the room must exist before its other events can be stored.
    const createFirst = [...pdus].sort((a, b) => Number(b.type === 'm.room.create') - Number(a.type === 'm.room.create'));
    const byInput = new Map<JsonObject, ReceiveResult>();
    for (const pdu of createFirst) byInput.set(pdu, await this.receiveOne(pdu, { ...opts, outlier: true, fetched: true }, work));
    for (const pdu of pdus) results.push(byInput.get(pdu)!);
    return results;
  }

  private async receiveOne(pdu: JsonObject, opts: ReceiveOptions, work: Work): Promise<ReceiveResult> {
    const { storage, log } = this.deps;
    const version = opts.roomVersion;
    // `unsigned` is the sender's (or anyone's on the way): none of it is trusted or kept.
    const { unsigned: _unsigned, ...wire } = pdu;

    // Steps 1–3: format, signatures, hash.
    let event: RoomEvent;
    try {
      event = (await checkIncomingPduDetailed({ keyring: this.keyring() }, wire, version)).event;
    } catch (err) {
      if (!(err instanceof PduCheckError)) throw err;
      return { eventId: err.eventId ?? safeEventId(wire, version), outcome: 'rejected', reason: err.message };
    }
    // Events in a transaction come from their sender's server, except a user's own membership
    // change made through a resident server (send_join/leave/knock), which that server relays.
    const pushed = !opts.fetched && !opts.outlier && !opts.backfilled && !opts.stateBefore;
    const relayedMembership = event.type === 'm.room.member' && event.state_key === event.sender;
    if (pushed && !relayedMembership && domainOf(event.sender) !== opts.origin) {
      return { eventId: event.event_id, outcome: 'rejected', reason: `sender ${event.sender} is not on ${opts.origin}` };
    }

    const info = await storage.events.getEventInfo(event.event_id);
    if (info && (!info.outlier || opts.outlier || info.rejectedReason !== null)) {
      return { eventId: event.event_id, outcome: 'duplicate', ...(info.rejectedReason ? { reason: info.rejectedReason } : {}) };
    }
    if (event.type !== 'm.room.create' && !(await storage.rooms.getRoom(event.room_id))) {
      return { eventId: event.event_id, outcome: 'rejected', reason: `unknown room ${event.room_id}` };
    }
    if (work.visiting.has(event.event_id)) {
      return { eventId: event.event_id, outcome: 'rejected', reason: 'event depends on itself' };
    }
    work.visiting.add(event.event_id);

    try {
      spend(work, 1);
      return await this.authoriseAndPersist(event, opts, work);
    } catch (err) {
      if (err instanceof NotProcessable || err instanceof FederationRequestError) {
        log.info({ eventId: event.event_id, err: err.message }, 'received event not processed');
        return { eventId: event.event_id, outcome: 'rejected', reason: err.message };
      }
      throw err;
    } finally {
      work.visiting.delete(event.event_id);
    }
  }

  private async authoriseAndPersist(event: RoomEvent, opts: ReceiveOptions, work: Work): Promise<ReceiveResult> {
    const version = opts.roomVersion;
    const authEvents = await this.ensureAuthEvents(event, opts, work);
    const rejectedIds = await this.deps.storage.events.getRejectedIds(authEvents.keys());

    // Step 4: the event's own auth events.
    let rejectedReason = authAgainstAuthEvents(event, authEvents, rejectedIds, version);
    if (opts.outlier) return this.persist(event, opts, { outlier: true, rejectedReason });

    // Step 5: the state before the event (state given by the caller is fetched where not held).
    if (opts.stateBefore) await this.ensureHeld([...opts.stateBefore.values()], event.room_id, opts, work);
    const stateBefore = opts.stateBefore ?? (await this.stateBefore(event, opts, work));
    const stateLookup = await this.lookupFor(event, stateBefore, version);
    rejectedReason ??= authReason(() => checkAuthRules(event, stateLookup, version));
    if (rejectedReason !== undefined) return this.persist(event, opts, { stateBefore, rejectedReason });

    // Step 6: the current state (not for history: backfilled events are judged at their own state).
    const current = opts.backfilled ? undefined : await this.currentStateFor(event, stateBefore, version);
    if (current) {
      const currentLookup = await this.lookupFor(event, current, version);
      const softFail = authReason(() => checkAuthRules(event, currentLookup, version));
      if (softFail !== undefined) {
        this.deps.log.info({ eventId: event.event_id, reason: softFail }, 'soft-failed received event');
        return this.persist(event, opts, { stateBefore, softFailed: softFail });
      }
    }
    return this.persist(event, opts, { stateBefore, lookup: stateLookup });
  }

  // ------------------------------------------------------------------ persisting

  private async persist(
    event: RoomEvent,
    opts: ReceiveOptions,
    how: { outlier?: boolean; stateBefore?: StateMap; rejectedReason?: string; softFailed?: string; lookup?: AuthStateLookup },
  ): Promise<ReceiveResult> {
    const { storage, notifier } = this.deps;
    const version = opts.roomVersion;
    const accepted = how.rejectedReason === undefined && how.softFailed === undefined;
    const backfilled = opts.backfilled === true && !how.outlier;
    const resolvedCurrentState =
      accepted && !how.outlier && !backfilled && how.stateBefore
        ? await this.resolvedCurrentStateAfter(event, how.stateBefore, version)
        : undefined;
    const backfillPosition = backfilled
      ? (opts.backfillPosition ?? (await storage.events.allocateBackfillPositions(1))[0]!)
      : undefined;

    const result = await storage.events.persistEvent(event, {
      ...(how.outlier ? { outlier: true } : {}),
      ...(how.stateBefore && !how.outlier ? { stateBefore: how.stateBefore } : {}),
      ...(resolvedCurrentState ? { resolvedCurrentState } : {}),
      ...(how.rejectedReason !== undefined ? { rejectedReason: how.rejectedReason } : {}),
      ...(how.softFailed !== undefined ? { softFailed: true } : {}),
      ...(backfillPosition !== undefined ? { backfillPosition } : {}),
      withinTransaction: async (trx, persisted) => {
        if (!accepted || how.outlier || backfilled) return;
        await recordMembershipChanges(storage, trx, event, persisted.currentStateDelta, persisted.streamPosition);
        for (const hook of this.deps.persistHooks) await hook(trx, event, persisted.streamPosition);
      },
    });

    const outcome: ReceiveOutcome = result.alreadyStored
      ? 'duplicate'
      : how.rejectedReason !== undefined
        ? 'rejected'
        : how.softFailed !== undefined
          ? 'soft_failed'
          : 'accepted';
    if (outcome === 'accepted' && !how.outlier) {
      if (event.redacts && how.lookup) {
        const target = await storage.events.getEvent(event.redacts);
        if (target && shouldApplyRedaction(event, target, how.lookup, version)) {
          await storage.events.markRedacted(event.redacts, event.event_id);
        }
      }
      await this.applyEarlierRedactions(event, version);
      if (!backfilled) {
        const userIds = event.type === 'm.room.member' && event.state_key !== undefined ? [event.state_key] : [];
        notifier.notify({ roomId: event.room_id, userIds });
      }
    }
    const reason = how.rejectedReason ?? how.softFailed;
    return { eventId: event.event_id, outcome, ...(reason !== undefined ? { reason } : {}) };
  }

  /** Redactions of this event that arrived before it (accepted ones) apply now. */
  private async applyEarlierRedactions(event: RoomEvent, version: RoomVersion): Promise<void> {
    const { storage } = this.deps;
    const rows = await storage.db
      .selectFrom('events')
      .select('event_id')
      .where('redacts', '=', event.event_id)
      .where('room_id', '=', event.room_id)
      .where('outlier', '=', 0)
      .where('soft_failed', '=', 0)
      .where('rejected_reason', 'is', null)
      .execute();
    for (const { event_id } of rows) {
      const redaction = await storage.events.getEvent(event_id);
      const state = await storage.events.getStateAtEvent(event_id, 'before');
      if (!redaction || !state) continue;
      const lookup = await this.lookupFor(redaction, state, version);
      if (shouldApplyRedaction(redaction, event, lookup, version)) {
        await storage.events.markRedacted(event.event_id, event_id);
        return;
      }
    }
  }

  /**
   * The room's current state once this event joins the forward extremities, resolved over every
   * extremity it does not replace; undefined when it is (or will be) the only one, or when it fills
   * a gap below an event already held (current state does not change then).
   */
  private async resolvedCurrentStateAfter(
    event: RoomEvent,
    stateBefore: StateMap,
    version: RoomVersion,
  ): Promise<StateMap | undefined> {
    const { storage } = this.deps;
    const child = await storage.db
      .selectFrom('event_edges')
      .select('event_id')
      .where('prev_event_id', '=', event.event_id)
      .limit(1)
      .executeTakeFirst();
    if (child) return undefined;
    const others = (await storage.events.getForwardExtremities(event.room_id)).filter(
      (id) => !event.prev_events.includes(id) && id !== event.event_id,
    );
    if (others.length === 0) return undefined;
    const after = new Map(stateBefore);
    if (event.state_key !== undefined) after.set(keyOf(event.type, event.state_key), event.event_id);
    const sets: StateMap[] = [after];
    for (const id of others) {
      const state = await storage.events.getStateAtEvent(id, 'after');
      if (state) sets.push(state);
    }
    return resolveState(version, sets, this.eventSource([event]));
  }

  // ------------------------------------------------------------------ auth events

  /**
   * The event's auth events (and in v12 the room's create event), fetched and stored as outliers
   * when not held. Throws NotProcessable when some cannot be had.
   */
  private async ensureAuthEvents(event: RoomEvent, opts: ReceiveOptions, work: Work): Promise<Map<string, RoomEvent>> {
    const { storage } = this.deps;
    const ids = [...event.auth_events];
    if (opts.roomVersion.eventFormat === 'v12' && event.type !== 'm.room.create') ids.push(createEventIdForRoom(event.room_id));
    const held = await storage.events.getEvents(ids);
    const missing = ids.filter((id) => !held.has(id));
    if (missing.length === 0) return held;

    if (!missing.every((id) => work.pool.has(id))) await this.fetchAuthChain(event, opts, work);
    for (const id of missing) {
      const got = await this.fetchAsOutlier(id, event.room_id, opts, work);
      if (got) held.set(id, got);
    }
    // Not having them says nothing against the event: it is not processed now (nor stored), and
    // may be offered again later.
    const unavailable = ids.filter((id) => !held.has(id));
    if (unavailable.length > 0) throw new NotProcessable(`auth events not available: ${unavailable.join(', ')}`);
    return held;
  }

  /** GET /event_auth: the event's whole auth chain, into the pool (failures only logged). */
  private async fetchAuthChain(event: RoomEvent, opts: ReceiveOptions, work: Work): Promise<void> {
    try {
      const res = await this.client().request<JsonObject>(opts.origin, {
        method: 'GET',
        path: `${FED}/event_auth/${encodeURIComponent(event.room_id)}/${encodeURIComponent(event.event_id)}`,
        timeoutMs: FETCH_TIMEOUT_MS,
      });
      this.addToPool(work, res.auth_chain, opts.roomVersion);
    } catch (err) {
      this.deps.log.info({ eventId: event.event_id, err: (err as Error).message }, '/event_auth failed');
    }
  }

  /**
   * An event this server does not hold, fetched (from the pool or with /event), checked and
   * stored as an outlier. Undefined when it cannot be had or is not the event asked for.
   */
  private async fetchAsOutlier(
    eventId: string,
    roomId: string,
    opts: ReceiveOptions,
    work: Work,
  ): Promise<RoomEvent | undefined> {
    const { storage } = this.deps;
    const held = await storage.events.getEvent(eventId);
    if (held) return held;
    let pdu = work.pool.get(eventId);
    if (!pdu) {
      if (--work.budget < 0) throw new NotProcessable('too many events to fetch for one event');
      pdu = await this.fetchEvent(opts.origin, eventId);
      if (!pdu) return undefined;
    }
    const result = await this.receiveOne(
      pdu,
      { origin: opts.origin, roomVersion: opts.roomVersion, outlier: true, fetched: true },
      work,
    );
    if (result.eventId !== eventId) return undefined;
    const stored = await storage.events.getEvent(eventId);
    return stored && stored.room_id === roomId ? stored : undefined;
  }

  /** Makes sure the events are stored: those that are not are fetched and stored as outliers. */
  private async ensureHeld(ids: string[], roomId: string, opts: ReceiveOptions, work: Work): Promise<void> {
    const held = await this.deps.storage.events.hasEvents(ids);
    for (const id of ids) if (!held.has(id)) await this.fetchAsOutlier(id, roomId, opts, work);
  }

  /** GET /event/{eventId}: the PDU, or undefined when the server does not give it. */
  private async fetchEvent(origin: string, eventId: string): Promise<Pdu | undefined> {
    try {
      const res = await this.client().request<JsonObject>(origin, {
        method: 'GET',
        path: `${FED}/event/${encodeURIComponent(eventId)}`,
        timeoutMs: FETCH_TIMEOUT_MS,
      });
      const pdus = res.pdus;
      const first = Array.isArray(pdus) ? pdus[0] : undefined;
      return isObject(first) ? first : undefined;
    } catch (err) {
      this.deps.log.info({ eventId, origin, err: (err as Error).message }, '/event failed');
      return undefined;
    }
  }

  private addToPool(work: Work, pdus: unknown, version: RoomVersion): void {
    if (!Array.isArray(pdus)) return;
    for (const pdu of pdus) {
      if (!isObject(pdu)) continue;
      const id = safeEventId(pdu, version);
      if (id) work.pool.set(id, pdu);
    }
  }

  // ------------------------------------------------------------------ the state before an event

  /**
   * The state before the event: the state after its prev events, resolved when they differ.
   * Prev events not held are first asked for with /get_missing_events (once per received PDU,
   * not for backfill); for those still missing, the remote's state at them (/state_ids) is used.
   */
  private async stateBefore(event: RoomEvent, opts: ReceiveOptions, work: Work): Promise<StateMap> {
    const { storage } = this.deps;
    if (event.prev_events.length === 0) return new Map();
    let withState = await storage.events.getStateGroupsAfter(event.prev_events);
    if (withState.size < new Set(event.prev_events).size && !opts.backfilled && !work.missingEventsTried) {
      work.missingEventsTried = true;
      await this.fetchMissingPrevEvents(event, opts, work);
      withState = await storage.events.getStateGroupsAfter(event.prev_events);
    }
    const sets: StateMap[] = [];
    for (const prev of new Set(event.prev_events)) {
      const state = withState.has(prev)
        ? await storage.events.getStateAtEvent(prev, 'after')
        : await this.remoteStateAfter(event.room_id, prev, opts, work);
      if (state) sets.push(state);
    }
    if (sets.length === 0) throw new NotProcessable(`the state before ${event.event_id} cannot be determined`);
    return resolveState(opts.roomVersion, sets, this.eventSource());
  }

  /**
   * POST /get_missing_events between the room's forward extremities and the event; the events
   * returned are received (oldest first) as ordinary, fetched events.
   */
  private async fetchMissingPrevEvents(event: RoomEvent, opts: ReceiveOptions, work: Work): Promise<void> {
    const { storage, log } = this.deps;
    const earliest = await storage.events.getForwardExtremities(event.room_id);
    let pdus: Pdu[];
    try {
      const res = await this.client().request<JsonObject>(opts.origin, {
        method: 'POST',
        path: `${FED}/get_missing_events/${encodeURIComponent(event.room_id)}`,
        body: { earliest_events: earliest, latest_events: [event.event_id], limit: MISSING_EVENTS_LIMIT, min_depth: 0 },
        timeoutMs: FETCH_TIMEOUT_MS,
      });
      pdus = Array.isArray(res.events) ? res.events.filter(isObject) : [];
    } catch (err) {
      log.info({ eventId: event.event_id, err: (err as Error).message }, '/get_missing_events failed');
      return;
    }
    pdus.sort((a, b) => depthOf(a) - depthOf(b));
    for (const pdu of pdus.slice(0, MISSING_EVENTS_LIMIT)) {
      if (pdu.room_id !== event.room_id) continue;
      const result = await this.receiveOne(pdu, { origin: opts.origin, roomVersion: opts.roomVersion, fetched: true }, work);
      log.debug({ eventId: result.eventId, outcome: result.outcome }, 'missing prev event received');
    }
  }

  /**
   * The state after a prev event this server does not hold with state: the remote's state
   * before it (/state_ids), with the prev event itself applied. The state events not held are
   * fetched and stored as outliers. Undefined when the remote does not answer.
   */
  private async remoteStateAfter(
    roomId: string,
    prevId: string,
    opts: ReceiveOptions,
    work: Work,
  ): Promise<StateMap | undefined> {
    const { storage, log } = this.deps;
    let pduIds: string[];
    let authChainIds: string[];
    try {
      const res = await this.client().request<JsonObject>(opts.origin, {
        method: 'GET',
        path: `${FED}/state_ids/${encodeURIComponent(roomId)}`,
        query: { event_id: prevId },
        timeoutMs: FETCH_TIMEOUT_MS,
      });
      pduIds = stringsOf(res.pdu_ids);
      authChainIds = stringsOf(res.auth_chain_ids);
    } catch (err) {
      log.info({ prevId, err: (err as Error).message }, '/state_ids failed');
      return undefined;
    }
    if (pduIds.length + authChainIds.length > MAX_STATE_IDS) {
      throw new NotProcessable(`the state at ${prevId} lists more than ${MAX_STATE_IDS} events`);
    }
    const wanted = [...new Set([...pduIds, prevId])];
    const all = [...new Set([...authChainIds, ...wanted])];
    const held = await storage.events.hasEvents(all);
    const missing = all.filter((id) => !held.has(id));
    if (missing.length > STATE_FETCH_THRESHOLD) await this.fetchStateInBulk(roomId, prevId, opts, work);
    // Fetch in parallel into the pool, then check and store one by one: each event's auth events
    // (from the pool) before it.
    const toFetch = missing.filter((id) => !work.pool.has(id));
    if ((work.budget -= toFetch.length) < 0) throw new NotProcessable('too many events to fetch for one event');
    await forEachLimited(toFetch, FETCH_CONCURRENCY, async (id) => {
      spend(work, 0);
      const pdu = await this.fetchEvent(opts.origin, id);
      if (pdu) work.pool.set(id, pdu);
    });
    for (const id of missing) await this.fetchAsOutlier(id, roomId, opts, work);
    const events = await storage.events.getEvents(wanted);
    const rejected = await storage.events.getRejectedIds(wanted);
    // A listed state event we could not get (e.g. a ban left out of reach) would leave the state
    // partial: give up rather than authorise against it. Rejected ones are not state.
    const unavailable = pduIds.filter((id) => !events.has(id));
    if (unavailable.length > 0) throw new NotProcessable(`state events at ${prevId} not available: ${unavailable.slice(0, 5).join(', ')}`);
    const state: StateMap = new Map();
    for (const id of pduIds) {
      const e = events.get(id);
      if (e && e.state_key !== undefined && e.room_id === roomId && !rejected.has(id)) state.set(keyOf(e.type, e.state_key), id);
    }
    const prev = events.get(prevId);
    if (prev && prev.state_key !== undefined && !rejected.has(prevId)) state.set(keyOf(prev.type, prev.state_key), prevId);
    return state;
  }

  /** GET /state: the state and auth chain at an event, into the pool. */
  private async fetchStateInBulk(roomId: string, eventId: string, opts: ReceiveOptions, work: Work): Promise<void> {
    try {
      const res = await this.client().request<JsonObject>(opts.origin, {
        method: 'GET',
        path: `${FED}/state/${encodeURIComponent(roomId)}`,
        query: { event_id: eventId },
        timeoutMs: 2 * FETCH_TIMEOUT_MS,
      });
      this.addToPool(work, res.pdus, opts.roomVersion);
      this.addToPool(work, res.auth_chain, opts.roomVersion);
    } catch (err) {
      this.deps.log.info({ eventId, err: (err as Error).message }, '/state failed');
    }
  }

  // ------------------------------------------------------------------ lookups

  /** The auth-relevant part of `state` for this event, as the auth rules read it. */
  private async lookupFor(event: RoomEvent, state: StateMap, version: RoomVersion): Promise<AuthStateLookup> {
    const keys = authEventTypes(event, version).map(([t, sk]) => keyOf(t, sk));
    keys.push(keyOf('m.room.create', ''));
    const ids = keys.map((k) => state.get(k)).filter((id): id is string => id !== undefined);
    const loaded = await this.deps.storage.events.getEvents(ids);
    const byKey = new Map<string, RoomEvent>();
    for (const k of keys) {
      const id = state.get(k);
      const e = id !== undefined ? loaded.get(id) : undefined;
      if (e) byKey.set(k, e);
    }
    if (version.eventFormat === 'v12' && !byKey.has(keyOf('m.room.create', ''))) {
      const create = await this.deps.storage.events.getEvent(createEventIdForRoom(event.room_id));
      if (create) byKey.set(keyOf('m.room.create', ''), create);
    }
    return (type, sk) => byKey.get(keyOf(type, sk));
  }

  /**
   * The room's current state as the soft-fail check sees it: the state after each forward
   * extremity resolved together with the state before the event (so that state the event brought
   * with it, e.g. across a gap, counts). Undefined when the event builds on exactly the forward
   * extremities: then its own state is the current state and was checked already.
   */
  private async currentStateFor(event: RoomEvent, stateBefore: StateMap, version: RoomVersion): Promise<StateMap | undefined> {
    const { events } = this.deps.storage;
    const extremities = await events.getForwardExtremities(event.room_id);
    const prevs = new Set(event.prev_events);
    if (extremities.length === prevs.size && extremities.every((id) => prevs.has(id))) return undefined;
    const sets: StateMap[] = [stateBefore];
    for (const id of extremities) {
      const state = await events.getStateAtEvent(id, 'after');
      if (state) sets.push(state);
    }
    return resolveState(version, sets, this.eventSource());
  }

  /** State resolution's view of storage (plus events not stored yet). */
  private eventSource(extra: RoomEvent[] = []): EventSource {
    const { events } = this.deps.storage;
    return {
      getEvents: async (ids) => {
        const out = await events.getEvents(ids);
        for (const e of extra) if (ids.includes(e.event_id)) out.set(e.event_id, e);
        return out;
      },
      getRejected: (ids) => events.getRejectedIds(ids),
    };
  }

  private keyring(): Keyring {
    const federation = this.deps.federation();
    if (!federation) throw new Error('the pipeline has no federation runtime attached (pipeline.useFederation)');
    return federation.keyring;
  }

  private client(): FederationClient {
    const federation = this.deps.federation();
    if (!federation) throw new NotProcessable('no federation client to fetch missing events with');
    return federation.client;
  }
}

/** Step 4: the event's auth_events list and the rules against those events; the reason if refused. */
function authAgainstAuthEvents(
  event: RoomEvent,
  held: Map<string, RoomEvent>,
  rejectedIds: Set<string>,
  version: RoomVersion,
): string | undefined {
  const listed = event.auth_events.map((id) => held.get(id)).filter((e): e is RoomEvent => e !== undefined);
  return authReason(() => {
    checkAuthEventsList(event, listed, version, (id) => rejectedIds.has(id));
    const byKey = new Map<string, RoomEvent>();
    for (const e of listed) if (e.state_key !== undefined && !rejectedIds.has(e.event_id)) byKey.set(keyOf(e.type, e.state_key), e);
    if (version.eventFormat === 'v12') {
      const create = held.get(createEventIdForRoom(event.room_id));
      if (create) byKey.set(keyOf('m.room.create', ''), create);
    }
    checkAuthRules(event, (type, sk) => byKey.get(keyOf(type, sk)), version);
  });
}

function authReason(check: () => void): string | undefined {
  try {
    check();
    return undefined;
  } catch (err) {
    if (err instanceof AuthError) return err.message;
    throw err;
  }
}

/**
 * Keeps `room_memberships` in step with current state: every member entry the event's persist
 * changed (the event itself, or others that state resolution brought back).
 */
async function recordMembershipChanges(
  storage: Storage,
  trx: Kysely<Database>,
  event: RoomEvent,
  delta: ReadonlyMap<string, string | null>,
  streamPosition: number,
): Promise<void> {
  for (const [key, id] of delta) {
    if (id === null || !key.startsWith('["m.room.member",')) continue;
    if (id === event.event_id) {
      await storage.memberships.record(trx, event, streamPosition);
      continue;
    }
    const row = await trx.selectFrom('events').select(['pdu_json', 'stream_ordering']).where('event_id', '=', id).executeTakeFirst();
    if (!row) continue;
    const pdu = JSON.parse(row.pdu_json) as Pdu;
    const member: RoomEvent = {
      ...event,
      event_id: id,
      type: 'm.room.member',
      state_key: pdu.state_key as string,
      sender: pdu.sender as string,
      content: isObject(pdu.content) ? pdu.content : {},
      pdu,
    };
    await storage.memberships.record(trx, member, Number(row.stream_ordering));
  }
}

/** The event id of a PDU that may be malformed ('' when it cannot be computed). */
export function safeEventId(pdu: Pdu, version: RoomVersion): string {
  try {
    return computeEventId(pdu, version);
  } catch {
    return '';
  }
}

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((id): id is string => typeof id === 'string') : [];
}

function depthOf(pdu: Pdu): number {
  return typeof pdu.depth === 'number' ? pdu.depth : 0;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
