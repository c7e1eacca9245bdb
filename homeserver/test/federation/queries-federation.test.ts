/**
 * Queries between two real Hearth servers over HTTPS (the multi-server harness): a client of
 * server A looks up a profile, a room alias, the public room directory and the E2EE keys of a
 * user of server B; A's server asks B for a device list and checks an OpenID token; a server
 * that cannot be reached is reported as such; and the query endpoints refuse unsigned requests.
 */
import { readFileSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/events/types.js';
import { client, enc, expectError } from '../helpers/client-api.js';
import { harnessCertificate, startFederatedServers, type FederatedServer } from '../helpers/federation.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';
import { TestDevice } from '../e2ee/keys.js';
import { responseErrors, specAvailable } from '../helpers/spec-schemas.js';

/** Checks a Server-Server answer against the spec's schema (skipped without the spec data). */
function expectFederationSpec(api: string, path: string, method: string, body: unknown): void {
  if (!specAvailable) return;
  expect(responseErrors(`server-server/${api}`, path, method, 200, body)).toEqual([]);
}

const EXTRA = 'enable_registration: true\nrc_message: {per_second: 1000, burst_count: 1000}\n';

describe('federation queries between two servers', () => {
  let servers: FederatedServer[];
  let a: FederatedServer;
  let b: FederatedServer;
  let alice: RegisteredUser; // on A
  let bob: RegisteredUser; // on B
  const apiA = client(() => a.baseUrl);
  const apiB = client(() => b.baseUrl);

  beforeAll(async () => {
    servers = await startFederatedServers(2, EXTRA);
    [a, b] = servers as [FederatedServer, FederatedServer];
    alice = await registerUser(a.baseUrl, 'alice');
    bob = await registerUser(b.baseUrl, 'bob');
  });
  afterAll(async () => {
    await Promise.all((servers ?? []).map((s) => s.stop()));
  }, 180_000);

  it('looks up the profile of a remote user, whole or one field', async () => {
    await apiB.ok(bob, 'PUT', `/profile/${enc(bob.userId)}/displayname`, { displayname: 'Bob of B' });
    await apiB.ok(bob, 'PUT', `/profile/${enc(bob.userId)}/avatar_url`, { avatar_url: `mxc://${b.name}/avatar` });
    expect(await apiA.ok(alice, 'GET', `/profile/${enc(bob.userId)}`)).toEqual({ displayname: 'Bob of B', avatar_url: `mxc://${b.name}/avatar` });
    expect(await apiA.ok(alice, 'GET', `/profile/${enc(bob.userId)}/displayname`)).toEqual({ displayname: 'Bob of B' });
    expectError(await apiA.call(alice, 'GET', `/profile/${enc(`@nobody:${b.name}`)}`), 404, 'M_NOT_FOUND');
  }, 180_000);

  it('resolves a remote room alias, and lists a remote server\'s public rooms', async () => {
    const roomId = (await apiB.ok(bob, 'POST', '/createRoom', { preset: 'public_chat', room_alias_name: 'lobby', name: 'The lobby', visibility: 'public' }))
      .room_id as string;
    const resolved = await apiA.ok(alice, 'GET', `/directory/room/${enc(`#lobby:${b.name}`)}`);
    expect(resolved).toEqual({ room_id: roomId, servers: [b.name] });
    expectError(await apiA.call(alice, 'GET', `/directory/room/${enc(`#missing:${b.name}`)}`), 404, 'M_NOT_FOUND');

    const listed = await apiA.ok(alice, 'GET', `/publicRooms?server=${enc(b.name)}`);
    expect((listed.chunk as JsonObject[]).map((r) => r.room_id)).toContain(roomId);
    const searched = await apiA.ok(alice, 'POST', `/publicRooms?server=${enc(b.name)}`, { filter: { generic_search_term: 'lobby' }, limit: 5 });
    expect((searched.chunk as JsonObject[]).map((r) => r.name)).toEqual(['The lobby']);
  }, 180_000);

  it('queries and claims the keys of a remote user\'s device', async () => {
    const device = new TestDevice(bob.userId, bob.deviceId);
    await apiB.ok(bob, 'POST', '/keys/upload', { device_keys: device.deviceKeys(), one_time_keys: device.oneTimeKeys(2) });
    const query = await apiA.ok(alice, 'POST', '/keys/query', { device_keys: { [bob.userId]: [] } });
    expect(query.failures).toEqual({});
    expect((query.device_keys as JsonObject)[bob.userId]).toEqual({ [bob.deviceId]: expect.objectContaining({ ...device.deviceKeys(), signatures: expect.any(Object) }) });

    const claim = await apiA.ok(alice, 'POST', '/keys/claim', { one_time_keys: { [bob.userId]: { [bob.deviceId]: 'signed_curve25519' } } });
    expect(claim.failures).toEqual({});
    const claimed = ((claim.one_time_keys as JsonObject)[bob.userId] as JsonObject)[bob.deviceId] as JsonObject;
    expect(Object.keys(claimed)).toHaveLength(1);
    expect(Object.keys(claimed)[0]).toMatch(/^signed_curve25519:/);
    // The second claim gets the other key.
    const again = await apiA.ok(alice, 'POST', '/keys/claim', { one_time_keys: { [bob.userId]: { [bob.deviceId]: 'signed_curve25519' } } });
    const second = ((again.one_time_keys as JsonObject)[bob.userId] as JsonObject)[bob.deviceId] as JsonObject;
    expect(Object.keys(second)).not.toEqual(Object.keys(claimed));
  }, 180_000);

  it('reports an unreachable server in failures', async () => {
    const res = await apiA.ok(alice, 'POST', '/keys/query', { device_keys: { [`@x:unreachable.invalid`]: [] } });
    expect(Object.keys(res.failures as JsonObject)).toEqual(['unreachable.invalid']);
  }, 180_000);

  it('answers /user/devices and /openid/userinfo to another server', async () => {
    const devices = await b.server.ctx.federation.client.request<JsonObject>(a.name, {
      method: 'GET',
      path: `/_matrix/federation/v1/user/devices/${enc(alice.userId)}`,
    });
    expect(devices).toMatchObject({ user_id: alice.userId, stream_id: expect.any(Number) });
    expect((devices.devices as JsonObject[]).map((d) => d.device_id)).toEqual([alice.deviceId]);

    const token = await apiA.ok(alice, 'POST', `/user/${enc(alice.userId)}/openid/request_token`, {});
    expect(token).toMatchObject({ token_type: 'Bearer', matrix_server_name: a.name, expires_in: 3600 });
    const info = await b.server.ctx.federation.client.request<JsonObject>(a.name, {
      method: 'GET',
      path: '/_matrix/federation/v1/openid/userinfo',
      query: { access_token: token.access_token as string },
    });
    expect(info).toEqual({ sub: alice.userId });
    await expect(
      b.server.ctx.federation.client.request(a.name, { method: 'GET', path: '/_matrix/federation/v1/openid/userinfo', query: { access_token: 'nope' } }),
    ).rejects.toMatchObject({ status: 401, errcode: 'M_UNKNOWN_TOKEN' });
  }, 180_000);

  it('answers other servers in the spec\'s shapes', async () => {
    const ask = (method: 'GET' | 'POST', path: string, opts: { query?: Record<string, string>; body?: JsonObject } = {}) =>
      a.server.ctx.federation.client.request<JsonObject>(b.name, { method, path: `/_matrix/federation/v1${path}`, ...opts });
    expectFederationSpec('query.yaml', '/query/profile', 'get', await ask('GET', '/query/profile', { query: { user_id: bob.userId } }));
    expectFederationSpec('query.yaml', '/query/directory', 'get', await ask('GET', '/query/directory', { query: { room_alias: `#lobby:${b.name}` } }));
    expectFederationSpec('user_devices.yaml', '/user/devices/{userId}', 'get', await ask('GET', `/user/devices/${enc(bob.userId)}`));
    expectFederationSpec('user_keys.yaml', '/user/keys/query', 'post', await ask('POST', '/user/keys/query', { body: { device_keys: { [bob.userId]: [] } } }));
    expectFederationSpec('user_keys.yaml', '/user/keys/claim', 'post', await ask('POST', '/user/keys/claim', { body: { one_time_keys: { [bob.userId]: { [bob.deviceId]: 'signed_curve25519' } } } }));
    expectFederationSpec('public_rooms.yaml', '/publicRooms', 'get', await ask('GET', '/publicRooms', { query: { limit: '10' } }));
    expectFederationSpec('public_rooms.yaml', '/publicRooms', 'post', await ask('POST', '/publicRooms', { body: { limit: 10, filter: { generic_search_term: 'lobby' } } }));
    const lobby = (await apiB.ok(bob, 'GET', `/directory/room/${enc(`#lobby:${b.name}`)}`)).room_id as string;
    expectFederationSpec('space_hierarchy.yaml', '/hierarchy/{roomId}', 'get', await ask('GET', `/hierarchy/${enc(lobby)}`));
    // A space and its child, one level deep.
    const space = (
      await apiB.ok(bob, 'POST', '/createRoom', {
        preset: 'public_chat',
        name: 'The space',
        creation_content: { type: 'm.space' },
        initial_state: [{ type: 'm.space.child', state_key: lobby, content: { via: [b.name], suggested: true } }],
      })
    ).room_id as string;
    const tree = await ask('GET', `/hierarchy/${enc(space)}`);
    expectFederationSpec('space_hierarchy.yaml', '/hierarchy/{roomId}', 'get', tree);
    expect((tree.room as JsonObject).room_type).toBe('m.space');
    expect(((tree.room as JsonObject).children_state as JsonObject[]).map((e) => e.state_key)).toEqual([lobby]);
    expect((tree.children as JsonObject[]).map((c) => c.room_id)).toEqual([lobby]);
    await expect(ask('GET', `/hierarchy/${enc(`!unknown:${b.name}`)}`)).rejects.toMatchObject({ status: 404 });

    // Users and aliases of a third server are not answered for.
    await expect(ask('GET', '/query/profile', { query: { user_id: alice.userId } })).rejects.toMatchObject({ status: 404 });
  }, 180_000);

  it('refuses query requests without a valid X-Matrix signature', async () => {
    const dispatcher = new Agent({ connect: { ca: readFileSync(harnessCertificate().certPath) } });
    try {
      const res = await undiciFetch(`${a.federationUrl}/_matrix/federation/v1/query/profile?user_id=${enc(alice.userId)}`, { dispatcher });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { errcode: string }).errcode).toBe('M_UNAUTHORIZED');
      const forged = await undiciFetch(`${a.federationUrl}/_matrix/federation/v1/user/devices/${enc(alice.userId)}`, {
        dispatcher,
        headers: { authorization: `X-Matrix origin="${b.name}",destination="${a.name}",key="ed25519:auto",sig="AAAA"` },
      });
      expect(forged.status).toBe(401);
    } finally {
      await dispatcher.close();
    }
  }, 180_000);
});
