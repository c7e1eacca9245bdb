/**
 * Remote invites and joins as matrix-js-sdk (the reference client) sees them, between two real
 * Hearth servers: a room created with a user of the other server invited (a direct chat), the
 * invite arriving with the room's name, accepted with joinRoom, messages both ways; a second invite
 * rejected with leave.
 */
import { ClientEvent, EventType, RoomEvent, SyncState, type MatrixClient, type MatrixEvent, type Room } from 'matrix-js-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFederatedServers, type FederatedServer } from '../helpers/federation.js';
import { createQuietClient } from '../helpers/sdk.js';
import { registerUser } from '../helpers/users.js';

const EXTRA = 'enable_registration: true\n';

async function signIn(server: FederatedServer, localpart: string): Promise<MatrixClient> {
  const user = await registerUser(server.baseUrl, localpart);
  const client = createQuietClient({ baseUrl: server.baseUrl, accessToken: user.accessToken, userId: user.userId, deviceId: user.deviceId });
  const ready = new Promise<void>((resolve, reject) => {
    client.on(ClientEvent.Sync, (state: SyncState, _prev: SyncState | null, data?: { error?: Error }) => {
      if (state === SyncState.Prepared || state === SyncState.Syncing) resolve();
      if (state === SyncState.Error) reject(data?.error ?? new Error('sync failed'));
    });
  });
  await client.startClient({ initialSyncLimit: 20 });
  await ready;
  return client;
}

function invited(client: MatrixClient, roomId: string): Promise<Room> {
  return new Promise((resolve) => {
    const check = (room: Room, membership: string) => {
      if (room.roomId === roomId && membership === 'invite') resolve(room);
    };
    client.on(RoomEvent.MyMembership, check);
    const known = client.getRoom(roomId);
    if (known?.getMyMembership() === 'invite') resolve(known);
  });
}

function nextMessage(client: MatrixClient, body: string): Promise<MatrixEvent> {
  return new Promise((resolve) => {
    const onEvent = (event: MatrixEvent) => {
      if (event.getType() === EventType.RoomMessage && event.getContent().body === body) resolve(event);
    };
    client.on(RoomEvent.Timeline, onEvent);
  });
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('remote invites with matrix-js-sdk', () => {
  let servers: FederatedServer[];
  let alice: MatrixClient; // on A
  let bob: MatrixClient; // on B

  beforeAll(async () => {
    servers = await startFederatedServers(2, EXTRA);
    alice = await signIn(servers[0]!, 'alice');
    bob = await signIn(servers[1]!, 'bob');
  }, 60_000);
  afterAll(async () => {
    alice?.stopClient();
    bob?.stopClient();
    await Promise.all((servers ?? []).map((s) => s.stop()));
  });

  it('creates a direct chat with a user of another server, who accepts and talks', async () => {
    const { room_id: roomId } = await alice.createRoom({ name: 'Tea across servers', invite: [bob.getUserId()!], is_direct: true });
    const room = await invited(bob, roomId);
    expect(room.name).toBe('Tea across servers');
    expect(room.getMember(bob.getUserId()!)?.events.member?.getContent()).toMatchObject({ membership: 'invite', is_direct: true });

    await bob.joinRoom(roomId);
    await until(() => alice.getRoom(roomId)?.getMember(bob.getUserId()!)?.membership === 'join', "bob's join on alice's side");
    await until(() => bob.getRoom(roomId)?.getMyMembership() === 'join', 'the room joined on B');

    const toBob = nextMessage(bob, 'hello from A');
    await alice.sendTextMessage(roomId, 'hello from A');
    await toBob;
    const toAlice = nextMessage(alice, 'hello from B');
    await bob.sendTextMessage(roomId, 'hello from B');
    await toAlice;
  }, 60_000);

  it('rejects an invite from another server', async () => {
    const { room_id: roomId } = await alice.createRoom({ name: 'Not now' });
    await alice.invite(roomId, bob.getUserId()!);
    await invited(bob, roomId);
    await bob.leave(roomId);
    await until(() => bob.getRoom(roomId)?.getMyMembership() !== 'invite', 'the invite gone on B');
    await until(() => alice.getRoom(roomId)?.getMember(bob.getUserId()!)?.membership === 'leave', "bob's rejection on A");
  }, 60_000);
});
