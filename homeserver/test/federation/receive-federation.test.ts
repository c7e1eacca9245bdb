/**
 * Receiving events between two real servers over HTTPS (test/helpers/federation.ts): alice on A
 * joins a room on B; B's events reach A in /send transactions, with A checking B's signatures
 * against keys it fetches from B. A fills a gap in what it got with /get_missing_events from B,
 * soft-fails an event that only its own (forked) state allows and never shows it to alice, and
 * refuses events whose signatures do not verify.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerContext } from '../../src/context.js';
import { computeEventId } from '../../src/events/event-id.js';
import { signEvent } from '../../src/events/event-signing.js';
import { stateKey, type JsonObject, type Pdu } from '../../src/events/types.js';
import type { OutgoingFederation } from '../../src/federation/runtime.js';
import { authEventTypes } from '../../src/rooms/auth.js';
import { getRoomVersion } from '../../src/rooms/room-versions.js';
import { client, enc } from '../helpers/client-api.js';
import { startFederatedServers, type FederatedServer } from '../helpers/federation.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';

const EXTRA = 'enable_registration: true\nrc_message: {per_second: 1000, burst_count: 1000}\n';

/** Polls until `fn` gives a value (the bound only guards against a hang; nothing is timed). */
async function until<T>(fn: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const value = await fn();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** An event made on B's DAG by hand (on top of `prev`), signed by B: as B would send it. */
async function madeOnB(b: ServerContext, roomId: string, sender: string, draft: { type: string; state_key?: string; content: JsonObject }, prev: string[]): Promise<{ pdu: Pdu; id: string }> {
  const version = getRoomVersion((await b.storage.rooms.getRoomVersion(roomId))!)!;
  const prevEvents = [...(await b.storage.events.getEvents(prev)).values()];
  const state = (await b.storage.events.getStateAtEvent(prev[0]!, 'after'))!;
  const auth = authEventTypes({ ...draft, sender }, version)
    .map(([t, sk]) => state.get(stateKey(t, sk)))
    .filter((id): id is string => id !== undefined);
  const pdu: Pdu = {
    room_id: roomId,
    type: draft.type,
    sender,
    content: draft.content,
    origin: b.config.server_name,
    origin_server_ts: Date.now(),
    depth: Math.max(...prevEvents.map((e) => e.depth)) + 1,
    prev_events: prev,
    auth_events: auth,
  };
  if (draft.state_key !== undefined) pdu.state_key = draft.state_key;
  const signed = signEvent(pdu, b.config.server_name, b.keys.signingKey, version);
  return { pdu: signed, id: computeEventId(signed, version) };
}

describe('receiving events from another server over HTTPS', () => {
  let servers: FederatedServer[];
  let a: FederatedServer;
  let b: FederatedServer;
  let alice: RegisteredUser; // on A
  let bob: RegisteredUser; // on B, the room's creator
  let carol: RegisteredUser; // on B
  let roomId: string;
  let txn = 0;
  const apiA = client(() => a.baseUrl);
  const apiB = client(() => b.baseUrl);
  /** B pushes PDUs to A in a transaction of its own (real X-Matrix over HTTPS). */
  const pushToA = (pdus: Pdu[]) =>
    b.server.ctx.federation.client.request<{ pdus: Record<string, { error?: string }> }>(a.name, {
      method: 'PUT',
      path: `/_matrix/federation/v1/send/f2-${Date.now()}-${++txn}`,
      body: { origin: b.name, origin_server_ts: Date.now(), pdus },
    });
  const timelineOfA = async (limit = 30) =>
    (await apiA.ok(alice, 'GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=${limit}`)).chunk.map((e: { event_id: string }) => e.event_id) as string[];
  /** While it runs, B queues nothing to other servers (its events reach A only as the test pushes them). */
  const withBSilent = async <T>(fn: () => Promise<T>): Promise<T> => {
    const ctx = b.server.ctx;
    const sender = ctx.federation.sender;
    const silent: OutgoingFederation = { sendPdu: () => undefined, sendEdu: () => undefined, close: async () => undefined };
    ctx.federation.sender = silent;
    try {
      return await fn();
    } finally {
      ctx.federation.sender = sender;
    }
  };

  beforeAll(async () => {
    servers = await startFederatedServers(2, EXTRA);
    [a, b] = servers as [FederatedServer, FederatedServer];
    alice = await registerUser(a.baseUrl, 'alice');
    bob = await registerUser(b.baseUrl, 'bob');
    carol = await registerUser(b.baseUrl, 'carol');
    roomId = (await apiB.ok(bob, 'POST', '/createRoom', { preset: 'public_chat', room_version: '10' })).room_id;
    await apiB.ok(carol, 'POST', `/join/${enc(roomId)}`, {});
    await apiA.ok(alice, 'POST', `/join/${enc(roomId)}?server_name=${enc(b.name)}`, {});
  }, 60_000);
  afterAll(async () => {
    await Promise.all((servers ?? []).map((s) => s.stop()));
  });

  it('delivers B\'s messages to alice on A', async () => {
    const sent = await apiB.ok(bob, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/hello`, { msgtype: 'm.text', body: 'hello A' });
    await until(async () => ((await timelineOfA()).includes(sent.event_id) ? true : undefined), 'bob\'s message on A');
  });

  it('fetches the events it missed from B with /get_missing_events', async () => {
    const ids = await withBSilent(async () => {
      const out: string[] = [];
      for (const body of ['one', 'two', 'three']) {
        out.push((await apiB.ok(bob, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/gap-${body}`, { msgtype: 'm.text', body })).event_id);
      }
      return out;
    });
    const last = (await b.server.ctx.storage.events.getEvent(ids[2]!))!;
    // Only the newest reaches A: A asks B for the two before it.
    expect(await pushToA([last.pdu])).toEqual({ pdus: { [ids[2]!]: {} } });
    const timeline = await timelineOfA();
    expect(timeline.slice(0, 3)).toEqual([...ids].reverse());
  });

  it('soft-fails an event that its own state allows but A\'s current state does not, and never shows it', async () => {
    const before = await apiA.ok(alice, 'GET', '/sync?timeout=0');
    const fork = (await b.server.ctx.storage.events.getForwardExtremities(roomId))[0]!;
    // bob bans carol; A hears of it.
    const ban = await apiB.ok(bob, 'POST', `/rooms/${enc(roomId)}/ban`, { user_id: carol.userId });
    void ban;
    await until(async () => {
      const state = await apiA.call(alice, 'GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(carol.userId)}`);
      return state.body.membership === 'ban' ? true : undefined;
    }, 'the ban on A');
    // carol's message, made on B before B saw the ban (built on the same parent as the ban).
    const late = await madeOnB(b.server.ctx, roomId, carol.userId, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'too late' } }, [fork]);
    expect(await pushToA([late.pdu])).toEqual({ pdus: { [late.id]: {} } });
    expect((await a.server.ctx.storage.events.getEventInfo(late.id))?.softFailed).toBe(true);

    expect(await timelineOfA(50)).not.toContain(late.id);
    const sync = await apiA.ok(alice, 'GET', `/sync?since=${before.next_batch}&timeout=0`);
    const synced = (sync.rooms?.join?.[roomId]?.timeline.events ?? []).map((e: { event_id: string }) => e.event_id);
    expect(synced).not.toContain(late.id);
    expect((await apiA.call(alice, 'GET', `/rooms/${enc(roomId)}/event/${enc(late.id)}`)).status).toBe(404);
  });

  it('refuses an event whose signature does not verify against B\'s published keys', async () => {
    const tip = (await b.server.ctx.storage.events.getForwardExtremities(roomId))[0]!;
    const good = await madeOnB(b.server.ctx, roomId, bob.userId, { type: 'm.room.message', content: { body: 'signed' } }, [tip]);
    const sigs = good.pdu.signatures as Record<string, Record<string, string>>;
    const forged = structuredClone(good.pdu) as JsonObject;
    const keyId = Object.keys(sigs[b.name]!)[0]!;
    (forged.signatures as Record<string, Record<string, string>>)[b.name]![keyId] = sigs[b.name]![keyId]!.replace(/^./, (ch) => (ch === 'A' ? 'B' : 'A'));
    const res = await pushToA([forged]);
    expect(res.pdus[good.id]?.error).toMatch(/signature/);
    expect(await a.server.ctx.storage.events.getEvent(good.id)).toBeUndefined();
    // The genuine event is accepted.
    expect(await pushToA([good.pdu])).toEqual({ pdus: { [good.id]: {} } });
  });
});
