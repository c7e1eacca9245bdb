/**
 * The outgoing queues across an outage, between two real Hearth servers over HTTPS (the
 * multi-server harness): server B is stopped while a user of A sends 200 messages into a room
 * they share (and A itself restarts half-way); A keeps them in its outbox in the database; once
 * B is back, B's user sees all 200, in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/events/types.js';
import { client, enc } from '../helpers/client-api.js';
import { startFederatedServers, type FederatedServer } from '../helpers/federation.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';
import type { FederationSender } from '../../src/federation/sender.js';
import { federationQueuesOf } from '../../src/storage/federation-queues-store.js';

const EXTRA = [
  'enable_registration: true',
  'rc_message: {per_second: 1000, burst_count: 1000}',
  'rc_joins: {local: {per_second: 1000, burst_count: 1000}, remote: {per_second: 1000, burst_count: 1000}}',
  // Short retry intervals: the test waits for the catch-up, not for a production backoff.
  'federation: {destination_min_retry_interval: 100ms, destination_retry_multiplier: 2, destination_max_retry_interval: 1s}',
  '',
].join('\n');

async function until<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('catching up after an outage', () => {
  let servers: FederatedServer[];
  let a: FederatedServer;
  let b: FederatedServer;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let roomId: string;
  const apiA = client(() => a.baseUrl);
  const apiB = client(() => b.baseUrl);

  beforeAll(async () => {
    servers = await startFederatedServers(2, EXTRA);
    [a, b] = servers as [FederatedServer, FederatedServer];
    alice = await registerUser(a.baseUrl, 'alice');
    bob = await registerUser(b.baseUrl, 'bob');
    roomId = (await apiA.ok(alice, 'POST', '/createRoom', { preset: 'public_chat', room_alias_name: 'outage' })).room_id as string;
    await apiB.ok(bob, 'POST', `/join/${enc(`#outage:${a.name}`)}`, {});
    await until(async () => ((await apiA.ok(alice, 'GET', `/rooms/${enc(roomId)}/joined_members`)).joined as JsonObject)[bob.userId], 'bob joined at A');
  });
  afterAll(async () => {
    await Promise.all((servers ?? []).map((s) => s.stop()));
  });

  /** The bodies of the room's messages as B's user reads them, oldest first. */
  const bodiesAtB = async (): Promise<string[]> => {
    const bodies: string[] = [];
    let from: string | undefined;
    for (let page = 0; page < 20; page++) {
      const res = await apiB.ok(bob, 'GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=100${from ? `&from=${enc(from)}` : ''}`);
      const chunk = res.chunk as JsonObject[];
      for (const e of chunk) if (e.type === 'm.room.message') bodies.push((e.content as JsonObject).body as string);
      if (chunk.length === 0 || typeof res.end !== 'string') break;
      from = res.end;
    }
    return bodies.reverse();
  };

  it('B sees all 200 messages sent while it was down, in order', async () => {
    await b.stop();
    const expected = Array.from({ length: 200 }, (_, i) => `while down ${i}`);
    for (const [i, body] of expected.entries()) {
      await apiA.ok(alice, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/down${i}`, { msgtype: 'm.text', body });
      // A restarts too, half-way: its outbox is in the database.
      if (i === 99) {
        expect(await federationQueuesOf(a.server.ctx.storage).pendingCount(b.name)).toBeGreaterThanOrEqual(100);
        await a.restart();
      }
    }
    // They wait in A's outbox for B.
    expect(await federationQueuesOf(a.server.ctx.storage).pendingCount(b.name)).toBeGreaterThanOrEqual(200);

    await b.restart();
    await until(async () => ((await bodiesAtB()).length >= 200 ? true : undefined), 'all 200 messages at B');
    expect(await bodiesAtB()).toEqual(expected);
    await until(async () => ((await federationQueuesOf(a.server.ctx.storage).pendingCount(b.name)) === 0 ? true : undefined), 'A\'s outbox empty');
  }, 180_000);
});

describe('a destination seen up again', () => {
  let servers: FederatedServer[];
  let a: FederatedServer;
  let b: FederatedServer;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let roomId: string;
  const apiA = client(() => a.baseUrl);
  const apiB = client(() => b.baseUrl);

  beforeAll(async () => {
    // A backoff far beyond the test: only "B is up again" can bring the catch-up.
    servers = await startFederatedServers(2, 'enable_registration: true\nfederation: {destination_min_retry_interval: 1h, destination_max_retry_interval: 1h}\n');
    [a, b] = servers as [FederatedServer, FederatedServer];
    alice = await registerUser(a.baseUrl, 'alice');
    bob = await registerUser(b.baseUrl, 'bob');
    roomId = (await apiA.ok(alice, 'POST', '/createRoom', { preset: 'public_chat', room_alias_name: 'back' })).room_id as string;
    await apiB.ok(bob, 'POST', `/join/${enc(`#back:${a.name}`)}`, {});
    await until(async () => ((await apiA.ok(alice, 'GET', `/rooms/${enc(roomId)}/joined_members`)).joined as JsonObject)[bob.userId], 'bob joined at A');
  });
  afterAll(async () => {
    await Promise.all((servers ?? []).map((s) => s.stop()));
  }, 180_000);

  it('gets what waits for it as soon as it sends a signed request', async () => {
    await b.stop();
    await apiA.ok(alice, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/back1`, { msgtype: 'm.text', body: 'are you there?' });
    await until(async () => (a.server.ctx.federation.sender as FederationSender).backoffs().has(b.name) || undefined, 'A backing off B');
    await b.start();
    // B asks A something (a profile query): A now knows B is up.
    await apiB.ok(bob, 'GET', `/profile/${enc(alice.userId)}`);
    await until(async () => {
      const res = await apiB.ok(bob, 'GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=20`);
      return (res.chunk as JsonObject[]).some((e) => (e.content as JsonObject).body === 'are you there?') || undefined;
    }, 'the message at B');
    // It came through A's queue (not fetched by B): the outbox is empty, the backoff forgotten.
    await until(async () => ((await federationQueuesOf(a.server.ctx.storage).pendingCount(b.name)) === 0 ? true : undefined), 'A\'s outbox empty');
    expect((a.server.ctx.federation.sender as FederationSender).backoffs().has(b.name)).toBe(false);
  }, 180_000);
});
