/**
 * The per-room cache of the send path (storage/room-cache.ts): what it serves must be what the
 * database holds after every kind of write, on both engines. Local sends (state changes that
 * forbid the next send), a persist that fails and rolls back, and state received over federation.
 */
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { stateKey } from '../../src/events/types.js';
import { MatrixError } from '../../src/http/errors.js';
import { pushPersistHook } from '../../src/push/persist-hook.js';
import { indexingHook } from '../../src/rooms/indexing.js';
import { RoomEventPipeline } from '../../src/rooms/pipeline.js';
import { getRoomVersion } from '../../src/rooms/room-versions.js';
import type { Storage } from '../../src/storage/database.js';
import { InMemoryNotifier } from '../../src/sync/notifier.js';
import { describeEachEngine } from '../helpers/databases.js';
import { RemoteRoom, TestKeyring, TestServer } from '../federation/remote-room.js';

const alice = '@alice:local.test';
const bob = '@bob:local.test';

/** The room's forward extremities and a state entry as the database holds them (no cache). */
async function stored(storage: Storage, roomId: string, type: string, key: string) {
  const extremities = await storage.db
    .selectFrom('event_forward_extremities')
    .select('event_id')
    .where('room_id', '=', roomId)
    .execute();
  const state = await storage.db
    .selectFrom('current_state')
    .select('event_id')
    .where('room_id', '=', roomId)
    .where('type', '=', type)
    .where('state_key', '=', key)
    .executeTakeFirst();
  return { extremities: extremities.map((r) => r.event_id).sort(), stateId: state?.event_id };
}

/** The same, read through the store (the cache once it is warm). */
async function served(storage: Storage, roomId: string, type: string, key: string) {
  return {
    extremities: (await storage.events.getForwardExtremities(roomId)).slice().sort(),
    stateId: await storage.events.getCurrentStateEventId(roomId, type, key),
  };
}

async function expectForbidden(promise: Promise<unknown>): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MatrixError);
  expect((err as MatrixError).errcode).toBe('M_FORBIDDEN');
}

describeEachEngine('room cache', (getStorage) => {
  describe('local sends', () => {
    let storage: Storage;
    let pipeline: RoomEventPipeline;
    let roomId: string;
    const say = (sender: string, body: string) => pipeline.send(roomId, sender, { type: 'm.room.message', content: { msgtype: 'm.text', body } });

    beforeEach(async () => {
      storage = getStorage();
      pipeline = new RoomEventPipeline({
        storage,
        serverName: 'local.test',
        signingKey: new TestServer('local.test').key,
        notifier: new InMemoryNotifier(),
        log: pino({ level: 'silent' }),
      });
      pipeline.onPersist(indexingHook(storage));
      pipeline.onPersist(pushPersistHook(storage, 'local.test'));
      // A hook that fails for events marked so: their whole persist transaction rolls back.
      pipeline.onPersist(async (_trx, event) => {
        if (event.content.fail_persist === true) throw new Error('persist hook failed on purpose');
      });
      const { event } = await pipeline.create(getRoomVersion('10')!, alice, { room_version: '10', creator: alice });
      roomId = event.room_id;
      await pipeline.send(roomId, alice, { type: 'm.room.member', state_key: alice, content: { membership: 'join' } });
      await pipeline.send(roomId, alice, {
        type: 'm.room.power_levels',
        state_key: '',
        content: { users: { [alice]: 100 }, events_default: 0, state_default: 50 },
      });
      await pipeline.send(roomId, alice, { type: 'm.room.join_rules', state_key: '', content: { join_rule: 'public' } });
      await pipeline.send(roomId, bob, { type: 'm.room.member', state_key: bob, content: { membership: 'join' } });
    });

    it('refuses a send that power levels changed since the last send forbid', async () => {
      await say(bob, 'allowed'); // the cache now holds the power levels and bob's membership
      const levels = await pipeline.send(roomId, alice, {
        type: 'm.room.power_levels',
        state_key: '',
        content: { users: { [alice]: 100 }, events_default: 50, state_default: 50 },
      });
      expect(await served(storage, roomId, 'm.room.power_levels', '')).toEqual(await stored(storage, roomId, 'm.room.power_levels', ''));
      expect(await storage.events.getCurrentStateEventId(roomId, 'm.room.power_levels', '')).toBe(levels.event.event_id);
      await expectForbidden(say(bob, 'not any more'));
      // Alice still may; her message builds on the power levels event.
      const ok = await say(alice, 'still here');
      expect(ok.event.prev_events).toEqual([levels.event.event_id]);
      expect(ok.event.auth_events).toContain(levels.event.event_id);
    });

    it('refuses a send after the sender left, and accepts it again after a re-join', async () => {
      await say(bob, 'hello');
      const leave = await pipeline.send(roomId, bob, { type: 'm.room.member', state_key: bob, content: { membership: 'leave' } });
      expect(await storage.events.getCurrentStateEventId(roomId, 'm.room.member', bob)).toBe(leave.event.event_id);
      await expectForbidden(say(bob, 'gone'));
      await pipeline.send(roomId, bob, { type: 'm.room.member', state_key: bob, content: { membership: 'join' } });
      const back = await say(bob, 'back');
      expect(await served(storage, roomId, 'm.room.member', bob)).toEqual(await stored(storage, roomId, 'm.room.member', bob));
      expect(await storage.events.getForwardExtremities(roomId)).toEqual([back.event.event_id]);
    });

    it('keeps the committed state when a persist fails and rolls back', async () => {
      const before = await say(bob, 'before');
      const failed = pipeline.send(roomId, alice, {
        type: 'm.room.power_levels',
        state_key: '',
        content: { users: { [alice]: 100 }, events_default: 50, state_default: 50, fail_persist: true },
      });
      await expect(failed).rejects.toThrow('persist hook failed on purpose');
      // Nothing of the failed event: not current state, not an extremity, not stored.
      const db = await stored(storage, roomId, 'm.room.power_levels', '');
      expect(await served(storage, roomId, 'm.room.power_levels', '')).toEqual(db);
      expect(db.extremities).toEqual([before.event.event_id]);
      // The old levels still apply: bob may send, and builds on the last committed event.
      const after = await say(bob, 'after');
      expect(after.event.prev_events).toEqual([before.event.event_id]);
      expect(await storage.events.getEvent(after.event.event_id)).toBeDefined();
      expect(await storage.events.getForwardExtremities(roomId)).toEqual([after.event.event_id]);
    });

    it('notifies the members joined at each event (the joined list is kept between membership changes)', async () => {
      const carol = '@carol:local.test';
      const unread = async (userId: string) => (await storage.push.unreadCounts(userId, roomId)).notification_count;
      await say(alice, 'one');
      await say(alice, 'two');
      expect(await unread(bob)).toBe(2);
      await pipeline.send(roomId, bob, { type: 'm.room.member', state_key: bob, content: { membership: 'leave' } });
      await say(alice, 'after bob left');
      expect(await unread(bob)).toBe(2);
      await pipeline.send(roomId, carol, { type: 'm.room.member', state_key: carol, content: { membership: 'join' } });
      await say(alice, 'welcome carol');
      await say(alice, 'and again');
      expect(await unread(carol)).toBe(2);
      expect(await unread(bob)).toBe(2);
      // A failed member event changes nobody's notifications afterwards.
      await expect(
        pipeline.send(roomId, carol, { type: 'm.room.member', state_key: carol, content: { membership: 'leave', fail_persist: true } }),
      ).rejects.toThrow('persist hook failed on purpose');
      await say(alice, 'carol is still here');
      expect(await unread(carol)).toBe(3);
    });

    it('keeps a failed message out of the extremities the next send builds on', async () => {
      const first = await say(alice, 'one');
      await expect(
        pipeline.send(roomId, alice, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'two', fail_persist: true } }),
      ).rejects.toThrow('persist hook failed on purpose');
      const third = await say(alice, 'three');
      expect(third.event.prev_events).toEqual([first.event.event_id]);
      expect(third.event.depth).toBe(first.event.depth + 1);
    });
  });

  describe('state received over federation', () => {
    const remote = new TestServer('remote.test');
    const local = new TestServer('local.test');
    const carol = '@carol:remote.test';
    const dan = '@dan:local.test';

    it('updates what the next local send is authorised against', async () => {
      const storage = getStorage();
      const version = getRoomVersion('10')!;
      const pipeline = new RoomEventPipeline({
        storage,
        serverName: 'local.test',
        signingKey: local.key,
        notifier: new InMemoryNotifier(),
        log: pino({ level: 'silent' }),
      });
      const room = new RemoteRoom(version, remote);
      pipeline.useFederation({ client: room.client(), keyring: new TestKeyring([remote, local]) });
      const receive = (id: string) => pipeline.receive(room.pdu(id), { origin: 'remote.test', roomVersion: version });
      for (const id of room.createPublicRoom(carol)) expect((await receive(id)).outcome).toBe('accepted');
      // Dan (a local user) joined through the remote server: his join is signed by this server.
      const join = room.make(dan, { type: 'm.room.member', state_key: dan, content: { membership: 'join' } }, { signer: local });
      expect((await receive(join.id)).outcome).toBe('accepted');

      const roomId = room.roomId;
      const hello = await pipeline.send(roomId, dan, { type: 'm.room.message', content: { body: 'hello' } });
      expect(await storage.events.getForwardExtremities(roomId)).toEqual([hello.event.event_id]);

      // Carol raises events_default above dan's level; her event does not know dan's message.
      const levels = room.make(carol, {
        type: 'm.room.power_levels',
        state_key: '',
        content: { users: { [carol]: 100 }, events_default: 50 },
      });
      expect((await receive(levels.id)).outcome).toBe('accepted');
      expect(await storage.events.getCurrentStateEventId(roomId, 'm.room.power_levels', '')).toBe(levels.id);
      expect(await served(storage, roomId, 'm.room.power_levels', '')).toEqual(await stored(storage, roomId, 'm.room.power_levels', ''));
      await expectForbidden(pipeline.send(roomId, dan, { type: 'm.room.message', content: { body: 'refused' } }));

      // Carol kicks dan: his membership as the cache serves it follows.
      const kick = room.make(carol, { type: 'm.room.member', state_key: dan, content: { membership: 'leave' } });
      expect((await receive(kick.id)).outcome).toBe('accepted');
      expect(await storage.events.getCurrentStateEventId(roomId, 'm.room.member', dan)).toBe(kick.id);
      expect(await served(storage, roomId, 'm.room.member', dan)).toEqual(await stored(storage, roomId, 'm.room.member', dan));
      const key = stateKey('m.room.member', dan);
      expect(storage.events.roomCache.get(roomId)?.stateIds.get(key) ?? kick.id).toBe(kick.id);
    });
  });
});
