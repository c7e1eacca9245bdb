/**
 * Membership across servers over real HTTPS: invites both ways (/v2/invite countersigned by the
 * invitee's server, shown in the invitee's /sync with the room's stripped state, accepted with a
 * remote join or rejected with make_leave/send_leave), knocking (make_knock/send_knock), joins to
 * restricted rooms authorised by a resident server, and the errors the membership endpoints give
 * other servers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FederationRequestError } from '../../src/federation/runtime.js';
import { computeEventId } from '../../src/events/event-id.js';
import { signEvent } from '../../src/events/event-signing.js';
import { getRoomVersion } from '../../src/rooms/room-versions.js';
import { responseErrors, specAvailable } from '../helpers/spec-schemas.js';
import type { JsonObject } from '../../src/events/types.js';
import { client, enc, expectError, type Client } from '../helpers/client-api.js';
import { startFederatedServers, type FederatedServer } from '../helpers/federation.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';

const EXTRA = 'enable_registration: true\nrc_message: {per_second: 1000, burst_count: 1000}\n';

async function until<T>(fn: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const value = await fn();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** An initial /sync's rooms. */
async function syncRooms(api: Client, user: RegisteredUser): Promise<Record<'join' | 'invite' | 'knock' | 'leave', Record<string, JsonObject>>> {
  const body = await api.ok(user, 'GET', '/sync?timeout=0&filter=' + enc(JSON.stringify({ room: { include_leave: true } })));
  return { join: {}, invite: {}, knock: {}, leave: {}, ...body.rooms };
}

/** Checks a Server-Server response against the spec's schema (skipped without the spec data). */
function expectSpecResponse(api: string, path: string, method: string, status: number, body: unknown): void {
  if (!specAvailable) return;
  expect(responseErrors(api, path, method, status, body)).toEqual([]);
}

/** What a federation request to `destination` failed with. */
async function federationError(from: FederatedServer, destination: string, req: Parameters<FederatedServer['server']['ctx']['federation']['client']['request']>[1]) {
  try {
    await from.server.ctx.federation.client.request(destination, req);
  } catch (err) {
    if (err instanceof FederationRequestError) return { status: err.status, errcode: err.errcode, body: err.body as JsonObject };
    throw err;
  }
  throw new Error('the request succeeded');
}

describe('membership across servers', () => {
  let servers: FederatedServer[];
  let a: FederatedServer;
  let b: FederatedServer;
  let c: FederatedServer;
  let alice: RegisteredUser; // on A
  let bob: RegisteredUser; // on B
  let bert: RegisteredUser; // on B
  let carol: RegisteredUser; // on C
  const apiA = client(() => a.baseUrl);
  const apiB = client(() => b.baseUrl);
  const apiC = client(() => c.baseUrl);

  beforeAll(async () => {
    servers = await startFederatedServers(3, EXTRA);
    [a, b, c] = servers as [FederatedServer, FederatedServer, FederatedServer];
    alice = await registerUser(a.baseUrl, 'alice');
    bob = await registerUser(b.baseUrl, 'bob');
    bert = await registerUser(b.baseUrl, 'bert');
    carol = await registerUser(c.baseUrl, 'carol');
  }, 60_000);
  afterAll(async () => {
    await Promise.all((servers ?? []).map((s) => s.stop()));
  });

  it.each(['11', '12', '1'])('invites a user of another server (v%s), who sees the invite and accepts it', async (version) => {
    const roomId = (await apiA.ok(alice, 'POST', '/createRoom', { room_version: version, preset: 'private_chat', name: `Invite v${version}`, topic: 'Come in' }))
      .room_id as string;
    await apiA.ok(alice, 'POST', `/rooms/${enc(roomId)}/invite`, { user_id: bob.userId });

    // A stored the invite countersigned by B.
    const invite = await apiA.ok(alice, 'GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`);
    expect(invite.membership).toBe('invite');

    // Bob's sync shows the invite with the room's stripped state.
    const rooms = await until(async () => {
      const r = await syncRooms(apiB, bob);
      return r.invite[roomId] ? r : undefined;
    }, 'the invite in sync');
    const stripped = ((rooms.invite[roomId] as JsonObject).invite_state as JsonObject).events as JsonObject[];
    expect(stripped.find((e) => e.type === 'm.room.name')?.content).toEqual({ name: `Invite v${version}` });
    expect(stripped.find((e) => e.type === 'm.room.topic')?.content).toMatchObject({ topic: 'Come in' });
    expect(stripped.find((e) => e.type === 'm.room.create')).toBeDefined();
    expect(stripped.find((e) => e.type === 'm.room.member' && e.state_key === bob.userId)).toMatchObject({ sender: alice.userId, content: { membership: 'invite' } });

    // Accepting: a join through the inviting server (no via needed).
    await apiB.ok(bob, 'POST', `/rooms/${enc(roomId)}/join`, {});
    const after = await syncRooms(apiB, bob);
    expect(after.join[roomId]).toBeDefined();
    expect(after.invite[roomId]).toBeUndefined();
    expect(await apiA.ok(alice, 'GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`)).toMatchObject({ membership: 'join' });
  }, 60_000);

  it('rejects an invite to a room its server is not in', async () => {
    const roomId = (await apiA.ok(alice, 'POST', '/createRoom', { preset: 'private_chat', name: 'Not for bert' })).room_id as string;
    await apiA.ok(alice, 'POST', `/rooms/${enc(roomId)}/invite`, { user_id: bert.userId });
    await until(async () => ((await syncRooms(apiB, bert)).invite[roomId] ? true : undefined), 'the invite in sync');

    await apiB.ok(bert, 'POST', `/rooms/${enc(roomId)}/leave`, { reason: 'no thanks' });
    const rooms = await syncRooms(apiB, bert);
    expect(rooms.invite[roomId]).toBeUndefined();
    expect(rooms.leave[roomId]).toBeDefined();
    const seenOnA = await apiA.ok(alice, 'GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(bert.userId)}`);
    expect(seenOnA).toMatchObject({ membership: 'leave', reason: 'no thanks' });
  }, 60_000);

  it('refuses invites it cannot take, with the errors the spec names', async () => {
    const roomId = (await apiA.ok(alice, 'POST', '/createRoom', { preset: 'private_chat' })).room_id as string;
    const path = `/_matrix/federation/v2/invite/${enc(roomId)}/${enc('$x')}`;
    const unsupported = await federationError(a, b.name, { method: 'PUT', path, body: { room_version: 'no-such-version', event: {}, invite_room_state: [] } });
    expect(unsupported).toMatchObject({ status: 400, errcode: 'M_INCOMPATIBLE_ROOM_VERSION', body: { room_version: 'no-such-version' } });
    // An "invite" whose sender is not on the requesting server.
    const forged = { type: 'm.room.member', state_key: bob.userId, sender: `@mallory:${c.name}`, room_id: roomId, content: { membership: 'invite' } };
    const wrongOrigin = await federationError(a, b.name, { method: 'PUT', path, body: { room_version: '11', event: forged, invite_room_state: [] } });
    expect(wrongOrigin).toMatchObject({ status: 400, errcode: 'M_INVALID_PARAM' });
    // Inviting a user its server does not have.
    expectError(await apiA.call(alice, 'POST', `/rooms/${enc(roomId)}/invite`, { user_id: `@nobody:${b.name}` }), 403, 'M_FORBIDDEN');
    // Nothing was stored on A.
    expectError(await apiA.call(alice, 'GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(`@nobody:${b.name}`)}`), 404, 'M_NOT_FOUND');
  }, 60_000);

  it('refuses a forged invite of a joined user from a server not in the room, who stays joined', async () => {
    const roomId = (await apiA.ok(alice, 'POST', '/createRoom', { room_version: '11', preset: 'private_chat' })).room_id as string;
    const events = a.server.ctx.storage.events;
    const ids = await Promise.all(
      ([['m.room.create', ''], ['m.room.power_levels', ''], ['m.room.join_rules', ''], ['m.room.member', alice.userId]] as const).map(([t, k]) =>
        events.getCurrentStateEventId(roomId, t, k),
      ),
    );
    const version = getRoomVersion('11')!;
    const draft: JsonObject = {
      type: 'm.room.member',
      room_id: roomId,
      sender: `@mallory:${c.name}`,
      state_key: alice.userId,
      content: { membership: 'invite' },
      origin_server_ts: Date.now(),
      depth: 100,
      prev_events: [ids[3]!],
      auth_events: ids.slice(0, 3) as string[],
    };
    const forged = signEvent(draft, c.name, c.server.ctx.keys.signingKey, version);
    const path = `/_matrix/federation/v2/invite/${enc(roomId)}/${enc(computeEventId(forged, version))}`;
    const refused = await federationError(c, a.name, { method: 'PUT', path, body: { room_version: '11', event: forged, invite_room_state: [] } });
    expect(refused).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
    // The room version must be the room's.
    const wrongVersion = await federationError(c, a.name, { method: 'PUT', path, body: { room_version: '10', event: forged, invite_room_state: [] } });
    expect(wrongVersion).toMatchObject({ status: 400, errcode: 'M_INCOMPATIBLE_ROOM_VERSION' });
    expect(await a.server.ctx.storage.memberships.get(roomId, alice.userId)).toMatchObject({ membership: 'join' });
    expect((await syncRooms(apiA, alice)).join[roomId]).toBeDefined();
  }, 60_000);

  it('serves redacted state redacted in a send_join answer', async () => {
    const roomId = (await apiA.ok(alice, 'POST', '/createRoom', { room_version: '11', preset: 'public_chat', topic: 'a secret topic' })).room_id as string;
    const topicId = (await a.server.ctx.storage.events.getCurrentStateEventId(roomId, 'm.room.topic', ''))!;
    await apiA.ok(alice, 'PUT', `/rooms/${enc(roomId)}/redact/${enc(topicId)}/redact-topic`, {});
    const template = await b.server.ctx.federation.client.request<JsonObject>(a.name, {
      method: 'GET',
      path: `/_matrix/federation/v1/make_join/${enc(roomId)}/${enc(bert.userId)}`,
      query: { ver: ['11'] },
    });
    const version = getRoomVersion('11')!;
    const join = signEvent({ ...(template.event as JsonObject), origin_server_ts: Date.now() }, b.name, b.server.ctx.keys.signingKey, version);
    const answer = await b.server.ctx.federation.client.request<JsonObject>(a.name, {
      method: 'PUT',
      path: `/_matrix/federation/v2/send_join/${enc(roomId)}/${enc(computeEventId(join, version))}`,
      body: join,
    });
    const topic = (answer.state as JsonObject[]).find((e) => e.type === 'm.room.topic');
    expect(topic).toBeDefined();
    expect(topic!.content).toEqual({});
    expect(JSON.stringify(answer)).not.toContain('a secret topic');
  }, 60_000);

  it('keeps a ban our copy of the room shows over an out-of-band invite, once we are not in the room', async () => {
    const banned = await registerUser(b.baseUrl, 'banned-bernie');
    const roomId = (await apiA.ok(alice, 'POST', '/createRoom', { room_version: '11', preset: 'public_chat' })).room_id as string;
    await apiB.ok(banned, 'POST', `/join/${enc(roomId)}?server_name=${enc(a.name)}`, {});
    await apiA.ok(alice, 'POST', `/rooms/${enc(roomId)}/ban`, { user_id: banned.userId });
    const ban = await until(async () => {
      const row = await b.server.ctx.storage.memberships.get(roomId, banned.userId);
      return row?.membership === 'ban' ? row : undefined;
    }, 'the ban on B');
    // A server in the room signs an invite past the ban and sends it to B, which is no longer in the room.
    const events = a.server.ctx.storage.events;
    const auth = await Promise.all(
      ([['m.room.create', ''], ['m.room.power_levels', ''], ['m.room.member', alice.userId]] as const).map(([t, k]) => events.getCurrentStateEventId(roomId, t, k)),
    );
    const version = getRoomVersion('11')!;
    const invite = signEvent(
      {
        type: 'm.room.member',
        room_id: roomId,
        sender: alice.userId,
        state_key: banned.userId,
        content: { membership: 'invite' },
        origin_server_ts: Date.now(),
        depth: 100,
        prev_events: [ban.eventId],
        auth_events: auth as string[],
      },
      a.name,
      a.server.ctx.keys.signingKey,
      version,
    );
    const path = `/_matrix/federation/v2/invite/${enc(roomId)}/${enc(computeEventId(invite, version))}`;
    const refused = await federationError(a, b.name, { method: 'PUT', path, body: { room_version: '11', event: invite, invite_room_state: [] } });
    expect(refused).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN', body: { error: expect.stringMatching(/banned/) } });
    expect(await b.server.ctx.storage.memberships.get(roomId, banned.userId)).toMatchObject({ membership: 'ban', eventId: ban.eventId });
  }, 60_000);

  it('refuses a countersigned invite whose content the invitee\'s server changed', async () => {
    const roomId = (await apiA.ok(alice, 'POST', '/createRoom', { room_version: '1', preset: 'private_chat' })).room_id as string;
    const version = getRoomVersion('1')!;
    // A v1 event id is a name, not a hash: same id, other content.
    const tampered = async (pdu: JsonObject) => {
      const { hashes: _h, signatures: _s, ...rest } = pdu;
      return signEvent({ ...rest, content: { ...(pdu.content as JsonObject), displayname: 'Not what Alice sent' } }, b.name, b.server.ctx.keys.signingKey, version);
    };
    const draft = { type: 'm.room.member', state_key: bert.userId, content: { membership: 'invite' } };
    await expect(a.server.ctx.pipeline.send(roomId, alice.userId, draft, { countersign: tampered })).rejects.toMatchObject({ statusCode: 502 });
    expect(await a.server.ctx.storage.memberships.get(roomId, bert.userId)).toBeUndefined();
  }, 60_000);

  it('answers make_join as the spec says: versions, users of the asking server, unknown rooms', async () => {
    const roomId = (await apiA.ok(alice, 'POST', '/createRoom', { room_version: '11', preset: 'public_chat' })).room_id as string;
    const makeJoin = (userId: string, ver?: string[]) => ({
      method: 'GET' as const,
      path: `/_matrix/federation/v1/make_join/${enc(roomId)}/${enc(userId)}`,
      ...(ver ? { query: { ver } } : {}),
    });
    // Without `ver` the asking server supports version 1 only.
    expect(await federationError(b, a.name, makeJoin(bob.userId))).toMatchObject({ status: 400, errcode: 'M_INCOMPATIBLE_ROOM_VERSION', body: { room_version: '11' } });
    expect(await federationError(b, a.name, makeJoin(bob.userId, ['1', '2']))).toMatchObject({ status: 400, errcode: 'M_INCOMPATIBLE_ROOM_VERSION' });
    expect(await federationError(b, a.name, makeJoin(carol.userId, ['11']))).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });

    const template = await b.server.ctx.federation.client.request<JsonObject>(a.name, makeJoin(bob.userId, ['10', '11']));
    expect(template.room_version).toBe('11');
    const event = template.event as JsonObject;
    expect(event).toMatchObject({ type: 'm.room.member', room_id: roomId, sender: bob.userId, state_key: bob.userId, content: { membership: 'join' } });
    expect(event.signatures).toBeUndefined();
    expect((event.prev_events as string[]).length).toBeGreaterThan(0);
    expect((event.auth_events as string[]).length).toBeGreaterThan(0);

    expectSpecResponse('server-server/joins-v1.yaml', '/make_join/{roomId}/{userId}', 'get', 200, template);

    // send_join v2, by hand: B signs the template and A answers with the state and auth chain.
    const version = getRoomVersion('11')!;
    const join = signEvent({ ...event, origin_server_ts: Date.now() }, b.name, b.server.ctx.keys.signingKey, version);
    const joinId = computeEventId(join, version);
    const answer = await b.server.ctx.federation.client.request<JsonObject>(a.name, {
      method: 'PUT',
      path: `/_matrix/federation/v2/send_join/${enc(roomId)}/${enc(joinId)}`,
      body: join,
    });
    expectSpecResponse('server-server/joins-v2.yaml', '/send_join/{roomId}/{eventId}', 'put', 200, answer);
    expect(answer).toMatchObject({ origin: a.name, members_omitted: false });
    const stateTypes = (answer.state as JsonObject[]).map((e) => e.type);
    expect(stateTypes).toEqual(expect.arrayContaining(['m.room.create', 'm.room.power_levels', 'm.room.join_rules', 'm.room.member']));
    expect((answer.state as JsonObject[]).some((e) => e.state_key === bob.userId)).toBe(false);
    expect((answer.auth_chain as JsonObject[]).map((e) => e.type)).toContain('m.room.create');
    expect(await apiA.ok(alice, 'GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`)).toMatchObject({ membership: 'join' });
    // The wrong event id in the path.
    const wrongId = await federationError(b, a.name, { method: 'PUT', path: `/_matrix/federation/v2/send_join/${enc(roomId)}/${enc('$other')}`, body: join });
    expect(wrongId).toMatchObject({ status: 400, errcode: 'M_INVALID_PARAM' });

    const unknown = await federationError(b, a.name, { method: 'GET', path: `/_matrix/federation/v1/make_join/${enc(`!nope:${a.name}`)}/${enc(bob.userId)}`, query: { ver: ['11'] } });
    expect(unknown).toMatchObject({ status: 404, errcode: 'M_NOT_FOUND' });
    // A send_join that is not a join.
    const notAJoin = await federationError(b, a.name, {
      method: 'PUT',
      path: `/_matrix/federation/v2/send_join/${enc(roomId)}/${enc('$x')}`,
      body: { ...event, content: { membership: 'leave' }, origin_server_ts: 1 },
    });
    expect(notAJoin).toMatchObject({ status: 400, errcode: 'M_INVALID_PARAM' });
  }, 60_000);

  it('knocks on a room of another server, and gets in once invited', async () => {
    const roomId = (
      await apiA.ok(alice, 'POST', '/createRoom', {
        room_version: '11',
        name: 'Knock knock',
        initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }],
      })
    ).room_id as string;
    expect(await apiC.ok(carol, 'POST', `/knock/${enc(roomId)}?via=${enc(a.name)}`, { reason: 'let me in' })).toEqual({ room_id: roomId });

    const rooms = await syncRooms(apiC, carol);
    const knockState = ((rooms.knock[roomId] as JsonObject).knock_state as JsonObject).events as JsonObject[];
    expect(knockState.find((e) => e.type === 'm.room.name')?.content).toEqual({ name: 'Knock knock' });
    expect(knockState.find((e) => e.type === 'm.room.join_rules')?.content).toEqual({ join_rule: 'knock' });
    expect(await apiA.ok(alice, 'GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(carol.userId)}`)).toMatchObject({ membership: 'knock', reason: 'let me in' });

    // Bob knocks too, then thinks better of it: the knock is rescinded through A.
    await apiB.ok(bob, 'POST', `/knock/${enc(roomId)}?via=${enc(a.name)}`, {});
    await apiB.ok(bob, 'POST', `/rooms/${enc(roomId)}/leave`, {});
    expect((await syncRooms(apiB, bob)).knock[roomId]).toBeUndefined();
    expect(await apiA.ok(alice, 'GET', `/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`)).toMatchObject({ membership: 'leave' });

    await apiA.ok(alice, 'POST', `/rooms/${enc(roomId)}/invite`, { user_id: carol.userId });
    await until(async () => ((await syncRooms(apiC, carol)).invite[roomId] ? true : undefined), 'the invite after the knock');
    await apiC.ok(carol, 'POST', `/rooms/${enc(roomId)}/join`, {});
    expect((await apiC.ok(carol, 'GET', '/joined_rooms')).joined_rooms).toContain(roomId);
  }, 60_000);

  it('joins a restricted room authorised by a resident server, trying the next server when one cannot grant it', async () => {
    const spaceId = (await apiA.ok(alice, 'POST', '/createRoom', { room_version: '10', preset: 'public_chat', name: 'The space' })).room_id as string;
    const restricted = (
      await apiA.ok(alice, 'POST', '/createRoom', {
        room_version: '10',
        name: 'Members only',
        // Only power 50 may invite (so only alice may authorise joins).
        power_level_content_override: { invite: 50 },
        initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: spaceId }] } }],
      })
    ).room_id as string;

    // Not in the space yet: refused.
    expectError(await apiB.call(bob, 'POST', `/join/${enc(restricted)}?server_name=${enc(a.name)}`, {}), 403, 'M_FORBIDDEN');

    await apiB.ok(bob, 'POST', `/join/${enc(spaceId)}?server_name=${enc(a.name)}`, {});
    await apiB.ok(bob, 'POST', `/join/${enc(restricted)}?server_name=${enc(a.name)}`, {});
    const bobJoin = await apiA.ok(alice, 'GET', `/rooms/${enc(restricted)}/state/m.room.member/${enc(bob.userId)}`);
    expect(bobJoin).toMatchObject({ membership: 'join', join_authorised_via_users_server: alice.userId });
    expect(await apiB.ok(bob, 'GET', `/rooms/${enc(restricted)}/state/m.room.member/${enc(bob.userId)}`)).toMatchObject({ join_authorised_via_users_server: alice.userId });

    // Carol asks B first: B is in the room but none of its users may invite (M_UNABLE_TO_GRANT_JOIN),
    // so her server goes on to A.
    await apiC.ok(carol, 'POST', `/join/${enc(spaceId)}?server_name=${enc(a.name)}`, {});
    await until(async () => {
      const s = await apiB.call(bob, 'GET', `/rooms/${enc(spaceId)}/state/m.room.member/${enc(carol.userId)}`);
      return s.status === 200 && s.body.membership === 'join' ? true : undefined;
    }, "carol's space join on B");
    const fromB = await federationError(c, b.name, {
      method: 'GET',
      path: `/_matrix/federation/v1/make_join/${enc(restricted)}/${enc(carol.userId)}`,
      query: { ver: ['10'] },
    });
    expect(fromB).toMatchObject({ status: 400, errcode: 'M_UNABLE_TO_GRANT_JOIN' });
    await apiC.ok(carol, 'POST', `/join/${enc(restricted)}?via=${enc(b.name)}&via=${enc(a.name)}`, {});
    expect(await apiC.ok(carol, 'GET', `/rooms/${enc(restricted)}/state/m.room.member/${enc(carol.userId)}`)).toMatchObject({
      membership: 'join',
      join_authorised_via_users_server: alice.userId,
    });
  }, 60_000);

  it('cannot authorise a restricted join when it is in none of the allowed rooms', async () => {
    const roomId = (
      await apiA.ok(alice, 'POST', '/createRoom', {
        room_version: '10',
        initial_state: [
          { type: 'm.room.join_rules', state_key: '', content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: `!elsewhere:${c.name}` }] } },
        ],
      })
    ).room_id as string;
    expectError(await apiB.call(bob, 'POST', `/join/${enc(roomId)}?server_name=${enc(a.name)}`, {}), 400, 'M_UNABLE_TO_AUTHORISE_JOIN');
  }, 60_000);
});
