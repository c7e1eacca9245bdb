/**
 * The client event format ("Room Events: client event format"): what /sync, /messages, /event,
 * /context and friends return, made from stored PDUs. Redacted events are shown redacted with
 * `unsigned.redacted_because`; the sending device sees its `transaction_id`.
 */
import { redactContent } from '../../events/redaction.js';
import type { JsonObject, RoomEvent } from '../../events/types.js';
import { getRoomVersion } from '../../rooms/room-versions.js';
import type { Storage } from '../../storage/database.js';
import type { Relation } from '../../storage/relations-store.js';

export interface ClientEvent {
  content: JsonObject;
  event_id: string;
  origin_server_ts: number;
  room_id?: string;
  sender: string;
  state_key?: string;
  type: string;
  redacts?: string;
  unsigned: JsonObject;
}

export interface FormatOptions {
  /** `/sync` leaves room_id out (the room is the key around the events). */
  includeRoomId?: boolean;
  /** The user and device asking: their own events carry the transaction id they used. */
  viewer?: { userId: string; deviceId: string | undefined };
  /**
   * The redactions of the events (event id → redaction id), when the caller read them with the
   * events; an event not in it is not redacted. Absent: looked up.
   */
  redactedBy?: ReadonlyMap<string, string>;
}

/** Formats events for a client, in the order given. */
export async function formatEvents(storage: Storage, events: readonly RoomEvent[], opts: FormatOptions = {}): Promise<ClientEvent[]> {
  if (events.length === 0) return [];
  const redactedBy = opts.redactedBy ?? (await storage.events.getRedactedBecause(events.map((e) => e.event_id)));
  const redactions = await storage.events.getEvents(redactedBy.values());
  // Only /send and /redact take a transaction id, and neither makes a state event.
  const ownIds = opts.viewer
    ? events.filter((e) => e.sender === opts.viewer!.userId && e.state_key === undefined).map((e) => e.event_id)
    : [];
  const txnIds = await transactionIds(storage, opts, ownIds);
  const versions = await roomVersions(storage, events.filter((e) => redactedBy.has(e.event_id)));
  const now = Date.now();
  const bundles = await bundledRelations(storage, events.filter((e) => !redactedBy.has(e.event_id)), opts, now);

  return events.map((event) => {
    const redaction = redactions.get(redactedBy.get(event.event_id) ?? '');
    const formatted = formatOne(event, now, opts.includeRoomId ?? true);
    if (redaction) {
      const version = versions.get(event.room_id);
      formatted.content = version ? redactContent(event.type, event.content, version) : {};
      formatted.unsigned.redacted_because = formatOne(redaction, now, opts.includeRoomId ?? true) as unknown as JsonObject;
    }
    const txnId = txnIds.get(event.event_id);
    if (txnId !== undefined) formatted.unsigned.transaction_id = txnId;
    const bundle = bundles.get(event.event_id);
    if (bundle) formatted.unsigned['m.relations'] = bundle;
    return formatted;
  });
}

/**
 * Bundled aggregations ("Aggregations of child events"): for each parent, the thread summary
 * (`m.thread`), the latest edit by the original sender (`m.replace`) and the references
 * (`m.reference`). Annotations (reactions) are not bundled, as the spec now says.
 */
async function bundledRelations(
  storage: Storage,
  parents: readonly RoomEvent[],
  opts: FormatOptions,
  now: number,
): Promise<Map<string, JsonObject>> {
  const out = new Map<string, JsonObject>();
  if (parents.length === 0) return out;
  const relations: Relation[] = [];
  for (let i = 0; i < parents.length; i += ID_CHUNK) {
    const ids = parents.slice(i, i + ID_CHUNK).map((e) => e.event_id);
    relations.push(...(await storage.relations.forParents(ids, ['m.thread', 'm.replace', 'm.reference'])));
  }
  if (relations.length === 0) return out;
  const byParent = new Map<string, typeof relations>();
  for (const r of relations) byParent.set(r.relatesToId, [...(byParent.get(r.relatesToId) ?? []), r]);

  const wanted = new Set<string>();
  const plan = new Map<string, { thread?: (typeof relations)[number]; count: number; participated: boolean; edit?: string; refs: string[] }>();
  for (const parent of parents) {
    const rels = byParent.get(parent.event_id);
    if (!rels) continue;
    const thread = rels.filter((r) => r.relType === 'm.thread');
    const edits = rels.filter((r) => r.relType === 'm.replace' && r.sender === parent.sender && r.type === parent.type);
    const latestThread = thread.at(-1);
    const latestEdit = edits.at(-1);
    if (latestThread) wanted.add(latestThread.eventId);
    if (latestEdit) wanted.add(latestEdit.eventId);
    plan.set(parent.event_id, {
      thread: latestThread,
      count: thread.length,
      participated: opts.viewer !== undefined && (parent.sender === opts.viewer.userId || thread.some((r) => r.sender === opts.viewer!.userId)),
      edit: latestEdit?.eventId,
      refs: rels.filter((r) => r.relType === 'm.reference').map((r) => r.eventId),
    });
  }
  const loaded = await storage.events.getEvents(wanted);
  for (const [parentId, p] of plan) {
    const bundle: JsonObject = {};
    const latest = p.thread && loaded.get(p.thread.eventId);
    if (latest) {
      bundle['m.thread'] = {
        latest_event: formatOne(latest, now, opts.includeRoomId ?? true) as unknown as JsonObject,
        count: p.count,
        current_user_participated: p.participated,
      };
    }
    const edit = p.edit && loaded.get(p.edit);
    if (edit) bundle['m.replace'] = formatOne(edit, now, opts.includeRoomId ?? true) as unknown as JsonObject;
    if (p.refs.length > 0) bundle['m.reference'] = { chunk: p.refs.map((id) => ({ event_id: id })) };
    if (Object.keys(bundle).length > 0) out.set(parentId, bundle);
  }
  return out;
}

export async function formatEvent(storage: Storage, event: RoomEvent, opts: FormatOptions = {}): Promise<ClientEvent> {
  return (await formatEvents(storage, [event], opts))[0]!;
}

function formatOne(event: RoomEvent, now: number, includeRoomId: boolean): ClientEvent {
  const out: ClientEvent = {
    content: event.content,
    event_id: event.event_id,
    origin_server_ts: event.origin_server_ts,
    sender: event.sender,
    type: event.type,
    unsigned: { age: Math.max(0, now - event.origin_server_ts) },
  };
  if (includeRoomId) out.room_id = event.room_id;
  if (event.state_key !== undefined) out.state_key = event.state_key;
  // Clients of every room version read `redacts` at the top level; v11+ also have it in content.
  if (event.redacts !== undefined) out.redacts = event.redacts;
  return out;
}

/** Ids per look-up of transaction ids or relations (bound parameters stay far below the engines' limits). */
const ID_CHUNK = 1_000;

async function transactionIds(storage: Storage, opts: FormatOptions, ownIds: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!opts.viewer) return out;
  for (let i = 0; i < ownIds.length; i += ID_CHUNK) {
    const found = await storage.txnIds.forEvents(opts.viewer.userId, opts.viewer.deviceId, ownIds.slice(i, i + ID_CHUNK));
    for (const [id, txn] of found) out.set(id, txn);
  }
  return out;
}

/** The room versions of the rooms of (redacted) events, to redact their content by. */
async function roomVersions(storage: Storage, events: readonly RoomEvent[]) {
  const out = new Map<string, NonNullable<ReturnType<typeof getRoomVersion>>>();
  for (const roomId of new Set(events.map((e) => e.room_id))) {
    const id = await storage.rooms.getRoomVersion(roomId);
    const version = id ? getRoomVersion(id) : undefined;
    if (version) out.set(roomId, version);
  }
  return out;
}
