/**
 * The checks every PDU received from another server goes through before anything else looks at
 * it (Server-Server API, "Checks performed on receipt of a PDU", steps 1–3):
 *
 * 1. it is a valid event of its room version (else dropped);
 * 2. it carries valid signatures of the servers that must sign it: the sender's, in v1/v2 the
 *    event id's, and for a restricted join the authorising user's (else dropped);
 * 3. its content hash matches (else it is redacted, and only the redacted form is kept).
 *
 * Used by the pipeline's receive path, and for the state and auth chains of send_join responses.
 */
import { computeEventId } from '../events/event-id.js';
import { requiredSigningServers } from '../events/event-signing.js';
import { checkContentHash } from '../events/hashing.js';
import { InvalidPduError, toRoomEvent } from '../events/pdu.js';
import { redactEvent } from '../events/redaction.js';
import type { JsonObject, RoomEvent } from '../events/types.js';
import type { RoomVersion } from '../rooms/room-versions.js';
import type { Keyring } from './runtime.js';

/** Why a PDU was dropped: malformed or not properly signed. */
export class PduCheckError extends Error {
  override name = 'PduCheckError';
  constructor(
    readonly check: 'format' | 'signatures',
    message: string,
    /** When it could be computed. */
    readonly eventId?: string,
  ) {
    super(message);
  }
}

export interface CheckedPdu {
  /** The event to keep: the redacted form when the content hash did not match. */
  event: RoomEvent;
  /** The content hash did not match: `event` is the redacted form. */
  redactedForHash: boolean;
}

/** Anything that holds a keyring: the ServerContext (`ctx.federation.keyring`) or a test's deps. */
export type KeyringHolder = { keyring: Keyring } | { federation: { keyring: Keyring } };

/**
 * Steps 1–3 above: returns the event (redacted if its hash was wrong), or throws PduCheckError.
 * The PDU's `unsigned` is kept as received (callers decide what of it to trust).
 */
export async function checkIncomingPdu(deps: KeyringHolder, pdu: JsonObject, version: RoomVersion): Promise<RoomEvent> {
  return (await checkIncomingPduDetailed(deps, pdu, version)).event;
}

export async function checkIncomingPduDetailed(
  deps: KeyringHolder,
  pdu: JsonObject,
  version: RoomVersion,
): Promise<CheckedPdu> {
  const keyring = 'keyring' in deps ? deps.keyring : deps.federation.keyring;
  let event: RoomEvent;
  try {
    event = toRoomEvent(pdu, version);
  } catch (err) {
    if (err instanceof InvalidPduError) throw new PduCheckError('format', err.message);
    throw new PduCheckError('format', `cannot read the PDU: ${(err as Error).message}`);
  }

  // Signatures cover the redacted form, so they are checked the same whether the hash matches.
  const redacted = redactEvent(pdu, version);
  // Room versions 1–4 do not enforce key validity periods: any time will do.
  const validAt = version.enforceKeyValidity ? event.origin_server_ts : 0;
  for (const server of requiredSigningServers(pdu, version)) {
    try {
      await keyring.verifySignedJson(server, redacted, validAt);
    } catch (err) {
      throw new PduCheckError('signatures', `no valid signature of ${server}: ${(err as Error).message}`, event.event_id);
    }
  }

  if (checkContentHash(pdu)) return { event, redactedForHash: false };
  // The id stays the one the sender gave it (the reference hash covers the redacted form anyway).
  const eventId = computeEventId(pdu, version);
  return { event: toRoomEvent(redacted, version, { eventId }), redactedForHash: true };
}
