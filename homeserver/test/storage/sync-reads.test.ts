/**
 * The bulk reads of an initial /sync (storage/sync-reads.ts) on SQLite and PostgreSQL: each must
 * give, for many rooms at once, what the per-room reads of the events store give room by room.
 */
import { expect, it } from 'vitest';
import type { RoomEvent } from '../../src/events/types.js';
import { describeEachEngine } from '../helpers/databases.js';
import { LinearRoom } from './fixtures.js';

describeEachEngine(
  'sync bulk reads',
  (getStorage) => {
    const rooms: LinearRoom[] = [];
    const persisted = new Map<string, RoomEvent[]>();

    async function persist(room: LinearRoom, event: RoomEvent, opts: { rejectedReason?: string; softFailed?: boolean } = {}) {
      await getStorage().events.persistEvent(event, opts);
      if (!opts.rejectedReason && !opts.softFailed) persisted.set(room.roomId, [...(persisted.get(room.roomId) ?? []), event]);
    }

    it('sets up rooms of different sizes, with rejected and soft-failed events', async () => {
      // Room 0: only its create event; room 1: 3 events; room 2: 30, with long state-delta chains.
      for (let r = 0; r < 3; r++) {
        const room = new LinearRoom('10');
        rooms.push(room);
        await persist(room, room.create());
      }
      await persist(rooms[1]!, rooms[1]!.state('m.room.member', '@alice:test.example', { membership: 'join' }));
      await persist(rooms[1]!, rooms[1]!.message('hello'));
      const big = rooms[2]!;
      await persist(big, big.state('m.room.member', '@alice:test.example', { membership: 'join' }));
      for (let i = 0; i < 27; i++) {
        await persist(big, i % 3 === 0 ? big.state('m.room.topic', '', { topic: `t${i}` }) : big.message(`m${i}`));
      }
      await persist(big, big.message('rejected'), { rejectedReason: 'test' });
      await persist(big, big.message('soft-failed'), { softFailed: true });
    });

    it('reads the newest events of every room, newest first, with the state groups the store has', async () => {
      const storage = getStorage();
      const upTo = await storage.events.getMaxStreamPosition();
      const ranges = rooms.map((r) => ({ roomId: r.roomId, after: 0, upTo }));
      for (const perRoom of [1, 5, 11, 100]) {
        const read = await storage.syncReads.latestEvents(ranges, perRoom);
        for (const room of rooms) {
          const expected = await storage.events.getEventsBetween(room.roomId, upTo, 0, perRoom, 'b');
          const rows = read.get(room.roomId) ?? [];
          expect(rows.map((r) => [r.streamPosition, r.event])).toEqual(expected.map((e) => [e.streamPosition, e.event]));
          for (const row of rows) {
            const info = await storage.events.getEventInfo(row.event.event_id);
            expect([row.stateGroupBefore, row.stateGroupAfter]).toEqual([info!.stateGroupBefore, info!.stateGroupAfter]);
          }
        }
      }
      expect((await storage.syncReads.latestEvents(ranges, 100)).get(rooms[2]!.roomId)!.map((r) => r.event.content.body)).not.toContain(
        'rejected',
      );
    });

    it('keeps to each room its own range', async () => {
      const storage = getStorage();
      const big = rooms[2]!;
      const events = persisted.get(big.roomId)!;
      const positions = await Promise.all(events.map(async (e) => (await storage.events.getEventInfo(e.event_id))!.streamPosition));
      const after = positions[5]!;
      const upTo = positions[10]!;
      const read = await storage.syncReads.latestEvents(
        [
          { roomId: big.roomId, after, upTo },
          { roomId: rooms[1]!.roomId, after: 0, upTo: 0 },
        ],
        100,
      );
      expect(read.get(big.roomId)!.map((r) => r.event.event_id)).toEqual(events.slice(6, 11).reverse().map((e) => e.event_id));
      expect(read.has(rooms[1]!.roomId)).toBe(false);
      expect((await storage.syncReads.latestEvents([{ roomId: big.roomId, after: 0, upTo }], 0)).size).toBe(0);
    });

    it('reads the state of many groups as the state-group store does', async () => {
      const storage = getStorage();
      const groups = new Set<number>();
      for (const room of rooms) {
        for (const event of persisted.get(room.roomId)!) {
          const info = await storage.events.getEventInfo(event.event_id);
          groups.add(info!.stateGroupBefore!);
          groups.add(info!.stateGroupAfter!);
        }
      }
      const states = await storage.syncReads.statesOfGroups(groups);
      expect(states.size).toBe(groups.size);
      for (const group of groups) expect(states.get(group), `group ${group}`).toEqual(await storage.stateGroups.getState(group));
      expect((await storage.syncReads.statesOfGroups([987_654_321])).size).toBe(0);
    });

    it('reads events and memberships of many rooms', async () => {
      const storage = getStorage();
      const ids = [...persisted.values()].flat().map((e) => e.event_id);
      const read = await storage.syncReads.events([...ids, '$unknown']);
      expect(read.size).toBe(ids.length);
      for (const id of ids) expect(read.get(id)).toEqual(await storage.events.getEvent(id));
      // Memberships are kept by the pipeline's hook (not called here): none, but every room listed.
      const members = await storage.syncReads.membersOfRooms(rooms.map((r) => r.roomId));
      expect([...members.keys()]).toEqual(rooms.map((r) => r.roomId));
    });

    it('parses a row again when its JSON changed, and tells the redactions read with the rows', async () => {
      const storage = getStorage();
      const event = persisted.get(rooms[1]!.roomId)!.at(-1)!;
      expect((await storage.syncReads.events([event.event_id])).get(event.event_id)!.content.body).toBe('hello');
      // What persisting a full copy of an event first stored redacted does: the same id, other JSON.
      const pdu = { ...event.pdu, content: { msgtype: 'm.text', body: 'rewritten' } };
      await storage.db
        .updateTable('events')
        .set({ pdu_json: JSON.stringify(pdu), redacted_because: '$redaction' })
        .where('event_id', '=', event.event_id)
        .execute();
      const redactedBy = new Map<string, string>();
      expect((await storage.syncReads.events([event.event_id], redactedBy)).get(event.event_id)!.content.body).toBe('rewritten');
      expect(redactedBy.get(event.event_id)).toBe('$redaction');
      const upTo = await storage.events.getMaxStreamPosition();
      const latest = await storage.syncReads.latestEvents([{ roomId: rooms[1]!.roomId, after: 0, upTo }], 1);
      const [newest] = latest.get(rooms[1]!.roomId)!;
      expect([newest!.event.content.body, newest!.redactedBecause]).toEqual(['rewritten', '$redaction']);
    });
  },
  { open: { stateGroups: { maxDeltaDepth: 4, cacheSize: 0 } } },
);
