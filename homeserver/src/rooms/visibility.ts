/**
 * History visibility (Client-Server API, "Room history visibility"): which events of a room a
 * user may see. Decided per event from the state at that event (after it, so that a user sees
 * their own join) and the user's current membership:
 *
 * - `world_readable` at the event: anyone;
 * - the user was joined at the event: yes;
 * - `shared` at the event and the user is joined now: yes;
 * - `invited` (or `shared`) at the event and the user was invited at it: yes;
 * - otherwise no.
 */
import { stateKey, type RoomEvent, type StateMap } from '../events/types.js';
import type { Storage } from '../storage/database.js';

type Visibility = 'world_readable' | 'shared' | 'invited' | 'joined';

export interface StateFacts {
  visibility: Visibility;
  membership: string | undefined;
}

export async function filterVisibleEvents(
  storage: Storage,
  userId: string,
  events: readonly RoomEvent[],
): Promise<RoomEvent[]> {
  if (events.length === 0) return [];
  const groups = await storage.events.getStateGroupsAfter(events.map((e) => e.event_id));
  // Rejected and soft-failed events (received over federation) are never shown to clients.
  const hidden = await storage.events.getHiddenIds(events.map((e) => e.event_id));
  const currentlyJoined = new Map<string, boolean>();
  const factsByGroup = new Map<number, StateFacts>();

  const visible: RoomEvent[] = [];
  for (const event of events) {
    const group = groups.get(event.event_id);
    if (group === undefined || hidden.has(event.event_id)) continue; // nor are outliers
    let facts = factsByGroup.get(group);
    if (!facts) factsByGroup.set(group, (facts = await stateFacts(storage, group, userId)));
    if (!currentlyJoined.has(event.room_id)) {
      const row = await storage.memberships.get(event.room_id, userId);
      currentlyJoined.set(event.room_id, row?.membership === 'join');
    }
    if (maySee(facts, currentlyJoined.get(event.room_id)!)) visible.push(event);
  }
  return visible;
}

export async function canSeeEvent(storage: Storage, userId: string, event: RoomEvent): Promise<boolean> {
  return (await filterVisibleEvents(storage, userId, [event])).length === 1;
}

export function maySee(facts: StateFacts, joinedNow: boolean): boolean {
  if (facts.visibility === 'world_readable') return true;
  if (facts.membership === 'join') return true;
  if (facts.visibility === 'shared' && joinedNow) return true;
  if ((facts.visibility === 'invited' || facts.visibility === 'shared') && facts.membership === 'invite') return true;
  return false;
}

async function stateFacts(storage: Storage, group: number, userId: string): Promise<StateFacts> {
  const state = await storage.events.getStateOfGroup(group);
  const loaded = await storage.events.getEvents(factEventIds(state, userId));
  return factsFrom(state, userId, loaded);
}

/** The state events `factsFrom` reads: the history visibility and the user's member event. */
export function factEventIds(state: ReadonlyMap<string, string>, userId: string): string[] {
  const ids = [state.get(HISTORY_VISIBILITY_KEY), state.get(stateKey('m.room.member', userId))];
  return ids.filter((id): id is string => id !== undefined);
}

/** The visibility facts of a state, its events (those of `factEventIds`) already loaded. */
export function factsFrom(state: ReadonlyMap<string, string>, userId: string, loaded: ReadonlyMap<string, RoomEvent>): StateFacts {
  const hvId = state.get(HISTORY_VISIBILITY_KEY);
  const memberId = state.get(stateKey('m.room.member', userId));
  const hv = hvId ? loaded.get(hvId)?.content.history_visibility : undefined;
  const membership = memberId ? loaded.get(memberId)?.content.membership : undefined;
  return {
    // The spec's default when the room has no (valid) history_visibility is `shared`.
    visibility: isVisibility(hv) ? hv : 'shared',
    membership: typeof membership === 'string' ? membership : undefined,
  };
}

const HISTORY_VISIBILITY_KEY = stateKey('m.room.history_visibility', '');

function isVisibility(v: unknown): v is Visibility {
  return v === 'world_readable' || v === 'shared' || v === 'invited' || v === 'joined';
}
