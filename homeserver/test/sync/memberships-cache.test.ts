/**
 * The memberships kept in memory for /sync (storage/memberships-store.ts): a user's rooms and a
 * room's members read once, then changed by a member event's persist transaction (committed or
 * rolled back), by /forget, or while a read was in flight, are read as they are in the database
 * afterwards, on both engines. Over HTTP: a user who synced (memberships cached) and then joins
 * a room sees it in the next sync; an invite wakes their long-poll. And the long-poll of a client
 * coming back with the token it was just given (sync/long-poll.ts IssuedTokens): it waits without
 * computing only when nothing concerning it happened meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomEvent } from '../../src/events/types.js';
import type { Storage } from '../../src/storage/index.js';
import { writeTransaction } from '../../src/storage/transactions.js';
import { describeEachEngine } from '../helpers/databases.js';
import { client } from '../helpers/client-api.js';
import { startTestHomeserver, type TestHomeserver } from '../helpers/server.js';
import { registerUser } from '../helpers/users.js';

let eventCounter = 0;

function memberEvent(roomId: string, userId: string, membership: string): RoomEvent {
  const eventId = `$member${++eventCounter}`;
  const content = { membership };
  const base = { event_id: eventId, room_id: roomId, type: 'm.room.member', sender: userId, state_key: userId, content };
  return { ...base, origin_server_ts: 0, depth: 1, prev_events: [], auth_events: [], pdu: { ...base } } as unknown as RoomEvent;
}

async function persistMembership(storage: Storage, roomId: string, userId: string, membership: string, position: number, fail = false): Promise<void> {
  await writeTransaction(storage.db, storage.engine, async (trx) => {
    await storage.memberships.record(trx, memberEvent(roomId, userId, membership), position);
    if (fail) throw new Error('persist failed');
  });
}

describeEachEngine('memberships cache', (getStorage) => {
  let roomCounter = 0;
  async function newRoom(): Promise<string> {
    const roomId = `!cache${++roomCounter}:hs`;
    await getStorage().db.insertInto('rooms').values({ room_id: roomId, room_version: '11', creator: null, is_public: 0, current_state_group: null }).execute();
    return roomId;
  }
  const rooms = async (userId: string) => (await getStorage().memberships.roomsForUser(userId, ['join', 'invite'])).map((m) => `${m.roomId} ${m.membership}`).sort();
  const members = async (roomId: string) => (await getStorage().memberships.members(roomId, ['join'])).map((m) => m.userId);

  it('sees a committed membership change after having read the user and the room', async () => {
    const storage = getStorage();
    const [a, b] = [await newRoom(), await newRoom()];
    await persistMembership(storage, a, '@u1:hs', 'join', 1);
    expect(await rooms('@u1:hs')).toEqual([`${a} join`]);
    expect(await members(a)).toEqual(['@u1:hs']);
    expect((await storage.memberships.get(a, '@u1:hs'))?.membership).toBe('join');

    await persistMembership(storage, b, '@u1:hs', 'invite', 2);
    await persistMembership(storage, a, '@u2:hs', 'join', 3);
    expect(await rooms('@u1:hs')).toEqual([`${a} join`, `${b} invite`]);
    expect(await members(a)).toEqual(['@u1:hs', '@u2:hs']);

    await persistMembership(storage, a, '@u1:hs', 'leave', 4);
    expect(await rooms('@u1:hs')).toEqual([`${b} invite`]);
    expect(await members(a)).toEqual(['@u2:hs']);
    expect((await storage.memberships.get(a, '@u1:hs'))?.membership).toBe('leave');
    expect((await storage.memberships.roomsForUser('@u1:hs', ['leave'])).map((m) => m.roomId)).toEqual([a]);
  });

  it('keeps what was there when the persist transaction rolls back', async () => {
    const storage = getStorage();
    const a = await newRoom();
    await persistMembership(storage, a, '@u3:hs', 'join', 5);
    expect(await rooms('@u3:hs')).toEqual([`${a} join`]);
    expect(await members(a)).toEqual(['@u3:hs']);
    await expect(persistMembership(storage, a, '@u3:hs', 'leave', 6, true)).rejects.toThrow('persist failed');
    expect(await rooms('@u3:hs')).toEqual([`${a} join`]);
    expect(await members(a)).toEqual(['@u3:hs']);
    expect((await storage.memberships.get(a, '@u3:hs'))?.streamPosition).toBe(5);
  });

  it('a read started before a membership change does not hide the change afterwards', async () => {
    const storage = getStorage();
    const a = await newRoom();
    const readBefore = rooms('@u4:hs');
    const membersBefore = members(a);
    await persistMembership(storage, a, '@u4:hs', 'join', 7);
    await readBefore;
    await membersBefore;
    expect(await rooms('@u4:hs')).toEqual([`${a} join`]);
    expect(await members(a)).toEqual(['@u4:hs']);
  });

  it('hides a forgotten room at once', async () => {
    const storage = getStorage();
    const a = await newRoom();
    await persistMembership(storage, a, '@u5:hs', 'join', 8);
    await persistMembership(storage, a, '@u5:hs', 'leave', 9);
    expect((await storage.memberships.roomsForUser('@u5:hs', ['leave'])).map((m) => m.roomId)).toEqual([a]);
    expect(await storage.memberships.forget(a, '@u5:hs')).toBe(true);
    expect(await storage.memberships.roomsForUser('@u5:hs', ['leave'])).toEqual([]);
    expect((await storage.memberships.get(a, '@u5:hs'))?.forgotten).toBe(true);
  });

  it('hands out copies: a caller changing a row changes nothing for the next one', async () => {
    const storage = getStorage();
    const a = await newRoom();
    await persistMembership(storage, a, '@u6:hs', 'join', 10);
    const [row] = await storage.memberships.roomsForUser('@u6:hs', ['join']);
    row!.membership = 'leave';
    expect((await storage.memberships.roomsForUser('@u6:hs', ['join'])).length).toBe(1);
  });
});

describe('memberships cache over HTTP', () => {
  let hs: TestHomeserver;
  const api = client(() => hs.baseUrl);
  beforeAll(async () => {
    hs = await startTestHomeserver('enable_registration: true');
  });
  afterAll(() => hs?.stop());

  it('a user who synced sees a room joined afterwards in the next sync, and is woken by an invite', async () => {
    const alice = await registerUser(hs.baseUrl, 'memcache_a');
    const bob = await registerUser(hs.baseUrl, 'memcache_b');
    const first = await api.ok(bob, 'GET', '/sync?timeout=0');
    expect(Object.keys(first.rooms.join)).toEqual([]);

    const { room_id: roomId } = await api.ok(alice, 'POST', '/createRoom', { preset: 'public_chat' });
    await api.ok(bob, 'POST', `/join/${encodeURIComponent(roomId)}`, {});
    const second = await api.ok(bob, 'GET', `/sync?timeout=0&since=${first.next_batch}`);
    expect(Object.keys(second.rooms.join)).toEqual([roomId]);

    // Caught up: the long-poll waits; an invite to another room wakes it.
    const { room_id: other } = await api.ok(alice, 'POST', '/createRoom', {});
    const caughtUp = await api.ok(bob, 'GET', `/sync?timeout=0&since=${second.next_batch}`);
    const waiting = api.ok(bob, 'GET', `/sync?timeout=20000&since=${caughtUp.next_batch}`);
    await new Promise((r) => setTimeout(r, 200));
    await api.ok(alice, 'POST', `/rooms/${encodeURIComponent(other)}/invite`, { user_id: bob.userId });
    const woken = await waiting;
    expect(Object.keys(woken.rooms.invite)).toEqual([other]);

    // An idle long-poll with nothing new returns its (empty) response at the timeout.
    const idle = await api.ok(bob, 'GET', `/sync?timeout=300&since=${woken.next_batch}`);
    expect(idle.next_batch).toBe(woken.next_batch);
    expect(idle.rooms.join).toEqual({});
    expect(idle.device_one_time_keys_count).toEqual({ signed_curve25519: 0 });
  });
});

describe('long-poll with the token this process just issued', () => {
  let hs: TestHomeserver;
  const api = client(() => hs.baseUrl);
  beforeAll(async () => {
    hs = await startTestHomeserver('enable_registration: true');
  });
  afterAll(() => hs?.stop());
  const LONG = 60_000; // longer than the test's own timeout: a wrongly waiting poll fails the test

  it('answers at once for an event that came while the client was away', async () => {
    const alice = await registerUser(hs.baseUrl, 'issued_a');
    const bob = await registerUser(hs.baseUrl, 'issued_b');
    const { room_id: roomId } = await api.ok(alice, 'POST', '/createRoom', { preset: 'public_chat' });
    await api.ok(bob, 'POST', `/join/${encodeURIComponent(roomId)}`, {});
    const caughtUp = await api.ok(bob, 'GET', '/sync?timeout=0');
    // Other rooms' events move the streams too, and must not wake bob.
    const { room_id: elsewhere } = await api.ok(alice, 'POST', '/createRoom', {});
    await api.ok(alice, 'PUT', `/rooms/${encodeURIComponent(elsewhere)}/send/m.room.message/t0`, { msgtype: 'm.text', body: 'not for bob' });
    const { event_id: eventId } = await api.ok(alice, 'PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'while away' });
    const woken = await api.ok(bob, 'GET', `/sync?timeout=${LONG}&since=${caughtUp.next_batch}`);
    expect(woken.rooms.join[roomId].timeline.events.map((e: { event_id: string }) => e.event_id)).toEqual([eventId]);
    expect(woken.rooms.join[elsewhere]).toBeUndefined();
  });

  it('does not wait on a response that held to-device messages back for the next sync', async () => {
    const alice = await registerUser(hs.baseUrl, 'issued_c');
    const bob = await registerUser(hs.baseUrl, 'issued_d');
    const start = await api.ok(bob, 'GET', '/sync?timeout=0');
    for (let i = 0; i < 130; i++) {
      await api.ok(alice, 'PUT', `/sendToDevice/m.test/td${i}`, { messages: { [bob.userId]: { [bob.deviceId]: { i } } } });
    }
    const first = await api.ok(bob, 'GET', `/sync?timeout=${LONG}&since=${start.next_batch}`);
    expect(first.to_device.events.length).toBe(100);
    const second = await api.ok(bob, 'GET', `/sync?timeout=${LONG}&since=${first.next_batch}`);
    expect(second.to_device.events.map((e: { content: { i: number } }) => e.content.i)).toEqual(Array.from({ length: 30 }, (_, i) => i + 100));
  });
});
