/**
 * Presence of users who newly share a room: once two users share a joined room, each one's next
 * incremental /sync carries the other's current presence, even though it was set before the
 * sync token (spec "Presence": users see the presence of those they share a room with).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, enc } from '../helpers/client-api.js';
import { startTestHomeserver, type TestHomeserver } from '../helpers/server.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Sync = any;

describe('presence of users who newly share a room', () => {
  let hs: TestHomeserver;
  const api = client(() => hs.baseUrl);

  beforeAll(async () => {
    hs = await startTestHomeserver('enable_registration: true');
  });
  afterAll(async () => {
    await hs?.stop();
  });

  /** set_presence=offline: the sync itself leaves the user's presence (and its stream position) alone. */
  function sync(user: RegisteredUser, since?: string): Promise<Sync> {
    const query = new URLSearchParams({ set_presence: 'offline', timeout: '0' });
    if (since) query.set('since', since);
    return api.ok(user, 'GET', `/sync?${query}`);
  }

  function presenceOf(body: Sync, userId: string): Sync[] {
    return (body.presence?.events ?? []).filter((e: { type: string; sender: string }) => e.type === 'm.presence' && e.sender === userId);
  }

  async function setPresence(user: RegisteredUser, status_msg: string): Promise<void> {
    await api.ok(user, 'PUT', `/presence/${enc(user.userId)}/status`, { presence: 'online', status_msg });
  }

  async function shareADirectRoom(inviter: RegisteredUser, invitee: RegisteredUser): Promise<string> {
    const { room_id: roomId } = await api.ok(inviter, 'POST', '/createRoom', { is_direct: true, preset: 'trusted_private_chat', invite: [invitee.userId] });
    await api.ok(invitee, 'POST', `/join/${enc(roomId)}`, {});
    return roomId;
  }

  it('shows the joiner the inviter’s presence, and the inviter the joiner’s', async () => {
    const alice = await registerUser(hs.baseUrl, 'alice');
    const bob = await registerUser(hs.baseUrl, 'bob');
    await setPresence(alice, 'at my desk');
    await setPresence(bob, 'on the train');

    // Both tokens come after both presence changes: only the new shared room can bring them.
    const aliceStart = await sync(alice);
    const bobStart = await sync(bob);
    expect(presenceOf(aliceStart, bob.userId)).toEqual([]);
    expect(presenceOf(bobStart, alice.userId)).toEqual([]);

    const roomId = await shareADirectRoom(alice, bob);

    const bobNext = await sync(bob, bobStart.next_batch);
    expect(bobNext.rooms.join[roomId]).toBeDefined();
    expect(presenceOf(bobNext, alice.userId)).toEqual([
      { type: 'm.presence', sender: alice.userId, content: expect.objectContaining({ presence: 'online', status_msg: 'at my desk' }) },
    ]);

    const aliceNext = await sync(alice, aliceStart.next_batch);
    expect(presenceOf(aliceNext, bob.userId)).toEqual([
      { type: 'm.presence', sender: bob.userId, content: expect.objectContaining({ presence: 'online', status_msg: 'on the train' }) },
    ]);

    // Sent once: the following syncs carry it only if it changes again.
    expect(presenceOf(await sync(bob, bobNext.next_batch), alice.userId)).toEqual([]);
    expect(presenceOf(await sync(alice, aliceNext.next_batch), bob.userId)).toEqual([]);
    // An initial sync shows the presence of everyone the user shares a room with.
    expect(presenceOf(await sync(bob), alice.userId)[0]?.content.status_msg).toBe('at my desk');
  });

  it('does not resend presence for a member event that is only a profile change', async () => {
    const carol = await registerUser(hs.baseUrl, 'carol');
    const dan = await registerUser(hs.baseUrl, 'dan');
    await setPresence(carol, 'reading');
    const roomId = await shareADirectRoom(carol, dan);
    const danStart = await sync(dan);
    expect(presenceOf(danStart, carol.userId)[0]?.content.status_msg).toBe('reading');

    await api.ok(carol, 'PUT', `/rooms/${enc(roomId)}/state/m.room.member/${enc(carol.userId)}`, { membership: 'join', displayname: 'Carol C.' });
    const danNext = await sync(dan, danStart.next_batch);
    expect(danNext.rooms.join[roomId].timeline.events.some((e: { type: string }) => e.type === 'm.room.member')).toBe(true);
    expect(presenceOf(danNext, carol.userId)).toEqual([]);
  });

  it('does not show presence to an invitee who has not joined', async () => {
    const erin = await registerUser(hs.baseUrl, 'erin');
    const frank = await registerUser(hs.baseUrl, 'frank');
    await setPresence(erin, 'busy');
    const frankStart = await sync(frank);
    await api.ok(erin, 'POST', '/createRoom', { is_direct: true, preset: 'trusted_private_chat', invite: [frank.userId] });
    const frankNext = await sync(frank, frankStart.next_batch);
    expect(Object.keys(frankNext.rooms.invite)).toHaveLength(1);
    expect(presenceOf(frankNext, erin.userId)).toEqual([]);
  });
});
