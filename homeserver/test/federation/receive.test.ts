/**
 * The receiving side of the room event pipeline (rooms/receive.ts) on both engines, with events
 * signed by another server's real key: the spec's checks on receipt of a PDU in order (format,
 * signatures, hashes, auth at the auth events, at the state before, at current state), missing
 * prev and auth events fetched from the sending server, and the outcome of each kept apart.
 */
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../src/events/signing.js';
import { stateKey, type JsonObject } from '../../src/events/types.js';
import { checkIncomingPdu, PduCheckError } from '../../src/federation/event-checks.js';
import { indexingHook } from '../../src/rooms/indexing.js';
import { RoomEventPipeline } from '../../src/rooms/pipeline.js';
import { getRoomVersion, type RoomVersion } from '../../src/rooms/room-versions.js';
import { filterVisibleEvents } from '../../src/rooms/visibility.js';
import type { Storage } from '../../src/storage/database.js';
import { InMemoryNotifier } from '../../src/sync/notifier.js';
import { describeEachEngine } from '../helpers/databases.js';
import { RemoteRoom, TestKeyring, TestServer } from './remote-room.js';

const remote = new TestServer('remote.test');
const other = new TestServer('other.test');
const alice = '@alice:remote.test';
const bob = '@bob:remote.test';
const carol = '@carol:other.test';

function setup(storage: Storage, version: RoomVersion) {
  const notifier = new InMemoryNotifier();
  const pipeline = new RoomEventPipeline({
    storage,
    serverName: 'local.test',
    signingKey: generateSigningKey(),
    notifier,
    log: pino({ level: 'silent' }),
  });
  pipeline.onPersist(indexingHook(storage));
  const room = new RemoteRoom(version, remote);
  pipeline.useFederation({ client: room.client(), keyring: new TestKeyring([remote, other]) });
  const receive = (id: string, opts: { origin?: string; outlier?: boolean } = {}) =>
    pipeline.receive(room.pdu(id), { origin: opts.origin ?? 'remote.test', roomVersion: version, ...(opts.outlier ? { outlier: true } : {}) });
  return { pipeline, room, receive, notifier };
}

/** The timeline a client could page through (everything from the start to now). */
async function timelineIds(storage: Storage, roomId: string): Promise<string[]> {
  const max = await storage.events.getMaxStreamPosition();
  return (await storage.events.getEventsBetween(roomId, -1e15, max, 1000, 'f')).map((t) => t.event.event_id);
}

/** The auth events of a message by bob: the room's create (v1–v11) and power levels, and `memberId`. */
function msgAuth(room: RemoteRoom, memberId: string): string[] {
  const ids = [...room.events.values()]
    .filter((h) => (h.event.type === 'm.room.create' && !room.version.privilegedCreators) || h.event.type === 'm.room.power_levels')
    .map((h) => h.event.event_id);
  return [...ids, memberId];
}

describeEachEngine('receiving PDUs', (getStorage) => {
  for (const versionId of ['10', '12']) {
    describe(`room version ${versionId}`, () => {
      const version = getRoomVersion(versionId)!;
      let t: ReturnType<typeof setup>;
      let storage: Storage;
      let base: string[];

      beforeEach(async () => {
        storage = getStorage();
        t = setup(storage, version);
        base = t.room.createPublicRoom(alice);
        for (const id of base) expect((await t.receive(id)).outcome).toBe('accepted');
      });

      it('accepts a chain of valid events, updates current state and memberships, wakes /sync', async () => {
        const join = t.room.make(bob, { type: 'm.room.member', state_key: bob, content: { membership: 'join' } });
        const position = t.notifier.position;
        expect(await t.receive(join.id)).toEqual({ eventId: join.id, outcome: 'accepted' });
        expect(t.notifier.position).toBeGreaterThan(position);
        const msg = t.room.make(bob, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'hello' } });
        expect((await t.receive(msg.id)).outcome).toBe('accepted');
        expect(await storage.events.getCurrentStateEventId(t.room.roomId, 'm.room.member', bob)).toBe(join.id);
        expect((await storage.memberships.get(t.room.roomId, bob))?.membership).toBe('join');
        expect(await storage.events.getForwardExtremities(t.room.roomId)).toEqual([msg.id]);
        expect((await timelineIds(storage, t.room.roomId)).slice(-2)).toEqual([join.id, msg.id]);
        // Persist hooks ran: the message is searchable.
        const found = await storage.search.search({ term: 'hello', roomIds: [t.room.roomId], keys: ['content.body'], orderBy: 'recent', limit: 5 });
        expect(found.hits.map((h) => h.eventId)).toEqual([msg.id]);
        // The same PDU again changes nothing.
        expect((await t.receive(msg.id)).outcome).toBe('duplicate');
      });

      it('drops an event whose signature does not verify, and one signed by the wrong server', async () => {
        const msg = t.room.make(alice, { type: 'm.room.message', content: { body: 'signed' } });
        const pdu = structuredClone(t.room.pdu(msg.id)) as JsonObject;
        const sigs = (pdu.signatures as Record<string, Record<string, string>>)['remote.test']!;
        const keyId = Object.keys(sigs)[0]!;
        sigs[keyId] = sigs[keyId]!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
        const result = await t.pipeline.receive(pdu, { origin: 'remote.test', roomVersion: version });
        expect(result.outcome).toBe('rejected');
        expect(result.reason).toMatch(/signature/);
        expect(await storage.events.getEvent(msg.id)).toBeUndefined();

        const forged = t.room.make(alice, { type: 'm.room.message', content: { body: 'forged' } }, { signer: other });
        expect((await t.receive(forged.id)).outcome).toBe('rejected');
        expect(await storage.events.getEvent(forged.id)).toBeUndefined();
      });

      it('stores the redacted form of an event whose content hash does not match', async () => {
        const msg = t.room.make(alice, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'original' } });
        const pdu = structuredClone(t.room.pdu(msg.id)) as JsonObject;
        pdu.content = { msgtype: 'm.text', body: 'tampered' };
        const result = await t.pipeline.receive(pdu, { origin: 'remote.test', roomVersion: version });
        expect(result).toEqual({ eventId: msg.id, outcome: 'accepted' });
        const stored = await storage.events.getEvent(msg.id);
        expect(stored?.content).toEqual({});
        expect(stored?.pdu.hashes).toEqual(t.room.pdu(msg.id).hashes);

        // checkIncomingPdu (for send_join state) gives the same redacted event, and refuses bad formats.
        const checked = await checkIncomingPdu({ keyring: new TestKeyring([remote]) }, pdu, version);
        expect(checked.content).toEqual({});
        await expect(checkIncomingPdu({ keyring: new TestKeyring([remote]) }, { ...pdu, depth: -1 }, version)).rejects.toBeInstanceOf(PduCheckError);
      });

      it('refuses an event whose sender is not on the transaction origin', async () => {
        const msg = t.room.make(alice, { type: 'm.room.message', content: { body: 'hi' } });
        const result = await t.receive(msg.id, { origin: 'other.test' });
        expect(result.outcome).toBe('rejected');
        expect(result.reason).toMatch(/not on other.test/);
        expect(await storage.events.getEvent(msg.id)).toBeUndefined();
      });

      it('rejects an event its auth events do not allow, and keeps it out of the timeline', async () => {
        // carol never joined: her message fails the auth rules at its auth events.
        const msg = t.room.make(carol, { type: 'm.room.message', content: { body: 'let me in' } }, { signer: other });
        const result = await t.receive(msg.id, { origin: 'other.test' });
        expect(result.outcome).toBe('rejected');
        expect(result.reason).toMatch(/not joined/);
        const info = await storage.events.getEventInfo(msg.id);
        expect(info?.rejectedReason).toMatch(/not joined/);
        expect(await timelineIds(storage, t.room.roomId)).not.toContain(msg.id);
        expect(await storage.events.getForwardExtremities(t.room.roomId)).not.toContain(msg.id);
        expect((await t.receive(msg.id, { origin: 'other.test' })).outcome).toBe('duplicate');
      });

      it('rejects an event that lists auth events the state before it contradicts', async () => {
        const join = t.room.make(bob, { type: 'm.room.member', state_key: bob, content: { membership: 'join' } });
        const leave = t.room.make(bob, { type: 'm.room.member', state_key: bob, content: { membership: 'leave' } });
        for (const id of [join.id, leave.id]) expect((await t.receive(id)).outcome).toBe('accepted');
        // A message that lists bob's old join among its auth events, built on top of his leave:
        // its auth events allow it, the state before it does not.
        const authIds = msgAuth(t.room, join.id);
        const msg = t.room.make(bob, { type: 'm.room.message', content: { body: 'ghost' } }, { auth: authIds });
        const result = await t.receive(msg.id);
        expect(result.outcome).toBe('rejected');
        expect(result.reason).toMatch(/not joined/);
        expect((await storage.events.getEventInfo(msg.id))?.stateGroupBefore).not.toBeNull();
        expect(await timelineIds(storage, t.room.roomId)).not.toContain(msg.id);
      });

      it('soft-fails an event allowed at its own state but not at current state: stored, never shown', async () => {
        const join = t.room.make(bob, { type: 'm.room.member', state_key: bob, content: { membership: 'join' } });
        expect((await t.receive(join.id)).outcome).toBe('accepted');
        // bob writes on top of his join while alice, in parallel, bans him.
        const ban = t.room.make(alice, { type: 'm.room.member', state_key: bob, content: { membership: 'ban' } }, { prev: [join.id] });
        expect((await t.receive(ban.id)).outcome).toBe('accepted');
        const msg = t.room.make(bob, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'sneaky' } }, { prev: [join.id] });
        const result = await t.receive(msg.id);
        expect(result.outcome).toBe('soft_failed');
        const info = await storage.events.getEventInfo(msg.id);
        expect(info?.softFailed).toBe(true);
        expect(await timelineIds(storage, t.room.roomId)).not.toContain(msg.id);
        expect(await storage.events.getForwardExtremities(t.room.roomId)).toEqual([ban.id]);
        const stored = (await storage.events.getEvent(msg.id))!;
        expect(await filterVisibleEvents(storage, alice, [stored])).toEqual([]);
        const found = await storage.search.search({ term: 'sneaky', roomIds: [t.room.roomId], keys: ['content.body'], orderBy: 'recent', limit: 5 });
        expect(found.count).toBe(0);
      });

      it('fetches missing prev events with /get_missing_events', async () => {
        const ids = ['one', 'two', 'three'].map((body) => t.room.make(alice, { type: 'm.room.message', content: { body } }).id);
        const result = await t.receive(ids[2]!);
        expect(result.outcome).toBe('accepted');
        expect(t.room.requests.some((r) => r.startsWith('POST /_matrix/federation/v1/get_missing_events/'))).toBe(true);
        expect((await timelineIds(storage, t.room.roomId)).slice(-3)).toEqual(ids);
      });

      it('closes a gap it cannot fill with the state at the missing prev event (/state_ids), fetching unknown state as outliers', async () => {
        t.room.answerMissingEvents = false;
        const join = t.room.make(bob, { type: 'm.room.member', state_key: bob, content: { membership: 'join' } });
        const topic = t.room.make(alice, { type: 'm.room.topic', state_key: '', content: { topic: 'gap' } });
        const msg = t.room.make(bob, { type: 'm.room.message', content: { body: 'after the gap' } });
        const result = await t.receive(msg.id);
        expect(result.outcome).toBe('accepted');
        expect(t.room.requests.some((r) => r.startsWith('GET /_matrix/federation/v1/state_ids/'))).toBe(true);
        // The missing events are held as outliers; the state before the message has them.
        expect((await storage.events.getEventInfo(join.id))?.outlier).toBe(true);
        expect((await storage.events.getEventInfo(topic.id))?.outlier).toBe(true);
        const before = await storage.events.getStateAtEvent(msg.id, 'before');
        expect(before?.get(stateKey('m.room.member', bob))).toBe(join.id);
        expect(before?.get(stateKey('m.room.topic', ''))).toBe(topic.id);
        expect(await storage.events.getCurrentStateEventId(t.room.roomId, 'm.room.topic', '')).toBe(topic.id);
        expect((await storage.memberships.get(t.room.roomId, bob))?.membership).toBe('join');
        expect(await timelineIds(storage, t.room.roomId)).not.toContain(join.id);
      });

      /** The room's client with its /state_ids answers changed by `edit`. */
      const editStateIds = (edit: (body: { pdu_ids: string[]; auth_chain_ids: string[] }) => void) => {
        const real = t.room.client();
        t.pipeline.useFederation({
          client: {
            ...real,
            request: (async (destination: string, req: Parameters<typeof real.request>[1]) => {
              const body = await real.request<{ pdu_ids: string[]; auth_chain_ids: string[] }>(destination, req);
              if (req.path.includes('/state_ids/')) edit(body);
              return body;
            }) as typeof real.request,
            requestStream: (d, r) => real.requestStream(d, r),
          },
          keyring: new TestKeyring([remote, other]),
        });
      };

      it('does not follow a /state_ids answer listing too many events', async () => {
        t.room.answerMissingEvents = false;
        t.room.make(alice, { type: 'm.room.topic', state_key: '', content: { topic: 'gap' } });
        const msg = t.room.make(alice, { type: 'm.room.message', content: { body: 'after the gap' } });
        editStateIds((body) => body.auth_chain_ids.push(...Array.from({ length: 10_001 }, (_, i) => `$filler${i}`)));
        const result = await t.receive(msg.id);
        expect(result).toMatchObject({ outcome: 'rejected', reason: expect.stringMatching(/more than 10000 events/) });
        expect(t.room.requests.some((r) => r.startsWith('GET /_matrix/federation/v1/event/'))).toBe(false);
        expect(await storage.events.getEventInfo(msg.id)).toBeUndefined();
      });

      it('does not process an event against state the remote lists but does not give', async () => {
        t.room.answerMissingEvents = false;
        t.room.make(alice, { type: 'm.room.topic', state_key: '', content: { topic: 'gap' } });
        const msg = t.room.make(alice, { type: 'm.room.message', content: { body: 'after the gap' } });
        editStateIds((body) => body.pdu_ids.push('$a-ban-nobody-will-serve'));
        const result = await t.receive(msg.id);
        expect(result).toMatchObject({ outcome: 'rejected', reason: expect.stringMatching(/not available/) });
        expect(await storage.events.getEventInfo(msg.id)).toBeUndefined();
      });

      it('leaves events it rejected out of the state a /state_ids answer lists', async () => {
        // Bob is not in the room: his topic is rejected here, though the remote counts it as state.
        const bad = t.room.make(bob, { type: 'm.room.topic', state_key: '', content: { topic: 'not allowed' } });
        expect((await t.receive(bad.id)).outcome).toBe('rejected');
        t.room.answerMissingEvents = false;
        t.room.make(alice, { type: 'm.room.message', content: { body: 'in the gap' } });
        const msg = t.room.make(alice, { type: 'm.room.message', content: { body: 'after the gap' } });
        expect((await t.receive(msg.id)).outcome).toBe('accepted');
        expect(t.room.requests.some((r) => r.startsWith('GET /_matrix/federation/v1/state_ids/'))).toBe(true);
        expect((await storage.events.getStateAtEvent(msg.id, 'before'))?.get(stateKey('m.room.topic', ''))).not.toBe(bad.id);
        expect(await storage.events.getCurrentStateEventId(t.room.roomId, 'm.room.topic', '')).not.toBe(bad.id);
      });

      it('fetches missing auth events of an outlier', async () => {
        const join = t.room.make(bob, { type: 'm.room.member', state_key: bob, content: { membership: 'join' } });
        const name = t.room.make(bob, { type: 'm.room.message', content: { body: 'x' } });
        void name;
        const leave = t.room.make(bob, { type: 'm.room.member', state_key: bob, content: { membership: 'leave' } });
        const result = await t.receive(leave.id, { outlier: true });
        expect(result.outcome).toBe('accepted');
        expect((await storage.events.getEventInfo(join.id))?.outlier).toBe(true);
        expect((await storage.events.getEventInfo(leave.id))?.outlier).toBe(true);
        expect(await storage.events.getCurrentStateEventId(t.room.roomId, 'm.room.member', bob)).toBeUndefined();
      });

      it('does not process (nor store) an event whose auth events cannot be had', async () => {
        const authIds = [...msgAuth(t.room, base[1]!), '$not-an-event-anyone-has'];
        const msg = t.room.make(alice, { type: 'm.room.message', content: { body: 'orphan' } }, { auth: authIds });
        const result = await t.receive(msg.id);
        expect(result.outcome).toBe('rejected');
        expect(result.reason).toMatch(/auth events not available/);
        expect(await storage.events.getEventInfo(msg.id)).toBeUndefined();
      });

      it('applies received redactions, also when the redaction arrives before the event', async () => {
        const msg = t.room.make(alice, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'secret' } });
        const redaction = t.room.make(alice, { type: 'm.room.redaction', content: {}, redacts: msg.id });
        expect((await t.receive(msg.id)).outcome).toBe('accepted');
        expect((await t.receive(redaction.id)).outcome).toBe('accepted');
        expect((await storage.events.getEventInfo(msg.id))?.redactedBecause).toBe(redaction.id);

        // Redaction first (on a branch of its own), then the event it redacts.
        const msg2 = t.room.make(alice, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'secret 2' } });
        const early = t.room.make(alice, { type: 'm.room.redaction', content: {}, redacts: msg2.id }, { prev: [redaction.id] });
        expect((await t.receive(early.id)).outcome).toBe('accepted');
        expect((await t.receive(msg2.id)).outcome).toBe('accepted');
        expect((await storage.events.getEventInfo(msg2.id))?.redactedBecause).toBe(early.id);
      });

      it('resolves state when a received event forks the room', async () => {
        const topicA = t.room.make(alice, { type: 'm.room.topic', state_key: '', content: { topic: 'A' } });
        const fork = t.room.make(alice, { type: 'm.room.name', state_key: '', content: { name: 'N' } }, { prev: [base.at(-1)!] });
        expect((await t.receive(topicA.id)).outcome).toBe('accepted');
        expect((await t.receive(fork.id)).outcome).toBe('accepted');
        expect(await storage.events.getForwardExtremities(t.room.roomId)).toEqual([topicA.id, fork.id].sort());
        expect(await storage.events.getCurrentStateEventId(t.room.roomId, 'm.room.topic', '')).toBe(topicA.id);
        expect(await storage.events.getCurrentStateEventId(t.room.roomId, 'm.room.name', '')).toBe(fork.id);
        const merge = t.room.make(alice, { type: 'm.room.message', content: { body: 'merge' } });
        expect(merge.event.prev_events.sort()).toEqual([topicA.id, fork.id].sort());
        expect((await t.receive(merge.id)).outcome).toBe('accepted');
        expect(await storage.events.getForwardExtremities(t.room.roomId)).toEqual([merge.id]);
      });
    });
  }
});
