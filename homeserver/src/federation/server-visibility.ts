/**
 * Which events another server may see (Server-Server API: the event retrieval endpoints answer
 * only "if the requesting server is allowed to see the event"; Client-Server "History
 * visibility", applied to servers as a whole): decided from the state after the event and the
 * memberships of that server's users in it.
 *
 * - `world_readable`: any server;
 * - `shared`: a server with a user joined at the event or joined now;
 * - `invited`: a server with a user invited or joined at the event;
 * - `joined`: a server with a user joined at the event.
 */
import { parseStateKey, stateKey, type RoomEvent, type StateMap } from '../events/types.js';
import { MatrixError } from '../http/errors.js';
import { SERVER_ACL_EVENT, serverAllowedByAcl } from './server-acl.js';
import { domainOf } from '../rooms/power-levels.js';
import type { Storage } from '../storage/database.js';

interface ServerFacts {
  visibility: string;
  /** The memberships of the server's users at the event. */
  memberships: Set<string>;
}

/** The memberships the server's users hold in `state` (a state map). */
export async function serverMemberships(storage: Storage, state: StateMap, server: string): Promise<Set<string>> {
  const ids: string[] = [];
  for (const [key, id] of state) {
    const [type, sk] = parseStateKey(key);
    if (type === 'm.room.member' && domainOf(sk) === server) ids.push(id);
  }
  const events = await storage.events.getEvents(ids);
  const out = new Set<string>();
  for (const e of events.values()) if (typeof e.content.membership === 'string') out.add(e.content.membership);
  return out;
}

/** Does the server have a user joined to the room now? */
export async function serverInRoom(storage: Storage, roomId: string, server: string): Promise<boolean> {
  return (await serverMemberships(storage, await storage.events.getCurrentState(roomId), server)).has('join');
}

/** The events (stored with state) the server may see, in their order. */
export async function filterEventsForServer(storage: Storage, server: string, events: readonly RoomEvent[]): Promise<RoomEvent[]> {
  if (events.length === 0) return [];
  const groups = await storage.events.getStateGroupsAfter(events.map((e) => e.event_id));
  const facts = new Map<number, ServerFacts>();
  const joinedNow = new Map<string, boolean>();
  const out: RoomEvent[] = [];
  for (const event of events) {
    const group = groups.get(event.event_id);
    if (group === undefined) continue;
    let f = facts.get(group);
    if (!f) {
      const state = await storage.events.getStateOfGroup(group);
      const hvId = state.get(stateKey('m.room.history_visibility', ''));
      const hv = hvId ? (await storage.events.getEvent(hvId))?.content.history_visibility : undefined;
      f = { visibility: typeof hv === 'string' ? hv : 'shared', memberships: await serverMemberships(storage, state, server) };
      facts.set(group, f);
    }
    let now = joinedNow.get(event.room_id);
    if (now === undefined) joinedNow.set(event.room_id, (now = await serverInRoom(storage, event.room_id, server)));
    if (maySee(f, now)) out.push(event);
  }
  return out;
}

function maySee(f: ServerFacts, joinedNow: boolean): boolean {
  if (f.visibility === 'world_readable') return true;
  if (f.memberships.has('join')) return true;
  if (f.visibility === 'shared') return joinedNow;
  if (f.visibility === 'invited') return f.memberships.has('invite');
  return false;
}

/**
 * 403 M_FORBIDDEN when the room's m.room.server_acl denies `server` (the rules of
 * federation/server-acl.ts, for callers that hold the storage only).
 */
export async function checkRoomServerAcl(storage: Storage, roomId: string, server: string): Promise<void> {
  const acl = await storage.events.getCurrentStateEvent(roomId, SERVER_ACL_EVENT, '');
  if (acl && !serverAllowedByAcl(acl.content, server)) {
    throw new MatrixError(403, 'M_FORBIDDEN', `Server ${server} is denied by the room's server ACL`);
  }
}
