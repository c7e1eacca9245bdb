/**
 * End-to-end encryption across two real Hearth servers over HTTPS (the multi-server harness),
 * driven by matrix-js-sdk with its Rust crypto: Alice (server A) and Bob (server B) share an
 * encrypted room; each client queries and claims the other's keys through its own server (the
 * federation `/user/keys/query` and `/user/keys/claim`), the room keys travel as to-device
 * messages (m.direct_to_device EDUs), and each side decrypts the other's messages.
 */
import type { Server } from 'node:http';
import type { MatrixClient } from 'matrix-js-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFederatedServers, type FederatedServer } from '../helpers/federation.js';
import { registerUser } from '../helpers/users.js';
import { cryptoClient, eventually, waitForMessage, type CryptoClient } from '../e2ee/sdk.js';

const STEP_TIMEOUT = 180_000;
const EXTRA = [
  'enable_registration: true',
  'rc_message: {per_second: 1000, burst_count: 1000}',
  'rc_joins: {local: {per_second: 1000, burst_count: 1000}, remote: {per_second: 1000, burst_count: 1000}}',
  'federation: {destination_min_retry_interval: 100ms, destination_max_retry_interval: 1s}',
  '',
].join('\n');

describe('E2EE between two servers with matrix-js-sdk Rust crypto', () => {
  let servers: FederatedServer[];
  let a: FederatedServer;
  let b: FederatedServer;
  const clients: MatrixClient[] = [];
  let alice: CryptoClient;
  let bob: CryptoClient;

  beforeAll(async () => {
    servers = await startFederatedServers(2, EXTRA);
    [a, b] = servers as [FederatedServer, FederatedServer];
    await registerUser(a.baseUrl, 'alice');
    await registerUser(b.baseUrl, 'bob');
  });
  afterAll(async () => {
    for (const c of clients) c.stopClient();
    const stopping = Promise.all((servers ?? []).map((s) => s.stop()));
    for (const s of servers ?? []) for (const l of s.server.listeners) (l.app.server as Server).closeAllConnections?.();
    await stopping;
  });

  it(
    'each side decrypts the other\'s messages in a shared encrypted room',
    async () => {
      alice = await cryptoClient(a.baseUrl, 'alice');
      bob = await cryptoClient(b.baseUrl, 'bob');
      clients.push(alice.client, bob.client);

      const roomId = (
        await alice.client.createRoom({
          room_alias_name: 'secret',
          // Public join rule so that Bob can join by alias; history and messages stay encrypted.
          initial_state: [
            { type: 'm.room.join_rules', state_key: '', content: { join_rule: 'public' } },
            { type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } },
          ],
        })
      ).room_id;
      await bob.client.joinRoom(`#secret:${a.name}`);
      await eventually(() => alice.client.getRoom(roomId)?.getMember(bob.user.userId)?.membership === 'join', 'bob joined (alice view)');
      await eventually(async () => (await bob.client.getCrypto()!.isEncryptionEnabledInRoom(roomId)) === true, 'encryption known at B');

      const toBob = waitForMessage(bob.client, roomId, 'hello from A', STEP_TIMEOUT);
      await alice.client.sendTextMessage(roomId, 'hello from A');
      const received = await toBob;
      expect(received.isEncrypted()).toBe(true);
      expect(received.getWireType()).toBe('m.room.encrypted');
      expect(received.getSender()).toBe(alice.user.userId);
      expect(received.getClearContent()?.body).toBe('hello from A');

      const toAlice = waitForMessage(alice.client, roomId, 'hello from B', STEP_TIMEOUT);
      await bob.client.sendTextMessage(roomId, 'hello from B');
      const answer = await toAlice;
      expect(answer.isEncrypted()).toBe(true);
      expect(answer.getClearContent()?.body).toBe('hello from B');

      // Each client knows the other's device through its own server.
      const bobDevices = await alice.client.getCrypto()!.getUserDeviceInfo([bob.user.userId]);
      expect([...(bobDevices.get(bob.user.userId)?.keys() ?? [])]).toContain(bob.user.deviceId);
    },
    STEP_TIMEOUT * 2,
  );
});
