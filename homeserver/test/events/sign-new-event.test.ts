/**
 * signNewEvent (the local send path's one-pass signing) must give exactly what signEvent,
 * computeEventId and the canonical size give for the same PDU, in every room version.
 */
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/events/canonical-json.js';
import { eventIdFromReferenceHash, computeEventId } from '../../src/events/event-id.js';
import { signEvent, signNewEvent } from '../../src/events/event-signing.js';
import { generateSigningKey } from '../../src/events/signing.js';
import type { Pdu } from '../../src/events/types.js';
import { getRoomVersion } from '../../src/rooms/room-versions.js';

const key = generateSigningKey();

function drafts(versionId: string): Pdu[] {
  const base = { sender: '@alice:sign.test', origin_server_ts: 1_700_000_000_123, depth: 7, prev_events: [], auth_events: [] };
  const roomId = { room_id: '!room:sign.test' };
  const v1Id: Pdu = versionId === '1' || versionId === '2' ? { event_id: '$abc:sign.test' } : {};
  return [
    { ...base, ...roomId, ...v1Id, type: 'm.room.message', content: { msgtype: 'm.text', body: 'héllo ✓ "quoted" \\ \u0001', n: 42 } },
    { ...base, ...roomId, ...v1Id, type: 'm.room.power_levels', state_key: '', content: { users: { '@alice:sign.test': 100 }, events_default: 0 } },
    { ...base, ...roomId, ...v1Id, type: 'm.room.member', state_key: '@bob:sign.test', content: { membership: 'join', displayname: 'Bob' }, origin: 'sign.test' },
    { ...base, ...roomId, ...v1Id, type: 'm.room.redaction', redacts: '$target', content: { reason: 'spam' } },
    { ...base, ...v1Id, type: 'm.room.create', state_key: '', content: { room_version: versionId } },
  ];
}

describe('signNewEvent', () => {
  for (const versionId of ['1', '3', '5', '6', '10', '11', '12']) {
    it(`matches signEvent, computeEventId and the canonical size in room version ${versionId}`, () => {
      const version = getRoomVersion(versionId)!;
      for (const pdu of drafts(versionId)) {
        const expected = signEvent(pdu, 'sign.test', key, version);
        const got = signNewEvent(pdu, 'sign.test', key, version);
        expect(got.pdu).toEqual(expected);
        expect(got.size).toBe(Buffer.byteLength(canonicalJson(expected, { strict: false }), 'utf8'));
        if (version.eventFormat === 'v1') {
          expect(got.referenceHash).toBeUndefined();
        } else {
          expect(got.referenceHash).toBeDefined();
          expect(eventIdFromReferenceHash(got.referenceHash!, version)).toBe(computeEventId(expected, version));
        }
      }
    });
  }

  it('refuses what signEvent refuses (floats in v6+), and signs PDUs that already carry hashes the usual way', () => {
    const version = getRoomVersion('10')!;
    const pdu: Pdu = { sender: '@a:sign.test', room_id: '!r:sign.test', type: 'm.room.message', origin_server_ts: 1, depth: 1, prev_events: [], auth_events: [], content: { x: 1.5 } };
    expect(() => signNewEvent(pdu, 'sign.test', key, version)).toThrow();
    const withHash: Pdu = { ...pdu, content: { x: 1 }, hashes: { sha256: 'aGFzaA' } };
    const got = signNewEvent(withHash, 'sign.test', key, version);
    expect(got.pdu).toEqual(signEvent(withHash, 'sign.test', key, version));
    expect(got.size).toBe(Buffer.byteLength(canonicalJson(got.pdu, { strict: false }), 'utf8'));
  });
});
