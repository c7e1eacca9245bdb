/**
 * Federation acceptance (issue 8, "Done when"): three real Hearth servers over loopback HTTPS, used
 * by plain HTTP clients exactly as users would. Create a room on A, join from B and C, messages every
 * way, racing and forked state resolved identically everywhere, a ban on A enforced on B and C,
 * invites across servers, a late joiner backfilling history, typing and receipts crossing, profile
 * and directory queries. (E2EE, forged events and offline catch-up have their own files.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerContext } from '../../src/context.js';
import { computeEventId } from '../../src/events/event-id.js';
import { signEvent } from '../../src/events/event-signing.js';
import { stateKey, type JsonObject, type Pdu } from '../../src/events/types.js';
import { authEventTypes } from '../../src/rooms/auth.js';
import { getRoomVersion } from '../../src/rooms/room-versions.js';
import { client, enc, type Client } from '../helpers/client-api.js';
import { startFederatedServers, type FederatedServer } from '../helpers/federation.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';

const EXTRA = 'enable_registration: true\n';

/** Polls `fn` until it gives a value; the deadline only guards against a hang. */
async function until<T>(fn: () => Promise<T | undefined | false>, what: string, deadlineMs = 20_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A user's /sync stream: everything seen so far, per room, in the order /sync gave it. */
class SyncReader {
  private since: string | undefined;
  readonly timeline = new Map<string, JsonObject[]>();
  readonly ephemeral = new Map<string, JsonObject[]>();
  readonly invites = new Set<string>();
  constructor(
    private readonly api: Client,
    private readonly user: RegisteredUser,
  ) {}
  async poll(): Promise<void> {
    const body = await this.api.ok(this.user, 'GET', `/sync?timeout=0${this.since ? `&since=${enc(this.since)}` : ''}`);
    this.since = body.next_batch;
    for (const [roomId, room] of Object.entries((body.rooms?.join ?? {}) as Record<string, JsonObject>)) {
      const tl = ((room.timeline as JsonObject | undefined)?.events ?? []) as JsonObject[];
      this.timeline.set(roomId, [...(this.timeline.get(roomId) ?? []), ...tl]);
      const eph = ((room.ephemeral as JsonObject | undefined)?.events ?? []) as JsonObject[];
      this.ephemeral.set(roomId, [...(this.ephemeral.get(roomId) ?? []), ...eph]);
    }
    for (const roomId of Object.keys(body.rooms?.invite ?? {})) this.invites.add(roomId);
  }
  bodies(roomId: string): string[] {
    return (this.timeline.get(roomId) ?? [])
      .filter((e) => e.type === 'm.room.message')
      .map((e) => (e.content as JsonObject).body as string);
  }
  /** Polls until all `bodies` were seen; returns the message bodies in /sync order. */
  async waitForBodies(roomId: string, bodies: string[], what: string): Promise<string[]> {
    return until(async () => {
      await this.poll();
      const seen = this.bodies(roomId);
      return bodies.every((b) => seen.includes(b)) ? seen : undefined;
    }, what);
  }
}

/**
 * A message made and signed by a server by hand on top of `prev`, as a server ignoring the room's
 * rules would send it (its own client API would refuse it).
 */
async function forgedMessage(ctx: ServerContext, roomId: string, sender: string, body: string, prev: string[]): Promise<{ pdu: Pdu; id: string }> {
  const version = getRoomVersion((await ctx.storage.rooms.getRoomVersion(roomId))!)!;
  const prevEvents = [...(await ctx.storage.events.getEvents(prev)).values()];
  const state = (await ctx.storage.events.getStateAtEvent(prev[0]!, 'after'))!;
  const draft = { type: 'm.room.message', content: { msgtype: 'm.text', body } };
  const auth = authEventTypes({ ...draft, sender }, version)
    .map(([t, sk]) => state.get(stateKey(t, sk)))
    .filter((id): id is string => id !== undefined);
  const pdu: Pdu = {
    room_id: roomId,
    ...draft,
    sender,
    origin: ctx.config.server_name,
    origin_server_ts: Date.now(),
    depth: Math.max(...prevEvents.map((e) => e.depth)) + 1,
    prev_events: prev,
    auth_events: auth,
  };
  const signed = signEvent(pdu, ctx.config.server_name, ctx.keys.signingKey, version);
  return { pdu: signed, id: computeEventId(signed, version) };
}

describe('federation acceptance (three servers)', () => {
  let servers: FederatedServer[];
  let a: FederatedServer;
  let b: FederatedServer;
  let c: FederatedServer;
  let alice: RegisteredUser; // A
  let bob: RegisteredUser; // B
  let carol: RegisteredUser; // C
  const apiA = client(() => a.baseUrl);
  const apiB = client(() => b.baseUrl);
  const apiC = client(() => c.baseUrl);
  let roomId: string;

  beforeAll(async () => {
    servers = await startFederatedServers(3, EXTRA);
    [a, b, c] = servers as [FederatedServer, FederatedServer, FederatedServer];
    alice = await registerUser(a.baseUrl, 'alice');
    bob = await registerUser(b.baseUrl, 'bob');
    carol = await registerUser(c.baseUrl, 'carol');
  }, 60_000);
  afterAll(async () => {
    await Promise.all((servers ?? []).map((s) => s.stop()));
  });

  const send = (api: Client, user: RegisteredUser, room: string, body: string) =>
    api.ok(user, 'PUT', `/rooms/${enc(room)}/send/m.room.message/${enc(`${body}-${Math.random()}`)}`, { msgtype: 'm.text', body });
  const topicOn = async (api: Client, user: RegisteredUser, room: string) =>
    (await api.call(user, 'GET', `/rooms/${enc(room)}/state/m.room.topic/`)).body?.topic as string | undefined;
  const memberOn = async (api: Client, user: RegisteredUser, room: string, who: string) =>
    (await api.call(user, 'GET', `/rooms/${enc(room)}/state/m.room.member/${enc(who)}`)).body?.membership as string | undefined;

  it('1. a room on A joined from B (by id) and C (by alias); messages every way, in order', async () => {
    roomId = (await apiA.ok(alice, 'POST', '/createRoom', {
      preset: 'public_chat', name: 'Acceptance', room_alias_name: 'acceptance', room_version: '11',
    })).room_id;
    expect(await apiB.ok(bob, 'POST', `/join/${enc(roomId)}?server_name=${enc(a.name)}`, {})).toEqual({ room_id: roomId });
    expect(await apiC.ok(carol, 'POST', `/join/${enc(`#acceptance:${a.name}`)}`, {})).toEqual({ room_id: roomId });
    // Everyone sees everyone joined before talking.
    for (const [api, user] of [[apiA, alice], [apiB, bob], [apiC, carol]] as const) {
      for (const who of [alice, bob, carol]) {
        await until(async () => (await memberOn(api, user, roomId, who.userId)) === 'join', `${who.userId} joined on ${user.userId}`);
      }
    }

    const readers = { a: new SyncReader(apiA, alice), b: new SyncReader(apiB, bob), c: new SyncReader(apiC, carol) };
    for (const r of Object.values(readers)) await r.poll();
    const fromA = ['a1', 'a2', 'a3'];
    const fromB = ['b1', 'b2', 'b3'];
    const fromC = ['c1', 'c2', 'c3'];
    for (const m of fromA) await send(apiA, alice, roomId, m);
    for (const m of fromB) await send(apiB, bob, roomId, m);
    for (const m of fromC) await send(apiC, carol, roomId, m);

    const inOrder = (seen: string[], sent: string[]) => expect(seen.filter((s) => sent.includes(s))).toEqual(sent);
    const onA = await readers.a.waitForBodies(roomId, [...fromB, ...fromC], 'B and C messages on A');
    const onB = await readers.b.waitForBodies(roomId, [...fromA, ...fromC], 'A and C messages on B');
    const onC = await readers.c.waitForBodies(roomId, [...fromA, ...fromB], 'A and B messages on C');
    for (const seen of [onA, onB, onC]) {
      inOrder(seen, fromA);
      inOrder(seen, fromB);
      inOrder(seen, fromC);
    }
  }, 60_000);

  /** Waits until every server holds all the given events (the branches have reached everyone). */
  const heldEverywhere = async (eventIds: string[]) => {
    for (const [api, user] of [[apiA, alice], [apiB, bob], [apiC, carol]] as const) {
      for (const id of eventIds) {
        await until(async () => (await api.call(user, 'GET', `/rooms/${enc(roomId)}/event/${enc(id)}`)).status === 200, `${id} held by ${user.userId}`, 30_000);
      }
    }
  };
  /** Each server's current state for the given keys, as the clients read it. */
  const stateViews = async (types: string[]) =>
    Promise.all(
      ([[apiA, alice], [apiB, bob], [apiC, carol]] as const).map(async ([api, user]) => {
        const view: Record<string, unknown> = {};
        for (const t of types) view[t] = (await api.call(user, 'GET', `/rooms/${enc(roomId)}/state/${t}/`)).body;
        return view;
      }),
    );

  it('2a. a topic change racing on A and B ends identical on A, B and C', async () => {
    // Bob gets power to set the topic.
    const pl = await apiA.ok(alice, 'GET', `/rooms/${enc(roomId)}/state/m.room.power_levels/`);
    await apiA.ok(alice, 'PUT', `/rooms/${enc(roomId)}/state/m.room.power_levels/`, { ...pl, users: { ...pl.users, [bob.userId]: 50 } });
    await until(async () => (await apiB.ok(bob, 'GET', `/rooms/${enc(roomId)}/state/m.room.power_levels/`)).users?.[bob.userId] === 50, 'power levels on B');

    const [fromA, fromB] = await Promise.all([
      apiA.ok(alice, 'PUT', `/rooms/${enc(roomId)}/state/m.room.topic/`, { topic: 'topic from A' }),
      apiB.ok(bob, 'PUT', `/rooms/${enc(roomId)}/state/m.room.topic/`, { topic: 'topic from B' }),
    ]);
    // A message from each side afterwards merges the branches.
    const msgA = await send(apiA, alice, roomId, 'after the race (A)');
    const msgB = await send(apiB, bob, roomId, 'after the race (B)');
    await heldEverywhere([fromA.event_id, fromB.event_id, msgA.event_id, msgB.event_id]);
    const settled = await until(async () => {
      const views = (await stateViews(['m.room.topic'])).map((v) => JSON.stringify(v));
      return views.every((v) => v === views[0]) ? views[0] : undefined;
    }, 'the same topic on A, B and C');
    expect([{ 'm.room.topic': { topic: 'topic from A' } }, { 'm.room.topic': { topic: 'topic from B' } }]).toContainEqual(JSON.parse(settled));
  }, 60_000);

  it('2b. a genuine fork (B changes state while A is stopped, A then changes the same state) converges everywhere', async () => {
    await a.stop();
    const onB = await apiB.ok(bob, 'PUT', `/rooms/${enc(roomId)}/state/m.room.topic/`, { topic: 'written on B while A was down' });
    const msgB = await send(apiB, bob, roomId, 'while A was down');
    await a.start();
    // A's own branch on the same state key and another one, made on A's stale view of the room.
    const onA = await apiA.ok(alice, 'PUT', `/rooms/${enc(roomId)}/state/m.room.topic/`, { topic: 'written on A after its restart' });
    const nameA = await apiA.ok(alice, 'PUT', `/rooms/${enc(roomId)}/state/m.room.name/`, { name: 'named after the restart' });
    const msgA = await send(apiA, alice, roomId, 'after restart');
    await heldEverywhere([onB.event_id, msgB.event_id, onA.event_id, nameA.event_id, msgA.event_id]);
    // One more message on each side, so every server's extremities include both branches.
    const tailA = await send(apiA, alice, roomId, 'merged (A)');
    const tailB = await send(apiB, bob, roomId, 'merged (B)');
    await heldEverywhere([tailA.event_id, tailB.event_id]);
    const settled = await until(async () => {
      const views = (await stateViews(['m.room.topic', 'm.room.name'])).map((v) => JSON.stringify(v));
      return views.every((v) => v === views[0]) ? views[0] : undefined;
    }, 'the resolved state on all three', 30_000);
    const state = JSON.parse(settled);
    expect(state['m.room.name']).toEqual({ name: 'named after the restart' });
    expect([{ topic: 'written on B while A was down' }, { topic: 'written on A after its restart' }]).toContainEqual(state['m.room.topic']);
  }, 60_000);

  it('3. a ban on A is enforced on B and C: the banned user cannot send nor rejoin', async () => {
    const readerA = new SyncReader(apiA, alice);
    const readerB = new SyncReader(apiB, bob);
    await readerA.poll();
    await readerB.poll();
    // C's view of the room just before the ban: a stale fork C could still build on.
    const beforeBan = await c.server.ctx.storage.events.getForwardExtremities(roomId);
    await apiA.ok(alice, 'POST', `/rooms/${enc(roomId)}/ban`, { user_id: carol.userId, reason: 'acceptance' });
    await until(async () => (await memberOn(apiB, bob, roomId, carol.userId)) === 'ban', 'the ban on B');
    await until(async () => (await memberOn(apiC, carol, roomId, carol.userId)) === 'ban', 'the ban on C');

    const res = await apiC.call(carol, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/after-ban`, { msgtype: 'm.text', body: 'sent after the ban' });
    expect(res.status).toBe(403);
    const rejoin = await apiC.call(carol, 'POST', `/join/${enc(roomId)}?server_name=${enc(a.name)}`, {});
    expect(rejoin.status).toBe(403);
    // C's server itself ignoring the ban: a message from carol on the current tip (fails the auth
    // rules) and one on the pre-ban fork (allowed at its own state, not at current state).
    const cCtx = c.server.ctx;
    const onTip = await forgedMessage(cCtx, roomId, carol.userId, 'forged on the tip', await cCtx.storage.events.getForwardExtremities(roomId));
    const onFork = await forgedMessage(cCtx, roomId, carol.userId, 'forged on the fork', beforeBan);
    for (const target of [a, b]) {
      const res = await cCtx.federation.client.request<{ pdus: Record<string, { error?: string }> }>(target.name, {
        method: 'PUT',
        path: `/_matrix/federation/v1/send/acceptance-ban-${target.name}-${Date.now()}`,
        body: { origin: c.name, origin_server_ts: Date.now(), pdus: [onTip.pdu, onFork.pdu] },
      });
      // The tip one fails the auth rules; the fork one is soft-failed (kept, never shown).
      expect(res.pdus[onTip.id]?.error).toBeTruthy();
      const fork = await target.server.ctx.storage.events.getEventInfo(onFork.id);
      expect(fork).toMatchObject({ softFailed: true, rejectedReason: null });
    }
    // A later message from A shows up, carol's never do.
    await send(apiA, alice, roomId, 'after the ban');
    for (const [r, api, user] of [[readerA, apiA, alice], [readerB, apiB, bob]] as const) {
      const seen = await r.waitForBodies(roomId, ['after the ban'], 'the post-ban message');
      expect(seen).not.toContain('sent after the ban');
      expect(seen).not.toContain('forged on the tip');
      expect(seen).not.toContain('forged on the fork');
      const history = (await api.ok(user, 'GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=50`)).chunk as JsonObject[];
      const ids = history.map((e) => e.event_id);
      expect(ids).not.toContain(onTip.id);
      expect(ids).not.toContain(onFork.id);
    }
    expect(await memberOn(apiA, alice, roomId, carol.userId)).toBe('ban');
  }, 60_000);

  it('4. an invite from A to a user on C who is not in the room: seen, accepted, joined', async () => {
    const dave = await registerUser(c.baseUrl, 'dave');
    const priv = (await apiA.ok(alice, 'POST', '/createRoom', { preset: 'private_chat', name: 'Private' })).room_id as string;
    await apiA.ok(alice, 'POST', `/rooms/${enc(priv)}/invite`, { user_id: dave.userId });
    const reader = new SyncReader(apiC, dave);
    await until(async () => {
      await reader.poll();
      return reader.invites.has(priv);
    }, 'the invite in dave\'s sync');
    expect(await apiC.ok(dave, 'POST', `/rooms/${enc(priv)}/join`, {})).toEqual({ room_id: priv });
    await until(async () => (await memberOn(apiA, alice, priv, dave.userId)) === 'join', 'dave joined on A');
    await send(apiA, alice, priv, 'welcome dave');
    await reader.waitForBodies(priv, ['welcome dave'], 'a message after the join');
  }, 60_000);

  it('5. a late joiner on a new server backfills 30+ messages in order, back to the creation', async () => {
    // Version 12: its create event has no room_id (backfill once dropped it, so history stopped short).
    const hist = (await apiA.ok(alice, 'POST', '/createRoom', { preset: 'public_chat', name: 'History', room_version: '12' })).room_id as string;
    const sent = Array.from({ length: 35 }, (_, i) => `history ${i}`);
    for (const m of sent) await send(apiA, alice, hist, m);
    const erin = await registerUser(c.baseUrl, 'erin'); // C is not in this room yet
    await apiC.ok(erin, 'POST', `/join/${enc(hist)}?server_name=${enc(a.name)}`, {});

    const chunk: JsonObject[] = [];
    let from: string | undefined;
    for (let page = 0; page < 20; page++) {
      const body = await apiC.ok(erin, 'GET', `/rooms/${enc(hist)}/messages?dir=b&limit=10${from ? `&from=${enc(from)}` : ''}`);
      chunk.push(...(body.chunk as JsonObject[]));
      if (!body.end || (body.chunk as JsonObject[]).length === 0) break;
      from = body.end;
    }
    const messages = chunk.filter((e) => e.type === 'm.room.message').map((e) => (e.content as JsonObject).body).reverse();
    expect(messages).toEqual(sent);
    expect(chunk.at(-1)?.type).toBe('m.room.create');
    const ids = chunk.map((e) => e.event_id);
    expect(new Set(ids).size).toBe(ids.length);
  }, 60_000);

  it('6. typing and read receipts from A show in B\'s /sync ephemeral events', async () => {
    const reader = new SyncReader(apiB, bob);
    await reader.poll();
    const { event_id: eventId } = await send(apiA, alice, roomId, 'read me');
    await reader.waitForBodies(roomId, ['read me'], 'the message on B');
    await apiA.ok(alice, 'PUT', `/rooms/${enc(roomId)}/typing/${enc(alice.userId)}`, { typing: true, timeout: 30_000 });
    await apiA.ok(alice, 'POST', `/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, {});
    await until(async () => {
      await reader.poll();
      const eph = reader.ephemeral.get(roomId) ?? [];
      const typing = eph.some((e) => e.type === 'm.typing' && ((e.content as JsonObject).user_ids as string[]).includes(alice.userId));
      const receipt = eph.some((e) => e.type === 'm.receipt' && (e.content as Record<string, Record<string, Record<string, unknown>>>)[eventId]?.['m.read']?.[alice.userId] !== undefined);
      return typing && receipt;
    }, 'typing and receipt on B');
  }, 60_000);

  it('7. profile and directory queries across servers', async () => {
    await apiA.ok(alice, 'PUT', `/profile/${enc(alice.userId)}/displayname`, { displayname: 'Alice of A' });
    expect(await apiB.ok(bob, 'GET', `/profile/${enc(alice.userId)}`)).toMatchObject({ displayname: 'Alice of A' });
    const dir = await apiC.ok(carol, 'GET', `/directory/room/${enc(`#acceptance:${a.name}`)}`);
    expect(dir.room_id).toBe(roomId);
    expect(dir.servers).toContain(a.name);
  }, 30_000);
});
