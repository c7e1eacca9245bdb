/**
 * Push rules at persist time (spec "Push Notifications" → "Server behaviour"): for every local
 * user in the room other than the sender (and a local user being invited), the user's rules decide
 * whether the event notifies; notifying events get a push action row and count as unread, per
 * thread. It all runs inside the event's persist transaction, so the counts appear in the same
 * /sync as the event.
 *
 * Per event: one query for the room's joined members (the member count and the recipients with
 * their room display names), the recipients' rules from the store's cache; the room's power levels
 * and profile display names only when a rule actually asks for them.
 */
import { sql, type Kysely } from 'kysely';
import { createEventIdForRoom } from '../rooms/auth.js';
import type { JsonObject, JsonValue, RoomEvent } from '../events/types.js';
import type { PersistHook } from '../rooms/pipeline.js';
import { parsePowerLevelValue, userPowerLevel } from '../rooms/power-levels.js';
import { getRoomVersion } from '../rooms/room-versions.js';
import type { Storage } from '../storage/database.js';
import { arg, PreparedQuery } from '../storage/prepared.js';
import { MAIN_THREAD, type PushActionRecord } from '../storage/push-store.js';
import type { Database } from '../storage/schema.js';
import type { EvaluationContext } from './conditions.js';
import { buildRuleset, evaluate } from './rules.js';

/** The default `notifications.room` power level. */
const DEFAULT_NOTIFICATION_LEVEL = 50;
/** How many relations to follow from an event to find its thread (the spec recommends 3). */
const THREAD_HOPS = 3;

/** The room's joined members with their room display names (compiled once: it runs for every event). */
const JOINED_MEMBERS = new PreparedQuery<[roomId: string], { user_id: string; display_name: string | null }>((db) =>
  db.selectFrom('room_memberships').select(['user_id', 'display_name']).where('room_id', '=', arg(0)).where('membership', '=', 'join'),
);

/** Thrown by a lazy context value that is not loaded yet: load it, then evaluate again. */
class NeedData extends Error {
  constructor(readonly what: 'powerLevels' | 'profileName') {
    super(what);
  }
}

export function pushPersistHook(storage: Storage, serverName: string): PersistHook {
  const isLocal = (userId: string) => userId.endsWith(`:${serverName}`) && userId.startsWith('@');
  return async (trx, event, streamPosition) => {
    if (event.type === 'm.room.redaction' && event.redacts) await storage.push.forgetEvent(trx, event.redacts);

    let thread: string | undefined;
    const threadId = async () => (thread ??= await threadOf(trx, event));

    if (isLocal(event.sender)) await implicitRead(trx, storage, event, streamPosition, threadId);

    // Kept with the room between membership changes (storage/room-cache.ts).
    const joined = await storage.events.joinedMembersInPersist(trx, event.room_id, () => JOINED_MEMBERS.rows(trx, event.room_id));
    const recipients = new Map<string, string | null>();
    for (const m of joined) if (isLocal(m.user_id) && m.user_id !== event.sender) recipients.set(m.user_id, m.display_name);
    if (
      event.type === 'm.room.member' &&
      event.content.membership === 'invite' &&
      event.state_key !== undefined &&
      isLocal(event.state_key) &&
      event.state_key !== event.sender
    ) {
      recipients.set(event.state_key, typeof event.content.displayname === 'string' ? event.content.displayname : null);
    }
    if (recipients.size === 0) return;

    const rules = await storage.push.rulesFor(trx, [...recipients.keys()]);
    const eventJson = rulesView(event);
    let power: PowerInfo | undefined;
    const profileNames = new Map<string, string | null>();
    const now = Date.now();
    const records: PushActionRecord[] = [];

    for (const [userId, memberName] of recipients) {
      const ruleset = buildRuleset(userId, rules.get(userId)!);
      const ctx: EvaluationContext = {
        userId,
        memberCount: joined.length,
        displayName() {
          if (memberName !== null) return memberName;
          if (!profileNames.has(userId)) throw new NeedData('profileName');
          return profileNames.get(userId)!;
        },
        senderHasNotificationPermission(key) {
          if (!power) throw new NeedData('powerLevels');
          return power.senderMayNotify(event.sender, key);
        },
      };
      let result: ReturnType<typeof evaluate> | undefined;
      while (!result) {
        try {
          result = evaluate(ruleset, eventJson, ctx);
        } catch (err) {
          if (!(err instanceof NeedData)) throw err;
          if (err.what === 'powerLevels') power = await loadPowerInfo(trx, event.room_id);
          else profileNames.set(userId, await profileName(trx, userId));
        }
      }
      if (!result.notify) continue;
      records.push({
        userId,
        roomId: event.room_id,
        eventId: event.event_id,
        streamPosition,
        threadId: await threadId(),
        actions: result.actions,
        highlight: result.highlight,
        ts: now,
      });
    }
    await storage.push.recordActions(trx, records);
  };
}

/**
 * What a local user's own event says about what they have read:
 * - a message (any non-state event) in a room or thread: everything there up to it;
 * - joining: the invite that brought them (and anything before it). State events otherwise say
 *   nothing: a display name change re-sends the member event in every room and must not clear them.
 */
async function implicitRead(
  trx: Kysely<Database>,
  storage: Storage,
  event: RoomEvent,
  streamPosition: number,
  threadId: () => Promise<string>,
): Promise<void> {
  if (event.state_key === undefined) {
    // A new event has the newest position: nothing after it is unread. (Backfilled events have
    // negative, old positions: those recount.)
    if (streamPosition > 0) await storage.push.markReadAtNewestIn(trx, event.sender, event.room_id, streamPosition, await threadId());
    else await storage.push.markReadIn(trx, event.sender, event.room_id, streamPosition, await threadId());
    return;
  }
  if (event.type !== 'm.room.member' || event.state_key !== event.sender || event.content.membership !== 'join') return;
  const invite = await trx
    .selectFrom('event_push_actions as a')
    .innerJoin('events as e', 'e.event_id', 'a.event_id')
    // `+ 0`: a bare max(stream_ordering) made SQLite walk the user's (user_id, stream_ordering)
    // index backwards through every notification of every room (12-140 ms per join at 50,000
    // events); without it the (user_id, room_id, …) index reads only this room's.
    .select(sql<number | null>`max(a.stream_ordering + 0)`.as('position'))
    .where('a.user_id', '=', event.sender)
    .where('a.room_id', '=', event.room_id)
    .where('e.type', '=', 'm.room.member')
    .executeTakeFirst();
  if (invite?.position != null) await storage.push.markReadIn(trx, event.sender, event.room_id, Number(invite.position));
}

/** The event as push rule keys see it: the top-level fields of the client format. */
function rulesView(event: RoomEvent): JsonObject {
  const view: JsonObject = {
    ...event.pdu,
    event_id: event.event_id,
    room_id: event.room_id,
    type: event.type,
    sender: event.sender,
    content: event.content,
    origin_server_ts: event.origin_server_ts,
  };
  if (event.state_key !== undefined) view.state_key = event.state_key;
  else delete view.state_key;
  return view;
}

function relationOf(content: JsonValue | undefined): { relType: string; eventId: string } | undefined {
  if (typeof content !== 'object' || content === null || Array.isArray(content)) return undefined;
  const rel = content['m.relates_to'];
  if (typeof rel !== 'object' || rel === null || Array.isArray(rel)) return undefined;
  if (typeof rel.rel_type !== 'string' || typeof rel.event_id !== 'string') return undefined;
  return { relType: rel.rel_type, eventId: rel.event_id };
}

/**
 * The thread an event belongs to: the root of an `m.thread` relation, found on the event itself or
 * by following its relations up to THREAD_HOPS parents (a reaction to a threaded reply is in the
 * thread); otherwise the main timeline (thread roots included).
 */
export async function threadOf(trx: Kysely<Database>, event: RoomEvent): Promise<string> {
  let rel = relationOf(event.content);
  for (let hop = 0; rel; hop++) {
    if (rel.relType === 'm.thread') return rel.eventId;
    if (hop >= THREAD_HOPS) break;
    const parent = await trx
      .selectFrom('events')
      .select(['pdu_json', 'room_id'])
      .where('event_id', '=', rel.eventId)
      .executeTakeFirst();
    if (!parent || parent.room_id !== event.room_id) break;
    rel = relationOf((JSON.parse(parent.pdu_json) as JsonObject).content);
  }
  return MAIN_THREAD;
}

async function profileName(trx: Kysely<Database>, userId: string): Promise<string | null> {
  const row = await trx.selectFrom('users').select('displayname').where('user_id', '=', userId).executeTakeFirst();
  return row?.displayname ?? null;
}

interface PowerInfo {
  senderMayNotify(sender: string, key: string): boolean;
}

/** The room's current power levels and create event, for `sender_notification_permission`. */
async function loadPowerInfo(trx: Kysely<Database>, roomId: string): Promise<PowerInfo> {
  const room = await trx.selectFrom('rooms').select('room_version').where('room_id', '=', roomId).executeTakeFirst();
  const version = room ? getRoomVersion(room.room_version) : undefined;
  if (!version) return { senderMayNotify: () => false };
  const rows = await trx
    .selectFrom('current_state as cs')
    .innerJoin('events as e', 'e.event_id', 'cs.event_id')
    .select(['cs.type', 'e.event_id', 'e.pdu_json'])
    .where('cs.room_id', '=', roomId)
    .where('cs.state_key', '=', '')
    .where('cs.type', 'in', ['m.room.power_levels', 'm.room.create'])
    .execute();
  const state = new Map<string, RoomEvent>();
  for (const r of rows) state.set(r.type, minimalEvent(r.event_id, roomId, JSON.parse(r.pdu_json) as JsonObject));
  if (!state.has('m.room.create')) {
    const create = await trx
      .selectFrom('events')
      .select(['event_id', 'pdu_json'])
      .where('event_id', '=', createEventIdForRoom(roomId))
      .executeTakeFirst();
    if (create) state.set('m.room.create', minimalEvent(create.event_id, roomId, JSON.parse(create.pdu_json) as JsonObject));
  }
  const lookup = (type: string, stateKey: string) => (stateKey === '' ? state.get(type) : undefined);
  const notifications = state.get('m.room.power_levels')?.content.notifications;
  return {
    senderMayNotify(sender, key) {
      let required = DEFAULT_NOTIFICATION_LEVEL;
      if (typeof notifications === 'object' && notifications !== null && !Array.isArray(notifications)) {
        required = parsePowerLevelValue(notifications[key], version) ?? DEFAULT_NOTIFICATION_LEVEL;
      }
      try {
        return userPowerLevel(sender, lookup, version) >= required;
      } catch {
        return false; // malformed power levels: nobody may notify the room
      }
    },
  };
}

function minimalEvent(eventId: string, roomId: string, pdu: JsonObject): RoomEvent {
  const content = pdu.content;
  return {
    event_id: eventId,
    room_id: roomId,
    type: String(pdu.type),
    sender: String(pdu.sender),
    state_key: typeof pdu.state_key === 'string' ? pdu.state_key : '',
    content: typeof content === 'object' && content !== null && !Array.isArray(content) ? content : {},
    origin_server_ts: typeof pdu.origin_server_ts === 'number' ? pdu.origin_server_ts : 0,
    depth: typeof pdu.depth === 'number' ? pdu.depth : 0,
    prev_events: [],
    auth_events: [],
    pdu,
  };
}
