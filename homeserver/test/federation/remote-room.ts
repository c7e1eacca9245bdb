/**
 * A room as another server holds it, for tests of the receiving side: events built and signed
 * with that server's real Ed25519 key (real hashes, real event ids), the state after each, and a
 * FederationClient that answers /event, /state, /state_ids, /event_auth, /get_missing_events and
 * /backfill from it, as that server would. A Keyring that knows the test servers' keys checks the
 * signatures for real.
 */
import { computeEventId } from '../../src/events/event-id.js';
import { signEvent } from '../../src/events/event-signing.js';
import { toRoomEvent } from '../../src/events/pdu.js';
import { generateSigningKey, verifyJsonSignature, type SigningKey } from '../../src/events/signing.js';
import { stateKey, type JsonObject, type Pdu, type RoomEvent, type StateMap } from '../../src/events/types.js';
import {
  FederationRequestError,
  SignatureError,
  type FederationClient,
  type FederationRequest,
  type FederationResponseStream,
  type Keyring,
} from '../../src/federation/runtime.js';
import { authEventTypes } from '../../src/rooms/auth.js';
import type { RoomVersion } from '../../src/rooms/room-versions.js';

export class TestServer {
  readonly key: SigningKey = generateSigningKey();
  constructor(readonly name: string) {}
}

/** Verifies signatures with the public keys of the given servers (any other server: refused). */
export class TestKeyring implements Keyring {
  private readonly keys = new Map<string, SigningKey>();
  constructor(servers: TestServer[]) {
    for (const s of servers) this.keys.set(s.name, s.key);
  }
  add(server: TestServer): void {
    this.keys.set(server.name, server.key);
  }
  async verifySignedJson(serverName: string, json: JsonObject): Promise<void> {
    const key = this.keys.get(serverName);
    if (!key) throw new SignatureError(`unknown server ${serverName}`);
    if (!verifyJsonSignature(json, serverName, key.keyId, key.publicKey)) {
      throw new SignatureError(`bad signature of ${serverName}`);
    }
  }
}

export interface Draft {
  type: string;
  state_key?: string;
  content: JsonObject;
  redacts?: string;
}

interface Held {
  pdu: Pdu;
  event: RoomEvent;
  stateBefore: StateMap;
  stateAfter: StateMap;
}

export class RemoteRoom {
  readonly events = new Map<string, Held>();
  /** The events in the order they were made. */
  readonly order: string[] = [];
  roomId = '';
  private extremities: string[] = [];
  private clock = 1_700_000_000_000 + Math.floor(Math.random() * 1e9);
  /** When false, /get_missing_events answers with no events (the gap must be closed with /state_ids). */
  answerMissingEvents = true;
  /** The requests received, as `METHOD path`. */
  readonly requests: string[] = [];

  constructor(
    readonly version: RoomVersion,
    readonly server: TestServer,
  ) {}

  /** Builds, signs and records an event on top of `prev` (default: the latest events). */
  make(sender: string, draft: Draft, opts: { prev?: string[]; auth?: string[]; signer?: TestServer } = {}): { pdu: Pdu; id: string; event: RoomEvent } {
    if (draft.type === 'm.room.create' && this.version.eventFormat !== 'v12') {
      this.roomId = `!${Math.random().toString(36).slice(2)}:${this.server.name}`;
    }
    const prevIds = opts.prev ?? this.extremities;
    const prevs = prevIds.map((id) => this.events.get(id)!);
    const stateBefore: StateMap = prevs.length ? new Map(prevs[0]!.stateAfter) : new Map();
    for (const p of prevs.slice(1)) for (const [k, v] of p.stateAfter) if (!stateBefore.has(k)) stateBefore.set(k, v);
    const authIds = opts.auth ?? (draft.type === 'm.room.create'
      ? []
      : authEventTypes({ ...draft, sender }, this.version)
          .map(([t, sk]) => stateBefore.get(stateKey(t, sk)))
          .filter((id): id is string => id !== undefined));
    const ref = (id: string) => (this.version.eventFormat === 'v1' ? [id, this.events.get(id)!.pdu.hashes!] : id);
    const pdu: Pdu = {
      type: draft.type,
      sender,
      content: draft.content,
      origin_server_ts: this.clock++,
      depth: Math.max(0, ...prevs.map((p) => p.event.depth)) + 1,
      prev_events: prevIds.map(ref),
      auth_events: authIds.map(ref),
    };
    if (!this.version.updatedRedactionRules) pdu.origin = this.server.name;
    if (!(this.version.eventFormat === 'v12' && draft.type === 'm.room.create')) pdu.room_id = this.roomId;
    if (draft.state_key !== undefined) pdu.state_key = draft.state_key;
    if (draft.redacts !== undefined) {
      if (this.version.updatedRedactionRules) pdu.content = { ...draft.content, redacts: draft.redacts };
      else pdu.redacts = draft.redacts;
    }
    if (this.version.eventFormat === 'v1') pdu.event_id = `$${Math.random().toString(36).slice(2)}:${this.server.name}`;
    const signer = opts.signer ?? this.server;
    const signed = signEvent(pdu, signer.name, signer.key, this.version);
    const id = computeEventId(signed, this.version);
    const event = toRoomEvent(signed, this.version, { eventId: id });
    if (draft.type === 'm.room.create') this.roomId = event.room_id;
    const stateAfter = new Map(stateBefore);
    if (draft.state_key !== undefined) stateAfter.set(stateKey(draft.type, draft.state_key), id);
    this.events.set(id, { pdu: signed, event, stateBefore, stateAfter });
    this.order.push(id);
    this.extremities = [...this.extremities.filter((e) => !prevIds.includes(e)), id];
    return { pdu: signed, id, event };
  }

  /** Create, the creator's join, power levels (creator 100), public join rule, shared history. */
  createPublicRoom(creator: string): string[] {
    const content: JsonObject = { room_version: this.version.id };
    if (!this.version.implicitRoomCreator) content.creator = creator;
    return [
      this.make(creator, { type: 'm.room.create', state_key: '', content }).id,
      this.make(creator, { type: 'm.room.member', state_key: creator, content: { membership: 'join' } }).id,
      this.make(creator, {
        type: 'm.room.power_levels',
        state_key: '',
        content: this.version.privilegedCreators ? {} : { users: { [creator]: 100 } },
      }).id,
      this.make(creator, { type: 'm.room.join_rules', state_key: '', content: { join_rule: 'public' } }).id,
    ];
  }

  pdu(id: string): Pdu {
    return this.events.get(id)!.pdu;
  }

  /** A FederationClient that answers as this room's server (other destinations: unreachable). */
  client(): FederationClient {
    return new RemoteRoomClient(this);
  }

  authChain(ids: Iterable<string>): string[] {
    const out = new Set<string>();
    const stack = [...ids];
    while (stack.length) {
      const id = stack.pop()!;
      for (const a of this.events.get(id)?.event.auth_events ?? []) {
        if (!out.has(a)) {
          out.add(a);
          stack.push(a);
        }
      }
    }
    return [...out];
  }
}

class RemoteRoomClient implements FederationClient {
  constructor(private readonly room: RemoteRoom) {}

  async request<T>(destination: string, req: FederationRequest): Promise<T> {
    const room = this.room;
    room.requests.push(`${req.method} ${req.path}`);
    const fail = (status: number, msg: string) => new FederationRequestError(msg, destination, status, 'M_NOT_FOUND');
    if (destination !== room.server.name) throw new FederationRequestError('unreachable', destination);
    const path = req.path.replace('/_matrix/federation/v1', '');
    const parts = path.split('/').map(decodeURIComponent);
    const held = (id: string) => {
      const h = room.events.get(id);
      if (!h) throw fail(404, `unknown event ${id}`);
      return h;
    };
    let body: unknown;
    if (parts[1] === 'event') {
      body = { origin: room.server.name, origin_server_ts: Date.now(), pdus: [held(parts[2]!).pdu] };
    } else if (parts[1] === 'state_ids' || parts[1] === 'state') {
      const h = held(String(req.query?.event_id));
      const ids = [...h.stateBefore.values()];
      const chain = room.authChain(ids);
      body = parts[1] === 'state_ids'
        ? { pdu_ids: ids, auth_chain_ids: chain }
        : { pdus: ids.map((id) => room.pdu(id)), auth_chain: chain.map((id) => room.pdu(id)) };
    } else if (parts[1] === 'event_auth') {
      body = { auth_chain: room.authChain([parts[3]!]).map((id) => room.pdu(id)) };
    } else if (parts[1] === 'get_missing_events') {
      const b = req.body as { earliest_events: string[]; latest_events: string[]; limit: number };
      const found: string[] = [];
      if (room.answerMissingEvents) {
        const stop = new Set([...b.earliest_events, ...b.latest_events]);
        const queue = b.latest_events.flatMap((id) => held(id).event.prev_events);
        const seen = new Set<string>();
        while (queue.length && found.length < b.limit) {
          const id = queue.shift()!;
          if (seen.has(id) || stop.has(id) || !room.events.has(id)) continue;
          seen.add(id);
          found.push(id);
          queue.push(...held(id).event.prev_events);
        }
      }
      body = { events: found.reverse().map((id) => room.pdu(id)) };
    } else if (parts[1] === 'backfill') {
      const v = ([] as unknown[]).concat(req.query?.v ?? []).map(String);
      const limit = Number(req.query?.limit ?? 10);
      const found: string[] = [];
      const queue = [...v];
      const seen = new Set<string>();
      while (queue.length && found.length < limit) {
        const id = queue.shift()!;
        if (seen.has(id) || !room.events.has(id)) continue;
        seen.add(id);
        found.push(id);
        queue.push(...held(id).event.prev_events);
      }
      body = { origin: room.server.name, origin_server_ts: Date.now(), pdus: found.map((id) => room.pdu(id)) };
    } else {
      throw fail(404, `no such endpoint ${req.path}`);
    }
    return JSON.parse(JSON.stringify(body)) as T;
  }

  async requestStream(destination: string): Promise<FederationResponseStream> {
    throw new FederationRequestError('not supported', destination);
  }
}
