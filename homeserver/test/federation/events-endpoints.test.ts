/**
 * Two real servers over HTTPS (test/helpers/federation.ts): server A's user joins a room hosted
 * on B with an event A signs and delivers in a /send transaction (as a join through make/send_join
 * would leave it); then A reads B's events, state, auth chains, missing events, backfill and
 * timestamp lookups through the federation endpoints, which answer only what A may see.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerContext } from '../../src/context.js';
import { computeEventId } from '../../src/events/event-id.js';
import { signEvent } from '../../src/events/event-signing.js';
import { stateKey, type JsonObject, type Pdu } from '../../src/events/types.js';
import { FederationRequestError } from '../../src/federation/runtime.js';
import { authEventTypes } from '../../src/rooms/auth.js';
import { getRoomVersion } from '../../src/rooms/room-versions.js';
import { client } from '../helpers/client-api.js';
import { startFederatedServers } from '../helpers/federation.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';

type Servers = Awaited<ReturnType<typeof startFederatedServers>>;
const CONFIG = 'enable_registration: true\nrc_message: {per_second: 1000, burst_count: 1000}\n';

/** An event by a user of `signer` in a room held by `host`, on top of the host's forward extremities. */
async function eventOn(
  host: ServerContext,
  signer: ServerContext,
  roomId: string,
  sender: string,
  draft: { type: string; state_key?: string; content: JsonObject },
): Promise<{ pdu: Pdu; id: string }> {
  const version = getRoomVersion((await host.storage.rooms.getRoomVersion(roomId))!)!;
  const prev = await host.storage.events.getForwardExtremities(roomId);
  const prevEvents = [...(await host.storage.events.getEvents(prev)).values()];
  const state = (await host.storage.events.getStateAtEvent(prev[0]!, 'after'))!;
  const auth = authEventTypes({ ...draft, sender }, version)
    .map(([t, sk]) => state.get(stateKey(t, sk)))
    .filter((id): id is string => id !== undefined);
  const pdu: Pdu = {
    room_id: roomId,
    type: draft.type,
    sender,
    content: draft.content,
    origin: signer.config.server_name,
    origin_server_ts: Date.now(),
    depth: Math.max(...prevEvents.map((e) => e.depth)) + 1,
    prev_events: prev,
    auth_events: auth,
  };
  if (draft.state_key !== undefined) pdu.state_key = draft.state_key;
  const signed = signEvent(pdu, signer.config.server_name, signer.keys.signingKey, version);
  return { pdu: signed, id: computeEventId(signed, version) };
}

describe('event retrieval between two servers', () => {
  let servers: Servers;
  let a: ServerContext;
  let b: ServerContext;
  let bob: RegisteredUser;
  let roomId: string;
  let aliceId: string;
  const early: string[] = [];
  let txn = 0;

  /** A request from A to B, signed by A (real X-Matrix over HTTPS). */
  const fromA = <T = JsonObject>(method: 'GET' | 'POST' | 'PUT', path: string, opts: { query?: Record<string, string | number | string[]>; body?: JsonObject } = {}) =>
    a.federation.client.request<T>(b.config.server_name, { method, path: `/_matrix/federation/v1${path}`, ...opts });
  const status = async (p: Promise<unknown>) => {
    try {
      await p;
      return 200;
    } catch (err) {
      if (err instanceof FederationRequestError) return `${err.status} ${err.errcode}`;
      throw err;
    }
  };

  beforeAll(async () => {
    servers = await startFederatedServers(2, CONFIG);
    a = servers[0]!.server.ctx;
    b = servers[1]!.server.ctx;
    const apiB = client(() => servers[1]!.baseUrl);
    bob = await registerUser(servers[1]!.baseUrl, 'bob');
    roomId = (await apiB.ok(bob, 'POST', '/createRoom', { preset: 'public_chat', room_version: '10' })).room_id;
    // History alice will not see: the room is `joined`-only for these first messages.
    await apiB.ok(bob, 'PUT', `/rooms/${encodeURIComponent(roomId)}/state/m.room.history_visibility`, { history_visibility: 'joined' });
    for (const body of ['before 1', 'before 2']) {
      early.push((await apiB.ok(bob, 'PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${body.replace(' ', '')}`, { msgtype: 'm.text', body })).event_id);
    }
    aliceId = `@alice:${a.config.server_name}`;
  }, 60_000);
  afterAll(async () => {
    for (const s of servers ?? []) await s.stop();
  });

  it('refuses a server with nobody in the room, and unknown rooms and events', async () => {
    expect(await status(fromA('GET', `/state_ids/${encodeURIComponent(roomId)}`, { query: { event_id: early[0]! } }))).toBe('403 M_FORBIDDEN');
    expect(await status(fromA('GET', `/event/${encodeURIComponent(early[0]!)}`))).toBe('404 M_NOT_FOUND');
    expect(await status(fromA('GET', `/state_ids/${encodeURIComponent('!nope:' + b.config.server_name)}`, { query: { event_id: early[0]! } }))).toBe('404 M_NOT_FOUND');
    expect(await status(fromA('GET', `/event/${encodeURIComponent('$unknown')}`))).toBe('404 M_NOT_FOUND');
  });

  it('accepts a join and a message from A in a transaction over HTTPS, then serves A what it may see', async () => {
    const join = await eventOn(b, a, roomId, aliceId, { type: 'm.room.member', state_key: aliceId, content: { membership: 'join' } });
    const res = await fromA('PUT', `/send/t${++txn}`, { body: { origin: a.config.server_name, origin_server_ts: Date.now(), pdus: [join.pdu] } });
    expect(res).toEqual({ pdus: { [join.id]: {} } });
    const msg = await eventOn(b, a, roomId, aliceId, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'hello from A' } });
    expect(await fromA('PUT', `/send/t${++txn}`, { body: { pdus: [msg.pdu] } })).toEqual({ pdus: { [msg.id]: {} } });
    // A forged event (sender on another server) in A's transaction is refused, the others kept.
    const forged = await eventOn(b, a, roomId, `@mallory:${b.config.server_name}`, { type: 'm.room.message', content: { body: 'forged' } });
    const mixed = (await fromA('PUT', `/send/t${++txn}`, { body: { pdus: [forged.pdu] } })) as { pdus: Record<string, { error?: string }> };
    expect(mixed.pdus[forged.id]?.error).toBeTruthy();

    // bob sees alice's message.
    const apiB = client(() => servers[1]!.baseUrl);
    const page = await apiB.ok(bob, 'GET', `/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=5`);
    expect(page.chunk.map((e: { event_id: string }) => e.event_id)).toContain(msg.id);

    // /event: the message; not the history from before the join (history_visibility joined).
    const got = await fromA<{ pdus: Pdu[] }>('GET', `/event/${encodeURIComponent(msg.id)}`);
    expect(computeEventId(got.pdus[0]!, getRoomVersion('10')!)).toBe(msg.id);
    expect(await status(fromA('GET', `/event/${encodeURIComponent(early[0]!)}`))).toBe('404 M_NOT_FOUND');

    // /state_ids and /state at the message: the state before it, with its auth chain.
    const ids = await fromA<{ pdu_ids: string[]; auth_chain_ids: string[] }>('GET', `/state_ids/${encodeURIComponent(roomId)}`, { query: { event_id: msg.id } });
    expect(ids.pdu_ids).toContain(join.id);
    expect(ids.auth_chain_ids.length).toBeGreaterThan(0);
    const state = await fromA<{ pdus: Pdu[]; auth_chain: Pdu[] }>('GET', `/state/${encodeURIComponent(roomId)}`, { query: { event_id: msg.id } });
    expect(state.pdus.length).toBe(ids.pdu_ids.length);

    // /event_auth: the auth chain of alice's message reaches the create event.
    const auth = await fromA<{ auth_chain: Pdu[] }>('GET', `/event_auth/${encodeURIComponent(roomId)}/${encodeURIComponent(msg.id)}`);
    expect(auth.auth_chain.some((p) => p.type === 'm.room.create')).toBe(true);

    // /get_missing_events between alice's join and her message: nothing between; from before.
    const missing = await fromA<{ events: Pdu[] }>('POST', `/get_missing_events/${encodeURIComponent(roomId)}`, {
      body: { earliest_events: [join.id], latest_events: [msg.id], limit: 10 },
    });
    expect(missing.events).toEqual([]);

    // /backfill from the message: the message and the join, not the `joined`-only history.
    const back = await fromA<{ pdus: Pdu[] }>('GET', `/backfill/${encodeURIComponent(roomId)}`, { query: { v: [msg.id], limit: 10 } });
    const backIds = back.pdus.map((p) => computeEventId(p, getRoomVersion('10')!));
    expect(backIds.slice(0, 2)).toEqual([msg.id, join.id]);
    for (const id of early) expect(backIds).not.toContain(id);

    // /timestamp_to_event: the latest event A may see at or before now.
    const ts = await fromA<{ event_id: string }>('GET', `/timestamp_to_event/${encodeURIComponent(roomId)}`, { query: { ts: Date.now(), dir: 'b' } });
    expect(ts.event_id).toBe(msg.id);
    expect(await status(fromA('GET', `/timestamp_to_event/${encodeURIComponent(roomId)}`, { query: { ts: 0, dir: 'x' } }))).toBe('400 M_INVALID_PARAM');
  });

  it('answers a server that the room ACL denies with 403 (ACLs match host names without port)', async () => {
    const apiB = client(() => servers[1]!.baseUrl);
    await apiB.ok(bob, 'PUT', `/rooms/${encodeURIComponent(roomId)}/state/m.room.server_acl`, { allow: ['*'], deny: [a.config.server_name.replace(/:\d+$/, '')] });
    expect(await status(fromA('GET', `/backfill/${encodeURIComponent(roomId)}`, { query: { v: [early[0]!], limit: 5 } }))).toBe('403 M_FORBIDDEN');
    expect(await status(fromA('GET', `/event/${encodeURIComponent(early[0]!)}`))).toBe('403 M_FORBIDDEN');
    await apiB.ok(bob, 'PUT', `/rooms/${encodeURIComponent(roomId)}/state/m.room.server_acl`, { allow: ['*'] });
  });
});
