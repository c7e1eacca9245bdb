/**
 * Signing events (spec server-server "Signing Events"): an event is signed in its redacted
 * form, so the signature still checks after a redaction; the content hash, which the
 * redacted form keeps, protects the rest.
 */
import type { RoomVersion } from '../rooms/room-versions.js';
import { encodeBase64 } from './base64.js';
import { canonicalJson, canonicalJsonBytes } from './canonical-json.js';
import { addContentHash, sha256 } from './hashing.js';
import { redactEvent } from './redaction.js';
import { signBytes, signJson, verifyJsonSignature, type SigningKey } from './signing.js';
import type { JsonObject, Pdu } from './types.js';

/**
 * Returns a copy of `pdu` with a content hash (computed only if `hashes.sha256` is absent,
 * so co-signing another server's event keeps its hash) and `serverName`'s signature added
 * next to any existing signatures. Throws CanonicalJsonError if the event is not valid
 * canonical JSON for the room version.
 */
export function signEvent(pdu: Pdu, serverName: string, key: SigningKey, version: RoomVersion): Pdu {
  // v6+: never produce an event other servers would drop (floats, unsafe integers), even
  // in parts the signature does not cover.
  if (version.strictCanonicalJson) canonicalJson(pdu, { strict: true });
  const hashed = hasSha256(pdu) ? pdu : addContentHash(pdu);
  const signedRedacted = signJson(redactEvent(hashed, version), serverName, key, {
    strict: version.strictCanonicalJson,
  });
  return { ...hashed, signatures: signedRedacted.signatures };
}

/** A new event signed by `signNewEvent`, with what its checks need. */
export interface SignedNewEvent {
  pdu: Pdu;
  /** Bytes of the signed PDU's canonical JSON (what MAX_PDU_BYTES bounds). */
  size: number;
  /** The reference hash (room versions 3+; what computeReferenceHash would return), else undefined. */
  referenceHash: Uint8Array | undefined;
}

/**
 * `signEvent` for an event this server has just built (no hashes, signatures or unsigned yet),
 * encoding each form once instead of once per use: the full event (checked, content hash, size)
 * and the redacted event (signature, and in v3+ the reference hash, which covers the same bytes:
 * the redacted event without signatures, unsigned, age_ts and, v3+, event_id). The result is
 * the same PDU `signEvent` returns; the size and hash equal those computed from it.
 */
export function signNewEvent(pdu: Pdu, serverName: string, key: SigningKey, version: RoomVersion): SignedNewEvent {
  if ('hashes' in pdu || 'signatures' in pdu || 'unsigned' in pdu || 'age_ts' in pdu) {
    const signed = signEvent(pdu, serverName, key, version);
    return { pdu: signed, size: Buffer.byteLength(canonicalJson(signed, { strict: false }), 'utf8'), referenceHash: undefined };
  }
  const strict = version.strictCanonicalJson;
  // Strict in v6+: never produce an event other servers would drop (as signEvent).
  const full = canonicalJsonBytes(pdu, { strict });
  const hashes = { sha256: encodeBase64(sha256(full)) };
  const hashed: Pdu = { ...pdu, hashes };
  const redacted = redactEvent(hashed, version);
  const signedBytes = canonicalJsonBytes(redacted, { strict });
  const signatures = { [serverName]: { [key.keyId]: signBytes(signedBytes, key) } };
  // Canonical JSON of `hashed` plus `signatures`: two more keys, each `,"key":value` long.
  const size = full.length + Buffer.byteLength(`,"hashes":${canonicalJson(hashes)},"signatures":${canonicalJson(signatures)}`, 'utf8');
  const referenceHash = version.eventFormat !== 'v1' && !('event_id' in redacted) ? sha256(signedBytes) : undefined;
  return { pdu: { ...hashed, signatures }, size, referenceHash };
}

/**
 * True when `pdu`'s redacted form carries a valid signature by `serverName` with `keyId`.
 * Never throws. Does not check the content hash (see checkContentHash).
 */
export function verifyEventSignature(
  pdu: Pdu,
  serverName: string,
  keyId: string,
  publicKey: Uint8Array | string,
  version: RoomVersion,
): boolean {
  try {
    return verifyJsonSignature(redactEvent(pdu, version), serverName, keyId, publicKey);
  } catch {
    return false;
  }
}

/**
 * The servers whose signatures an event must carry: the sender's server; in v1/v2 also the
 * server of the event id; for a restricted join (v8+), the server of the authorising user.
 * Third-party invites (which another server may send) are left to the caller.
 */
export function requiredSigningServers(pdu: Pdu, version: RoomVersion): string[] {
  const servers = new Set<string>();
  addServerOf(servers, pdu.sender);
  if (version.eventFormat === 'v1') addServerOf(servers, pdu.event_id);
  if (version.restrictedJoinRule && pdu.type === 'm.room.member') {
    const content = pdu.content as JsonObject | undefined;
    if (content?.membership === 'join') addServerOf(servers, content.join_authorised_via_users_server);
  }
  return [...servers];
}

/** The server name of a `@user:server` / `$event:server` style id, if it has one. */
export function serverNameOf(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  const colon = id.indexOf(':');
  return colon > 0 && colon < id.length - 1 ? id.slice(colon + 1) : undefined;
}

function addServerOf(servers: Set<string>, id: unknown): void {
  const server = serverNameOf(id);
  if (server !== undefined) servers.add(server);
}

function hasSha256(pdu: Pdu): boolean {
  const hashes = pdu.hashes;
  return typeof hashes === 'object' && hashes !== null && !Array.isArray(hashes) && typeof hashes.sha256 === 'string';
}
