import { describe, expect, it } from 'vitest';
import { stateKey, type JsonObject, type RoomEvent } from '../../src/events/types.js';
import { MissingStateError, UnknownRoomError } from '../../src/storage/index.js';
import { describeEachEngine } from '../helpers/databases.js';
import { buildEvent, LinearRoom, uniqueRoomId } from './fixtures.js';

/** Content that a naive store would damage: unicode of every kind, escapes, large integers. */
const TRICKY_CONTENT: JsonObject = {
  body: 'héllo wörld — 你好，世界 — مرحبا — 🔥👩‍👩‍👧‍👦 — e\u0301 — \u2028\u2029 — tab\tquote" backslash\\',
  nul: 'before\u0000after',
  lone_surrogate: 'x\ud800y',
  max_int: 9007199254740991,
  min_int: -9007199254740991,
  big: 2 ** 52 + 1,
  zero: 0,
  empty: '',
  nested: { 'ключ 🗝': [1, [2, [3, { deep: true }]], null, false], '': 'empty key' },
  'emoji_key_🙂': 'value',
};

describeEachEngine('events store', (getStorage) => {
  it('persists and reads back an event exactly (JSON, unicode, big integers, key order)', async () => {
    const room = new LinearRoom('10');
    const { events } = getStorage();
    const create = room.create();
    await events.persistEvent(create);
    const message = room.next({
      type: 'm.room.message',
      content: TRICKY_CONTENT,
      sender: '@bob:test.example',
      extra: { unsigned: { age_ts: 1 }, zzz_last: 'k' },
    });
    await events.persistEvent(message);

    const back = await events.getEvent(message.event_id);
    expect(back).toEqual(message);
    expect(JSON.stringify(back!.pdu)).toBe(JSON.stringify(message.pdu));
    expect(back!.content.max_int).toBe(Number.MAX_SAFE_INTEGER);
    expect(back!.content.lone_surrogate).toBe('x\ud800y');
    expect(back!.content.nul).toBe('before\u0000after');
    expect(await events.getEvent(create.event_id)).toEqual(create);
    expect(await events.getEvent('$missing')).toBeUndefined();
  });

  it('rebuilds v1-format events ([id, hashes] pairs) and keeps the normalised redacts', async () => {
    const { events } = getStorage();
    const roomId = uniqueRoomId();
    const create = buildEvent({ id: '$c:test.example', roomId, type: 'm.room.create', stateKey: '', content: { creator: '@alice:test.example' } });
    create.pdu.event_id = create.event_id;
    await events.persistEvent(create);
    const pair = [create.event_id, { sha256: 'abc' }];
    const redaction = buildEvent({ id: '$r:test.example', roomId, type: 'm.room.redaction', redacts: '$c:test.example', depth: 2 });
    redaction.pdu.prev_events = [pair];
    redaction.pdu.auth_events = [pair];
    redaction.pdu.event_id = redaction.event_id;
    redaction.prev_events = [create.event_id];
    redaction.auth_events = [create.event_id];
    await events.persistEvent(redaction);

    const back = await events.getEvent('$r:test.example');
    expect(back).toEqual(redaction);
    expect(back!.prev_events).toEqual(['$c:test.example']);
    expect(back!.redacts).toBe('$c:test.example');
    const roomRow = await getStorage().rooms.getRoom(roomId);
    expect(roomRow).toEqual({ roomId, roomVersion: '1', creator: '@alice:test.example', isPublic: null });

    expect(await events.markRedacted('$c:test.example', '$r:test.example')).toBe(true);
    expect(await events.markRedacted('$c:test.example', '$other')).toBe(false);
    expect((await events.getEventInfo('$c:test.example'))!.redactedBecause).toBe('$r:test.example');
  });

  it('keeps the room id of a v12 create event that has none in its PDU', async () => {
    const { events, rooms } = getStorage();
    const roomId = uniqueRoomId();
    const create = buildEvent({ id: '$v12create', roomId, type: 'm.room.create', stateKey: '', content: { room_version: '12' } });
    delete create.pdu.room_id;
    await events.persistEvent(create);
    const back = await events.getEvent('$v12create');
    expect(back).toEqual(create);
    expect(back!.room_id).toBe(roomId);
    expect(await rooms.getRoom(roomId)).toMatchObject({ roomVersion: '12', creator: '@alice:test.example' });
  });

  it('getEvents returns a map of the known events only', async () => {
    const room = new LinearRoom();
    const { events } = getStorage();
    const stored: RoomEvent[] = [room.create(), room.state('m.room.name', '', { name: 'n' }), room.message('hi')];
    for (const e of stored) await events.persistEvent(e);
    const ids = [...stored.map((e) => e.event_id), '$unknown', stored[0]!.event_id];
    const map = await events.getEvents(ids);
    expect([...map.keys()].sort()).toEqual(stored.map((e) => e.event_id).sort());
    for (const e of stored) expect(map.get(e.event_id)).toEqual(e);
    expect(await events.hasEvents(ids)).toEqual(new Set(stored.map((e) => e.event_id)));
    expect((await events.getEvents([])).size).toBe(0);
  });

  it('getEvents handles more ids than one IN list holds', async () => {
    const room = new LinearRoom();
    const { events } = getStorage();
    await events.persistEvent(room.create());
    const ids: string[] = [];
    for (let i = 0; i < 620; i++) {
      const e = room.message(`m${i}`);
      ids.push(e.event_id);
      await events.persistEvent(e, { outlier: true }); // the cheapest way to store many
    }
    const map = await events.getEvents(ids);
    expect(map.size).toBe(620);
  });

  it('is idempotent: persisting an event twice stores it once', async () => {
    const room = new LinearRoom();
    const { events } = getStorage();
    const create = room.create();
    const first = await events.persistEvent(create);
    const second = await events.persistEvent(create);
    expect(second).toMatchObject({ alreadyStored: true, streamPosition: first.streamPosition, stateGroupAfter: first.stateGroupAfter });
    expect(await events.getMaxStreamPosition()).toBe(first.streamPosition);
  });

  it('refuses events of unknown rooms, and events whose state cannot be derived', async () => {
    const { events } = getStorage();
    const room = new LinearRoom();
    const orphan = buildEvent({ id: '$orphan', roomId: room.roomId, type: 'm.room.message' });
    await expect(events.persistEvent(orphan)).rejects.toBeInstanceOf(UnknownRoomError);

    await events.persistEvent(room.create());
    const dangling = buildEvent({ id: '$dangling', roomId: room.roomId, type: 'm.room.message', prev: ['$never-seen'], depth: 5 });
    await expect(events.persistEvent(dangling)).rejects.toBeInstanceOf(MissingStateError);
    // …unless the caller supplies the state (e.g. from /state_ids).
    const result = await events.persistEvent(dangling, { stateBefore: new Map([[stateKey('m.room.create', ''), room.createId]]) });
    expect(result.alreadyStored).toBe(false);
    expect(await events.getStateAtEvent('$dangling', 'before')).toEqual(new Map([[stateKey('m.room.create', ''), room.createId]]));
  });

  it('refuses depths and timestamps beyond 2^53', async () => {
    const room = new LinearRoom();
    const { events } = getStorage();
    await events.persistEvent(room.create());
    const e = room.message('x');
    e.depth = 2 ** 60;
    await expect(events.persistEvent(e)).rejects.toThrow(/depth/);
  });

  describe('timeline', () => {
    it('returns events between stream positions in both directions', async () => {
      const room = new LinearRoom();
      const { events } = getStorage();
      const other = new LinearRoom();
      const positions: number[] = [];
      const ids: string[] = [];
      let otherCreated = false;
      for (const e of [room.create(), room.message('1'), room.message('2'), room.message('3'), room.message('4')]) {
        positions.push((await events.persistEvent(e)).streamPosition);
        ids.push(e.event_id);
        await events.persistEvent(otherCreated ? other.message('noise') : other.create());
        otherCreated = true;
      }
      const [p0, p1, , p3, p4] = positions as [number, number, number, number, number];
      const forward = await events.getEventsBetween(room.roomId, p0, p4, 10, 'f');
      expect(forward.map((t) => t.event.event_id)).toEqual(ids.slice(1));
      expect(forward.map((t) => t.streamPosition)).toEqual(positions.slice(1));
      expect((await events.getEventsBetween(room.roomId, p0, p4, 2, 'f')).map((t) => t.event.event_id)).toEqual(ids.slice(1, 3));
      const backward = await events.getEventsBetween(room.roomId, p3, p1, 10, 'b');
      expect(backward.map((t) => t.event.event_id)).toEqual([ids[3], ids[2]]);
      expect((await events.getEventsBetween(room.roomId, p4, 0, 1, 'b'))[0]!.event.event_id).toBe(ids[4]);
      expect(await events.getEventsBetween(room.roomId, p4, p4, 10, 'f')).toEqual([]);
    });

    it('answers a range again after new events: only ranges of committed positions are kept', async () => {
      const room = new LinearRoom();
      const { events } = getStorage();
      await events.persistEvent(room.create());
      const first = room.message('first');
      const p1 = (await events.persistEvent(first)).streamPosition;
      const ids = (rows: { event: RoomEvent }[]) => rows.map((t) => t.event.event_id);
      // A range reaching past the newest position can still grow: read before and after an event.
      expect(ids(await events.getEventsBetween(room.roomId, p1 - 1, p1 + 1, 10, 'f'))).toEqual([first.event_id]);
      const second = room.message('second');
      expect((await events.persistEvent(second)).streamPosition).toBe(p1 + 1);
      expect(ids(await events.getEventsBetween(room.roomId, p1 - 1, p1 + 1, 10, 'f'))).toEqual([first.event_id, second.event_id]);
      // A closed range read again: the same events, each time in an array of the caller's own.
      for (let i = 0; i < 2; i++) (await events.getEventsBetween(room.roomId, p1 + 1, 0, 10, 'b')).pop();
      const again = await events.getEventsBetween(room.roomId, p1 + 1, 0, 10, 'b');
      expect(ids(again)).toEqual([second.event_id, first.event_id, room.createId]);
    });

    it('leaves out outliers, rejected and soft-failed events', async () => {
      const room = new LinearRoom();
      const { events } = getStorage();
      await events.persistEvent(room.create());
      const start = await events.getMaxStreamPosition();
      const ok = room.message('ok');
      await events.persistEvent(ok);
      room.setTip([ok.event_id], 2);
      const rejected = room.message('rejected');
      await events.persistEvent(rejected, { rejectedReason: 'auth: not allowed' });
      room.setTip([ok.event_id], 2);
      const soft = room.message('soft');
      await events.persistEvent(soft, { softFailed: true });
      const outlier = buildEvent({ id: `$outlier-${room.roomId}`, roomId: room.roomId, type: 'm.room.member', stateKey: '@x:test.example', content: { membership: 'join' } });
      await events.persistEvent(outlier, { outlier: true });
      const timeline = await events.getEventsBetween(room.roomId, start, await events.getMaxStreamPosition(), 10, 'f');
      expect(timeline.map((t) => t.event.event_id)).toEqual([ok.event_id]);
      expect(await events.getEventInfo(rejected.event_id)).toMatchObject({ rejectedReason: 'auth: not allowed', softFailed: false, outlier: false });
      expect(await events.getEventInfo(soft.event_id)).toMatchObject({ softFailed: true, rejectedReason: null });
      expect(await events.getEventInfo(outlier.event_id)).toMatchObject({ outlier: true, stateGroupBefore: null, stateGroupAfter: null });
      expect(await events.getForwardExtremities(room.roomId)).toEqual([ok.event_id]);
    });
  });

  describe('outliers', () => {
    it('have no state, and get state and a new stream position when de-outliered', async () => {
      const room = new LinearRoom();
      const { events } = getStorage();
      const create = room.create();
      const member = room.state('m.room.member', '@alice:test.example', { membership: 'join' });
      const first = await events.persistEvent(create, { outlier: true });
      expect(first).toMatchObject({ stateGroupBefore: null, stateGroupAfter: null });
      expect(await events.getStateAtEvent(create.event_id, 'after')).toBeUndefined();
      expect(await events.getCurrentState(room.roomId)).toEqual(new Map());
      expect(await events.getForwardExtremities(room.roomId)).toEqual([]);
      // Storing it again as an outlier changes nothing.
      expect((await events.persistEvent(create, { outlier: true })).alreadyStored).toBe(true);

      const second = await events.persistEvent(create);
      expect(second.alreadyStored).toBe(false);
      expect(second.streamPosition).toBeGreaterThan(first.streamPosition);
      expect(await events.getEventInfo(create.event_id)).toMatchObject({ outlier: false, streamPosition: second.streamPosition });
      await events.persistEvent(member);
      expect(await events.getCurrentState(room.roomId)).toEqual(
        new Map([
          [stateKey('m.room.create', ''), create.event_id],
          [stateKey('m.room.member', '@alice:test.example'), member.event_id],
        ]),
      );
      // A de-outliered event is not persisted again as an outlier.
      expect((await events.persistEvent(create, { outlier: true })).alreadyStored).toBe(true);
    });
  });

  describe('forward extremities', () => {
    it('follow forks and merges', async () => {
      const room = new LinearRoom();
      const { events } = getStorage();
      const create = room.create();
      await events.persistEvent(create);
      expect(await events.getForwardExtremities(room.roomId)).toEqual([create.event_id]);
      const a = room.message('a');
      await events.persistEvent(a);
      room.setTip([create.event_id], 1);
      const b = room.message('b');
      await events.persistEvent(b);
      expect(await events.getForwardExtremities(room.roomId)).toEqual([a.event_id, b.event_id].sort());
      room.setTip([a.event_id, b.event_id], 2);
      const merge = room.message('merge');
      await events.persistEvent(merge);
      expect(await events.getForwardExtremities(room.roomId)).toEqual([merge.event_id]);
    });

    it('do not include an event that fills a gap below an existing event', async () => {
      const room = new LinearRoom();
      const { events } = getStorage();
      const create = room.create();
      await events.persistEvent(create);
      const middle = room.message('middle');
      const top = room.message('top');
      // `top` arrives first; its prev event is unknown, so the caller supplies its state.
      await events.persistEvent(top, { stateBefore: new Map([[stateKey('m.room.create', ''), create.event_id]]) });
      expect(await events.getForwardExtremities(room.roomId)).toEqual([create.event_id, top.event_id].sort());
      await events.persistEvent(middle);
      expect(await events.getForwardExtremities(room.roomId)).toEqual([top.event_id]);
    });
  });

  it('stores the room from its create event, and rooms can be stored explicitly', async () => {
    const { rooms, events } = getStorage();
    const roomId = uniqueRoomId();
    await rooms.storeRoom({ roomId, roomVersion: '11' });
    await rooms.storeRoom({ roomId, roomVersion: '11', isPublic: true });
    expect(await rooms.getRoom(roomId)).toEqual({ roomId, roomVersion: '11', creator: null, isPublic: true });
    expect(await rooms.getPublicRoomIds()).toContain(roomId);
    await rooms.setPublic(roomId, false);
    expect(await rooms.getRoomVersion(roomId)).toBe('11');
    expect(await rooms.getPublicRoomIds()).not.toContain(roomId);
    // An outlier of a room stored beforehand (joining over federation).
    const outlier = buildEvent({ id: `$o-${roomId}`, roomId, type: 'm.room.create', stateKey: '', content: { room_version: '11' } });
    await events.persistEvent(outlier, { outlier: true });
    expect(await rooms.getRoom(roomId)).toMatchObject({ creator: null });
  });

  it('caches server keys', async () => {
    const { serverKeys } = getStorage();
    const key = { serverName: 'remote.example', keyId: 'ed25519:a', publicKey: 'AAAA', validUntilTs: 2e12, expiredTs: null, fetchedAt: 1e12 };
    await serverKeys.storeKeys([key, { ...key, keyId: 'ed25519:old', expiredTs: 1.5e12 }]);
    expect(await serverKeys.getKey('remote.example', 'ed25519:a')).toEqual(key);
    await serverKeys.storeKeys([{ ...key, publicKey: 'BBBB', validUntilTs: 3e12 }]);
    expect(await serverKeys.getKey('remote.example', 'ed25519:a')).toMatchObject({ publicKey: 'BBBB', validUntilTs: 3e12 });
    expect((await serverKeys.getKeys('remote.example')).map((k) => k.keyId)).toEqual(['ed25519:a', 'ed25519:old']);
    expect(await serverKeys.getKey('remote.example', 'ed25519:none')).toBeUndefined();
  });
});
