/**
 * End-to-end encryption keys (spec "Key Distribution", "Cross-signing"): each device's signed
 * identity keys, its one-time and fallback keys, each user's cross-signing keys and the
 * signatures uploaded for keys. The stores keep what they are given; checking signatures and
 * shapes is the e2ee module's work (e2ee/). Every change another user's client must learn about
 * is recorded in the device_lists stream in the same transaction.
 */
import type { Kysely } from 'kysely';
import { canonicalJson } from '../events/canonical-json.js';
import type { JsonObject, JsonValue } from '../events/types.js';
import { chunks, DEVICE_LISTS_STREAM, markDeviceListsChanged } from './device-lists-store.js';
import { arg, PreparedQuery } from './prepared.js';
import type { Database } from './schema.js';
import { lockStream, writeTransaction, type Engine } from './transactions.js';

/** Both run for every /sync of a device (sync/providers/e2ee.ts): compiled once (prepared.ts). */
const COUNT_ONE_TIME_KEYS = new PreparedQuery<[userId: string, deviceId: string], { algorithm: string; n: number | string }>((db) =>
  db
    .selectFrom('e2e_one_time_keys')
    .select(['algorithm', db.fn.countAll<number | string>().as('n')])
    .where('user_id', '=', arg(0))
    .where('device_id', '=', arg(1))
    .groupBy('algorithm'),
);
const UNUSED_FALLBACK_KEY_TYPES = new PreparedQuery<[userId: string, deviceId: string], { algorithm: string }>((db) =>
  db.selectFrom('e2e_fallback_keys').select('algorithm').where('user_id', '=', arg(0)).where('device_id', '=', arg(1)).where('used', '=', 0).orderBy('algorithm'),
);

export interface KeyInput {
  algorithm: string;
  /** The part after `algorithm:`. */
  keyId: string;
  /** A string (unsigned key) or a signed key object. */
  key: JsonValue;
}

export interface KeyUpload {
  userId: string;
  deviceId: string;
  deviceKeys?: JsonObject;
  oneTimeKeys?: readonly KeyInput[];
  fallbackKeys?: readonly KeyInput[];
}

export interface KeyUploadResult {
  /** Unclaimed one-time keys of the device per algorithm. */
  counts: Record<string, number>;
  /** The device_lists position, when the device keys changed. */
  deviceListPosition: number | undefined;
}

/** A one-time key id that is already stored with another key. */
export class OneTimeKeyConflictError extends Error {
  constructor(readonly keyId: string) {
    super(`One-time key ${keyId} already exists with a different value`);
    this.name = 'OneTimeKeyConflictError';
  }
}

export interface ClaimRequest {
  userId: string;
  deviceId: string;
  algorithm: string;
}

export interface ClaimedKey extends ClaimRequest {
  /** `algorithm:key_id` */
  keyId: string;
  key: JsonValue;
  fallback: boolean;
}

export interface StoredDeviceKeys {
  keys: JsonObject;
  displayName: string | null;
}

export type CrossSigningKeyType = 'master' | 'self_signing' | 'user_signing';

export interface StoredCrossSigningKey {
  publicKey: string;
  key: JsonObject;
}

export interface StoredSignature {
  targetUserId: string;
  targetKeyId: string;
  signerUserId: string;
  signerKeyId: string;
  signature: string;
}

export class E2eKeysStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly engine: Engine,
  ) {}

  // ---- device keys, one-time keys, fallback keys ----

  /**
   * Stores a device's upload in one transaction. Re-uploading identical keys changes nothing; a
   * one-time key id already stored with another value throws OneTimeKeyConflictError (and
   * nothing of the upload is kept).
   */
  async upload(u: KeyUpload): Promise<KeyUploadResult> {
    return writeTransaction(this.db, this.engine, async (trx) => {
      let deviceListPosition: number | undefined;
      const now = Date.now();
      if (u.deviceKeys) {
        // Writers that may record a device list change lock its stream first (one lock order).
        await lockStream(trx, this.engine, DEVICE_LISTS_STREAM);
        const existing = await trx
          .selectFrom('e2e_device_keys')
          .select('key_json')
          .where('user_id', '=', u.userId)
          .where('device_id', '=', u.deviceId)
          .executeTakeFirst();
        const old = existing && (JSON.parse(existing.key_json) as JsonObject);
        if (!old || !sameJson(old, u.deviceKeys)) {
          const text = JSON.stringify(u.deviceKeys);
          if (old && !sameJson(old.keys, u.deviceKeys.keys)) {
            // New identity keys: signatures of the old ones no longer apply.
            await trx
              .deleteFrom('e2e_cross_signing_signatures')
              .where('target_user_id', '=', u.userId)
              .where('target_key_id', '=', u.deviceId)
              .execute();
          }
          await trx
            .insertInto('e2e_device_keys')
            .values({ user_id: u.userId, device_id: u.deviceId, key_json: text, updated_ts: now })
            .onConflict((oc) => oc.columns(['user_id', 'device_id']).doUpdateSet({ key_json: text, updated_ts: now }))
            .execute();
          deviceListPosition = await markDeviceListsChanged(trx, this.engine, [u.userId]);
        }
      }

      const otks = u.oneTimeKeys ?? [];
      if (otks.length > 0) {
        const stored = new Map<string, string>();
        for (const chunk of chunks(otks, 500)) {
          const rows = await trx
            .selectFrom('e2e_one_time_keys')
            .select(['algorithm', 'key_id', 'key_json'])
            .where('user_id', '=', u.userId)
            .where('device_id', '=', u.deviceId)
            .where('key_id', 'in', chunk.map((k) => k.keyId))
            .execute();
          for (const r of rows) stored.set(`${r.algorithm}:${r.key_id}`, r.key_json);
        }
        const fresh: KeyInput[] = [];
        const seen = new Set<string>();
        for (const k of otks) {
          const id = `${k.algorithm}:${k.keyId}`;
          const old = stored.get(id);
          if (old !== undefined) {
            if (!sameJson(JSON.parse(old) as JsonValue, k.key)) throw new OneTimeKeyConflictError(id);
            continue;
          }
          if (seen.has(id)) continue;
          seen.add(id);
          fresh.push(k);
        }
        for (const chunk of chunks(fresh, 200)) {
          await trx
            .insertInto('e2e_one_time_keys')
            .values(
              chunk.map((k) => ({
                user_id: u.userId,
                device_id: u.deviceId,
                algorithm: k.algorithm,
                key_id: k.keyId,
                key_json: JSON.stringify(k.key),
              })),
            )
            .execute();
        }
      }

      for (const k of u.fallbackKeys ?? []) {
        const text = JSON.stringify(k.key);
        const old = await trx
          .selectFrom('e2e_fallback_keys')
          .select(['key_id', 'key_json'])
          .where('user_id', '=', u.userId)
          .where('device_id', '=', u.deviceId)
          .where('algorithm', '=', k.algorithm)
          .executeTakeFirst();
        // The same key uploaded again keeps its `used` flag; a new one starts unused.
        if (old && old.key_id === k.keyId && sameJson(JSON.parse(old.key_json) as JsonValue, k.key)) continue;
        await trx
          .insertInto('e2e_fallback_keys')
          .values({ user_id: u.userId, device_id: u.deviceId, algorithm: k.algorithm, key_id: k.keyId, key_json: text, used: 0 })
          .onConflict((oc) => oc.columns(['user_id', 'device_id', 'algorithm']).doUpdateSet({ key_id: k.keyId, key_json: text, used: 0 }))
          .execute();
      }

      return { counts: await countOneTimeKeys(trx, u.userId, u.deviceId), deviceListPosition };
    });
  }

  async oneTimeKeyCounts(userId: string, deviceId: string): Promise<Record<string, number>> {
    return countOneTimeKeys(this.db, userId, deviceId);
  }

  /** Algorithms of the device's fallback keys that no claim has handed out yet. */
  async unusedFallbackKeyTypes(userId: string, deviceId: string): Promise<string[]> {
    const rows = await UNUSED_FALLBACK_KEY_TYPES.rows(this.db, userId, deviceId);
    return rows.map((r) => r.algorithm);
  }

  /**
   * Claims a key per request: the device's oldest one-time key of the algorithm (removed, so it
   * is never handed out twice), else its fallback key (kept, marked used). Requests without
   * either are left out of the answer.
   */
  async claim(requests: readonly ClaimRequest[]): Promise<ClaimedKey[]> {
    if (requests.length === 0) return [];
    return writeTransaction(this.db, this.engine, async (trx) => {
      const out: ClaimedKey[] = [];
      for (const r of requests) {
        const claimed = await this.claimOne(trx, r);
        if (claimed) out.push(claimed);
      }
      return out;
    });
  }

  private async claimOne(trx: Kysely<Database>, r: ClaimRequest): Promise<ClaimedKey | undefined> {
    // A concurrent claim (PostgreSQL) may take the row between the select and the delete: the
    // delete then removes nothing and the next key is tried.
    for (let attempt = 0; attempt < 5; attempt++) {
      const row = await trx
        .selectFrom('e2e_one_time_keys')
        .select(['id', 'key_id', 'key_json'])
        .where('user_id', '=', r.userId)
        .where('device_id', '=', r.deviceId)
        .where('algorithm', '=', r.algorithm)
        .orderBy('id')
        .limit(1)
        .executeTakeFirst();
      if (!row) break;
      const deleted = await trx.deleteFrom('e2e_one_time_keys').where('id', '=', row.id).executeTakeFirst();
      if (Number(deleted.numDeletedRows) === 1) {
        return { ...r, keyId: `${r.algorithm}:${row.key_id}`, key: JSON.parse(row.key_json) as JsonValue, fallback: false };
      }
    }
    const fallback = await trx
      .selectFrom('e2e_fallback_keys')
      .select(['key_id', 'key_json'])
      .where('user_id', '=', r.userId)
      .where('device_id', '=', r.deviceId)
      .where('algorithm', '=', r.algorithm)
      .executeTakeFirst();
    if (!fallback) return undefined;
    await trx
      .updateTable('e2e_fallback_keys')
      .set({ used: 1 })
      .where('user_id', '=', r.userId)
      .where('device_id', '=', r.deviceId)
      .where('algorithm', '=', r.algorithm)
      .execute();
    return { ...r, keyId: `${r.algorithm}:${fallback.key_id}`, key: JSON.parse(fallback.key_json) as JsonValue, fallback: true };
  }

  /**
   * The device keys of the users' devices: `deviceIds` empty means all of the user's devices.
   * Devices that never uploaded keys are left out.
   */
  async deviceKeys(query: ReadonlyMap<string, readonly string[]>): Promise<Map<string, Map<string, StoredDeviceKeys>>> {
    const out = new Map<string, Map<string, StoredDeviceKeys>>();
    const all = [...query].filter(([, ids]) => ids.length === 0).map(([u]) => u);
    const some = [...query].filter(([, ids]) => ids.length > 0);
    const add = (rows: { user_id: string; device_id: string; key_json: string; display_name: string | null }[]) => {
      for (const r of rows) {
        let byDevice = out.get(r.user_id);
        if (!byDevice) out.set(r.user_id, (byDevice = new Map()));
        byDevice.set(r.device_id, { keys: JSON.parse(r.key_json) as JsonObject, displayName: r.display_name });
      }
    };
    const base = () =>
      this.db
        .selectFrom('e2e_device_keys as k')
        .leftJoin('devices as d', (j) => j.onRef('d.user_id', '=', 'k.user_id').onRef('d.device_id', '=', 'k.device_id'))
        .select(['k.user_id', 'k.device_id', 'k.key_json', 'd.display_name']);
    for (const chunk of chunks(all, 200)) add(await base().where('k.user_id', 'in', chunk).execute());
    for (const [userId, ids] of some) {
      for (const chunk of chunks([...new Set(ids)], 500)) {
        add(await base().where('k.user_id', '=', userId).where('k.device_id', 'in', chunk).execute());
      }
    }
    return out;
  }

  /**
   * Inside a transaction that deletes devices: removes their keys and the signatures by or of
   * them, and records a device list change when any of them had keys. Returns that position.
   */
  async removeDevices(trx: Kysely<Database>, userId: string, deviceIds: readonly string[]): Promise<number | undefined> {
    await lockStream(trx, this.engine, DEVICE_LISTS_STREAM);
    let hadKeys = false;
    for (const chunk of chunks(deviceIds, 200)) {
      const deleted = await trx
        .deleteFrom('e2e_device_keys')
        .where('user_id', '=', userId)
        .where('device_id', 'in', chunk)
        .executeTakeFirst();
      if (Number(deleted.numDeletedRows) > 0) hadKeys = true;
      await trx.deleteFrom('e2e_one_time_keys').where('user_id', '=', userId).where('device_id', 'in', chunk).execute();
      await trx.deleteFrom('e2e_fallback_keys').where('user_id', '=', userId).where('device_id', 'in', chunk).execute();
      await trx
        .deleteFrom('e2e_cross_signing_signatures')
        .where('target_user_id', '=', userId)
        .where('target_key_id', 'in', chunk)
        .execute();
      await trx
        .deleteFrom('e2e_cross_signing_signatures')
        .where('signer_user_id', '=', userId)
        .where(
          'signer_key_id',
          'in',
          chunk.map((d) => `ed25519:${d}`),
        )
        .execute();
    }
    return hadKeys ? markDeviceListsChanged(trx, this.engine, [userId]) : undefined;
  }

  // ---- cross-signing ----

  async crossSigningKeys(userIds: readonly string[]): Promise<Map<string, Map<CrossSigningKeyType, StoredCrossSigningKey>>> {
    const out = new Map<string, Map<CrossSigningKeyType, StoredCrossSigningKey>>();
    for (const chunk of chunks([...new Set(userIds)], 500)) {
      const rows = await this.db.selectFrom('e2e_cross_signing_keys').selectAll().where('user_id', 'in', chunk).execute();
      for (const r of rows) {
        let byType = out.get(r.user_id);
        if (!byType) out.set(r.user_id, (byType = new Map()));
        byType.set(r.key_type as CrossSigningKeyType, { publicKey: r.public_key, key: JSON.parse(r.key_json) as JsonObject });
      }
    }
    return out;
  }

  /** Replaces the given cross-signing keys of the user; returns the device_lists position. */
  async setCrossSigningKeys(
    userId: string,
    keys: ReadonlyMap<CrossSigningKeyType, StoredCrossSigningKey>,
  ): Promise<number> {
    return writeTransaction(this.db, this.engine, async (trx) => {
      await lockStream(trx, this.engine, DEVICE_LISTS_STREAM);
      const now = Date.now();
      for (const [type, k] of keys) {
        const old = await trx
          .selectFrom('e2e_cross_signing_keys')
          .select('public_key')
          .where('user_id', '=', userId)
          .where('key_type', '=', type)
          .executeTakeFirst();
        if (old && old.public_key !== k.publicKey) {
          await trx
            .deleteFrom('e2e_cross_signing_signatures')
            .where('target_user_id', '=', userId)
            .where('target_key_id', '=', old.public_key)
            .execute();
        }
        const text = JSON.stringify(k.key);
        await trx
          .insertInto('e2e_cross_signing_keys')
          .values({ user_id: userId, key_type: type, public_key: k.publicKey, key_json: text, updated_ts: now })
          .onConflict((oc) => oc.columns(['user_id', 'key_type']).doUpdateSet({ public_key: k.publicKey, key_json: text, updated_ts: now }))
          .execute();
      }
      return markDeviceListsChanged(trx, this.engine, [userId]);
    });
  }

  /**
   * Stores signatures (a newer signature by the same key replaces the older) and records a
   * device list change for `changedUsers`; returns that position (undefined when nothing changed).
   */
  async addSignatures(signatures: readonly StoredSignature[], changedUsers: readonly string[]): Promise<number | undefined> {
    if (signatures.length === 0) return undefined;
    return writeTransaction(this.db, this.engine, async (trx) => {
      if (changedUsers.length > 0) await lockStream(trx, this.engine, DEVICE_LISTS_STREAM);
      for (const s of signatures) {
        await trx
          .insertInto('e2e_cross_signing_signatures')
          .values({
            target_user_id: s.targetUserId,
            target_key_id: s.targetKeyId,
            signer_user_id: s.signerUserId,
            signer_key_id: s.signerKeyId,
            signature: s.signature,
          })
          .onConflict((oc) =>
            oc.columns(['target_user_id', 'target_key_id', 'signer_user_id', 'signer_key_id']).doUpdateSet({ signature: s.signature }),
          )
          .execute();
      }
      return changedUsers.length > 0 ? markDeviceListsChanged(trx, this.engine, changedUsers) : undefined;
    });
  }

  /** Uploaded signatures of the users' keys (devices and cross-signing keys). */
  async signaturesOf(userIds: readonly string[]): Promise<StoredSignature[]> {
    const out: StoredSignature[] = [];
    for (const chunk of chunks([...new Set(userIds)], 500)) {
      const rows = await this.db.selectFrom('e2e_cross_signing_signatures').selectAll().where('target_user_id', 'in', chunk).execute();
      for (const r of rows) {
        out.push({
          targetUserId: r.target_user_id,
          targetKeyId: r.target_key_id,
          signerUserId: r.signer_user_id,
          signerKeyId: r.signer_key_id,
          signature: r.signature,
        });
      }
    }
    return out;
  }
}

async function countOneTimeKeys(db: Kysely<Database>, userId: string, deviceId: string): Promise<Record<string, number>> {
  const rows = await COUNT_ONE_TIME_KEYS.rows(db, userId, deviceId);
  const out: Record<string, number> = {};
  for (const r of rows) out[r.algorithm] = Number(r.n);
  return out;
}

/** Equal as JSON values (key order does not matter). */
export function sameJson(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  try {
    return canonicalJson(a, { strict: false }) === canonicalJson(b, { strict: false });
  } catch {
    return false;
  }
}
