/**
 * Event ids (rooms/v1 "Event IDs", rooms/v3, rooms/v4) and v12 room ids (MSC4291, appendix
 * "Room IDs"): from v3 on an event is named by its reference hash, and from v12 a room is
 * named by its create event.
 */
import { getRoomVersion, type RoomVersion } from '../rooms/room-versions.js';
import { encodeBase64, encodeBase64Url } from './base64.js';
import { computeReferenceHash } from './hashing.js';
import type { Pdu } from './types.js';

/**
 * The event id of `pdu`. v1/v2: the `event_id` the PDU carries (throws if it has none).
 * v3: `$` + standard unpadded Base64 of the reference hash. v4+: the URL-safe alphabet.
 */
export function computeEventId(pdu: Pdu, version: RoomVersion): string {
  switch (version.eventFormat) {
    case 'v1':
      if (typeof pdu.event_id !== 'string') throw new Error('room version 1/2 PDU has no event_id');
      return pdu.event_id;
    case 'v3':
      return `$${encodeBase64(computeReferenceHash(pdu, version))}`;
    case 'v4':
    case 'v12':
      return `$${encodeBase64Url(computeReferenceHash(pdu, version))}`;
  }
}

/** The event id (v3+) of an event whose reference hash is known (see signNewEvent). */
export function eventIdFromReferenceHash(hash: Uint8Array, version: RoomVersion): string {
  if (version.eventFormat === 'v1') throw new Error('room version 1/2 event ids are not hashes');
  return version.eventFormat === 'v3' ? `$${encodeBase64(hash)}` : `$${encodeBase64Url(hash)}`;
}

const V12 = getRoomVersion('12')!;

/**
 * The room id a v12 create event defines: its event id with the `!` sigil instead of `$`,
 * i.e. `!` + URL-safe unpadded Base64 of its reference hash, with no server name.
 */
export function roomIdFromCreateEvent(createPdu: Pdu, version: RoomVersion = V12): string {
  if (version.eventFormat !== 'v12') {
    throw new Error(`room version ${version.id} room ids are not derived from the create event`);
  }
  return `!${computeEventId(createPdu, version).slice(1)}`;
}

/** True when `pdu` is the create event of a v12 room, which carries no `room_id`. */
export function isV12CreateEvent(pdu: Pdu, version: RoomVersion): boolean {
  return version.eventFormat === 'v12' && pdu.type === 'm.room.create' && pdu.state_key === '';
}
