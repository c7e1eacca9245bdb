/**
 * Accounts storage: users (with their profile columns), devices, access and refresh tokens,
 * login tokens and registration tokens.
 *
 * Every token is passed in and out of this store in plaintext but stored only as its SHA-256
 * (`hashToken`); nothing here can give a token back.
 *
 * Refresh token rotation (spec: "Refreshing access tokens"): `/refresh` with refresh token R
 * issues a new pair (R', A') and revokes R's access token at once. R itself stays usable until
 * R' or A' is first used (in case the client never received the response); a second refresh
 * with R before that replaces the unused R' again. Once A' or R' is used, R is gone for good.
 */
import type { Kysely, Selectable } from 'kysely';
import { hashToken } from '../accounts/tokens.js';
import type { Database } from './schema.js';
import { arg, PreparedQuery } from './prepared.js';
import { writeTransaction, type Engine } from './transactions.js';

/** Every authenticated request runs this: compiled once (prepared.ts). */
const LOOKUP_ACCESS_TOKEN = new PreparedQuery<
  [tokenHash: string],
  Pick<Row<'access_tokens'>, 'id' | 'user_id' | 'device_id' | 'expires_ts' | 'prev_refresh_token_id' | 'refresh_token_id'> &
    Pick<Row<'users'>, 'is_guest' | 'deactivated'>
>((db) =>
  db
    .selectFrom('access_tokens as t')
    .innerJoin('users as u', 'u.user_id', 't.user_id')
    .select(['t.id', 't.user_id', 't.device_id', 't.expires_ts', 't.prev_refresh_token_id', 't.refresh_token_id', 'u.is_guest', 'u.deactivated'])
    .where('t.token_hash', '=', arg(0)),
);

export interface StoredUser {
  userId: string;
  passwordHash: string | null;
  isGuest: boolean;
  admin: boolean;
  deactivated: boolean;
  userType: string | null;
  createdTs: number;
  displayname: string | null;
  avatarUrl: string | null;
}

export interface NewUser {
  userId: string;
  passwordHash: string | null;
  isGuest?: boolean;
  admin?: boolean;
  userType?: string | null;
  displayname?: string | null;
  createdTs: number;
}

export interface StoredDevice {
  userId: string;
  deviceId: string;
  displayName: string | null;
  createdTs: number;
  lastSeenTs: number | null;
  lastSeenIp: string | null;
  lastSeenUserAgent: string | null;
}

/** What an access token resolves to. */
export interface AccessTokenInfo {
  tokenId: number;
  userId: string;
  deviceId: string | null;
  expiresTs: number | null;
  isGuest: boolean;
  deactivated: boolean;
  /** Set until the token's first use after a refresh; see `retirePreviousRefreshToken`. */
  prevRefreshTokenId: number | null;
  refreshTokenId: number | null;
}

export interface NewSession {
  userId: string;
  deviceId: string;
  /** For a new device only; an existing device keeps its name. */
  deviceDisplayName?: string | null;
  accessToken: string;
  accessExpiresTs: number | null;
  refreshToken?: string;
  refreshExpiresTs?: number | null;
  now: number;
}

export interface StoredRegistrationToken {
  token: string;
  usesAllowed: number | null;
  pending: number;
  completed: number;
  expiryTime: number | null;
}

export type RefreshResult =
  | { ok: true; userId: string; deviceId: string; accessTokenId: number }
  | { ok: false; reason: 'unknown' | 'expired' };

/** Work another module does inside the transaction that deletes devices (their keys, messages …). */
export type DevicesRemovedHook = (trx: Kysely<Database>, userId: string, deviceIds: readonly string[]) => Promise<void>;

/** Told after the transaction that deleted devices committed (e.g. to wake other users' /sync). */
export type DevicesRemovedListener = (userId: string, deviceIds: readonly string[]) => void;

/** Access tokens resolved in memory, at most this many (the oldest looked-up first out). */
const TOKEN_CACHE_LIMIT = 10_000;

export class AccountsStore {
  private readonly removalHooks: DevicesRemovedHook[] = [];
  private readonly removalListeners: DevicesRemovedListener[] = [];
  /**
   * Token hash → what it resolves to. Every request looks its token up, so the answer is kept;
   * every write transaction of this store (the only writer of tokens and of `deactivated`)
   * empties it before it starts and after it ends, committed or not, and a lookup that overlapped
   * one of them is not kept (`tokenGeneration`), so a revoked token stops working at once.
   */
  private readonly tokenCache = new Map<string, AccessTokenInfo>();
  private tokenGeneration = 0;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly engine: Engine,
  ) {}

  /** Registers in-transaction clean-up for every deletion of devices (logout, deactivation …). */
  onDevicesRemoved(hook: DevicesRemovedHook): void {
    this.removalHooks.push(hook);
  }

  /** Registers a listener called after a deletion of devices committed. */
  afterDevicesRemoved(listener: DevicesRemovedListener): void {
    this.removalListeners.push(listener);
  }

  /** Runs the removal hooks for the user's devices (all of them, or all but `keep`) inside `trx`. */
  private async removing(trx: Kysely<Database>, userId: string, deviceIds: readonly string[] | { allBut?: string }): Promise<string[]> {
    let ids: string[];
    if (Array.isArray(deviceIds)) {
      ids = [...deviceIds];
    } else {
      const keep = (deviceIds as { allBut?: string }).allBut;
      let q = trx.selectFrom('devices').select('device_id').where('user_id', '=', userId);
      if (keep !== undefined) q = q.where('device_id', '!=', keep);
      ids = (await q.execute()).map((r) => r.device_id);
    }
    if (ids.length > 0) for (const hook of this.removalHooks) await hook(trx, userId, ids);
    return ids;
  }

  private removed(userId: string, deviceIds: readonly string[]): void {
    if (deviceIds.length === 0) return;
    for (const listener of this.removalListeners) listener(userId, deviceIds);
  }

  private async tx<T>(fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    this.forgetTokens();
    try {
      return await writeTransaction(this.db, this.engine, fn);
    } finally {
      this.forgetTokens();
    }
  }

  /** Drops every cached token lookup, and any lookup still in flight from being kept. */
  private forgetTokens(): void {
    this.tokenGeneration++;
    this.tokenCache.clear();
  }

  // ---- users ----

  /** Creates the user; false if the user id is taken (by any user, deactivated ones included). */
  async createUser(user: NewUser): Promise<boolean> {
    const result = await this.db
      .insertInto('users')
      .values({
        user_id: user.userId,
        password_hash: user.passwordHash,
        is_guest: user.isGuest ? 1 : 0,
        admin: user.admin ? 1 : 0,
        user_type: user.userType ?? null,
        displayname: user.displayname ?? null,
        avatar_url: null,
        created_ts: user.createdTs,
      })
      .onConflict((oc) => oc.column('user_id').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async getUser(userId: string): Promise<StoredUser | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('user_id', '=', userId).executeTakeFirst();
    return row && toUser(row);
  }

  /** The user whose id matches exactly, or else the only one matching case-insensitively. */
  async findUserForLogin(userId: string): Promise<StoredUser | undefined> {
    const exact = await this.getUser(userId);
    if (exact) return exact;
    const rows = await this.db
      .selectFrom('users')
      .selectAll()
      .where((eb) => eb(eb.fn('lower', ['user_id']), '=', userId.toLowerCase()))
      .limit(2)
      .execute();
    return rows.length === 1 ? toUser(rows[0]!) : undefined;
  }

  async userExists(userId: string): Promise<boolean> {
    const row = await this.db.selectFrom('users').select('user_id').where('user_id', '=', userId).executeTakeFirst();
    return row !== undefined;
  }

  async setPasswordHash(userId: string, passwordHash: string): Promise<void> {
    await this.db.updateTable('users').set({ password_hash: passwordHash }).where('user_id', '=', userId).execute();
  }

  async setAdmin(userId: string, admin: boolean): Promise<void> {
    await this.db.updateTable('users').set({ admin: admin ? 1 : 0 }).where('user_id', '=', userId).execute();
  }

  async setProfile(userId: string, fields: { displayname?: string | null; avatarUrl?: string | null }): Promise<void> {
    const set: { displayname?: string | null; avatar_url?: string | null } = {};
    if (fields.displayname !== undefined) set.displayname = fields.displayname;
    if (fields.avatarUrl !== undefined) set.avatar_url = fields.avatarUrl;
    if (Object.keys(set).length === 0) return;
    await this.db.updateTable('users').set(set).where('user_id', '=', userId).execute();
  }

  /**
   * Deactivates the account for good: no password, no profile, no devices, no tokens. The user id
   * stays taken (it can never be registered again).
   */
  async deactivateUser(userId: string): Promise<void> {
    const removed = await this.tx(async (trx) => {
      const ids = await this.removing(trx, userId, {});
      await trx
        .updateTable('users')
        .set({ deactivated: 1, password_hash: null, displayname: null, avatar_url: null })
        .where('user_id', '=', userId)
        .execute();
      await trx.deleteFrom('access_tokens').where('user_id', '=', userId).execute();
      await trx.deleteFrom('refresh_tokens').where('user_id', '=', userId).execute();
      await trx.deleteFrom('login_tokens').where('user_id', '=', userId).execute();
      await trx.deleteFrom('devices').where('user_id', '=', userId).execute();
      return ids;
    });
    this.removed(userId, removed);
  }

  // ---- devices ----

  async getDevice(userId: string, deviceId: string): Promise<StoredDevice | undefined> {
    const row = await this.db
      .selectFrom('devices')
      .selectAll()
      .where('user_id', '=', userId)
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
    return row && toDevice(row);
  }

  async listDevices(userId: string): Promise<StoredDevice[]> {
    const rows = await this.db
      .selectFrom('devices')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_ts')
      .orderBy('device_id')
      .execute();
    return rows.map(toDevice);
  }

  /** False if there is no such device. */
  async renameDevice(userId: string, deviceId: string, displayName: string | null): Promise<boolean> {
    const result = await this.db
      .updateTable('devices')
      .set({ display_name: displayName })
      .where('user_id', '=', userId)
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Deletes the devices and every access and refresh token of them. Unknown ids are ignored. */
  async deleteDevices(userId: string, deviceIds: readonly string[]): Promise<void> {
    if (deviceIds.length === 0) return;
    await this.tx(async (trx) => {
      await this.removing(trx, userId, deviceIds);
      for (const chunk of chunks(deviceIds, 200)) {
        await trx.deleteFrom('access_tokens').where('user_id', '=', userId).where('device_id', 'in', chunk).execute();
        await trx.deleteFrom('refresh_tokens').where('user_id', '=', userId).where('device_id', 'in', chunk).execute();
        await trx.deleteFrom('devices').where('user_id', '=', userId).where('device_id', 'in', chunk).execute();
        // Pushers belong to the device's session (spec: removed with its access token).
        await trx.deleteFrom('pushers').where('user_id', '=', userId).where('device_id', 'in', chunk).execute();
      }
    });
    this.removed(userId, deviceIds);
  }

  /** Deletes every device and token of the user, except `keepDeviceId`'s (if given). */
  async deleteAllDevices(userId: string, keepDeviceId?: string): Promise<void> {
    const removed = await this.tx(async (trx) => {
      const ids = await this.removing(trx, userId, { allBut: keepDeviceId });
      for (const table of ['access_tokens', 'refresh_tokens', 'devices', 'pushers'] as const) {
        let q = trx.deleteFrom(table).where('user_id', '=', userId);
        if (keepDeviceId !== undefined) {
          q = q.where((eb) => eb.or([eb('device_id', 'is', null), eb('device_id', '!=', keepDeviceId)]));
        }
        await q.execute();
      }
      return ids;
    });
    this.removed(userId, removed);
  }

  async updateLastSeen(userId: string, deviceId: string, ts: number, ip: string | null, userAgent: string | null): Promise<void> {
    await this.db
      .updateTable('devices')
      .set({ last_seen_ts: ts, last_seen_ip: ip, last_seen_user_agent: userAgent })
      .where('user_id', '=', userId)
      .where('device_id', '=', deviceId)
      .execute();
  }

  // ---- sessions: access and refresh tokens ----

  /**
   * Logs a device in: creates the device if it is new (an existing one keeps its name and loses
   * its previous tokens, as the spec asks for a login that names a known device) and stores the
   * new access token (and refresh token). Returns the access token's row id.
   */
  async startSession(s: NewSession): Promise<number> {
    return this.tx(async (trx) => {
      const existing = await trx
        .selectFrom('devices')
        .select('device_id')
        .where('user_id', '=', s.userId)
        .where('device_id', '=', s.deviceId)
        .executeTakeFirst();
      if (existing) {
        await trx.deleteFrom('access_tokens').where('user_id', '=', s.userId).where('device_id', '=', s.deviceId).execute();
        await trx.deleteFrom('refresh_tokens').where('user_id', '=', s.userId).where('device_id', '=', s.deviceId).execute();
      } else {
        await trx
          .insertInto('devices')
          .values({
            user_id: s.userId,
            device_id: s.deviceId,
            display_name: s.deviceDisplayName ?? null,
            created_ts: s.now,
            last_seen_ts: null,
            last_seen_ip: null,
            last_seen_user_agent: null,
          })
          .execute();
      }
      let refreshId: number | null = null;
      if (s.refreshToken !== undefined) {
        refreshId = await insertRefreshToken(trx, s.userId, s.deviceId, s.refreshToken, s.refreshExpiresTs ?? null, null, s.now);
      }
      return insertAccessToken(trx, s.userId, s.deviceId, s.accessToken, s.accessExpiresTs, refreshId, null, s.now);
    });
  }

  /** What the token resolves to (from memory when it was looked up before and nothing changed since). */
  async lookupAccessToken(token: string): Promise<AccessTokenInfo | undefined> {
    const hash = hashToken(token);
    const cached = this.tokenCache.get(hash);
    if (cached) return { ...cached };
    const generation = this.tokenGeneration;
    const info = await this.readAccessToken(hash);
    // Unknown tokens are not kept (one may be created later); nor is an answer that a write
    // transaction overlapped (it may be from before that transaction committed).
    if (info && generation === this.tokenGeneration) {
      if (this.tokenCache.size >= TOKEN_CACHE_LIMIT) this.tokenCache.delete(this.tokenCache.keys().next().value!);
      this.tokenCache.set(hash, info);
      return { ...info };
    }
    return info;
  }

  private async readAccessToken(hash: string): Promise<AccessTokenInfo | undefined> {
    const row = await LOOKUP_ACCESS_TOKEN.first(this.db, hash);
    if (!row) return undefined;
    return {
      tokenId: row.id,
      userId: row.user_id,
      deviceId: row.device_id,
      expiresTs: row.expires_ts,
      isGuest: row.is_guest === 1,
      deactivated: row.deactivated === 1,
      prevRefreshTokenId: row.prev_refresh_token_id,
      refreshTokenId: row.refresh_token_id,
    };
  }

  /** The first use of an access token issued by `/refresh`: the refresh token it replaced is retired. */
  async retirePreviousRefreshToken(info: AccessTokenInfo): Promise<void> {
    const prev = info.prevRefreshTokenId;
    if (prev === null) return;
    await this.tx(async (trx) => {
      await retireRefreshToken(trx, prev);
      await trx.updateTable('access_tokens').set({ prev_refresh_token_id: null }).where('id', '=', info.tokenId).execute();
      if (info.refreshTokenId !== null) {
        await trx.updateTable('refresh_tokens').set({ prev_token_id: null }).where('id', '=', info.refreshTokenId).execute();
      }
    });
  }

  /**
   * Rotates a refresh token: stores the new pair and revokes the old access token (see the top of
   * this file for when the old refresh token stops working).
   */
  async refresh(r: {
    refreshToken: string;
    newAccessToken: string;
    accessExpiresTs: number | null;
    newRefreshToken: string;
    refreshExpiresTs: number | null;
    now: number;
  }): Promise<RefreshResult> {
    return this.tx(async (trx) => {
      const row = await trx
        .selectFrom('refresh_tokens')
        .selectAll()
        .where('token_hash', '=', hashToken(r.refreshToken))
        .executeTakeFirst();
      if (!row) return { ok: false, reason: 'unknown' } as const;
      if (row.expires_ts !== null && row.expires_ts <= r.now) {
        await retireRefreshToken(trx, row.id);
        return { ok: false, reason: 'expired' } as const;
      }
      // Successors issued earlier with this token but never used: the client did not get them.
      const unused = await trx.selectFrom('refresh_tokens').select('id').where('prev_token_id', '=', row.id).execute();
      for (const u of unused) await retireRefreshToken(trx, u.id);
      // This token is being used, so the one it replaced is finished with.
      if (row.prev_token_id !== null) await retireRefreshToken(trx, row.prev_token_id);
      await trx.deleteFrom('access_tokens').where('refresh_token_id', '=', row.id).execute();

      const newRefreshId = await insertRefreshToken(
        trx,
        row.user_id,
        row.device_id,
        r.newRefreshToken,
        r.refreshExpiresTs,
        row.id,
        r.now,
      );
      const accessTokenId = await insertAccessToken(
        trx,
        row.user_id,
        row.device_id,
        r.newAccessToken,
        r.accessExpiresTs,
        newRefreshId,
        row.id,
        r.now,
      );
      return { ok: true, userId: row.user_id, deviceId: row.device_id, accessTokenId } as const;
    });
  }

  /**
   * Logs out one access token: deletes its device (and with it every token of the device), or
   * only the token when it has no device.
   */
  async logout(info: { tokenId: number; userId: string; deviceId: string | null | undefined }): Promise<void> {
    if (info.deviceId) {
      await this.deleteDevices(info.userId, [info.deviceId]);
      return;
    }
    await this.tx(async (trx) => {
      const row = await trx.selectFrom('access_tokens').select('refresh_token_id').where('id', '=', info.tokenId).executeTakeFirst();
      if (row?.refresh_token_id != null) await retireRefreshToken(trx, row.refresh_token_id);
      await trx.deleteFrom('access_tokens').where('id', '=', info.tokenId).execute();
    });
  }

  // ---- login tokens (m.login.token) ----

  async createLoginToken(token: string, userId: string, expiresTs: number): Promise<void> {
    await this.db.insertInto('login_tokens').values({ token_hash: hashToken(token), user_id: userId, expires_ts: expiresTs }).execute();
  }

  /** Uses up a login token: its user, or undefined when unknown, already used or expired. */
  async consumeLoginToken(token: string, now: number): Promise<string | undefined> {
    return this.tx(async (trx) => {
      const hash = hashToken(token);
      const row = await trx.selectFrom('login_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
      if (!row) return undefined;
      await trx.deleteFrom('login_tokens').where('token_hash', '=', hash).execute();
      // Sweep expired tokens while here.
      await trx.deleteFrom('login_tokens').where('expires_ts', '<=', now).execute();
      return row.expires_ts > now ? row.user_id : undefined;
    });
  }

  // ---- registration tokens (m.login.registration_token) ----

  /** False if the token already exists. */
  async createRegistrationToken(t: { token: string; usesAllowed: number | null; expiryTime: number | null }): Promise<boolean> {
    const result = await this.db
      .insertInto('registration_tokens')
      .values({ token: t.token, uses_allowed: t.usesAllowed, expiry_time: t.expiryTime })
      .onConflict((oc) => oc.column('token').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async getRegistrationToken(token: string): Promise<StoredRegistrationToken | undefined> {
    const row = await this.db.selectFrom('registration_tokens').selectAll().where('token', '=', token).executeTakeFirst();
    return row && toRegistrationToken(row);
  }

  async listRegistrationTokens(): Promise<StoredRegistrationToken[]> {
    const rows = await this.db.selectFrom('registration_tokens').selectAll().orderBy('token').execute();
    return rows.map(toRegistrationToken);
  }

  async deleteRegistrationToken(token: string): Promise<boolean> {
    const result = await this.db.deleteFrom('registration_tokens').where('token', '=', token).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /**
   * Takes one use of the token for a registration in progress (pending + 1), if it is valid:
   * not expired and with a use left counting the pending ones.
   */
  async reserveRegistrationToken(token: string, now: number): Promise<boolean> {
    return this.tx(async (trx) => {
      const row = await trx.selectFrom('registration_tokens').selectAll().where('token', '=', token).executeTakeFirst();
      if (!row || !registrationTokenValid(toRegistrationToken(row), now)) return false;
      await trx.updateTable('registration_tokens').set({ pending: row.pending + 1 }).where('token', '=', token).execute();
      return true;
    });
  }

  /** A registration that reserved the token gave up (its session expired). */
  async releaseRegistrationToken(token: string): Promise<void> {
    await this.db
      .updateTable('registration_tokens')
      .set((eb) => ({ pending: eb('pending', '-', 1) }))
      .where('token', '=', token)
      .where('pending', '>', 0)
      .execute();
  }

  /** A registration that reserved the token completed: pending - 1, completed + 1. */
  async completeRegistrationToken(token: string): Promise<void> {
    await this.tx(async (trx) => {
      const row = await trx.selectFrom('registration_tokens').select('pending').where('token', '=', token).executeTakeFirst();
      if (!row) return;
      await trx
        .updateTable('registration_tokens')
        .set((eb) => ({ pending: Math.max(0, row.pending - 1), completed: eb('completed', '+', 1) }))
        .where('token', '=', token)
        .execute();
    });
  }

  /**
   * Forgets every pending use: registrations in progress live in memory (http/uia.ts), so after a
   * restart none are in progress. Called at start-up.
   */
  async resetPendingRegistrationTokens(): Promise<void> {
    await this.db.updateTable('registration_tokens').set({ pending: 0 }).where('pending', '!=', 0).execute();
  }
}

/** Whether the token may still be used: not expired, and a use left counting pending ones. */
export function registrationTokenValid(t: StoredRegistrationToken, now: number): boolean {
  if (t.expiryTime !== null && t.expiryTime <= now) return false;
  if (t.usesAllowed !== null && t.pending + t.completed >= t.usesAllowed) return false;
  return true;
}

async function insertRefreshToken(
  trx: Kysely<Database>,
  userId: string,
  deviceId: string,
  token: string,
  expiresTs: number | null,
  prevTokenId: number | null,
  now: number,
): Promise<number> {
  const row = await trx
    .insertInto('refresh_tokens')
    .values({
      token_hash: hashToken(token),
      user_id: userId,
      device_id: deviceId,
      created_ts: now,
      expires_ts: expiresTs,
      prev_token_id: prevTokenId,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

async function insertAccessToken(
  trx: Kysely<Database>,
  userId: string,
  deviceId: string | null,
  token: string,
  expiresTs: number | null,
  refreshTokenId: number | null,
  prevRefreshTokenId: number | null,
  now: number,
): Promise<number> {
  const row = await trx
    .insertInto('access_tokens')
    .values({
      token_hash: hashToken(token),
      user_id: userId,
      device_id: deviceId,
      created_ts: now,
      expires_ts: expiresTs,
      refresh_token_id: refreshTokenId,
      prev_refresh_token_id: prevRefreshTokenId,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

/** Deletes a refresh token and the access tokens issued with it. */
async function retireRefreshToken(trx: Kysely<Database>, id: number): Promise<void> {
  await trx.deleteFrom('access_tokens').where('refresh_token_id', '=', id).execute();
  await trx.deleteFrom('refresh_tokens').where('id', '=', id).execute();
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

type Row<T extends keyof Database> = Selectable<Database[T]>;

function toUser(row: Row<'users'>): StoredUser {
  return {
    userId: row.user_id,
    passwordHash: row.password_hash,
    isGuest: row.is_guest === 1,
    admin: row.admin === 1,
    deactivated: row.deactivated === 1,
    userType: row.user_type,
    createdTs: row.created_ts,
    displayname: row.displayname,
    avatarUrl: row.avatar_url,
  };
}

function toDevice(row: Row<'devices'>): StoredDevice {
  return {
    userId: row.user_id,
    deviceId: row.device_id,
    displayName: row.display_name,
    createdTs: row.created_ts,
    lastSeenTs: row.last_seen_ts,
    lastSeenIp: row.last_seen_ip,
    lastSeenUserAgent: row.last_seen_user_agent,
  };
}

function toRegistrationToken(row: Row<'registration_tokens'>): StoredRegistrationToken {
  return {
    token: row.token,
    usesAllowed: row.uses_allowed,
    pending: row.pending,
    completed: row.completed,
    expiryTime: row.expiry_time,
  };
}
