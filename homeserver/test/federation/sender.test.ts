/**
 * The outgoing federation queues (federation/sender.ts) over real storage on both engines: which
 * servers get a PDU, batching, order, the database outbox across a restart and a crash, backoff
 * and `markDestinationUp`, and destinations that fail or never answer not holding up the others.
 *
 * The transport is replaced by a recording FederationClient (the real one, with TLS between
 * servers, is exercised by the multi-server tests); everything else is the real code.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { HearthConfig } from '../../src/config/load.js';
import type { JsonObject } from '../../src/events/types.js';
import { generateSigningKey } from '../../src/events/signing.js';
import {
  FederationRequestError,
  type FederationClient,
  type FederationRequest,
  type FederationResponseStream,
} from '../../src/federation/runtime.js';
import { FederationSender, MAX_EDUS_PER_TXN, MAX_PDUS_PER_TXN, retryPolicy } from '../../src/federation/sender.js';
import { createRoom } from '../../src/rooms/create-room.js';
import { RoomEventPipeline } from '../../src/rooms/pipeline.js';
import type { Storage } from '../../src/storage/database.js';
import { federationQueuesOf } from '../../src/storage/federation-queues-store.js';
import { InMemoryNotifier } from '../../src/sync/notifier.js';
import { describeEachEngine } from '../helpers/databases.js';

const LOCAL = 'local.test';
const alice = `@alice:${LOCAL}`;
const log = pino({ level: 'silent' });

type Mode = 'ok' | 'fail' | 'hang' | 'refuse';

/** A transport that records every transaction and fails or hangs per destination as told. */
class RecordingClient implements FederationClient {
  readonly delivered: { destination: string; body: JsonObject }[] = [];
  attempts = new Map<string, number>();
  readonly modes = new Map<string, Mode>();

  async request<T>(destination: string, req: FederationRequest): Promise<T> {
    this.attempts.set(destination, (this.attempts.get(destination) ?? 0) + 1);
    expect(req.method).toBe('PUT');
    expect(req.path).toMatch(/^\/_matrix\/federation\/v1\/send\/[^/]+$/);
    const mode = this.modes.get(destination) ?? 'ok';
    if (mode === 'hang') return new Promise<T>(() => {});
    if (mode === 'fail') throw new FederationRequestError('connection refused', destination);
    if (mode === 'refuse') throw new FederationRequestError('bad', destination, 400, 'M_BAD_JSON');
    this.delivered.push({ destination, body: req.body! });
    return { pdus: {} } as T;
  }

  async requestStream(destination: string): Promise<FederationResponseStream> {
    throw new FederationRequestError('not used', destination);
  }

  pdusTo(destination: string): string[] {
    return this.delivered
      .filter((d) => d.destination === destination)
      .flatMap((d) => (d.body.pdus as JsonObject[]).map((p) => p.content && (p as { content: JsonObject }).content.body))
      .filter((b): b is string => typeof b === 'string');
  }

  edusTo(destination: string): JsonObject[] {
    return this.delivered.filter((d) => d.destination === destination).flatMap((d) => d.body.edus as JsonObject[]);
  }
}

function config(extra: Record<string, unknown> = {}): HearthConfig {
  return {
    server_name: LOCAL,
    federation: { destination_min_retry_interval: 20, destination_retry_multiplier: 2, destination_max_retry_interval: 200 },
    ...extra,
  } as unknown as HearthConfig;
}

/** Polls until `check` holds (a deadline only guards against a hang; nothing is timed). */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Generous: each test makes a room and tens of events on both engines, on a shared machine.
const SLOW = 120_000;

describeEachEngine('federation sender', (getStorage, engineCtx) => {
  const senders: FederationSender[] = [];
  afterEach(async () => {
    for (const s of senders.splice(0)) await s.close();
  });

  function setup(storage: Storage, client: RecordingClient, opts: { attachSender?: boolean; config?: HearthConfig } = {}) {
    const pipeline = new RoomEventPipeline({ storage, serverName: LOCAL, signingKey: generateSigningKey(), notifier: new InMemoryNotifier(), log });
    const sender = new FederationSender({ config: opts.config ?? config(), storage, client, log });
    senders.push(sender);
    if (opts.attachSender !== false) pipeline.onSent((event, position) => sender.sendPdu(event, position));
    const room = async (remoteMembers: string[]) => {
      const roomId = await createRoom({ storage, pipeline, serverName: LOCAL, defaultRoomVersion: '10' }, alice, { preset: 'public_chat' });
      // Remote members as their joins would leave them (the receiving side is tested elsewhere).
      for (const user of remoteMembers) await pipeline.send(roomId, user, { type: 'm.room.member', state_key: user, content: { membership: 'join' } });
      return roomId;
    };
    const say = (roomId: string, body: string) => pipeline.send(roomId, alice, { type: 'm.room.message', content: { msgtype: 'm.text', body } });
    return { pipeline, sender, room, say };
  }

  it('sends each PDU to the servers with joined members, never to itself, in order and in batches of at most 50', async () => {
    const client = new RecordingClient();
    const { room, say, sender, pipeline } = setup(getStorage(), client);
    const roomId = await room(['@bob:b.test', '@carol:c.test']);
    for (let i = 0; i < 60; i++) await say(roomId, `m${i}`);
    await sender.flushQueue();
    await until(() => client.pdusTo('b.test').length === 60 && client.pdusTo('c.test').length === 60, 'all messages delivered');
    const expected = Array.from({ length: 60 }, (_, i) => `m${i}`);
    expect(client.pdusTo('b.test')).toEqual(expected);
    expect(client.pdusTo('c.test')).toEqual(expected);
    expect(client.delivered.some((d) => d.destination === LOCAL)).toBe(false);
    for (const d of client.delivered) {
      expect((d.body.pdus as unknown[]).length).toBeLessThanOrEqual(MAX_PDUS_PER_TXN);
      expect(d.body.origin).toBe(LOCAL);
      expect(typeof d.body.origin_server_ts).toBe('number');
    }
    // A kick goes to the kicked user's server, though nobody there is joined any more.
    await pipeline.send(roomId, alice, { type: 'm.room.member', state_key: '@carol:c.test', content: { membership: 'leave' } });
    await sender.flushQueue();
    await until(() => client.pdusTo('c.test').length === 60 && client.delivered.filter((d) => d.destination === 'c.test').some((d) => (d.body.pdus as JsonObject[]).some((p) => p.state_key === '@carol:c.test')), 'the kick delivered');
    // An invite reaches a server outside the room through /invite only, not in a transaction.
    await pipeline.send(roomId, alice, { type: 'm.room.member', state_key: '@dan:d.test', content: { membership: 'invite' } });
    await pipeline.send(roomId, alice, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'after the invite' } });
    await sender.flushQueue();
    await until(() => client.pdusTo('b.test').includes('after the invite'), 'the next message delivered');
    expect(client.delivered.some((d) => d.destination === 'd.test')).toBe(false);
    // And c.test, with nobody left, gets nothing more.
    expect(client.pdusTo('c.test')).not.toContain('after the invite');
    // Delivered items leave the outbox (right after their transaction's answer).
    await until(async () => (await federationQueuesOf(getStorage()).pendingDestinations()).length === 0, 'an empty outbox');
  }, SLOW);

  it('keeps what a failing destination missed, retries with backoff, and catches up in order when it is up again', async () => {
    const client = new RecordingClient();
    const { room, say, sender } = setup(getStorage(), client);
    const roomId = await room(['@bob:down.test', '@carol:up.test']);
    client.modes.set('down.test', 'fail');
    for (let i = 0; i < 30; i++) await say(roomId, `x${i}`);
    await sender.flushQueue();
    await until(() => client.pdusTo('up.test').length === 30, 'the healthy destination served');
    await until(() => (client.attempts.get('down.test') ?? 0) >= 2, 'retries');
    expect(sender.backoffs().has('down.test')).toBe(true);
    expect(await federationQueuesOf(getStorage()).pendingCount('down.test')).toBeGreaterThanOrEqual(30);

    client.modes.set('down.test', 'ok');
    sender.markDestinationUp('down.test');
    await until(() => client.pdusTo('down.test').length >= 30, 'catch-up');
    expect(client.pdusTo('down.test').filter((b) => b.startsWith('x'))).toEqual(Array.from({ length: 30 }, (_, i) => `x${i}`));
    expect(sender.backoffs().has('down.test')).toBe(false);
    await until(async () => (await federationQueuesOf(getStorage()).pendingCount('down.test')) === 0, 'an empty outbox');
  }, SLOW);

  it('resumes from the database after a restart, and queues events persisted but never queued (crash)', async () => {
    const client = new RecordingClient();
    const first = setup(getStorage(), client);
    const roomId = await first.room(['@bob:b.test']);
    client.modes.set('b.test', 'fail');
    for (let i = 0; i < 10; i++) await first.say(roomId, `before${i}`);
    await first.sender.flushQueue();
    await first.sender.close();

    // Events persisted while no sender listened: as if the process died before queueing them.
    const storage = await engineCtx.reopen();
    const orphan = setup(storage, client, { attachSender: false });
    await orphan.sender.close();
    for (let i = 0; i < 5; i++) await orphan.say(roomId, `crash${i}`);

    client.modes.set('b.test', 'ok');
    const second = setup(storage, client);
    await until(() => client.pdusTo('b.test').length >= 15, 'the queue resumed');
    const bodies = client.pdusTo('b.test').filter((b) => b.startsWith('before') || b.startsWith('crash'));
    expect(bodies).toEqual([...Array.from({ length: 10 }, (_, i) => `before${i}`), ...Array.from({ length: 5 }, (_, i) => `crash${i}`)]);
    await second.sender.close();
  }, SLOW);

  it('a destination that never answers delays no other destination', async () => {
    const client = new RecordingClient();
    client.modes.set('silent.test', 'hang');
    const { room, say, sender } = setup(getStorage(), client);
    const roomId = await room(['@bob:silent.test', '@carol:fine.test']);
    for (let i = 0; i < 5; i++) await say(roomId, `s${i}`);
    await sender.flushQueue();
    await until(() => client.pdusTo('fine.test').length === 5, 'the other destination served');
    sender.sendEdu(['fine.test', 'silent.test'], { edu_type: 'm.receipt', content: { n: 1 } });
    await until(() => client.edusTo('fine.test').length === 1, 'the EDU to the other destination');
    // The silent destination has exactly one transaction in flight.
    expect(client.attempts.get('silent.test')).toBe(1);
  }, SLOW);

  it('batches EDUs (at most 100 per transaction), keeps persistent ones and drops typing for a destination that is down', async () => {
    const client = new RecordingClient();
    // A backoff longer than the test: the destination stays down until it is marked up.
    const longBackoff = config({ federation: { destination_min_retry_interval: '1h' } });
    const { sender } = setup(getStorage(), client, { config: longBackoff });
    client.modes.set('e.test', 'fail');
    for (let i = 0; i < 150; i++) sender.sendEdu(['e.test', LOCAL], { edu_type: 'm.direct_to_device', content: { message_id: `id${i}` } });
    await sender.flushQueue();
    await until(() => sender.backoffs().has('e.test'), 'backoff');
    sender.sendEdu(['e.test'], { edu_type: 'm.typing', content: { room_id: '!r:x', user_id: alice, typing: true } });
    client.modes.set('e.test', 'ok');
    sender.markDestinationUp('e.test');
    await until(() => client.edusTo('e.test').length >= 150, 'EDUs delivered');
    const edus = client.edusTo('e.test');
    expect(edus.map((e) => (e.content as JsonObject).message_id)).toEqual(Array.from({ length: 150 }, (_, i) => `id${i}`));
    expect(edus.some((e) => e.edu_type === 'm.typing')).toBe(false);
    for (const d of client.delivered) expect((d.body.edus as unknown[]).length).toBeLessThanOrEqual(MAX_EDUS_PER_TXN);
    expect(client.delivered.some((d) => d.destination === LOCAL)).toBe(false);

    // Typing to a destination that is up goes out (from memory).
    sender.sendEdu(['e.test'], { edu_type: 'm.typing', content: { room_id: '!r:x', user_id: alice, typing: true } });
    await until(() => client.edusTo('e.test').some((e) => e.edu_type === 'm.typing'), 'typing delivered');
  }, SLOW);

  it('drops a transaction the destination refuses for good (400) instead of blocking its queue', async () => {
    const client = new RecordingClient();
    const { sender } = setup(getStorage(), client);
    client.modes.set('strict.test', 'refuse');
    sender.sendEdu(['strict.test'], { edu_type: 'm.receipt', content: { a: 1 } });
    await sender.flushQueue();
    await until(async () => (await federationQueuesOf(getStorage()).pendingCount('strict.test')) === 0, 'the refused item dropped');
    expect(sender.backoffs().has('strict.test')).toBe(false);
  });
});

describe('retry policy', () => {
  it('reads the federation.destination_* durations, with defaults', () => {
    expect(retryPolicy({ server_name: 'x' } as HearthConfig)).toEqual({ minMs: 10_000, multiplier: 2, maxMs: 3_600_000 });
    expect(
      retryPolicy(config({ federation: { destination_min_retry_interval: '1m', destination_retry_multiplier: 3, destination_max_retry_interval: '2h' } })),
    ).toEqual({ minMs: 60_000, multiplier: 3, maxMs: 7_200_000 });
  });
});
