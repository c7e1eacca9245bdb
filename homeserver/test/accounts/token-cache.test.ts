/**
 * The access-token lookups kept in memory (storage/accounts-store.ts): a token looked up once and
 * then revoked in any way (logout, logout of all devices, device deletion, login again on the same
 * device, refresh, deactivation) must stop resolving at once, on both engines; a transaction that
 * rolls back changes nothing; a lookup that overlapped a revocation is not kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachEngine } from '../helpers/databases.js';
import { startTestHomeserver, type TestHomeserver } from '../helpers/server.js';
import { loginUser, registerUser } from '../helpers/users.js';
import { call, expectError } from './helpers.js';

describeEachEngine('access token cache', (getStorage) => {
  const now = 1_700_000_000_000;
  let n = 0;

  /** A user with one device per name, each with its own access token, looked up once (cached). */
  async function userWithDevices(...devices: string[]): Promise<{ userId: string; tokens: Record<string, string> }> {
    const accounts = getStorage().accounts;
    const userId = `@cache${++n}:hs`;
    await accounts.createUser({ userId, passwordHash: null, createdTs: now });
    const tokens: Record<string, string> = {};
    for (const d of devices) {
      tokens[d] = `hth_${n}_${d}`;
      await accounts.startSession({ userId, deviceId: d, accessToken: tokens[d], accessExpiresTs: null, now });
      expect((await accounts.lookupAccessToken(tokens[d]))?.deviceId).toBe(d);
    }
    return { userId, tokens };
  }

  it('forgets a token at logout, with and without a device', async () => {
    const accounts = getStorage().accounts;
    const { userId, tokens } = await userWithDevices('A', 'B');
    const info = (await accounts.lookupAccessToken(tokens.A!))!;
    await accounts.logout(info);
    expect(await accounts.lookupAccessToken(tokens.A!)).toBeUndefined();
    expect((await accounts.lookupAccessToken(tokens.B!))?.userId).toBe(userId);

    // A token without a device (as an appservice or admin token would be).
    const other = await userWithDevices('C');
    await getStorage().db.updateTable('access_tokens').set({ device_id: null }).where('user_id', '=', other.userId).execute();
    // That write went around the store (nothing else writes tokens): empty the cache with a store write.
    await accounts.deleteDevices('@nobody:hs', ['none']);
    const deviceless = (await accounts.lookupAccessToken(other.tokens.C!))!;
    expect(deviceless.deviceId).toBeNull();
    await accounts.logout(deviceless);
    expect(await accounts.lookupAccessToken(other.tokens.C!)).toBeUndefined();
  });

  it('forgets the tokens of deleted devices, of all devices but one, and of a deactivated user', async () => {
    const accounts = getStorage().accounts;
    const one = await userWithDevices('A', 'B', 'C');
    await accounts.deleteDevices(one.userId, ['B']);
    expect(await accounts.lookupAccessToken(one.tokens.B!)).toBeUndefined();
    expect(await accounts.lookupAccessToken(one.tokens.A!)).toBeDefined();
    await accounts.deleteAllDevices(one.userId, 'A'); // a password change keeping this device
    expect(await accounts.lookupAccessToken(one.tokens.C!)).toBeUndefined();
    expect((await accounts.lookupAccessToken(one.tokens.A!))?.deviceId).toBe('A');
    await accounts.deleteAllDevices(one.userId);
    expect(await accounts.lookupAccessToken(one.tokens.A!)).toBeUndefined();

    const two = await userWithDevices('A');
    await accounts.deactivateUser(two.userId);
    expect(await accounts.lookupAccessToken(two.tokens.A!)).toBeUndefined();
  });

  it('forgets the old token when the same device logs in again, and at refresh', async () => {
    const accounts = getStorage().accounts;
    const { userId, tokens } = await userWithDevices('A');
    await accounts.startSession({ userId, deviceId: 'A', accessToken: 'hth_again', accessExpiresTs: null, refreshToken: 'hthr_again', now });
    expect(await accounts.lookupAccessToken(tokens.A!)).toBeUndefined();
    const fresh = (await accounts.lookupAccessToken('hth_again'))!;
    expect(fresh.refreshTokenId).not.toBeNull();

    const result = await accounts.refresh({ refreshToken: 'hthr_again', newAccessToken: 'hth_next', accessExpiresTs: now + 1000, newRefreshToken: 'hthr_next', refreshExpiresTs: null, now });
    expect(result.ok).toBe(true);
    expect(await accounts.lookupAccessToken('hth_again')).toBeUndefined();
    const next = (await accounts.lookupAccessToken('hth_next'))!;
    expect(next.prevRefreshTokenId).not.toBeNull();
    // Its first use retires the refresh token it replaced: the cached answer follows.
    await accounts.retirePreviousRefreshToken(next);
    expect((await accounts.lookupAccessToken('hth_next'))?.prevRefreshTokenId).toBeNull();
  });

  it('keeps a token that a rolled-back transaction would have revoked', async () => {
    const storage = getStorage();
    const { userId, tokens } = await userWithDevices('A');
    let failing = true;
    storage.accounts.onDevicesRemoved(async () => {
      if (failing) throw new Error('clean-up failed');
    });
    await expect(storage.accounts.deleteDevices(userId, ['A'])).rejects.toThrow('clean-up failed');
    failing = false;
    expect((await storage.accounts.lookupAccessToken(tokens.A!))?.deviceId).toBe('A');
    await storage.accounts.deleteDevices(userId, ['A']);
    expect(await storage.accounts.lookupAccessToken(tokens.A!)).toBeUndefined();
  });

  it('does not keep a lookup that overlapped a logout', async () => {
    const accounts = getStorage().accounts;
    const { userId, tokens } = await userWithDevices('A');
    await accounts.deleteDevices('@nobody:hs', ['none']); // empties the cache: the next lookup reads
    const during = accounts.lookupAccessToken(tokens.A!);
    await accounts.logout({ tokenId: 0, userId, deviceId: 'A' });
    await during; // either answer is fine for a request racing its own logout …
    expect(await accounts.lookupAccessToken(tokens.A!)).toBeUndefined(); // … but not afterwards
  });
});

describe('access token cache over HTTP', () => {
  let hs: TestHomeserver;
  beforeAll(async () => {
    hs = await startTestHomeserver('enable_registration: true');
  });
  afterAll(() => hs?.stop());

  it('refuses a token at once after /logout and /logout/all, though it synced just before', async () => {
    const alice = await registerUser(hs.baseUrl, 'tokencache');
    const phone = await loginUser(hs.baseUrl, 'tokencache');
    const laptop = await loginUser(hs.baseUrl, 'tokencache');
    for (const u of [alice, phone, laptop]) {
      expect((await call(hs.baseUrl, 'GET', '/_matrix/client/v3/sync?timeout=0', { token: u.accessToken })).status).toBe(200);
    }
    expect((await call(hs.baseUrl, 'POST', '/_matrix/client/v3/logout', { token: phone.accessToken, body: {} })).status).toBe(200);
    expectError(await call(hs.baseUrl, 'GET', '/_matrix/client/v3/sync?timeout=0', { token: phone.accessToken }), 401, 'M_UNKNOWN_TOKEN');
    expect((await call(hs.baseUrl, 'GET', '/_matrix/client/v3/account/whoami', { token: laptop.accessToken })).status).toBe(200);

    expect((await call(hs.baseUrl, 'POST', '/_matrix/client/v3/logout/all', { token: alice.accessToken, body: {} })).status).toBe(200);
    for (const u of [alice, laptop]) {
      expectError(await call(hs.baseUrl, 'GET', '/_matrix/client/v3/sync?timeout=0', { token: u.accessToken }), 401, 'M_UNKNOWN_TOKEN');
    }
  });
});
