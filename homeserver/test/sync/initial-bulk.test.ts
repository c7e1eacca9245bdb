/**
 * The initial /sync reads all rooms in bulk (sync/providers/room-events.ts syncRoomsInBulk); a
 * room joined since the token of an incremental sync is still read room by room. Both must give
 * the same rooms: here one user is in rooms that cover the bulk read's cases (fewer events than
 * the limit, limited, history visibility mixed across the rooms of one read so that some rooms
 * fall back to the per-room reader, a redaction, the user's own transaction id, a left room), and
 * the initial sync is compared with the incremental one room by room, under several filters.
 */
import { expect, it } from 'vitest';
import { loginUser } from '../helpers/users.js';
import { describeOnEachEngine, enc, TestClient } from './harness.js';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** What must be equal between the two paths (ages differ: they are computed per response). */
function roomView(room: Json, stateField: 'state' | 'state_after'): Json {
  const ids = (events: Json[]) => events.map((e: Json) => e.event_id);
  return {
    timeline: ids(room.timeline.events),
    limited: room.timeline.limited,
    prev_batch: room.timeline.prev_batch,
    state: ids(room[stateField].events).sort(),
    summary: room.summary,
    unread: room.unread_notifications,
    txnIds: room.timeline.events.map((e: Json) => e.unsigned?.transaction_id ?? null),
    redacted: room.timeline.events.filter((e: Json) => e.unsigned?.redacted_because).map((e: Json) => e.event_id),
    contents: room.timeline.events.map((e: Json) => e.content),
    stateContents: [...room[stateField].events]
      .sort((a: Json, b: Json) => (a.event_id < b.event_id ? -1 : 1))
      .map((e: Json) => ({ content: e.content, redactedBy: e.unsigned?.redacted_because?.event_id ?? null })),
  };
}

function visibility(hv: string): Json {
  return { initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: hv } }] };
}

describeOnEachEngine('initial sync in bulk', (server) => {
  let alice: TestClient;
  let bob: TestClient;
  let start: string;
  const rooms: Record<string, string> = {};

  async function sendN(roomId: string, n: number, prefix: string): Promise<void> {
    for (let i = 0; i < n; i++) await alice.send(roomId, `${prefix}${i}`);
  }

  async function joinBob(roomId: string): Promise<void> {
    await alice.invite(roomId, bob.userId);
    await bob.join(roomId);
  }

  it('sets up rooms with mixed history visibility', async () => {
    alice = await TestClient.register(server, 'alice');
    bob = await TestClient.register(server, 'bob');
    start = (await bob.sync()).next_batch;

    // Fewer events than the limit once Bob is in, with a redaction and Bob's own message.
    rooms.few = await alice.createRoom(visibility('joined'));
    await joinBob(rooms.few);
    const redacted = await alice.send(rooms.few, 'to be redacted');
    await bob.send(rooms.few, 'mine');
    await alice.ok('PUT', `/rooms/${enc(rooms.few)}/redact/${enc(redacted)}/r1`, { reason: 'test' });

    // `shared`: everything visible once joined; limited; a redacted topic in the state before the timeline.
    rooms.shared = await alice.createRoom(visibility('shared'));
    const topic = (await alice.ok('PUT', `/rooms/${enc(rooms.shared)}/state/m.room.topic/`, { topic: 'to be redacted' })).event_id;
    await alice.ok('PUT', `/rooms/${enc(rooms.shared)}/redact/${enc(topic)}/r2`, {});
    await sendN(rooms.shared, 15, 's');
    await joinBob(rooms.shared);

    // `joined`: the newest events read include ones from before Bob's join (invisible).
    rooms.joinedLate = await alice.createRoom(visibility('joined'));
    await sendN(rooms.joinedLate, 20, 'before');
    await joinBob(rooms.joinedLate);
    await sendN(rooms.joinedLate, 2, 'after');

    // `joined`, but enough after the join that the newest events are all visible.
    rooms.joinedEarly = await alice.createRoom(visibility('joined'));
    await sendN(rooms.joinedEarly, 3, 'before');
    await joinBob(rooms.joinedEarly);
    await sendN(rooms.joinedEarly, 12, 'after');

    // `invited`: visible from the invite on.
    rooms.invited = await alice.createRoom(visibility('invited'));
    await sendN(rooms.invited, 5, 'pre');
    await alice.invite(rooms.invited, bob.userId);
    await sendN(rooms.invited, 5, 'invited');
    await bob.join(rooms.invited);
    await sendN(rooms.invited, 3, 'joined');

    rooms.worldReadable = await alice.createRoom(visibility('world_readable'));
    await sendN(rooms.worldReadable, 12, 'w');
    await joinBob(rooms.worldReadable);

    // Left: messages after Bob's leave are not his to see.
    rooms.left = await alice.createRoom(visibility('shared'));
    await joinBob(rooms.left);
    await sendN(rooms.left, 2, 'while-in');
    await bob.leave(rooms.left);
    await sendN(rooms.left, 3, 'after-leave');
  });

  const filters: [string, Json, Record<string, string | boolean>][] = [
    ['no filter', { room: { include_leave: true } }, {}],
    ['lazy-loading members, timeline 10', { room: { include_leave: true, state: { lazy_load_members: true }, timeline: { limit: 10 } } }, {}],
    ['timeline 5 without member events', { room: { include_leave: true, timeline: { limit: 5, not_types: ['m.room.member'] } } }, {}],
    ['timeline 0', { room: { include_leave: true, timeline: { limit: 0 } } }, {}],
    ['state_after', { room: { include_leave: true, timeline: { limit: 3 } } }, { use_state_after: true }],
  ];

  for (const [name, filter, extra] of filters) {
    it(`gives the same rooms as the per-room path: ${name}`, async () => {
      const stateField = extra.use_state_after ? 'state_after' : 'state';
      const params = { filter: JSON.stringify(filter), ...extra };
      // Every room was joined after `start`: the incremental sync reads each room by itself.
      const perRoom = await bob.sync({ ...params, since: start });
      const bulk = await bob.sync(params);
      for (const key of ['few', 'shared', 'joinedLate', 'joinedEarly', 'invited', 'worldReadable']) {
        const roomId = rooms[key]!;
        expect(bulk.rooms.join[roomId], key).toBeDefined();
        expect(roomView(bulk.rooms.join[roomId], stateField), key).toEqual(roomView(perRoom.rooms.join[roomId], stateField));
      }
      const left = bulk.rooms.leave[rooms.left!];
      expect(left).toBeDefined();
      expect(left.timeline.events.map((e: Json) => e.event_id)).toEqual(
        perRoom.rooms.leave[rooms.left!].timeline.events.map((e: Json) => e.event_id),
      );
      // The left room's full state (the incremental sync sends none: its timeline has no gap).
      const types = [...left[stateField].events, ...left.timeline.events].map((e: Json) => e.type);
      for (const type of ['m.room.create', 'm.room.join_rules', 'm.room.history_visibility']) expect(types).toContain(type);
    });
  }

  it('shows what each room allows and nothing more', async () => {
    const bulk = await bob.sync({ filter: JSON.stringify({ room: { include_leave: true, timeline: { limit: 50 } } }) });
    const bodies = (roomId: string, section = 'join') =>
      bulk.rooms[section][roomId].timeline.events.filter((e: Json) => e.type === 'm.room.message').map((e: Json) => e.content.body ?? null);
    const few = bulk.rooms.join[rooms.few!].timeline;
    expect(few.limited).toBe(false);
    expect(bodies(rooms.few!)).toEqual([null, 'mine']); // the redacted one has no body left
    const mine = few.events.find((e: Json) => e.content.body === 'mine');
    expect(mine.unsigned.transaction_id).toEqual(expect.any(String));
    expect(few.events.find((e: Json) => e.content.body === undefined && e.type === 'm.room.message').unsigned.redacted_because.type).toBe(
      'm.room.redaction',
    );
    // Another device of Bob's does not get the transaction id.
    const otherDevice = new TestClient(server, await loginUser(server().baseUrl, bob.userId));
    const other = await otherDevice.sync();
    const mineElsewhere = other.rooms.join[rooms.few!].timeline.events.find((e: Json) => e.content.body === 'mine');
    expect(mineElsewhere.event_id).toBe(mine.event_id);
    expect(mineElsewhere.unsigned.transaction_id).toBeUndefined();
    expect(bodies(rooms.joinedLate!)).toEqual(['after0', 'after1']);
    expect(bulk.rooms.join[rooms.joinedLate!].timeline.limited).toBe(false);
    expect(bodies(rooms.joinedEarly!)).toEqual(Array.from({ length: 12 }, (_, i) => `after${i}`));
    expect(bodies(rooms.invited!)).toEqual([...Array.from({ length: 5 }, (_, i) => `invited${i}`), 'joined0', 'joined1', 'joined2']);
    expect(bodies(rooms.shared!)).toEqual(Array.from({ length: 15 }, (_, i) => `s${i}`));
    expect(bodies(rooms.left!, 'leave')).toEqual(['while-in0', 'while-in1']);
    const leftTimeline = bulk.rooms.leave[rooms.left!].timeline.events;
    expect(leftTimeline.at(-1)).toMatchObject({ type: 'm.room.member', state_key: bob.userId, content: { membership: 'leave' } });
    const summary = bulk.rooms.join[rooms.shared!].summary;
    expect(summary).toEqual({ 'm.heroes': [alice.userId], 'm.joined_member_count': 2, 'm.invited_member_count': 0 });
  });

  it('shows a redacted state event before the timeline redacted', async () => {
    const bulk = await bob.sync();
    const shared = bulk.rooms.join[rooms.shared!];
    expect(shared.timeline.limited).toBe(true);
    const topic = shared.state.events.find((e: Json) => e.type === 'm.room.topic');
    expect(topic.content).toEqual({});
    expect(topic.unsigned.redacted_because).toMatchObject({ type: 'm.room.redaction', redacts: topic.event_id });
  });
});
