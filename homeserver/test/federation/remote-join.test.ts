/**
 * Joining a room on another server (make_join / send_join over real HTTPS between Hearth servers):
 * by room id with a server name, by alias, in every room version family; the joining user's
 * /sync shows the room with its state, older history comes with /messages, and messages flow both
 * ways afterwards. Joins that cannot happen end in a clean Matrix error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/events/types.js';
import { client, enc, expectError, type Client } from '../helpers/client-api.js';
import { startFederatedServers, type FederatedServer } from '../helpers/federation.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';

const EXTRA = 'enable_registration: true\nrc_message: {per_second: 1000, burst_count: 1000}\n';

/** Polls until `fn` gives a value (the bound only guards against a hang; nothing is timed). */
async function until<T>(fn: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const value = await fn();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** The events of a room's timeline (and state) in one initial /sync. */
async function roomInSync(api: Client, user: RegisteredUser, roomId: string): Promise<{ state: JsonObject[]; timeline: JsonObject[] } | undefined> {
  const body = await api.ok(user, 'GET', '/sync?timeout=0');
  const room = body.rooms?.join?.[roomId];
  if (!room) return undefined;
  return { state: room.state?.events ?? [], timeline: room.timeline?.events ?? [] };
}

/** Pages back through /messages until an event matching `match` shows up (the server backfills). */
async function findInHistory(api: Client, user: RegisteredUser, roomId: string, match: (e: JsonObject) => boolean): Promise<JsonObject | undefined> {
  let from: string | undefined;
  for (let page = 0; page < 10; page++) {
    const body = await api.ok(user, 'GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=20${from ? `&from=${enc(from)}` : ''}`);
    const found = (body.chunk as JsonObject[]).find(match);
    if (found) return found;
    if (!body.end) return undefined;
    from = body.end as string;
  }
  return undefined;
}

describe('joining rooms on other servers', () => {
  let servers: FederatedServer[];
  let a: FederatedServer;
  let b: FederatedServer;
  let c: FederatedServer;
  let alice: RegisteredUser; // on A
  let bob: RegisteredUser; // on B
  let carol: RegisteredUser; // on C
  const apiA = client(() => a.baseUrl);
  const apiB = client(() => b.baseUrl);
  const apiC = client(() => c.baseUrl);

  beforeAll(async () => {
    servers = await startFederatedServers(3, EXTRA);
    [a, b, c] = servers as [FederatedServer, FederatedServer, FederatedServer];
    alice = await registerUser(a.baseUrl, 'alice');
    bob = await registerUser(b.baseUrl, 'bob');
    carol = await registerUser(c.baseUrl, 'carol');
  }, 60_000);
  afterAll(async () => {
    await Promise.all((servers ?? []).map((s) => s.stop()));
  });

  const createPublicRoom = async (version: string, name: string, extra: JsonObject = {}) =>
    (await apiA.ok(alice, 'POST', '/createRoom', { room_version: version, preset: 'public_chat', name, ...extra })).room_id as string;

  it.each(['1', '2', '5', '10', '11', '12'])('joins a version %s room by id through server_name', async (version) => {
    const roomId = await createPublicRoom(version, `Room v${version}`);
    await apiA.ok(alice, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/before-${version}`, { msgtype: 'm.text', body: `before the join (v${version})` });

    const joined = await apiB.ok(bob, 'POST', `/join/${enc(roomId)}?server_name=${enc(a.name)}`, {});
    expect(joined).toEqual({ room_id: roomId });

    // B now holds the room: bob's sync shows it joined, with its state and his join.
    const room = await until(() => roomInSync(apiB, bob, roomId), 'the joined room in sync');
    const all = [...room.state, ...room.timeline];
    expect(all.find((e) => e.type === 'm.room.create')?.content).toMatchObject(version === '1' ? {} : { room_version: version });
    expect(all.find((e) => e.type === 'm.room.name')?.content).toEqual({ name: `Room v${version}` });
    expect(all.find((e) => e.type === 'm.room.member' && e.state_key === alice.userId)?.content).toMatchObject({ membership: 'join' });
    expect(room.timeline.find((e) => e.type === 'm.room.member' && e.state_key === bob.userId)?.content).toMatchObject({ membership: 'join' });
    expect((await apiB.ok(bob, 'GET', '/joined_rooms')).joined_rooms).toContain(roomId);
    expect(await apiB.ok(bob, 'GET', `/rooms/${enc(roomId)}/state/m.room.name/`)).toEqual({ name: `Room v${version}` });

    // A accepted the join.
    expect(await apiA.ok(alice, 'GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`)).toMatchObject({ membership: 'join' });

    // The creator's earlier message is in the room's history on B.
    const earlier = await findInHistory(apiB, bob, roomId, (e) => e.type === 'm.room.message');
    expect(earlier?.content).toEqual({ msgtype: 'm.text', body: `before the join (v${version})` });
  }, 60_000);

  it('joins by a remote alias, and messages flow both ways afterwards', async () => {
    const roomId = await createPublicRoom('11', 'Aliased', { room_alias_name: 'aliased' });
    const joined = await apiC.ok(carol, 'POST', `/join/${enc(`#aliased:${a.name}`)}`, {});
    expect(joined).toEqual({ room_id: roomId });
    expect(await apiC.ok(carol, 'GET', `/rooms/${enc(roomId)}/state/m.room.name/`)).toEqual({ name: 'Aliased' });

    // A → C: F4's sender delivers alice's message, F2's /send receives it.
    await apiA.ok(alice, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/to-carol`, { msgtype: 'm.text', body: 'hello carol' });
    await until(async () => {
      const room = await roomInSync(apiC, carol, roomId);
      return room?.timeline.find((e) => (e.content as JsonObject).body === 'hello carol');
    }, "alice's message on C");

    // C → A.
    await apiC.ok(carol, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/to-alice`, { msgtype: 'm.text', body: 'hello alice' });
    await until(async () => {
      const room = await roomInSync(apiA, alice, roomId);
      return room?.timeline.find((e) => (e.content as JsonObject).body === 'hello alice');
    }, "carol's message on A");

    // A third server joining through C (not the room's origin) hears of the room from C.
    const joinedB = await apiB.ok(bob, 'POST', `/join/${enc(roomId)}?via=${enc(c.name)}`, {});
    expect(joinedB).toEqual({ room_id: roomId });
    await until(async () => {
      const state = await apiA.call(alice, 'GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`);
      return state.status === 200 && state.body.membership === 'join' ? true : undefined;
    }, "bob's join reaching A through C");
  }, 60_000);

  it('leaves a remote room with an ordinary leave event', async () => {
    const roomId = await createPublicRoom('10', 'Leave me');
    await apiB.ok(bob, 'POST', `/join/${enc(roomId)}?server_name=${enc(a.name)}`, {});
    await apiB.ok(bob, 'POST', `/rooms/${enc(roomId)}/leave`, {});
    expect((await apiB.ok(bob, 'GET', '/joined_rooms')).joined_rooms).not.toContain(roomId);
    await until(async () => {
      const state = await apiA.ok(alice, 'GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`);
      return state.membership === 'leave' ? true : undefined;
    }, "bob's leave on A");
    // And can come back: this server is no longer in the room, so through A again.
    await apiB.ok(bob, 'POST', `/join/${enc(roomId)}?server_name=${enc(a.name)}`, {});
    expect((await apiB.ok(bob, 'GET', '/joined_rooms')).joined_rooms).toContain(roomId);
  }, 60_000);

  it('answers a join to an unknown room or one the join rules close with a Matrix error', async () => {
    expectError(await apiB.call(bob, 'POST', `/join/${enc(`!nowhere:${a.name}`)}?server_name=${enc(a.name)}`, {}), 404, 'M_NOT_FOUND');
    const privateRoom = (await apiA.ok(alice, 'POST', '/createRoom', { preset: 'private_chat', name: 'Closed' })).room_id as string;
    expectError(await apiB.call(bob, 'POST', `/join/${enc(privateRoom)}?server_name=${enc(a.name)}`, {}), 403, 'M_FORBIDDEN');
    // Without any server to ask (a v12 room id names none).
    expectError(await apiB.call(bob, 'POST', `/join/${enc('!unknownv12roomidwithoutserver')}`, {}), 404, 'M_NOT_FOUND');
    // A server the room's server ACL denies (every test server is `localhost`, whatever its port).
    const aclRoom = await createPublicRoom('11', 'No localhost', {
      initial_state: [{ type: 'm.room.server_acl', state_key: '', content: { allow: ['*'], deny: ['localhost'], allow_ip_literals: true } }],
    });
    expectError(await apiB.call(bob, 'POST', `/join/${enc(aclRoom)}?server_name=${enc(a.name)}`, {}), 403, 'M_FORBIDDEN');
    // Nothing of the refused joins is left behind.
    expect((await apiB.ok(bob, 'GET', '/joined_rooms')).joined_rooms).not.toContain(privateRoom);
  }, 60_000);
});
