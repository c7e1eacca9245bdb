/**
 * Client-side backfill: a local user who joined a room hosted on another server pages back with
 * /messages past the join; the older history is fetched from the remote with /backfill, checked,
 * stored before everything held (negative stream positions) and answered in order, and never
 * shows up as new in /sync.
 *
 * The remote side is a RemoteRoom (real signatures, real event ids); the join is put in place as
 * the joining flow does it: the room's state as outliers, then the join with the state before it.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerContext } from '../../src/context.js';
import { generateSigningKey } from '../../src/events/signing.js';
import { backfillRoom } from '../../src/federation/backfill.js';
import { RoomEventPipeline } from '../../src/rooms/pipeline.js';
import { InMemoryNotifier } from '../../src/sync/notifier.js';
import { describeEachEngine } from '../helpers/databases.js';
import type { FederationClient } from '../../src/federation/runtime.js';
import { getRoomVersion } from '../../src/rooms/room-versions.js';
import { client } from '../helpers/client-api.js';
import { startTestHomeserver, type TestHomeserver } from '../helpers/server.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';
import { RemoteRoom, TestKeyring, TestServer } from './remote-room.js';

const CONFIG = 'enable_registration: true\nrc_message: {per_second: 1000, burst_count: 1000}\n';
const version = getRoomVersion('10')!;
const zed = '@zed:remote.test';

describe('backfill through /messages', () => {
  let hs: TestHomeserver;
  let ctx: ServerContext;
  let alice: RegisteredUser;
  let room: RemoteRoom;
  let history: string[];
  let joinId: string;
  let originalClient: FederationClient;
  const api = client(() => hs.baseUrl);

  beforeAll(async () => {
    hs = await startTestHomeserver(CONFIG);
    ctx = hs.server.ctx;
    alice = await registerUser(hs.baseUrl, 'alice');
    const remote = new TestServer('remote.test');
    const local = Object.assign(new TestServer('hearth.test'), {});
    Object.defineProperty(local, 'key', { value: ctx.keys.signingKey });
    room = new RemoteRoom(version, remote);
    room.createPublicRoom(zed);
    room.make(zed, { type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'shared' } });
    for (let i = 0; i < 25; i++) room.make(zed, { type: 'm.room.message', content: { msgtype: 'm.text', body: `old ${i}` } });
    history = [...room.order];

    // The remote answers federation requests; signatures of both servers verify.
    originalClient = ctx.federation.client;
    ctx.federation.client = room.client();
    ctx.pipeline.useFederation({ client: room.client(), keyring: new TestKeyring([remote, local]) });

    // alice joins: the room's state (and its auth chain) as outliers, then the join at that state.
    const join = room.make(alice.userId, { type: 'm.room.member', state_key: alice.userId, content: { membership: 'join' } }, { signer: local });
    joinId = join.id;
    const stateBefore = room.events.get(join.id)!.stateBefore;
    for (const id of [...room.authChain(stateBefore.values()), ...stateBefore.values()]) {
      const r = await ctx.pipeline.receive(room.pdu(id), { origin: 'remote.test', roomVersion: version, outlier: true });
      expect(['accepted', 'duplicate']).toContain(r.outcome);
    }
    const joined = await ctx.pipeline.receive(join.pdu, { origin: 'remote.test', roomVersion: version, stateBefore, fetched: true });
    expect(joined.outcome).toBe('accepted');
  });
  afterAll(async () => {
    if (ctx) ctx.federation.client = originalClient;
    await hs?.stop();
  });

  it('pages back past the join into history fetched from the remote, in order, without duplicates', async () => {
    const sync = await api.ok(alice, 'GET', '/sync?timeout=0');
    const after = room.make(zed, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'after the join' } });
    expect((await ctx.pipeline.receive(after.pdu, { origin: 'remote.test', roomVersion: version })).outcome).toBe('accepted');

    const seen: string[] = [];
    let from: string | undefined;
    for (let page = 0; page < 10; page++) {
      const res = await api.ok(alice, 'GET', `/rooms/${encodeURIComponent(room.roomId)}/messages?dir=b&limit=7${from ? `&from=${from}` : ''}`);
      seen.push(...res.chunk.map((e: { event_id: string }) => e.event_id));
      if (!res.end) break;
      from = res.end;
    }
    // Newest first: the message after the join, the join, then the whole history back to the create event.
    expect(seen).toEqual([after.id, joinId, ...history.slice().reverse()]);
    expect(room.requests.filter((r) => r.startsWith('GET /_matrix/federation/v1/backfill/')).length).toBeGreaterThan(0);

    // Backfilled events sit below every position held and are not news for /sync.
    const info = await ctx.storage.events.getEventInfo(history[5]!);
    expect(info?.streamPosition).toBeLessThan(0);
    expect(info?.outlier).toBe(false);
    const next = await api.ok(alice, 'GET', `/sync?since=${sync.next_batch}&timeout=0`);
    const ids = next.rooms?.join?.[room.roomId]?.timeline.events.map((e: { event_id: string }) => e.event_id) ?? [];
    expect(ids).toEqual([after.id]);
    // Current state and the room's tip are unchanged by history.
    expect(await ctx.storage.events.getForwardExtremities(room.roomId)).toEqual([after.id]);

    // Paging forward from the very start goes through the backfilled history in order.
    const forward = await api.ok(alice, 'GET', `/rooms/${encodeURIComponent(room.roomId)}/messages?dir=f&limit=100`);
    expect(forward.chunk.map((e: { event_id: string }) => e.event_id)).toEqual([...history, joinId, after.id]);
  });
});

describeEachEngine('backfilled events in storage', (getStorage) => {
  it('stores them below every position held, oldest first, leaving the tip and current state alone', async () => {
    const storage = getStorage();
    const log = pino({ level: 'silent' });
    const pipeline = new RoomEventPipeline({ storage, serverName: 'local.test', signingKey: generateSigningKey(), notifier: new InMemoryNotifier(), log });
    const remote = new TestServer('remote.test');
    const room = new RemoteRoom(version, remote);
    pipeline.useFederation({ client: room.client(), keyring: new TestKeyring([remote]) });
    room.createPublicRoom(zed);
    for (let i = 0; i < 12; i++) room.make(zed, { type: 'm.room.message', content: { body: `m${i}` } });
    const tip = room.order.at(-1)!;
    const stateBefore = room.events.get(tip)!.stateBefore;
    // As a send_join answer gives them: state and auth chain in no particular order.
    const outliers = [...new Set([...stateBefore.values(), ...room.authChain(stateBefore.values())])].reverse().map((id) => room.pdu(id));
    const results = await pipeline.receiveOutliers(outliers, { origin: 'remote.test', roomVersion: version });
    expect(results.map((r) => r.outcome).every((o) => o === 'accepted' || o === 'duplicate')).toBe(true);
    expect(room.requests).toEqual([]); // nothing had to be fetched
    expect((await pipeline.receive(room.pdu(tip), { origin: 'remote.test', roomVersion: version, stateBefore })).outcome).toBe('accepted');
    const currentBefore = await storage.events.getCurrentState(room.roomId);
    const ctx = { storage, pipeline, log, config: { server_name: 'local.test' }, federation: { client: room.client() } } as unknown as ServerContext;

    let rounds = 0;
    while ((await backfillRoom(ctx, room.roomId, 5)) > 0) rounds++;
    expect(rounds).toBeGreaterThanOrEqual(3);
    expect(await storage.events.getBackwardExtremities(room.roomId)).toEqual([]);

    const max = await storage.events.getMaxStreamPosition();
    const timeline = await storage.events.getEventsBetween(room.roomId, -1e15, max, 100, 'f');
    expect(timeline.map((t) => t.event.event_id)).toEqual(room.order);
    expect(timeline.slice(0, -1).every((t) => t.streamPosition < 0)).toBe(true);
    expect(await storage.events.getForwardExtremities(room.roomId)).toEqual([tip]);
    expect(await storage.events.getCurrentState(room.roomId)).toEqual(currentBefore);
    // History is at its own state: the state before an early message is the state then.
    const early = room.order[6]!;
    expect(await storage.events.getStateAtEvent(early, 'before')).toEqual(room.events.get(early)!.stateBefore);
  });
});
