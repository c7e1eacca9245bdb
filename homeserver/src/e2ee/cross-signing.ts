/**
 * Cross-signing (spec "Cross-signing"): uploading a user's master, self-signing and user-signing
 * keys, and uploading signatures of keys.
 *
 * `/keys/device_signing/upload` needs user-interactive auth (m.login.password) except, as spec
 * v1.11 says (MSC3967, Synapse does the same), when the user has no master key yet or the request
 * only repeats the keys already stored (a retried upload whose answer was lost).
 *
 * `/keys/signatures/upload` accepts, per key (failures are reported per key, never fail the rest):
 * - the user's own device keys signed by their self-signing key;
 * - the user's own master key signed by one of their devices;
 * - another local user's master key signed by the user's user-signing key (only the signer sees
 *   that signature in /keys/query).
 */
import type { FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.js';
import type { JsonObject } from '../events/types.js';
import { badJson, forbidden, MatrixError, tooLarge } from '../http/errors.js';
import { PASSWORD } from '../http/uia.js';
import { sameJson, type CrossSigningKeyType, type StoredCrossSigningKey, type StoredSignature } from '../storage/e2e-keys-store.js';
import { federateSigningKeyUpdate } from '../federation/outgoing-edus.js';
import { remoteMasterKeys } from '../federation/queries-client.js';
import { announceDeviceListChange } from './device-lists.js';
import {
  checkCrossSigningKey,
  deviceEd25519,
  hasValidSignature,
  invalidSignature,
  isObject,
  isUserId,
  serverOf,
  signaturesOf,
  signedContent,
  type CheckedCrossSigningKey,
} from './validation.js';

const FIELDS: readonly [string, CrossSigningKeyType][] = [
  ['master_key', 'master'],
  ['self_signing_key', 'self_signing'],
  ['user_signing_key', 'user_signing'],
];

/** Signed objects in one /keys/signatures/upload. */
export const MAX_SIGNATURE_UPLOADS = 1000;

function parseSigningKeys(body: JsonObject, userId: string): Map<CrossSigningKeyType, CheckedCrossSigningKey> {
  const out = new Map<CrossSigningKeyType, CheckedCrossSigningKey>();
  for (const [field, type] of FIELDS) {
    const raw = body[field];
    if (raw === undefined || raw === null) continue;
    out.set(type, checkCrossSigningKey(raw, field, type, userId));
  }
  return out;
}

export async function uploadSigningKeys(ctx: ServerContext, req: FastifyRequest, userId: string, rawBody: unknown): Promise<void> {
  if (!isObject(rawBody)) throw badJson('The request body must be an object');
  const stored = (await ctx.storage.e2eKeys.crossSigningKeys([userId])).get(userId) ?? new Map<CrossSigningKeyType, StoredCrossSigningKey>();
  let keys = parseSigningKeys(rawBody, userId);
  const repeatsStored = stored.has('master') && [...keys].every(([type, k]) => sameJson(stored.get(type)?.key, k.key));
  if (repeatsStored) return; // nothing new: idempotent, no auth needed
  if (stored.has('master')) {
    const { body } = await ctx.accounts.uia.authenticate(req, rawBody, { flows: [[PASSWORD]], userId, serverName: ctx.config.server_name });
    keys = parseSigningKeys(body as JsonObject, userId);
  }
  if (keys.size === 0) return;

  const master = keys.get('master') ?? stored.get('master');
  if (!master) throw new MatrixError(400, 'M_MISSING_PARAM', 'No master signing key is available');
  for (const type of ['self_signing', 'user_signing'] as const) {
    const k = keys.get(type);
    if (k && !hasValidSignature(k.key, userId, master.publicKey, master.publicKey)) {
      throw invalidSignature(`The ${type} key must be signed by the master key`);
    }
  }
  const devices = await ctx.storage.accounts.listDevices(userId);
  const deviceIds = new Set(devices.map((d) => d.deviceId));
  for (const k of keys.values()) {
    if (deviceIds.has(k.publicKey)) throw forbidden('Key ID in use: a device has the id of this public key');
  }
  await ctx.storage.e2eKeys.setCrossSigningKeys(userId, keys);
  await announceDeviceListChange(ctx, userId);
  if (keys.has('master') || keys.has('self_signing')) federateSigningKeyUpdate(ctx, userId);
}

export interface SignatureFailure {
  errcode: string;
  error: string;
}

export async function uploadSignatures(
  ctx: ServerContext,
  userId: string,
  rawBody: unknown,
): Promise<{ failures: Record<string, Record<string, SignatureFailure>> }> {
  if (!isObject(rawBody)) throw badJson('The request body must be an object');
  const failures: Record<string, Record<string, SignatureFailure>> = {};
  const fail = (target: string, keyId: string, errcode: string, error: string) => {
    (failures[target] ??= {})[keyId] = { errcode, error };
  };
  const items: [string, string, unknown][] = [];
  for (const [target, byKey] of Object.entries(rawBody)) {
    if (!isObject(byKey)) throw badJson('The body must map user ids to key ids to signed objects');
    for (const [keyId, obj] of Object.entries(byKey)) items.push([target, keyId, obj]);
  }
  if (items.length > MAX_SIGNATURE_UPLOADS) throw tooLarge(`At most ${MAX_SIGNATURE_UPLOADS} signed keys per request`);

  const serverName = ctx.config.server_name;
  const localTargets = [...new Set(items.map(([t]) => t).filter((t) => isUserId(t) && serverOf(t) === serverName))];
  const crossSigning = await ctx.storage.e2eKeys.crossSigningKeys([userId, ...localTargets]);
  // Users of other servers: their master key as their server gives it (federation/queries-client.ts).
  const remoteTargets = [...new Set(items.map(([t]) => t).filter((t) => isUserId(t) && serverOf(t) !== serverName))];
  for (const [target, master] of await remoteMasterKeys(ctx, remoteTargets)) crossSigning.set(target, new Map([['master', master]]));
  const own = crossSigning.get(userId);
  const ownDevices = (await ctx.storage.e2eKeys.deviceKeys(new Map([[userId, []]]))).get(userId) ?? new Map();

  const accepted: StoredSignature[] = [];
  const changedUsers = new Set<string>();
  for (const [target, keyId, obj] of items) {
    if (!isUserId(target)) {
      fail(target, keyId, 'M_INVALID_PARAM', 'Not a user id');
      continue;
    }
    if (!isObject(obj)) {
      fail(target, keyId, 'M_BAD_JSON', 'The signed key must be an object');
      continue;
    }
    if (serverOf(target) !== serverName && !crossSigning.has(target)) {
      fail(target, keyId, 'M_UNKNOWN', "The user's keys could not be fetched from their server");
      continue;
    }
    const mySignatures = signaturesOf(obj).get(userId) ?? new Map<string, string>();
    const matches = (stored: JsonObject) => {
      try {
        return signedContent(stored) === signedContent(obj);
      } catch {
        return false;
      }
    };
    const accept = (signerKeyId: string, signature: string) => {
      accepted.push({ targetUserId: target, targetKeyId: keyId, signerUserId: userId, signerKeyId, signature });
    };

    if (target === userId) {
      const device = ownDevices.get(keyId);
      const master = own?.get('master');
      if (device) {
        // One of the user's devices, signed by their self-signing key.
        if (!matches(device.keys)) {
          fail(target, keyId, 'M_INVALID_PARAM', 'The signed object does not match the stored device keys');
          continue;
        }
        const ssk = own?.get('self_signing');
        const signerKeyId = ssk && `ed25519:${ssk.publicKey}`;
        const signature = signerKeyId && mySignatures.get(signerKeyId);
        if (!ssk || !signerKeyId || !signature || !hasValidSignature(obj, userId, ssk.publicKey, ssk.publicKey)) {
          fail(target, keyId, 'M_INVALID_SIGNATURE', 'No valid signature by the self-signing key');
          continue;
        }
        accept(signerKeyId, signature);
        changedUsers.add(userId);
      } else if (master && keyId === master.publicKey) {
        // The user's master key, signed by their devices.
        if (!matches(master.key)) {
          fail(target, keyId, 'M_INVALID_PARAM', 'The signed object does not match the stored master key');
          continue;
        }
        let any = false;
        for (const [signerKeyId, signature] of mySignatures) {
          const signerDevice = signerKeyId.startsWith('ed25519:') ? signerKeyId.slice('ed25519:'.length) : undefined;
          const deviceKey = signerDevice !== undefined ? deviceEd25519(ownDevices.get(signerDevice)?.keys, signerDevice) : undefined;
          if (deviceKey === undefined || !hasValidSignature(obj, userId, signerDevice!, deviceKey)) continue;
          accept(signerKeyId, signature);
          any = true;
        }
        if (!any) {
          fail(target, keyId, 'M_INVALID_SIGNATURE', 'No valid signature by one of the user\'s devices');
          continue;
        }
        changedUsers.add(userId);
      } else {
        fail(target, keyId, 'M_NOT_FOUND', 'Unknown key');
      }
      continue;
    }

    // Another user's master key, signed by the user's user-signing key.
    const theirMaster = crossSigning.get(target)?.get('master');
    if (!theirMaster || theirMaster.publicKey !== keyId) {
      fail(target, keyId, 'M_NOT_FOUND', 'Unknown key: only the master key of another user can be signed');
      continue;
    }
    if (!matches(theirMaster.key)) {
      fail(target, keyId, 'M_INVALID_PARAM', 'The signed object does not match the stored master key');
      continue;
    }
    const usk = own?.get('user_signing');
    const signerKeyId = usk && `ed25519:${usk.publicKey}`;
    const signature = signerKeyId && mySignatures.get(signerKeyId);
    if (!usk || !signerKeyId || !signature || !hasValidSignature(obj, userId, usk.publicKey, usk.publicKey)) {
      fail(target, keyId, 'M_INVALID_SIGNATURE', 'No valid signature by the user-signing key');
      continue;
    }
    accept(signerKeyId, signature);
    changedUsers.add(target);
  }

  const position = await ctx.storage.e2eKeys.addSignatures(accepted, [...changedUsers]);
  if (position !== undefined) for (const u of changedUsers) await announceDeviceListChange(ctx, u);
  return { failures };
}
