/** The presence stream: `m.presence` of the user and of those who share a room with them. */
import type { JsonObject } from '../../events/types.js';
import type { StoredPresence } from '../../storage/presence-store.js';
import { arg, PreparedQueryFamily } from '../../storage/prepared.js';
import { matchesEventFilter } from '../filter.js';
import type { SyncProvider, SyncRequest } from '../types.js';

/** Rooms per query of member events (the statement is compiled once per count: prepared.ts). */
const ROOM_CHUNK = 100;

/** Accepted member events of the rooms (arguments 2…) between two events positions. */
const MEMBER_EVENTS_BETWEEN = new PreparedQueryFamily<(string | number)[], { room_id: string; state_key: string | null }>(
  (db, n) =>
    db
      .selectFrom('events')
      .select(['room_id', 'state_key'])
      .where('room_id', 'in', Array.from({ length: n }, (_, i) => arg(i + 2)))
      .where('stream_ordering', '>', arg(0))
      .where('stream_ordering', '<=', arg(1))
      .where('type', '=', 'm.room.member')
      .where('outlier', '=', 0)
      .where('rejected_reason', 'is', null)
      .where('soft_failed', '=', 0),
  ROOM_CHUNK,
);

/** Active within this long counts as `currently_active`. */
const CURRENTLY_ACTIVE_MS = 5 * 60_000;

export const presenceProvider: SyncProvider = {
  stream: 'presence',
  currentPosition: (ctx) => ctx.storage.presence.currentPosition(),
  async fill(req, out) {
    const filter = req.filter.presence;
    if (filter?.limit === 0) return;
    const byUser = new Map<string, StoredPresence>();
    // Nothing numbered after the token: no query (most long-poll wake-ups are for room events).
    if (!req.since || req.since.presence < req.to.presence) {
      const changed = await req.ctx.storage.presence.changedForViewer(req.userId, req.since?.presence ?? 0, req.to.presence);
      for (const p of changed) byUser.set(p.userId, p);
    }
    // An initial sync already has everyone's (current) presence; an incremental one also needs
    // the current presence of those who started sharing a room with the user since the token.
    if (req.since) {
      const newcomers = [...(await usersNewlySharingARoom(req))].filter((u) => !byUser.has(u));
      for (const p of await currentPresenceOf(req, newcomers)) byUser.set(p.userId, p);
    }
    const now = Date.now();
    let events = [...byUser.values()]
      .sort((a, b) => a.streamPosition - b.streamPosition)
      .filter((p) => matchesEventFilter(filter, 'm.presence', p.userId))
      .map((p) => presenceEvent(p, now));
    if (filter?.limit !== undefined) events = events.slice(-filter.limit);
    if (events.length === 0) return;
    out.body.presence.events.push(...events);
    out.hasContent = true;
  },
};

/**
 * Users who, between the token and now, came to share a joined room with the syncing user: those
 * who joined one of the user's rooms, and every member of a room the user joined. Only member
 * events inside the sync window are read, so a window without membership changes costs one
 * indexed lookup (and none when no room event happened at all).
 */
async function usersNewlySharingARoom(req: SyncRequest): Promise<Set<string>> {
  const users = new Set<string>();
  const since = req.since?.events ?? 0;
  const rooms = [...req.rooms.wakeRooms];
  if (since >= req.to.events || rooms.length === 0) return users;
  const memberEvents: { room_id: string; state_key: string | null }[] = [];
  for (let i = 0; i < rooms.length; i += ROOM_CHUNK) {
    const chunk = rooms.slice(i, i + ROOM_CHUNK);
    memberEvents.push(...(await MEMBER_EVENTS_BETWEEN.of(chunk.length).rows(req.ctx.storage.db, since, req.to.events, ...chunk)));
  }
  if (memberEvents.length === 0) return users;

  const touched = new Map<string, Set<string>>();
  for (const e of memberEvents) {
    if (e.state_key === null) continue;
    let keys = touched.get(e.room_id);
    if (!keys) touched.set(e.room_id, (keys = new Set()));
    keys.add(e.state_key);
  }
  for (const [roomId, stateKeys] of touched) {
    const joined = await req.ctx.storage.memberships.members(roomId, ['join']);
    const viewerJoinedNow = stateKeys.has(req.userId) && (await req.ctx.storage.events.membershipAt(roomId, req.userId, since)) !== 'join';
    for (const m of joined) {
      if (m.userId === req.userId) continue;
      // A member event after the token may only be a profile change of someone already there.
      if (viewerJoinedNow || (stateKeys.has(m.userId) && (await req.ctx.storage.events.membershipAt(roomId, m.userId, since)) !== 'join')) users.add(m.userId);
    }
  }
  return users;
}


async function currentPresenceOf(req: SyncRequest, userIds: readonly string[]): Promise<StoredPresence[]> {
  const found = await Promise.all(userIds.map((u) => req.ctx.storage.presence.get(u)));
  return found.filter((p): p is StoredPresence => p !== undefined);
}

export function presenceContent(p: StoredPresence, now: number): JsonObject {
  const content: JsonObject = {
    presence: p.presence,
    last_active_ago: Math.max(0, now - p.lastActiveTs),
    currently_active: p.presence === 'online' && now - p.lastActiveTs < CURRENTLY_ACTIVE_MS,
  };
  if (p.statusMsg !== null) content.status_msg = p.statusMsg;
  return content;
}

function presenceEvent(p: StoredPresence, now: number): JsonObject {
  return { type: 'm.presence', sender: p.userId, content: presenceContent(p, now) };
}
