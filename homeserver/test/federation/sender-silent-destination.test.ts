/**
 * A destination that never answers — a TCP server that accepts connections and stays silent —
 * between real Hearth servers over HTTPS (the multi-server harness): server A has events and
 * to-device messages queued for it, yet A's client API answers as usual and what A sends to
 * server B arrives at B.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/events/types.js';
import { federationQueuesOf } from '../../src/storage/federation-queues-store.js';
import { client, enc } from '../helpers/client-api.js';
import { startFederatedServers, type FederatedServer } from '../helpers/federation.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';

const EXTRA = 'enable_registration: true\nrc_message: {per_second: 1000, burst_count: 1000}\n';

async function until<T>(fn: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a destination that never answers', () => {
  let servers: FederatedServer[];
  let a: FederatedServer;
  let b: FederatedServer;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  let silent: Server;
  const sockets: Socket[] = [];
  let silentName: string;
  const apiA = client(() => a.baseUrl);
  const apiB = client(() => b.baseUrl);

  beforeAll(async () => {
    silent = createServer((socket) => {
      // Accept, read nothing, answer nothing.
      sockets.push(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    // An IP literal with a port is its own server name: no discovery, straight to the socket.
    silentName = `127.0.0.1:${(silent.address() as { port: number }).port}`;
    servers = await startFederatedServers(2, EXTRA);
    [a, b] = servers as [FederatedServer, FederatedServer];
    alice = await registerUser(a.baseUrl, 'alice');
    bob = await registerUser(b.baseUrl, 'bob');
  });
  afterAll(async () => {
    // The silent server goes first, so that no request of A's is left hanging at its shutdown.
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent?.close(r));
    await Promise.all((servers ?? []).map((s) => s.stop()));
  }, 180_000);

  it('keeps A\'s client API answering and A\'s other destinations served', async () => {
    const ghost = `@ghost:${silentName}`;
    const roomId = (await apiA.ok(alice, 'POST', '/createRoom', { preset: 'public_chat' })).room_id as string;
    // A member of the silent server (as its join would have left the room).
    await a.server.ctx.pipeline.send(roomId, ghost, { type: 'm.room.member', state_key: ghost, content: { membership: 'join' } });
    for (let i = 0; i < 5; i++) {
      const sent = await apiA.call(alice, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/s${i}`, { msgtype: 'm.text', body: `to the void ${i}` });
      expect(sent.status).toBe(200);
    }
    await until(async () => (sockets.length > 0 ? true : undefined), 'A connecting to the silent server');

    // Meanwhile, to-device messages for both: B's gets there.
    const since = (await apiB.ok(bob, 'GET', '/sync?timeout=0')).next_batch as string;
    await apiA.ok(alice, 'PUT', '/sendToDevice/org.example.hello/t1', {
      messages: { [ghost]: { '*': { to: 'ghost' } }, [bob.userId]: { [bob.deviceId]: { to: 'bob' } } },
    });
    const events = await until(async () => {
      const sync = await apiB.ok(bob, 'GET', `/sync?timeout=0&since=${enc(since)}`);
      const got = (sync.to_device as JsonObject | undefined)?.events as JsonObject[] | undefined;
      return got && got.length > 0 ? got : undefined;
    }, 'the to-device message at B');
    expect(events).toEqual([{ type: 'org.example.hello', sender: alice.userId, content: { to: 'bob' } }]);

    // The silent server's items still wait (nothing was lost, nothing was answered).
    expect(await federationQueuesOf(a.server.ctx.storage).pendingCount(silentName)).toBeGreaterThanOrEqual(6);
    const profile = await apiA.call(alice, 'GET', `/profile/${enc(alice.userId)}`);
    expect(profile.status).toBe(200);
  }, 180_000);
});
