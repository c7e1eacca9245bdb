/**
 * `PUT /_matrix/federation/v1/send/{txnId}` on a real server: a remote user's events, signed with
 * the remote server's real key, arrive in transactions; a local user sees the accepted ones in
 * /sync and /messages and never the soft-failed, rejected or forged ones. The transaction
 * endpoint's own rules: limits, per-PDU results, idempotency, ACLs.
 *
 * The checks below the X-Matrix authentication (TransactionReceiver) are driven directly, as the
 * authenticated route does after requireServer; body size limits over HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signEvent } from '../../src/events/event-signing.js';
import { computeEventId } from '../../src/events/event-id.js';
import { stateKey, type JsonObject, type Pdu } from '../../src/events/types.js';
import { TransactionReceiver } from '../../src/api/federation/transactions.js';
import type { ServerContext } from '../../src/context.js';
import { FederationRequestError } from '../../src/federation/runtime.js';
import { authEventTypes } from '../../src/rooms/auth.js';
import { getRoomVersion } from '../../src/rooms/room-versions.js';
import { ReceivedTransactionsStore } from '../../src/storage/received-transactions-store.js';
import { client, expectError } from '../helpers/client-api.js';
import { describeEachEngine } from '../helpers/databases.js';
import { startTestHomeserver, type TestHomeserver } from '../helpers/server.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';
import { TestKeyring, TestServer } from './remote-room.js';

const CONFIG = 'enable_registration: true\nrc_message: {per_second: 1000, burst_count: 1000}\n';
const remote = new TestServer('remote.test');
const bob = '@bob:remote.test';

/** An event by a remote user on top of `prev` (default: the room's forward extremities), signed by its server. */
async function remoteEvent(
  ctx: ServerContext,
  roomId: string,
  sender: string,
  draft: { type: string; state_key?: string; content: JsonObject },
  opts: { prev?: string[]; server?: TestServer } = {},
): Promise<{ pdu: Pdu; id: string }> {
  const version = getRoomVersion((await ctx.storage.rooms.getRoomVersion(roomId))!)!;
  const prev = opts.prev ?? (await ctx.storage.events.getForwardExtremities(roomId));
  const prevEvents = [...(await ctx.storage.events.getEvents(prev)).values()];
  const state = await ctx.storage.events.getStateAtEvent(prev[0]!, 'after');
  const authIds = authEventTypes({ ...draft, sender }, version)
    .map(([t, sk]) => state!.get(stateKey(t, sk)))
    .filter((id): id is string => id !== undefined);
  const server = opts.server ?? remote;
  const pdu: Pdu = {
    room_id: roomId,
    type: draft.type,
    sender,
    content: draft.content,
    origin: server.name,
    origin_server_ts: Date.now(),
    depth: Math.max(...prevEvents.map((e) => e.depth)) + 1,
    prev_events: prev,
    auth_events: authIds,
  };
  if (draft.state_key !== undefined) pdu.state_key = draft.state_key;
  const signed = signEvent(pdu, server.name, server.key, version);
  return { pdu: signed, id: computeEventId(signed, version) };
}

describe('PUT /send/{txnId}', () => {
  let hs: TestHomeserver;
  let alice: RegisteredUser;
  let roomId: string;
  let receiver: TransactionReceiver;
  let ctx: ServerContext;
  let txn = 0;
  const api = client(() => hs.baseUrl);
  const send = (pdus: unknown[], edus: unknown[] = [], origin = 'remote.test') => receiver.handle(origin, `t${++txn}`, { origin, pdus, edus });
  const syncSince = async (since: string) => api.ok(alice, 'GET', `/sync?since=${since}&timeout=0`);
  const timelineOf = (sync: { rooms?: { join?: Record<string, { timeline: { events: { event_id: string }[] } }> } }) =>
    sync.rooms?.join?.[roomId]?.timeline.events.map((e) => e.event_id) ?? [];

  beforeAll(async () => {
    hs = await startTestHomeserver(CONFIG);
    ctx = hs.server.ctx;
    // The remote server's key, and no other server reachable (nothing is missing in these tests).
    ctx.pipeline.useFederation({
      keyring: new TestKeyring([remote]),
      client: {
        request: async (destination) => {
          throw new FederationRequestError('unreachable in this test', destination);
        },
        requestStream: async (destination) => {
          throw new FederationRequestError('unreachable in this test', destination);
        },
      },
    });
    receiver = new TransactionReceiver(ctx);
    alice = await registerUser(hs.baseUrl, 'alice');
    roomId = (await api.ok(alice, 'POST', '/createRoom', { preset: 'public_chat', room_version: '10' })).room_id;
  });
  afterAll(() => hs?.stop());

  it('delivers a remote join and message to a local /sync, and keeps a soft-failed event out of every client read', async () => {
    const first = await api.ok(alice, 'GET', '/sync?timeout=0');
    const join = await remoteEvent(ctx, roomId, bob, { type: 'm.room.member', state_key: bob, content: { membership: 'join' } });
    expect(await send([join.pdu])).toEqual({ pdus: { [join.id]: {} } });
    const msg = await remoteEvent(ctx, roomId, bob, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'hi alice' } });
    expect(await send([msg.pdu])).toEqual({ pdus: { [msg.id]: {} } });

    const second = await syncSince(first.next_batch);
    expect(timelineOf(second)).toEqual([join.id, msg.id]);
    // Push rules ran for the received message: it counts as unread for alice.
    expect(second.rooms.join[roomId].unread_notifications.notification_count).toBe(1);
    const members = await api.ok(alice, 'GET', `/rooms/${encodeURIComponent(roomId)}/joined_members`);
    expect(Object.keys(members.joined)).toContain(bob);

    // alice bans bob; bob, not having seen the ban yet, writes on top of his own message.
    await api.ok(alice, 'POST', `/rooms/${encodeURIComponent(roomId)}/ban`, { user_id: bob });
    const afterBan = await syncSince(second.next_batch);
    const late = await remoteEvent(ctx, roomId, bob, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'too late' } }, { prev: [msg.id] });
    // Soft failure is not an error for the sending server.
    expect(await send([late.pdu])).toEqual({ pdus: { [late.id]: {} } });
    expect((await ctx.storage.events.getEventInfo(late.id))?.softFailed).toBe(true);

    expect(timelineOf(await syncSince(afterBan.next_batch))).toEqual([]);
    const messages = await api.ok(alice, 'GET', `/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`);
    const ids = messages.chunk.map((e: { event_id: string }) => e.event_id);
    expect(ids).toContain(msg.id);
    expect(ids).not.toContain(late.id);
    expectError(await api.call(alice, 'GET', `/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(late.id)}`), 404, 'M_NOT_FOUND');
    expectError(await api.call(alice, 'GET', `/rooms/${encodeURIComponent(roomId)}/context/${encodeURIComponent(late.id)}`), 404, 'M_NOT_FOUND');
    const initial = await api.ok(alice, 'GET', '/sync?timeout=0');
    expect(timelineOf(initial)).not.toContain(late.id);
  });

  it('answers per PDU: one bad PDU fails neither the others nor the transaction', async () => {
    const other = new TestServer('other.test');
    const carol = '@carol:remote.test';
    const join = await remoteEvent(ctx, roomId, carol, { type: 'm.room.member', state_key: carol, content: { membership: 'join' } });
    const badSig = structuredClone(join.pdu) as JsonObject;
    (badSig.content as JsonObject).displayname = 'not what was signed';
    const forged = await remoteEvent(ctx, roomId, '@dave:other.test', { type: 'm.room.member', state_key: '@dave:other.test', content: { membership: 'join' } }, { server: other });
    const unknownRoom = { ...join.pdu, room_id: '!nowhere:remote.test' };
    const res = (await send([forged.pdu, unknownRoom, join.pdu, 'not an object'])) as { pdus: Record<string, { error?: string }> };
    expect(res.pdus[join.id]).toEqual({});
    expect(res.pdus[forged.id]?.error).toMatch(/not on remote.test|signature/);
    expect(Object.values(res.pdus).some((r) => /Unknown room/.test(r.error ?? ''))).toBe(true);
    expect(await ctx.storage.events.getEvent(forged.id)).toBeUndefined();
    // A PDU whose content was changed after signing is kept redacted (hash mismatch), not refused.
    const msg = await remoteEvent(ctx, roomId, carol, { type: 'm.room.message', content: { msgtype: 'm.text', body: 'original' } });
    const tampered = { ...msg.pdu, content: { msgtype: 'm.text', body: 'tampered' } };
    expect(await send([tampered])).toEqual({ pdus: { [msg.id]: {} } });
    expect((await ctx.storage.events.getEvent(msg.id))?.content).toEqual({});
    void badSig;
  });

  it('refuses events whose sender is not on the origin server, and events the room ACL denies', async () => {
    const msg = await remoteEvent(ctx, roomId, '@carol:remote.test', { type: 'm.room.message', content: { body: 'relayed' } });
    const res = (await receiver.handle('other.test', 'forged', { pdus: [msg.pdu] })) as { pdus: Record<string, { error?: string }> };
    expect(res.pdus[msg.id]?.error).toMatch(/not on other.test/);

    await api.ok(alice, 'PUT', `/rooms/${encodeURIComponent(roomId)}/state/m.room.server_acl`, { allow: ['*'], deny: ['remote.test'] });
    const denied = await remoteEvent(ctx, roomId, '@carol:remote.test', { type: 'm.room.message', content: { body: 'denied' } });
    const res2 = (await send([denied.pdu])) as { pdus: Record<string, { error?: string }> };
    expect(res2.pdus[denied.id]?.error).toMatch(/server ACL/);
    expect(await ctx.storage.events.getEvent(denied.id)).toBeUndefined();
    await api.ok(alice, 'PUT', `/rooms/${encodeURIComponent(roomId)}/state/m.room.server_acl`, { allow: ['*'] });
  });

  it('answers a retried transaction id with the first answer, processing nothing again', async () => {
    const a = await remoteEvent(ctx, roomId, '@carol:remote.test', { type: 'm.room.message', content: { body: 'once' } });
    const first = await receiver.handle('remote.test', 'retry-me', { pdus: [a.pdu] });
    const b = await remoteEvent(ctx, roomId, '@carol:remote.test', { type: 'm.room.message', content: { body: 'not processed' } });
    const again = await receiver.handle('remote.test', 'retry-me', { pdus: [b.pdu] });
    expect(again).toEqual(first);
    expect(await ctx.storage.events.getEvent(b.id)).toBeUndefined();
    // The same txn id from another server is another transaction.
    const other = await receiver.handle('elsewhere.test', 'retry-me', { pdus: [] });
    expect(other).toEqual({ pdus: {} });
  });

  it('refuses more than 50 PDUs or 100 EDUs, and malformed transactions', async () => {
    const pdus = Array.from({ length: 51 }, () => ({}));
    await expect(receiver.handle('remote.test', 'big', { pdus })).rejects.toMatchObject({ statusCode: 400, errcode: 'M_BAD_JSON' });
    const edus = Array.from({ length: 101 }, () => ({ edu_type: 'm.typing', content: {} }));
    await expect(receiver.handle('remote.test', 'big2', { pdus: [], edus })).rejects.toMatchObject({ statusCode: 400, errcode: 'M_BAD_JSON' });
    await expect(receiver.handle('remote.test', 'bad', { pdus: 'nope' })).rejects.toMatchObject({ errcode: 'M_BAD_JSON' });
    await expect(receiver.handle('remote.test', 'bad2', [])).rejects.toMatchObject({ errcode: 'M_BAD_JSON' });
  });

  it('refuses an oversized body over HTTP with 413 M_TOO_LARGE, and unauthenticated requests with 401', async () => {
    const big = JSON.stringify({ pdus: [], edus: [], padding: 'x'.repeat(13 * 1024 * 1024) });
    const res = await api.call(undefined, 'PUT', '/_matrix/federation/v1/send/huge', big);
    expectError(res, 413, 'M_TOO_LARGE');
    expectError(await api.call(undefined, 'PUT', '/_matrix/federation/v1/send/anon', { pdus: [] }), 401, 'M_UNAUTHORIZED');
  });
});

describeEachEngine('received transactions store', (getStorage, engine) => {
  it('keeps the first answer per (origin, txn id), across a restart', async () => {
    const store = new ReceivedTransactionsStore(getStorage());
    expect(await store.getTransactionResponse('a.test', '1')).toBeUndefined();
    await store.recordTransactionResponse('a.test', '1', { pdus: { $x: {} } });
    await store.recordTransactionResponse('a.test', '1', { pdus: { $y: { error: 'later' } } });
    await store.recordTransactionResponse('b.test', '1', { pdus: {} });
    const reopened = new ReceivedTransactionsStore(await engine.reopen());
    expect(await reopened.getTransactionResponse('a.test', '1')).toEqual({ pdus: { $x: {} } });
    expect(await reopened.getTransactionResponse('b.test', '1')).toEqual({ pdus: {} });
  });
});
