/**
 * EDUs crossing between two real Hearth servers over HTTPS (the multi-server harness): typing
 * notifications and read receipts of a user of one server reach the /sync of a user of the
 * other; presence too; to-device messages reach a remote device once; a new device or new
 * cross-signing keys of a user show up in the other server's `device_lists.changed` and keys; and
 * a user signs (verifies) a remote user's master key with their user-signing key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/events/types.js';
import { client, enc } from '../helpers/client-api.js';
import { startFederatedServers, type FederatedServer } from '../helpers/federation.js';
import { loginUser, registerUser, type RegisteredUser } from '../helpers/users.js';
import { crossSigningSet, signed, TestDevice } from '../e2ee/keys.js';
import { federationQueuesOf } from '../../src/storage/federation-queues-store.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Sync = any;

const EXTRA = 'enable_registration: true\nrc_message: {per_second: 1000, burst_count: 1000}\nrc_joins: {local: {per_second: 1000, burst_count: 1000}, remote: {per_second: 1000, burst_count: 1000}}\n';

/** Polls until `check` holds (the deadline only guards against a hang; nothing is timed). */
async function until<T>(fn: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('EDUs between two servers', () => {
  let servers: FederatedServer[];
  let a: FederatedServer;
  let b: FederatedServer;
  let alice: RegisteredUser; // on A, creates the room
  let bob: RegisteredUser; // on B, joins it
  let roomId: string;
  const apiA = client(() => a.baseUrl);
  const apiB = client(() => b.baseUrl);
  const since = new Map<string, string>();

  /** The user's sync since their previous one (timeout 0). */
  const syncOf = async (api: typeof apiA, user: RegisteredUser): Promise<Sync> => {
    const from = since.get(user.accessToken);
    const body = await api.ok(user, 'GET', `/sync?timeout=0${from ? `&since=${enc(from)}` : ''}`);
    since.set(user.accessToken, body.next_batch as string);
    return body;
  };
  /** Syncs until the room shows an ephemeral event of `type` matching `match`. */
  const untilEphemeral = (api: typeof apiA, user: RegisteredUser, type: string, match: (e: JsonObject) => boolean) =>
    until(async () => {
      const sync = await syncOf(api, user);
      const events: JsonObject[] = sync.rooms?.join?.[roomId]?.ephemeral?.events ?? [];
      return events.find((e) => e.type === type && match(e));
    }, `${type} at ${user.userId}`);

  beforeAll(async () => {
    servers = await startFederatedServers(2, EXTRA);
    [a, b] = servers as [FederatedServer, FederatedServer];
    alice = await registerUser(a.baseUrl, 'alice');
    bob = await registerUser(b.baseUrl, 'bob');
    roomId = (await apiA.ok(alice, 'POST', '/createRoom', { preset: 'public_chat', room_alias_name: 'edus' })).room_id as string;
    await apiB.ok(bob, 'POST', `/join/${enc(`#edus:${a.name}`)}`, {});
    // Both servers see both members joined.
    await until(async () => ((await apiA.ok(alice, 'GET', `/rooms/${enc(roomId)}/joined_members`)).joined as JsonObject)[bob.userId], 'bob joined at A');
    await syncOf(apiA, alice);
    await syncOf(apiB, bob);
  });
  afterAll(async () => {
    await Promise.all((servers ?? []).map((s) => s.stop()));
  }, 180_000);

  it('shows typing across servers, both ways', async () => {
    await apiB.ok(bob, 'PUT', `/rooms/${enc(roomId)}/typing/${enc(bob.userId)}`, { typing: true, timeout: 30_000 });
    const atA = await untilEphemeral(apiA, alice, 'm.typing', (e) => ((e.content as JsonObject).user_ids as string[]).includes(bob.userId));
    expect((atA.content as JsonObject).user_ids).toEqual([bob.userId]);
    await apiB.ok(bob, 'PUT', `/rooms/${enc(roomId)}/typing/${enc(bob.userId)}`, { typing: false });
    await untilEphemeral(apiA, alice, 'm.typing', (e) => ((e.content as JsonObject).user_ids as string[]).length === 0);

    await apiA.ok(alice, 'PUT', `/rooms/${enc(roomId)}/typing/${enc(alice.userId)}`, { typing: true, timeout: 30_000 });
    await untilEphemeral(apiB, bob, 'm.typing', (e) => ((e.content as JsonObject).user_ids as string[]).includes(alice.userId));
  }, 180_000);

  it('carries read receipts across servers (public ones only)', async () => {
    const eventId = (await apiA.ok(alice, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/r1`, { msgtype: 'm.text', body: 'read me' })).event_id as string;
    await until(async () => {
      const res = await apiB.call(bob, 'GET', `/rooms/${enc(roomId)}/event/${enc(eventId)}`);
      return res.status === 200 ? true : undefined;
    }, 'the message at B');
    await apiB.ok(bob, 'POST', `/rooms/${enc(roomId)}/receipt/m.read/${enc(eventId)}`, {});
    const receipt = await untilEphemeral(apiA, alice, 'm.receipt', (e) => Object.hasOwn(e.content as JsonObject, eventId));
    expect(((receipt.content as JsonObject)[eventId] as JsonObject)['m.read']).toMatchObject({ [bob.userId]: { ts: expect.any(Number) } });
  }, 180_000);

  it('sends presence to servers sharing a room', async () => {
    await apiB.ok(bob, 'PUT', `/presence/${enc(bob.userId)}/status`, { presence: 'online', status_msg: 'on B' });
    await until(async () => {
      const status = await apiA.call(alice, 'GET', `/presence/${enc(bob.userId)}/status`);
      return status.status === 200 && status.body.status_msg === 'on B' ? true : undefined;
    }, 'presence at A');
  }, 180_000);

  it('delivers to-device messages to a remote device once', async () => {
    await syncOf(apiB, bob);
    await apiA.ok(alice, 'PUT', `/sendToDevice/org.example.ping/txn1`, { messages: { [bob.userId]: { [bob.deviceId]: { n: 1 } } } });
    // The same transaction again sends nothing more.
    await apiA.ok(alice, 'PUT', `/sendToDevice/org.example.ping/txn1`, { messages: { [bob.userId]: { [bob.deviceId]: { n: 1 } } } });
    const got = await until(async () => {
      const events: JsonObject[] = (await syncOf(apiB, bob)).to_device?.events ?? [];
      return events.length > 0 ? events : undefined;
    }, 'to-device at B');
    expect(got).toEqual([{ type: 'org.example.ping', sender: alice.userId, content: { n: 1 } }]);
    await apiA.ok(alice, 'PUT', `/sendToDevice/org.example.ping/txn2`, { messages: { [bob.userId]: { '*': { n: 2 } } } });
    const next = await until(async () => {
      const events: JsonObject[] = (await syncOf(apiB, bob)).to_device?.events ?? [];
      return events.length > 0 ? events : undefined;
    }, 'second to-device at B');
    expect(next.map((e) => (e.content as JsonObject).n)).toEqual([2]);
  }, 180_000);

  it('tells the other server about a new device (device_lists.changed, /keys/query)', async () => {
    await syncOf(apiA, alice);
    const bobPhone = await loginUser(b.baseUrl, 'bob');
    const phone = new TestDevice(bob.userId, bobPhone.deviceId);
    await apiB.ok(bobPhone, 'POST', '/keys/upload', { device_keys: phone.deviceKeys() });
    await until(async () => ((await syncOf(apiA, alice)).device_lists?.changed ?? []).includes(bob.userId) || undefined, 'device list change at A');
    const query = await apiA.ok(alice, 'POST', '/keys/query', { device_keys: { [bob.userId]: [] } });
    expect(query.failures).toEqual({});
    expect(Object.keys((query.device_keys as JsonObject)[bob.userId] as JsonObject)).toContain(bobPhone.deviceId);
    // A keeps bob's device list (fetched with /user/devices, then kept up to date by updates).
    await until(async () => {
      const cached = await federationQueuesOf(a.server.ctx.storage).remoteDeviceList(bob.userId);
      return cached?.devices[bobPhone.deviceId]?.keys ? true : undefined;
    }, 'bob\'s phone in A\'s cache');

    // Cross-signing keys: a signing key update reaches A.
    const cs = crossSigningSet(bob.userId);
    await apiB.ok(bob, 'POST', '/keys/device_signing/upload', cs.body);
    await until(async () => ((await syncOf(apiA, alice)).device_lists?.changed ?? []).includes(bob.userId) || undefined, 'signing key change at A');
    const withMaster = await apiA.ok(alice, 'POST', '/keys/query', { device_keys: { [bob.userId]: [] } });
    expect((withMaster.master_keys as JsonObject)[bob.userId]).toMatchObject({ usage: ['master'] });
    expect((withMaster.self_signing_keys as JsonObject)[bob.userId]).toMatchObject({ usage: ['self_signing'] });
    expect(withMaster.user_signing_keys ?? {}).toEqual({});
    await until(async () => ((await federationQueuesOf(a.server.ctx.storage).remoteDeviceList(bob.userId))?.masterKey ? true : undefined), 'master key in A\'s cache');

    // Alice verifies bob: her user-signing key signs his master key; she sees her signature.
    const aliceCs = crossSigningSet(alice.userId);
    await apiA.ok(alice, 'POST', '/keys/device_signing/upload', aliceCs.body);
    const bobMasterPub = cs.master.publicKey;
    const signedMaster = signed(cs.body.master_key, alice.userId, aliceCs.userSigning.publicKey, aliceCs.userSigning);
    const upload = await apiA.ok(alice, 'POST', '/keys/signatures/upload', { [bob.userId]: { [bobMasterPub]: signedMaster } });
    expect(upload.failures).toEqual({});
    const seen = await apiA.ok(alice, 'POST', '/keys/query', { device_keys: { [bob.userId]: [] } });
    const masterSigs = ((seen.master_keys as JsonObject)[bob.userId] as JsonObject).signatures as JsonObject;
    expect(masterSigs[alice.userId]).toEqual({ [`ed25519:${aliceCs.userSigning.publicKey}`]: signedMaster.signatures[alice.userId]![`ed25519:${aliceCs.userSigning.publicKey}`] });
    // A forged signature is refused.
    const forged = signed(cs.body.master_key, alice.userId, aliceCs.userSigning.publicKey, aliceCs.master);
    const refused = await apiA.ok(alice, 'POST', '/keys/signatures/upload', { [bob.userId]: { [bobMasterPub]: forged } });
    expect(((refused.failures as JsonObject)[bob.userId] as JsonObject)[bobMasterPub]).toMatchObject({ errcode: 'M_INVALID_SIGNATURE' });
  }, 180_000);
});
