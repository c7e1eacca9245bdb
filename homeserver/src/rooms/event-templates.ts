/**
 * Membership event templates for other servers (server-server "Joining rooms", "Leaving rooms",
 * "Knocking"): a resident server hands out an unsigned event whose prev_events, auth_events and
 * depth come from the room's current state; the requesting server fills in the rest, signs it
 * and sends it back through send_join / send_leave / send_knock.
 */
import type { Storage } from '../storage/database.js';
import { stateKey as keyOf, type JsonObject, type JsonValue, type Pdu, type RoomEvent } from '../events/types.js';
import { AuthError, authEventTypes, checkAuthRules, createEventIdForRoom, type AuthStateLookup } from './auth.js';
import type { RoomVersion } from './room-versions.js';

/** As the pipeline: at most this many forward extremities become prev_events. */
const MAX_PREV_EVENTS = 10;

export type TemplateMembership = 'join' | 'leave' | 'knock';

export interface MembershipTemplate {
  /** The unsigned template (no hashes, signatures or event id). */
  pdu: Pdu;
  /** The current-state entries the auth rules consult for it, by state key. */
  authState: Map<string, RoomEvent>;
}

/**
 * True when this server takes part in the room: it holds the room's current state (not just
 * outliers such as an invite it was sent) and one of its users is joined.
 */
export async function isResidentIn(storage: Storage, serverName: string, roomId: string): Promise<boolean> {
  if ((await storage.events.getCurrentStateEventId(roomId, 'm.room.create', '')) === undefined) return false;
  return (await localJoinedMembers(storage, serverName, roomId)).length > 0;
}

/** This server's users joined to the room. */
export async function localJoinedMembers(storage: Storage, serverName: string, roomId: string): Promise<string[]> {
  const members = await storage.memberships.members(roomId, ['join']);
  return members.map((m) => m.userId).filter((u) => serverOf(u) === serverName);
}

function serverOf(userId: string): string {
  return userId.slice(userId.indexOf(':') + 1);
}

/** Builds the membership template for `userId` from the room's current state. */
export async function buildMembershipTemplate(
  storage: Storage,
  serverName: string,
  roomId: string,
  version: RoomVersion,
  userId: string,
  membership: TemplateMembership,
  extraContent: JsonObject = {},
): Promise<MembershipTemplate> {
  const content: JsonObject = { ...extraContent, membership };
  const draft = { type: 'm.room.member', state_key: userId, sender: userId, content };
  const authState = await loadCurrentAuthState(storage, roomId, version, draft);
  const authEvents = authEventTypes(draft, version)
    .map(([type, sk]) => authState.get(keyOf(type, sk)))
    .filter((e): e is RoomEvent => e !== undefined);

  const extremities = await storage.events.getForwardExtremities(roomId);
  const prevEvents = [...(await storage.events.getEvents(extremities)).values()]
    .sort((a, b) => b.depth - a.depth)
    .slice(0, MAX_PREV_EVENTS);
  const depth = Math.min(Math.max(0, ...prevEvents.map((e) => e.depth)) + 1, Number.MAX_SAFE_INTEGER);

  const ref = (e: RoomEvent): JsonValue =>
    version.eventFormat === 'v1' ? [e.event_id, (e.pdu.hashes as JsonObject | undefined) ?? {}] : e.event_id;
  const pdu: Pdu = {
    type: 'm.room.member',
    room_id: roomId,
    sender: userId,
    state_key: userId,
    content,
    origin: serverName,
    origin_server_ts: Date.now(),
    depth,
    prev_events: prevEvents.map(ref),
    auth_events: authEvents.map(ref),
  };
  // `origin` (this, the resident server) is in every template, as the spec's schema asks; the
  // joining server sets or drops it for the room version when it fills the template in.
  return { pdu, authState };
}

/**
 * Whether the auth rules would accept the template's event at current state; the reason when
 * not. A join naming an authorising user counts as signed by that user's server (we add the
 * signature in send_join).
 */
export function templateRefusal(template: MembershipTemplate, version: RoomVersion): string | undefined {
  const { pdu, authState } = template;
  const provisional: RoomEvent = {
    event_id: '$template',
    room_id: pdu.room_id as string,
    type: 'm.room.member',
    sender: pdu.sender as string,
    state_key: pdu.state_key as string,
    content: pdu.content as JsonObject,
    origin_server_ts: pdu.origin_server_ts as number,
    depth: pdu.depth as number,
    prev_events: [],
    auth_events: [],
    pdu,
  };
  const lookup: AuthStateLookup = (type, sk) => authState.get(keyOf(type, sk));
  try {
    checkAuthRules(provisional, lookup, version, { isSignedBy: () => true });
    return undefined;
  } catch (err) {
    if (err instanceof AuthError) return err.message;
    throw err;
  }
}

/** The current state entries the auth rules may consult for a member event, by state key. */
export async function loadCurrentAuthState(
  storage: Storage,
  roomId: string,
  version: RoomVersion,
  draft: Pick<RoomEvent, 'type' | 'sender' | 'state_key' | 'content'>,
): Promise<Map<string, RoomEvent>> {
  const wanted = authEventTypes(draft, version);
  wanted.push(['m.room.create', '']);
  const ids = await Promise.all(wanted.map(([type, sk]) => storage.events.getCurrentStateEventId(roomId, type, sk)));
  const loaded = await storage.events.getEvents(ids.filter((id): id is string => id !== undefined));
  const state = new Map<string, RoomEvent>();
  wanted.forEach(([type, sk], i) => {
    const event = ids[i] && loaded.get(ids[i]!);
    if (event) state.set(keyOf(type, sk), event);
  });
  if (version.eventFormat === 'v12' && !state.has(keyOf('m.room.create', ''))) {
    const create = await storage.events.getEvent(createEventIdForRoom(roomId));
    if (create) state.set(keyOf('m.room.create', ''), create);
  }
  return state;
}
