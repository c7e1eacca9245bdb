import { expect, it } from 'vitest';
import { stateKey, type RoomEvent, type StateMap } from '../../src/events/types.js';
import { writeTransaction, type Storage } from '../../src/storage/index.js';
import { describeEachEngine, type EngineContext } from '../helpers/databases.js';
import { LinearRoom } from './fixtures.js';

/** State keys that would trip a naive key encoding. */
const STATE_KEYS = ['', '@alice:test.example', '@bob:test.example', 'a"b', '["x","y"]', 'comma,key', 'ünï 🔑', '\\', ' '];
const TYPES = ['m.room.member', 'm.room.name', 'm.room.topic', 'org.example.custom', 'type with "quotes"'];

/**
 * Builds a linear room with `changes` state changes (many overwriting earlier ones) and messages
 * in between, persists it, and returns what the state before/after each event must be.
 */
async function buildChain(storage: Storage, changes: number) {
  const room = new LinearRoom();
  const expectedBefore = new Map<string, StateMap>();
  const expectedAfter = new Map<string, StateMap>();
  const model: StateMap = new Map();
  const persist = async (event: RoomEvent) => {
    expectedBefore.set(event.event_id, new Map(model));
    await storage.events.persistEvent(event);
    if (event.state_key !== undefined) model.set(stateKey(event.type, event.state_key), event.event_id);
    expectedAfter.set(event.event_id, new Map(model));
  };
  await persist(room.create());
  let seed = 12345;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < changes; i++) {
    // Few distinct keys: most changes overwrite an earlier value.
    await persist(room.state(TYPES[random(TYPES.length)]!, STATE_KEYS[random(STATE_KEYS.length)]!, { i }));
    if (i % 4 === 0) await persist(room.message(`after change ${i}`));
  }
  return { room, expectedBefore, expectedAfter, model };
}

async function expectStates(storage: Storage, chain: Awaited<ReturnType<typeof buildChain>>) {
  for (const [eventId, before] of chain.expectedBefore) {
    expect(await storage.events.getStateAtEvent(eventId, 'before'), `before ${eventId}`).toEqual(before);
    expect(await storage.events.getStateAtEvent(eventId, 'after'), `after ${eventId}`).toEqual(chain.expectedAfter.get(eventId));
  }
  expect(await storage.events.getCurrentState(chain.room.roomId)).toEqual(chain.model);
}

function stateSuite(getStorage: () => Storage, ctx: EngineContext, maxDeltaDepth: number) {
  it('gives the right state before and after every event over 250 state changes with overwrites', async () => {
    const chain = await buildChain(getStorage(), 250);
    expect(chain.model.size).toBeGreaterThan(20);
    await expectStates(getStorage(), chain);

    // Delta chains stay bounded: snapshots are written every `maxDeltaDepth` deltas.
    const groups = await getStorage()
      .db.selectFrom('state_groups')
      .select(['id', 'prev_group', 'delta_depth'])
      .where('room_id', '=', chain.room.roomId)
      .execute();
    expect(Math.max(...groups.map((g) => g.delta_depth))).toBeLessThanOrEqual(maxDeltaDepth);
    expect(groups.filter((g) => g.prev_group === null).length).toBeGreaterThanOrEqual(Math.floor(250 / (maxDeltaDepth + 1)));
    // Non-state events share their group: one group per state event, plus the empty one before the create.
    expect(groups.length).toBe(250 + 2);

    // After a restart (cold cache) the answers are the same.
    await ctx.reopen();
    await expectStates(getStorage(), chain);
  });

  it('answers current state lookups directly', async () => {
    const storage = getStorage();
    const room = new LinearRoom();
    await storage.events.persistEvent(room.create());
    const name1 = room.state('m.room.name', '', { name: 'one' });
    const name2 = room.state('m.room.name', '', { name: 'two' });
    const alice = room.state('m.room.member', '@alice:test.example', { membership: 'join' });
    for (const e of [name1, name2, alice, room.message('hi')]) await storage.events.persistEvent(e);
    expect(await storage.events.getCurrentStateEvent(room.roomId, 'm.room.name', '')).toEqual(name2);
    expect(await storage.events.getCurrentStateEventId(room.roomId, 'm.room.member', '@alice:test.example')).toBe(alice.event_id);
    expect(await storage.events.getCurrentStateEvent(room.roomId, 'm.room.member', '@nobody:test.example')).toBeUndefined();
    expect(await storage.events.getCurrentState('!unknown:test.example')).toEqual(new Map());
  });
}

describeEachEngine('state groups (default delta chain)', (getStorage, ctx) => {
  stateSuite(getStorage, ctx, 50);

  it('keeps rejected state events out of the state, and soft-failed ones out of current state', async () => {
    const storage = getStorage();
    const room = new LinearRoom();
    const create = room.create();
    await storage.events.persistEvent(create);
    const topic = room.state('m.room.topic', '', { topic: 'good' });
    await storage.events.persistEvent(topic);
    const base = new Map([
      [stateKey('m.room.create', ''), create.event_id],
      [stateKey('m.room.topic', ''), topic.event_id],
    ]);

    const rejected = room.state('m.room.topic', '', { topic: 'rejected' });
    const r = await storage.events.persistEvent(rejected, { rejectedReason: 'not allowed' });
    expect(r.stateGroupAfter).toBe(r.stateGroupBefore);
    expect(r.currentStateDelta.size).toBe(0);
    expect(await storage.events.getStateAtEvent(rejected.event_id, 'after')).toEqual(base);

    room.setTip([topic.event_id], 2);
    const soft = room.state('m.room.topic', '', { topic: 'soft-failed' });
    await storage.events.persistEvent(soft, { softFailed: true });
    expect(await storage.events.getStateAtEvent(soft.event_id, 'after')).toEqual(
      new Map([...base, [stateKey('m.room.topic', ''), soft.event_id]]),
    );
    expect(await storage.events.getCurrentState(room.roomId)).toEqual(base);
    expect(await storage.events.getForwardExtremities(room.roomId)).toEqual([topic.event_id]);
  });

  it('stores resolved state at forks, and the resolved current state', async () => {
    const storage = getStorage();
    const room = new LinearRoom();
    const create = room.create();
    await storage.events.persistEvent(create);
    const a = room.state('m.room.name', '', { name: 'A' });
    await storage.events.persistEvent(a);
    room.setTip([create.event_id], 1);
    const b = room.state('m.room.topic', '', { topic: 'B' });
    const resultB = await storage.events.persistEvent(b);
    // Unresolved fork: current state gets b's own change on top.
    expect(resultB.currentStateDelta).toEqual(new Map([[stateKey('m.room.topic', ''), b.event_id]]));
    expect(await storage.events.getCurrentState(room.roomId)).toEqual(
      new Map([
        [stateKey('m.room.create', ''), create.event_id],
        [stateKey('m.room.name', ''), a.event_id],
        [stateKey('m.room.topic', ''), b.event_id],
      ]),
    );

    // A merge: without the resolved state the store refuses to guess.
    room.setTip([a.event_id, b.event_id], 2);
    const merge = room.state('m.room.member', '@carol:test.example', { membership: 'join' });
    await expect(storage.events.persistEvent(merge)).rejects.toThrow(/different states/);
    // The resolution (here: keep a's name, drop the topic) is the caller's; the store records it.
    const resolved = new Map([
      [stateKey('m.room.create', ''), create.event_id],
      [stateKey('m.room.name', ''), a.event_id],
    ]);
    const result = await storage.events.persistEvent(merge, { stateBefore: resolved });
    expect(await storage.events.getStateAtEvent(merge.event_id, 'before')).toEqual(resolved);
    const after = new Map([...resolved, [stateKey('m.room.member', '@carol:test.example'), merge.event_id]]);
    expect(await storage.events.getStateAtEvent(merge.event_id, 'after')).toEqual(after);
    // The merge is the only extremity: current state is the state after it (the topic is gone).
    expect(await storage.events.getCurrentState(room.roomId)).toEqual(after);
    expect(result.currentStateDelta).toEqual(
      new Map<string, string | null>([
        [stateKey('m.room.topic', ''), null],
        [stateKey('m.room.member', '@carol:test.example'), merge.event_id],
      ]),
    );
    // The resolved state equals the state after `a`: that group is reused, not copied.
    expect(result.stateGroupBefore).toBe((await storage.events.getEventInfo(a.event_id))!.stateGroupAfter);

    // A new fork, with current state resolved by the caller.
    room.setTip([merge.event_id], 3);
    const x = room.state('m.room.topic', '', { topic: 'X' });
    await storage.events.persistEvent(x);
    room.setTip([merge.event_id], 3);
    const y = room.state('m.room.topic', '', { topic: 'Y' });
    const chosen = new Map([...after, [stateKey('m.room.topic', ''), x.event_id]]);
    await storage.events.persistEvent(y, { resolvedCurrentState: chosen });
    expect(await storage.events.getCurrentState(room.roomId)).toEqual(chosen);
    expect(await storage.events.getForwardExtremities(room.roomId)).toEqual([x.event_id, y.event_id].sort());
    // Back to linear: the next event merges both, and the store follows from the resolved groups.
    room.setTip([x.event_id, y.event_id], 4);
    const z = room.message('z');
    await storage.events.persistEvent(z, { stateBefore: chosen });
    expect(await storage.events.getCurrentState(room.roomId)).toEqual(chosen);
    expect(await storage.events.getStateAtEvent(z.event_id, 'after')).toEqual(chosen);
    const w = room.state('m.room.name', '', { name: 'W' });
    await storage.events.persistEvent(w);
    expect(await storage.events.getCurrentState(room.roomId)).toEqual(new Map([...chosen, [stateKey('m.room.name', ''), w.event_id]]));
  });
});

describeEachEngine('state group store', (getStorage) => {
  it('stores a state as a delta from the closest candidate, removals included', async () => {
    const storage = getStorage();
    const k = (i: number) => stateKey('m.room.member', `@u${i}:test.example`);
    const base: StateMap = new Map(Array.from({ length: 20 }, (_, i) => [k(i), `$m${i}`]));
    const other: StateMap = new Map([[k(0), '$other']]);
    const target: StateMap = new Map(base);
    target.delete(k(3));
    target.set(k(5), '$changed');
    target.set(k(99), '$new');

    const { baseGroup, otherGroup } = await writeTransaction(storage.db, storage.engine, async (trx) => ({
      baseGroup: await storage.stateGroups.create(trx, '!sg:test.example', null, null, base),
      otherGroup: await storage.stateGroups.create(trx, '!sg:test.example', null, null, other),
    }));
    const created = await writeTransaction(storage.db, storage.engine, (trx) =>
      storage.stateGroups.createFromState(trx, '!sg:test.example', null, target, [otherGroup, baseGroup]),
    );
    expect(created.base).toBe(baseGroup);
    expect(created.delta).toEqual(
      new Map<string, string | null>([
        [k(3), null],
        [k(5), '$changed'],
        [k(99), '$new'],
      ]),
    );
    const rows = await storage.db.selectFrom('state_group_entries').selectAll().where('state_group', '=', created.group).execute();
    expect(rows).toHaveLength(3);
    expect(await storage.stateGroups.getState(created.group)).toEqual(target);
    expect(await storage.stateGroups.getState(baseGroup)).toEqual(base);
    // The same state again: the group is reused.
    const again = await writeTransaction(storage.db, storage.engine, (trx) =>
      storage.stateGroups.createFromState(trx, '!sg:test.example', null, target, [created.group]),
    );
    expect(again.group).toBe(created.group);
    await expect(storage.stateGroups.getState(987654321)).rejects.toThrow(/does not exist/);
  });
});

describeEachEngine(
  'state groups (short delta chain, no cache)',
  (getStorage, ctx) => {
    stateSuite(getStorage, ctx, 7);
  },
  { open: { stateGroups: { maxDeltaDepth: 7, cacheSize: 0 } } },
);

describeEachEngine(
  'state group cache bounds',
  (getStorage) => {
    it('keeps groups within the entry bound, evicting the least recently used', async () => {
      const storage = getStorage();
      const state = (n: number, tag: string): StateMap => new Map(Array.from({ length: n }, (_, i) => [stateKey('m.room.member', `@${tag}${i}:x`), `$${tag}${i}`]));
      storage.stateGroups.rememberCommitted(1, state(3, 'a'));
      storage.stateGroups.rememberCommitted(2, state(3, 'b'));
      expect(storage.stateGroups.cached(1)?.size).toBe(3);
      // Group 1 was used last: adding 3 more entries (9 > 8) evicts group 2.
      storage.stateGroups.rememberCommitted(3, state(3, 'c'));
      expect(storage.stateGroups.cached(2)).toBeUndefined();
      expect(storage.stateGroups.cached(1)?.size).toBe(3);
      expect(storage.stateGroups.cached(3)?.size).toBe(3);
      // A group larger than the whole bound is not kept, and evicts nothing.
      storage.stateGroups.rememberCommitted(4, state(9, 'd'));
      expect(storage.stateGroups.cached(4)).toBeUndefined();
      expect(storage.stateGroups.cached(1)?.size).toBe(3);
    });
  },
  { open: { stateGroups: { cacheSize: 10, cacheEntries: 8 } } },
);
