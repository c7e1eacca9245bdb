/**
 * The room event pipeline for events made on this server:
 *
 *   build → check (format, size) → authorise (room version rules, current state)
 *         → persist (one transaction: event, state, memberships, txn id) → notify → send
 *
 * Every local event goes through `send`, whatever feature made it (messages, membership, room
 * creation, profile changes, moments …). Events are built one at a time per room, so the room's
 * local history stays a line and every event is authorised against the state it will follow.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { canonicalJson, CanonicalJsonError, canonicalJsonProblem } from '../events/canonical-json.js';
import { signNewEvent, type SignedNewEvent } from '../events/event-signing.js';
import { computeEventId, eventIdFromReferenceHash } from '../events/event-id.js';
import { MAX_PDU_BYTES, toRoomEvent, InvalidPduError } from '../events/pdu.js';
import type { SigningKey } from '../events/signing.js';
import { stateKey as keyOf, type JsonObject, type JsonValue, type Pdu, type RoomEvent } from '../events/types.js';
import { MatrixError, forbidden, notFound } from '../http/errors.js';
import type { Storage } from '../storage/database.js';
import type { Database } from '../storage/schema.js';
import type { TxnKey } from '../storage/txn-ids-store.js';
import type { Notifier } from '../sync/notifier.js';
import { AuthError, authEventTypes, checkAuthRules, createEventIdForRoom, shouldApplyRedaction } from './auth.js';
import { namedPowerLevel, userPowerLevel } from './power-levels.js';
import { getRoomVersion, type RoomVersion } from './room-versions.js';
import type { FederationRuntime } from '../federation/runtime.js';
import { EventReceiver, type ReceiveOptions, type ReceiveResult } from './receive.js';

/** What a feature asks to send. */
export interface EventDraft {
  type: string;
  state_key?: string;
  content: JsonObject;
  /** The event a redaction redacts. */
  redacts?: string;
}

export interface SendOptions {
  /** The client's transaction id: a retry with the same id returns the first event. */
  txn?: TxnKey;
  /** For tests and imports; default now. */
  originServerTs?: number;
  /**
   * Another server's signature the event needs before it is stored (an invite of a remote user:
   * the invitee's server countersigns it over /invite). Called once the event is authorised; must
   * return the same event with the extra signature (anything else but `signatures` changed: refused).
   */
  countersign?: (pdu: Pdu) => Promise<Pdu>;
}

export interface SentEvent {
  event: RoomEvent;
  streamPosition: number;
}

export interface PipelineDeps {
  storage: Storage;
  serverName: string;
  signingKey: SigningKey;
  notifier: Notifier;
  log: Logger;
}

/**
 * Work a feature does inside the persist transaction of every accepted event (search index,
 * push actions and unread counts, relations …): it commits with the event or not at all.
 */
export type PersistHook = (trx: Kysely<Database>, event: RoomEvent, streamPosition: number) => Promise<void>;

/** Told of every event made on this server once it is persisted and notified (the "send" step). */
export type SentListener = (event: RoomEvent, streamPosition: number) => void;

/** At most this many forward extremities become prev_events of a new event (spec limit: 20). */
const MAX_PREV_EVENTS = 10;

export class RoomEventPipeline {
  private readonly roomLocks = new Map<string, Promise<unknown>>();
  private readonly persistHooks: PersistHook[] = [];
  private readonly sentListeners: SentListener[] = [];

  private federation: Pick<FederationRuntime, 'client' | 'keyring'> | undefined;
  private readonly receiver: EventReceiver;

  constructor(private readonly deps: PipelineDeps) {
    this.receiver = new EventReceiver({
      storage: deps.storage,
      notifier: deps.notifier,
      log: deps.log,
      federation: () => this.federation,
      persistHooks: this.persistHooks,
    });
  }

  /** Gives the receive path the keyring that checks signatures and the client that fetches missing events. */
  useFederation(federation: Pick<FederationRuntime, 'client' | 'keyring'>): void {
    this.federation = federation;
  }

  /**
   * Receives an event made on another server (rooms/receive.ts): checks, authorisation at its own
   * state and at current state, fetching what is missing, then persist and notify. Runs under the
   * room's lock, like `send`. Received events are not passed to `onSent` listeners.
   */
  async receive(pdu: JsonObject, opts: ReceiveOptions): Promise<ReceiveResult> {
    const lockKey = typeof pdu.room_id === 'string' ? pdu.room_id : '(new room)';
    return this.inRoomLock(lockKey, () => this.receiver.receive(pdu, opts));
  }

  /**
   * Receives the state and auth chain of a room (e.g. a send_join answer) as outliers, each checked
   * and authorised against its own auth events, which are taken from the batch first. Then
   * `receive` the join itself with `stateBefore`.
   */
  async receiveOutliers(pdus: readonly JsonObject[], opts: Pick<ReceiveOptions, 'origin' | 'roomVersion'>): Promise<ReceiveResult[]> {
    const withRoom = pdus.find((p) => typeof p.room_id === 'string');
    const lockKey = typeof withRoom?.room_id === 'string' ? withRoom.room_id : '(new room)';
    return this.inRoomLock(lockKey, () => this.receiver.receiveOutliers(pdus, opts));
  }

  /**
   * Stores a membership event this server holds outside the room's DAG (rooms/remote-membership.ts):
   * an invite another server sent us, or a knock or invite rejection one of our users made through
   * a resident server while we are not in the room. An outlier (no state, not in the timeline,
   * not authorised here: the resident server did that); the user's membership row, and the
   * stripped state given, make /sync show it. The caller has checked the event's signatures.
   */
  async persistOutOfBandMembership(event: RoomEvent, strippedState?: JsonObject[]): Promise<SentEvent> {
    if (event.type !== 'm.room.member' || event.state_key === undefined) {
      throw new Error(`${event.event_id} is not a membership event`);
    }
    return this.inRoomLock(event.room_id, async () => {
      const { storage } = this.deps;
      // An out-of-band event never overrides a join or ban our copy of the room's state shows.
      const row = await storage.memberships.get(event.room_id, event.state_key!);
      if (
        row &&
        (row.membership === 'join' || row.membership === 'ban') &&
        (await storage.events.getCurrentStateEventId(event.room_id, 'm.room.member', event.state_key!)) === row.eventId
      ) {
        throw forbidden(`${event.state_key} is already ${row.membership === 'join' ? 'joined to' : 'banned from'} ${event.room_id}`);
      }
      const result = await storage.events.persistEvent(event, {
        outlier: true,
        withinTransaction: async (trx, persisted) => {
          await storage.memberships.record(trx, event, persisted.streamPosition);
          if (strippedState) await storage.memberships.saveStrippedState(trx, event, strippedState);
        },
      });
      this.deps.notifier.notify({ roomId: event.room_id, userIds: [event.state_key!] });
      return { event, streamPosition: result.streamPosition };
    });
  }

  /** The event with the signature `countersign` adds; refused if it comes back as another event. */
  private async countersigned(event: RoomEvent, version: RoomVersion, countersign: (pdu: Pdu) => Promise<Pdu>): Promise<RoomEvent> {
    const signed = await countersign(event.pdu);
    const { unsigned: _unsigned, ...wire } = signed;
    const again = this.check(wire, version);
    // Same id is not enough (v1/v2 ids do not cover the content): only signatures may differ.
    const bare = (pdu: Pdu) => {
      const { signatures: _s, unsigned: _u, ...rest } = pdu;
      return canonicalJson(rest, { strict: false });
    };
    if (again.event_id !== event.event_id || bare(again.pdu) !== bare(event.pdu)) {
      throw new MatrixError(502, 'M_UNKNOWN', 'The remote server returned a different event than the one it was asked to sign');
    }
    return again;
  }

  /** Registers in-transaction work for every persisted event (see PersistHook). */
  onPersist(hook: PersistHook): void {
    this.persistHooks.push(hook);
  }

  /** Registers the send step for local events (federation/sender.ts queues them to other servers). */
  onSent(listener: SentListener): void {
    this.sentListeners.push(listener);
  }

  /** Sends an event into an existing room as `sender` (a local user). */
  async send(roomId: string, sender: string, draft: EventDraft, opts: SendOptions = {}): Promise<SentEvent> {
    return this.inRoomLock(roomId, async () => {
      // A retried transaction id returns the first attempt's event. Looked up under the room's
      // lock only (once per send): a retry racing the first attempt waits for it there.
      const earlier = await this.fromTxn(opts.txn);
      if (earlier) return earlier;
      // The room's version, extremities and auth state ids come from the room cache
      // (storage/room-cache.ts) after the first send.
      const roomVersion = await this.deps.storage.events.getRoomVersion(roomId);
      if (roomVersion === undefined) throw notFound('Unknown room');
      const version = knownVersion(roomVersion);
      return this.buildAuthorisePersist(roomId, version, sender, draft, opts);
    });
  }

  /**
   * Sends the create event of a new room and returns the room id: for v12 derived from the
   * event itself, otherwise `!random:server`.
   */
  async create(version: RoomVersion, sender: string, content: JsonObject): Promise<SentEvent> {
    const roomId = version.eventFormat === 'v12' ? undefined : `!${randomId(18)}:${this.deps.serverName}`;
    const signed = this.buildPdu(version, roomId, sender, { type: 'm.room.create', state_key: '', content }, [], [], 1);
    const event = this.check(signed.pdu, version, signed);
    return this.inRoomLock(event.room_id, () => this.authorisePersist(event, version, new Map(), {}));
  }

  private async buildAuthorisePersist(
    roomId: string,
    version: RoomVersion,
    sender: string,
    draft: EventDraft,
    opts: SendOptions,
  ): Promise<SentEvent> {
    const { storage } = this.deps;
    const extremities = await storage.events.getForwardExtremities(roomId);
    // The prev events are read in the same query as the auth state's events.
    const { state: authState, alsoLoaded } = await this.loadAuthState(roomId, version, { ...draft, sender }, extremities);
    const prevEvents = extremities
      .map((id) => alsoLoaded.get(id))
      .filter((e): e is RoomEvent => e !== undefined)
      .sort((a, b) => b.depth - a.depth)
      .slice(0, MAX_PREV_EVENTS);
    const depth = Math.min(Math.max(0, ...prevEvents.map((e) => e.depth)) + 1, Number.MAX_SAFE_INTEGER);

    const authEvents = authEventTypes({ ...draft, sender }, version)
      .map(([type, sk]) => authState.get(keyOf(type, sk)))
      .filter((e): e is RoomEvent => e !== undefined);

    const signed = this.buildPdu(version, roomId, sender, draft, prevEvents, authEvents, depth, opts.originServerTs);
    const event = this.check(signed.pdu, version, signed);
    return this.authorisePersist(event, version, authState, opts, prevEvents.length > 1);
  }

  /**
   * The current state entries the auth rules may consult for this event, by state key; and the
   * events `alsoLoad` names (read in the same query), in `alsoLoaded`.
   */
  private async loadAuthState(
    roomId: string,
    version: RoomVersion,
    draft: EventDraft & { sender: string },
    alsoLoad: readonly string[] = [],
  ): Promise<{ state: Map<string, RoomEvent>; alsoLoaded: Map<string, RoomEvent> }> {
    const { events } = this.deps.storage;
    const wanted = authEventTypes(draft, version);
    // The create event is part of every room's auth state, listed in auth_events or not (v12).
    if (!wanted.some(([type, sk]) => type === 'm.room.create' && sk === '')) wanted.push(['m.room.create', '']);
    const ids = await Promise.all(wanted.map(([type, sk]) => events.getCurrentStateEventId(roomId, type, sk)));
    const loaded = await events.getEvents([...ids.filter((id): id is string => id !== undefined), ...alsoLoad]);
    const state = new Map<string, RoomEvent>();
    wanted.forEach(([type, sk], i) => {
      const event = ids[i] && loaded.get(ids[i]!);
      if (event) state.set(keyOf(type, sk), event);
    });
    if (version.eventFormat === 'v12' && !state.has(keyOf('m.room.create', ''))) {
      const create = await events.getEvent(createEventIdForRoom(roomId));
      if (create) state.set(keyOf('m.room.create', ''), create);
    }
    return { state, alsoLoaded: loaded };
  }

  private buildPdu(
    version: RoomVersion,
    roomId: string | undefined,
    sender: string,
    draft: EventDraft,
    prevEvents: RoomEvent[],
    authEvents: RoomEvent[],
    depth: number,
    originServerTs = Date.now(),
  ): SignedNewEvent {
    const ref = (e: RoomEvent): JsonValue =>
      version.eventFormat === 'v1' ? [e.event_id, (e.pdu.hashes as JsonObject | undefined) ?? {}] : e.event_id;
    const pdu: Pdu = {
      type: draft.type,
      sender,
      content: draft.content,
      origin_server_ts: originServerTs,
      depth,
      prev_events: prevEvents.map(ref),
      auth_events: authEvents.map(ref),
      origin: this.deps.serverName,
    };
    // v11 dropped `origin`; v12 create events have no room_id.
    if (version.updatedRedactionRules) delete pdu.origin;
    if (roomId !== undefined) pdu.room_id = roomId;
    if (draft.state_key !== undefined) pdu.state_key = draft.state_key;
    if (draft.redacts !== undefined) {
      if (version.updatedRedactionRules) pdu.content = { ...draft.content, redacts: draft.redacts };
      else pdu.redacts = draft.redacts;
    }
    if (version.eventFormat === 'v1') pdu.event_id = `$${randomId(18)}:${this.deps.serverName}`;
    try {
      return signNewEvent(pdu, this.deps.serverName, this.deps.signingKey, version);
    } catch (err) {
      // v6+ refuse floats and unsafe integers (only the content can hold them): say where.
      const problem = err instanceof CanonicalJsonError ? canonicalJsonProblem(draft.content, { strict: version.strictCanonicalJson }) : undefined;
      if (problem) throw new MatrixError(400, 'M_BAD_JSON', `Event content is not valid canonical JSON: ${problem}`);
      throw err;
    }
  }

  /**
   * Format and size checks: what every server will check when it receives the event. `known`:
   * the size and reference hash signNewEvent computed for this PDU (not computed again).
   */
  private check(pdu: Pdu, version: RoomVersion, known?: Pick<SignedNewEvent, 'size' | 'referenceHash'>): RoomEvent {
    const size = known?.size ?? Buffer.byteLength(canonicalJson(pdu, { strict: false }), 'utf8');
    if (size > MAX_PDU_BYTES) {
      throw new MatrixError(413, 'M_TOO_LARGE', `Event is ${size} bytes; the limit is ${MAX_PDU_BYTES}`);
    }
    try {
      const eventId = known?.referenceHash ? eventIdFromReferenceHash(known.referenceHash, version) : computeEventId(pdu, version);
      return toRoomEvent(pdu, version, { eventId });
    } catch (err) {
      if (err instanceof InvalidPduError) throw new MatrixError(400, 'M_BAD_JSON', err.message);
      throw err;
    }
  }

  private async authorisePersist(
    event: RoomEvent,
    version: RoomVersion,
    authState: Map<string, RoomEvent>,
    opts: SendOptions,
    forked = false,
  ): Promise<SentEvent> {
    const lookup = (type: string, sk: string) => authState.get(keyOf(type, sk));
    try {
      checkAuthRules(event, lookup, version);
    } catch (err) {
      if (err instanceof AuthError) throw forbidden(err.message);
      throw err;
    }
    await this.checkRedactionAllowed(event, version, lookup);
    if (opts.countersign) event = await this.countersigned(event, version, opts.countersign);

    const { storage } = this.deps;
    const stateBefore = forked ? await storage.events.getCurrentState(event.room_id) : undefined;
    const result = await storage.events.persistEvent(event, {
      ...(stateBefore ? { stateBefore } : {}),
      withinTransaction: async (trx: Kysely<Database>, persisted) => {
        await storage.memberships.record(trx, event, persisted.streamPosition);
        if (opts.txn) await storage.txnIds.record(trx, opts.txn, event.room_id, event.event_id);
        for (const hook of this.persistHooks) await hook(trx, event, persisted.streamPosition);
      },
    });
    if (event.redacts && (await this.redactionApplies(event, version, lookup))) {
      await storage.events.markRedacted(event.redacts, event.event_id);
    }

    this.deps.notifier.notify({
      roomId: event.room_id,
      userIds: event.type === 'm.room.member' && event.state_key !== undefined ? [event.state_key] : [],
    });
    if (!result.alreadyStored) for (const listener of this.sentListeners) listener(event, result.streamPosition);
    return { event, streamPosition: result.streamPosition };
  }

  /**
   * Clients may redact their own events, or others' with the redact power level. Room versions
   * 3+ leave this to the receiving server ("handling redactions"); this server refuses up front
   * a redaction it would not apply, as other servers do.
   */
  private async checkRedactionAllowed(
    event: RoomEvent,
    version: RoomVersion,
    lookup: (type: string, sk: string) => RoomEvent | undefined,
  ): Promise<void> {
    if (event.type !== 'm.room.redaction' || !event.redacts) return;
    const target = await this.deps.storage.events.getEvent(event.redacts);
    if (!target || target.room_id !== event.room_id) return; // redacting an unknown event is allowed
    // Servers accept redactions between users of one server; users themselves may only redact
    // their own events unless their power level reaches `redact`.
    const ownEvent = target.sender === event.sender;
    const powerful = userPowerLevel(event.sender, lookup, version) >= namedPowerLevel('redact', lookup, version);
    if (!ownEvent && !powerful) {
      throw forbidden('You may only redact your own events, or need the redact power level');
    }
  }

  private async redactionApplies(
    event: RoomEvent,
    version: RoomVersion,
    lookup: (type: string, sk: string) => RoomEvent | undefined,
  ): Promise<boolean> {
    const target = await this.deps.storage.events.getEvent(event.redacts!);
    return target !== undefined && shouldApplyRedaction(event, target, lookup, version);
  }

  private async fromTxn(txn: TxnKey | undefined): Promise<SentEvent | undefined> {
    if (!txn) return undefined;
    const found = await this.deps.storage.txnIds.find(txn);
    if (!found) return undefined;
    const event = await this.deps.storage.events.getEvent(found.eventId);
    const info = await this.deps.storage.events.getEventInfo(found.eventId);
    if (!event || !info) return undefined;
    return { event, streamPosition: info.streamPosition };
  }

  /** Runs `fn` after every earlier call for the same room has finished. */
  private inRoomLock<T>(roomId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.roomLocks.get(roomId) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.roomLocks.set(roomId, settled);
    void settled.then(() => {
      if (this.roomLocks.get(roomId) === settled) this.roomLocks.delete(roomId);
    });
    return run;
  }
}

function knownVersion(id: string): RoomVersion {
  const version = getRoomVersion(id);
  if (!version) throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `Room version ${id} is not supported`);
  return version;
}

const ID_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Random letters for opaque local ids (room ids, v1/v2 event ids). */
export function randomId(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += ID_CHARS[b % ID_CHARS.length];
  return out;
}
