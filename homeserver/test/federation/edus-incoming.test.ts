/**
 * EDUs received from other servers (federation/edus.ts handleIncomingEdu) on a real Hearth, seen
 * by its local users through /sync and the keys API: typing, receipts, presence, to-device
 * messages (once per message_id), device list and signing key updates of remote users; and
 * everything a server says about users that are not its own, or about rooms they are not in,
 * ignored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/events/types.js';
import { handleIncomingEdu } from '../../src/federation/edus.js';
import { storeRemoteDeviceList } from '../../src/federation/queries-client.js';
import { federationQueuesOf } from '../../src/storage/federation-queues-store.js';
import { client, enc } from '../helpers/client-api.js';
import { startTestHomeserver, type TestHomeserver } from '../helpers/server.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Sync = any;

const REMOTE = 'remote.test';
const bob = `@bob:${REMOTE}`;

describe('incoming EDUs', () => {
  let hs: TestHomeserver;
  const api = client(() => hs.baseUrl);
  let alice: RegisteredUser;
  let roomId: string;
  let since: string;

  beforeAll(async () => {
    hs = await startTestHomeserver('enable_registration: true\npresence: {enabled: true}\n');
    alice = await registerUser(hs.baseUrl, 'alice');
    roomId = (await api.ok(alice, 'POST', '/createRoom', { preset: 'public_chat' })).room_id as string;
    // bob of remote.test joined (as his server's join would leave the room; joins are tested apart).
    await hs.server.ctx.pipeline.send(roomId, bob, { type: 'm.room.member', state_key: bob, content: { membership: 'join' } });
    since = (await api.ok(alice, 'GET', '/sync?timeout=0')).next_batch as string;
  });
  afterAll(async () => {
    await hs?.stop();
  });

  const edu = (origin: string, edu_type: string, content: JsonObject) => handleIncomingEdu(hs.server.ctx, origin, { edu_type, content });
  const syncSince = async (): Promise<Sync> => {
    const body = await api.ok(alice, 'GET', `/sync?timeout=0&since=${enc(since)}`);
    since = body.next_batch as string;
    return body;
  };
  const ephemeral = (sync: Sync, type: string) => (sync.rooms?.join?.[roomId]?.ephemeral?.events ?? []).filter((e: { type: string }) => e.type === type);

  it('shows a remote user typing, and ignores typing by users of another server or outside the room', async () => {
    await edu('evil.test', 'm.typing', { room_id: roomId, user_id: bob, typing: true });
    await edu(REMOTE, 'm.typing', { room_id: roomId, user_id: `@carol:${REMOTE}`, typing: true });
    expect(ephemeral(await syncSince(), 'm.typing')).toEqual([]);
    await edu(REMOTE, 'm.typing', { room_id: roomId, user_id: bob, typing: true, timeout: 20_000 });
    expect(ephemeral(await syncSince(), 'm.typing')[0].content.user_ids).toEqual([bob]);
    await edu(REMOTE, 'm.typing', { room_id: roomId, user_id: bob, typing: false });
    expect(ephemeral(await syncSince(), 'm.typing')[0].content.user_ids).toEqual([]);
  });

  it('stores remote read receipts, never private ones', async () => {
    const eventId = (await api.ok(alice, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'hi' })).event_id as string;
    await syncSince();
    await edu(REMOTE, 'm.receipt', {
      [roomId]: {
        'm.read': { [bob]: { event_ids: [eventId], data: { ts: 1234 } } },
        'm.read.private': { [bob]: { event_ids: [eventId], data: { ts: 1234 } } },
      },
    });
    await edu('evil.test', 'm.receipt', { [roomId]: { 'm.read': { [bob]: { event_ids: [eventId], data: { ts: 1 } } } } });
    const receipts = ephemeral(await syncSince(), 'm.receipt');
    expect(receipts).toHaveLength(1);
    expect(receipts[0].content).toEqual({ [eventId]: { 'm.read': { [bob]: { ts: 1234 } } } });
  });

  it('takes presence of remote users who share a room', async () => {
    await edu(REMOTE, 'm.presence', { push: [{ user_id: bob, presence: 'online', last_active_ago: 1000, status_msg: 'here', currently_active: true }] });
    await edu(REMOTE, 'm.presence', { push: [{ user_id: `@stranger:${REMOTE}`, presence: 'online', last_active_ago: 0 }] });
    const status = await api.ok(alice, 'GET', `/presence/${enc(bob)}/status`);
    expect(status).toMatchObject({ presence: 'online', status_msg: 'here' });
    const sync = await syncSince();
    const senders = (sync.presence?.events ?? []).map((e: { sender: string }) => e.sender);
    expect(senders).toContain(bob);
    expect(senders).not.toContain(`@stranger:${REMOTE}`);
  });

  it('delivers to-device messages to local devices once per message_id, only from the origin\'s users', async () => {
    const content = { sender: bob, type: 'm.room_key_request', message_id: 'abc123', messages: { [alice.userId]: { '*': { hello: 'alice' } } } };
    await edu(REMOTE, 'm.direct_to_device', content);
    await edu(REMOTE, 'm.direct_to_device', content);
    await edu('evil.test', 'm.direct_to_device', { ...content, message_id: 'other' });
    const events = (await syncSince()).to_device?.events ?? [];
    expect(events).toEqual([{ type: 'm.room_key_request', sender: bob, content: { hello: 'alice' } }]);
  });

  it('applies device list updates that follow the cached list, and tells local users', async () => {
    const ctx = hs.server.ctx;
    const keys = (deviceId: string) => ({ user_id: bob, device_id: deviceId, algorithms: ['m.olm.v1.curve25519-aes-sha2'], keys: {}, signatures: {} });
    await storeRemoteDeviceList(ctx, { userId: bob, streamId: 5, devices: { OLD: { keys: keys('OLD') } }, masterKey: null, selfSigningKey: null });
    const afterStore = await syncSince();
    expect(afterStore.device_lists?.changed ?? []).toContain(bob);

    await edu(REMOTE, 'm.device_list_update', { user_id: bob, device_id: 'NEW', stream_id: 6, prev_id: [5], keys: keys('NEW'), device_display_name: 'phone' });
    await edu(REMOTE, 'm.device_list_update', { user_id: bob, device_id: 'OLD', stream_id: 7, prev_id: [6], deleted: true });
    // Stale and foreign updates change nothing.
    await edu(REMOTE, 'm.device_list_update', { user_id: bob, device_id: 'STALE', stream_id: 4, prev_id: [3], keys: keys('STALE') });
    await edu('evil.test', 'm.device_list_update', { user_id: bob, device_id: 'EVIL', stream_id: 8, prev_id: [7], keys: keys('EVIL') });
    const list = await federationQueuesOf(ctx.storage).remoteDeviceList(bob);
    expect(list?.streamId).toBe(7);
    expect(Object.keys(list!.devices)).toEqual(['NEW']);
    expect(list!.devices.NEW).toEqual({ keys: keys('NEW'), device_display_name: 'phone' });
    expect((await syncSince()).device_lists?.changed ?? []).toContain(bob);

    await edu(REMOTE, 'm.signing_key_update', { user_id: bob, master_key: { user_id: bob, usage: ['master'], keys: { 'ed25519:abc': 'abc' } } });
    expect((await federationQueuesOf(ctx.storage).remoteDeviceList(bob))?.masterKey).toMatchObject({ usage: ['master'] });
  });

  it('ignores typing and receipts from a server the room\'s server ACL denies', async () => {
    const ctx = hs.server.ctx;
    const denied = (await api.ok(alice, 'POST', '/createRoom', { preset: 'public_chat' })).room_id as string;
    await ctx.pipeline.send(denied, bob, { type: 'm.room.member', state_key: bob, content: { membership: 'join' } });
    const eventId = (await api.ok(alice, 'PUT', `/rooms/${enc(denied)}/send/m.room.message/acl1`, { msgtype: 'm.text', body: 'hi' })).event_id as string;
    await api.ok(alice, 'PUT', `/rooms/${enc(denied)}/state/m.room.server_acl`, { allow: ['*'], deny: [REMOTE], allow_ip_literals: true });
    await syncSince();
    await edu(REMOTE, 'm.typing', { room_id: denied, user_id: bob, typing: true, timeout: 20_000 });
    await edu(REMOTE, 'm.receipt', { [denied]: { 'm.read': { [bob]: { event_ids: [eventId], data: { ts: 1 } } } } });
    const sync = await syncSince();
    const events = (sync.rooms?.join?.[denied]?.ephemeral?.events ?? []) as Array<{ type: string; content: JsonObject }>;
    expect(events.filter((e) => e.type === 'm.receipt')).toEqual([]);
    expect(events.filter((e) => e.type === 'm.typing' && (e.content.user_ids as string[]).length > 0)).toEqual([]);
    expect(await ctx.storage.receipts.changedInRooms([denied], 0, await ctx.storage.receipts.currentPosition(), alice.userId)).toEqual([]);
  });

  it('ignores malformed and unknown EDUs without failing', async () => {
    await edu(REMOTE, 'm.typing', { room_id: 5 } as unknown as JsonObject);
    await edu(REMOTE, 'm.receipt', { [roomId]: 'nope' } as unknown as JsonObject);
    await edu(REMOTE, 'm.presence', { push: 'x' } as unknown as JsonObject);
    await edu(REMOTE, 'm.direct_to_device', { sender: bob, type: 'x', message_id: '', messages: {} });
    await edu(REMOTE, 'org.example.unknown', {});
    await handleIncomingEdu(hs.server.ctx, REMOTE, null as unknown as { edu_type: string; content: JsonObject });
  });
});
