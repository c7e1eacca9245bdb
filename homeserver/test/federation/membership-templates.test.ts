/**
 * The parts of the membership handshakes that need one server only: make_* templates built from
 * a room's current state (rooms/event-templates.ts) and invites held out of band
 * (rooms/remote-membership.ts), which the invitee's /sync shows with their stripped state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signEvent } from '../../src/events/event-signing.js';
import { computeEventId } from '../../src/events/event-id.js';
import { generateSigningKey } from '../../src/events/signing.js';
import type { JsonObject, Pdu } from '../../src/events/types.js';
import { buildMembershipTemplate, isResidentIn, templateRefusal } from '../../src/rooms/event-templates.js';
import { persistOutOfBandMembership, toStrippedState } from '../../src/rooms/remote-membership.js';
import { getRoomVersion } from '../../src/rooms/room-versions.js';
import { client, enc } from '../helpers/client-api.js';
import { startTestHomeserver, type TestHomeserver } from '../helpers/server.js';
import { registerUser, type RegisteredUser } from '../helpers/users.js';

describe('membership templates and out-of-band invites', () => {
  let hs: TestHomeserver;
  let alice: RegisteredUser;
  let bob: RegisteredUser;
  const api = client(() => hs.baseUrl);

  beforeAll(async () => {
    hs = await startTestHomeserver('enable_registration: true');
    alice = await registerUser(hs.baseUrl, 'alice');
    bob = await registerUser(hs.baseUrl, 'bob');
  });
  afterAll(async () => {
    await hs?.stop();
  });

  it.each(['1', '11', '12'])('builds a join template from current state (v%s)', async (versionId) => {
    const version = getRoomVersion(versionId)!;
    const { storage } = hs.server.ctx;
    const roomId = (await api.ok(alice, 'POST', '/createRoom', { room_version: versionId, preset: 'public_chat' })).room_id as string;
    const last = await api.ok(alice, 'PUT', `/rooms/${enc(roomId)}/send/m.room.message/t-${versionId}`, { msgtype: 'm.text', body: 'hi' });
    expect(await isResidentIn(storage, 'hearth.test', roomId)).toBe(true);

    const template = await buildMembershipTemplate(storage, 'hearth.test', roomId, version, '@remote:other.test', 'join');
    const ids = (refs: unknown) => (refs as unknown[]).map((r) => (Array.isArray(r) ? r[0] : r));
    expect(ids(template.pdu.prev_events)).toEqual([last.event_id]);
    const authTypes = ids(template.pdu.auth_events).map((id) => [...template.authState.values()].find((e) => e.event_id === id)?.type);
    expect(authTypes.sort()).toEqual(
      (version.privilegedCreators ? ['m.room.join_rules', 'm.room.power_levels'] : ['m.room.create', 'm.room.join_rules', 'm.room.power_levels']).sort(),
    );
    expect(template.pdu).toMatchObject({ type: 'm.room.member', room_id: roomId, sender: '@remote:other.test', state_key: '@remote:other.test' });
    expect(template.pdu.signatures).toBeUndefined();
    expect(template.pdu.origin).toBe('hearth.test');
    expect(templateRefusal(template, version)).toBeUndefined();

    // A leave from someone who is not in the room is refused by the auth rules.
    const leave = await buildMembershipTemplate(storage, 'hearth.test', roomId, version, '@remote:other.test', 'leave');
    expect(templateRefusal(leave, version)).toMatch(/cannot leave/);
  });

  it('refuses a join template for an invite-only room', async () => {
    const version = getRoomVersion('11')!;
    const roomId = (await api.ok(alice, 'POST', '/createRoom', { room_version: '11', preset: 'private_chat' })).room_id as string;
    const template = await buildMembershipTemplate(hs.server.ctx.storage, 'hearth.test', roomId, version, '@remote:other.test', 'join');
    expect(templateRefusal(template, version)).toMatch(/invite/);
    expect(await isResidentIn(hs.server.ctx.storage, 'hearth.test', '!unknown:hearth.test')).toBe(false);
  });

  it('keeps an invite from another server out of band and shows it in /sync with its stripped state', async () => {
    const version = getRoomVersion('11')!;
    const remoteKey = generateSigningKey();
    const roomId = '!faraway:other.test';
    const invite: Pdu = signEvent(
      {
        type: 'm.room.member',
        room_id: roomId,
        sender: '@carol:other.test',
        state_key: bob.userId,
        content: { membership: 'invite' },
        origin_server_ts: Date.now(),
        depth: 5,
        prev_events: ['$prev'],
        auth_events: ['$create', '$power', '$carol'],
      },
      'other.test',
      remoteKey,
      version,
    );
    const roomState: JsonObject[] = [
      { type: 'm.room.create', state_key: '', sender: '@carol:other.test', content: { room_version: '11' }, room_id: roomId, signatures: {} },
      { type: 'm.room.name', state_key: '', sender: '@carol:other.test', content: { name: 'Far away' } },
      { type: 'not an event' } as JsonObject,
    ];
    await persistOutOfBandMembership(hs.server.ctx, invite, version, toStrippedState(roomState));

    const sync = await api.ok(bob, 'GET', '/sync?timeout=0');
    const events = sync.rooms.invite[roomId].invite_state.events as JsonObject[];
    expect(events).toEqual([
      { type: 'm.room.create', state_key: '', sender: '@carol:other.test', content: { room_version: '11' } },
      { type: 'm.room.name', state_key: '', sender: '@carol:other.test', content: { name: 'Far away' } },
      { type: 'm.room.member', state_key: bob.userId, sender: '@carol:other.test', content: { membership: 'invite' } },
    ]);
    expect(sync.rooms.join[roomId]).toBeUndefined();
    const info = await hs.server.ctx.storage.events.getEventInfo(computeEventId(invite, version));
    expect(info?.outlier).toBe(true);
    // Holding an invite is not being in the room.
    expect(await isResidentIn(hs.server.ctx.storage, 'hearth.test', roomId)).toBe(false);
  });
});
