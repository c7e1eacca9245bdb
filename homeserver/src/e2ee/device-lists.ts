/**
 * Which users' device lists a client must refresh between two sync tokens (spec "Tracking the
 * device list for a user", "Extensions to /sync"): `device_lists.changed` and `.left` of /sync
 * and the answer of /keys/changes.
 *
 * changed:
 * - users whose devices or cross-signing keys changed (the device_lists stream) and who share a
 *   joined room with the client's user, and that user themself (their own new devices);
 * - users who now share an encrypted room with the client's user: everyone in an encrypted room
 *   the user joined, or that became encrypted, and everyone who joined an encrypted room of theirs
 *   (the spec lets a server report a user again when they share a further room).
 * left:
 * - users who left an encrypted room the client's user is in, or were in an encrypted room the
 *   user left, and now share no encrypted room with them.
 *
 * Membership changes are read from the events stream positions of the tokens, key changes from
 * the device_lists positions. Nothing is written for membership changes: the room events already
 * wake the /sync of everyone in the room.
 */
import type { ServerContext } from '../context.js';
import { federateDeviceListChange } from '../federation/outgoing-edus.js';
import type { Storage } from '../storage/database.js';

export interface DeviceListPositions {
  events: number;
  device_lists: number;
}

export interface DeviceListDelta {
  changed: string[];
  left: string[];
}

export async function deviceListChanges(
  storage: Storage,
  userId: string,
  since: DeviceListPositions,
  to: DeviceListPositions,
): Promise<DeviceListDelta> {
  const store = storage.deviceLists;
  const changed = new Set<string>();
  const leftCandidates = new Set<string>();

  const keyChanges = await store.changedUsers(since.device_lists, to.device_lists);
  if (keyChanges.length > 0) {
    const sharing = await store.usersSharingARoom(
      userId,
      keyChanges.filter((u) => u !== userId),
    );
    for (const u of keyChanges) if (u === userId || sharing.has(u)) changed.add(u);
  }

  if (to.events > since.events) {
    const inRange = (position: number) => position > since.events && position <= to.events;
    const mine = await storage.memberships.roomsForUser(userId, ['join', 'leave', 'ban']);
    const joined = mine.filter((m) => m.membership === 'join' && m.streamPosition <= to.events);
    const leftRooms = mine.filter((m) => m.membership !== 'join' && inRange(m.streamPosition)).map((m) => m.roomId);
    const encrypted = await store.encryptedRooms([...joined.map((m) => m.roomId), ...leftRooms]);

    const fresh: string[] = [];
    const steady: string[] = [];
    for (const m of joined) {
      const encryptedAt = encrypted.get(m.roomId);
      if (encryptedAt === undefined) continue;
      if (inRange(m.streamPosition) || inRange(encryptedAt)) fresh.push(m.roomId);
      else steady.push(m.roomId);
    }
    for (const u of await store.joinedMembers(fresh)) changed.add(u);
    for (const c of await store.membershipChanges(steady, since.events, to.events)) {
      if (c.membership === 'join') changed.add(c.userId);
      else leftCandidates.add(c.userId);
    }
    const encryptedLeft = leftRooms.filter((r) => encrypted.has(r));
    if (encryptedLeft.length > 0) {
      for (const u of await store.joinedMembers(encryptedLeft)) leftCandidates.add(u);
      for (const c of await store.membershipChanges(encryptedLeft, since.events, to.events)) leftCandidates.add(c.userId);
    }
    leftCandidates.delete(userId);
    if (leftCandidates.size > 0) {
      const stillShared = await store.joinedMembers([...fresh, ...steady]);
      for (const u of [...leftCandidates]) if (stillShared.has(u)) leftCandidates.delete(u);
    }
    // The user's own membership is no news about their devices.
    if (!keyChanges.includes(userId)) changed.delete(userId);
  }

  for (const u of leftCandidates) changed.delete(u);
  return { changed: [...changed].sort(), left: [...leftCandidates].sort() };
}

/** Wakes the /sync of the user and of everyone sharing a room with them: their device list changed. */
export async function announceDeviceListChange(ctx: ServerContext, userId: string): Promise<void> {
  const rooms = await ctx.storage.deviceLists.joinedRooms(userId);
  ctx.notifier.notify({ userIds: [userId], roomIds: rooms });
  federateDeviceListChange(ctx, userId);
}
