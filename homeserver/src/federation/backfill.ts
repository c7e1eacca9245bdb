/**
 * Client-side backfill (Server-Server API, "Backfilling and retrieving missing events"): when a
 * client pages back past the oldest events this server holds of a room (its backward
 * extremities) without reaching the create event, older history is asked of a server in the room
 * with /backfill, checked and stored through the pipeline's receive path as *backfilled* events:
 * they take stream positions below every position held (so they sort before the existing ones in
 * /messages and are never new for /sync) and change neither forward extremities nor current state.
 */
import type { ServerContext } from '../context.js';
import type { JsonObject, Pdu } from '../events/types.js';
import { parseStateKey } from '../events/types.js';
import { domainOf } from '../rooms/power-levels.js';
import { roomIdForCreateEvent } from '../rooms/auth.js';
import { safeEventId } from '../rooms/receive.js';
import { getRoomVersion } from '../rooms/room-versions.js';

/** How many servers are tried, in turn, for one backfill. */
const MAX_SERVERS = 3;
/** One /backfill request may not hold up a client's /messages longer than this. */
const BACKFILL_TIMEOUT_MS = 15_000;
const MAX_EVENTS = 100;
/** After a backfill that brought nothing, the room is not asked about again for this long. */
const FRUITLESS_COOLDOWN_MS = 60_000;

/** Per server (by its storage): room id → when a backfill last brought nothing. */
const fruitless = new WeakMap<object, Map<string, number>>();

/**
 * Fetches up to `limit` older events of the room from another server; resolves with how many
 * were stored as new timeline history (0 when there is nothing to fetch or nobody answers).
 * Never rejects.
 */
export async function backfillRoom(ctx: ServerContext, roomId: string, limit: number): Promise<number> {
  let tried = fruitless.get(ctx.storage);
  if (!tried) fruitless.set(ctx.storage, (tried = new Map()));
  const last = tried.get(roomId);
  if (last !== undefined && Date.now() - last < FRUITLESS_COOLDOWN_MS) return 0;
  try {
    const { stored, asked } = await backfill(ctx, roomId, Math.min(Math.max(limit, 1), MAX_EVENTS));
    if (asked && stored === 0) tried.set(roomId, Date.now());
    else tried.delete(roomId);
    return stored;
  } catch (err) {
    ctx.log.warn({ err, roomId }, 'backfill failed');
    return 0;
  }
}

/** How many events were stored, and whether any server was asked. */
async function backfill(ctx: ServerContext, roomId: string, limit: number): Promise<{ stored: number; asked: boolean }> {
  const { storage } = ctx;
  const extremities = await storage.events.getBackwardExtremities(roomId);
  if (extremities.length === 0) return { stored: 0, asked: false };
  const versionId = await storage.rooms.getRoomVersion(roomId);
  const version = versionId ? getRoomVersion(versionId) : undefined;
  if (!version) return { stored: 0, asked: false };

  for (const server of await serversInRoom(ctx, roomId)) {
    let pdus: Pdu[];
    try {
      const res = await ctx.federation.client.request<JsonObject>(server, {
        method: 'GET',
        path: `/_matrix/federation/v1/backfill/${encodeURIComponent(roomId)}`,
        query: { v: extremities, limit },
        timeoutMs: BACKFILL_TIMEOUT_MS,
      });
      pdus = Array.isArray(res.pdus) ? res.pdus.filter(isObject) : [];
    } catch (err) {
      ctx.log.info({ server, roomId, err: (err as Error).message }, '/backfill failed');
      continue;
    }
    const fresh = await newEvents(ctx, roomId, pdus, version);
    if (fresh.length === 0) continue;
    // Oldest first, each at a position just below the next: the order /messages shows them in.
    fresh.sort((a, b) => depth(a) - depth(b));
    const positions = await storage.events.allocateBackfillPositions(fresh.length);
    let stored = 0;
    for (const [i, pdu] of fresh.entries()) {
      const result = await ctx.pipeline.receive(pdu, {
        origin: server,
        roomVersion: version,
        backfilled: true,
        backfillPosition: positions[i]!,
        fetched: true,
      });
      if (result.outcome === 'accepted') stored++;
    }
    if (stored > 0) return { stored, asked: true };
  }
  return { stored: 0, asked: true };
}

/** The PDUs of the room not already held as timeline events, without duplicates. */
async function newEvents(ctx: ServerContext, roomId: string, pdus: Pdu[], version: NonNullable<ReturnType<typeof getRoomVersion>>): Promise<Pdu[]> {
  const byId = new Map<string, Pdu>();
  for (const pdu of pdus) {
    const id = safeEventId(pdu, version);
    if (id && roomOfPdu(pdu, id) === roomId) byId.set(id, pdu);
  }
  const out: Pdu[] = [];
  for (const [id, pdu] of byId) {
    const info = await ctx.storage.events.getEventInfo(id);
    if (!info || info.outlier) out.push(pdu);
  }
  return out;
}

/** Other servers with users joined to the room, those with the most members first. */
async function serversInRoom(ctx: ServerContext, roomId: string): Promise<string[]> {
  const state = await ctx.storage.events.getCurrentState(roomId);
  const memberIds = [...state].filter(([key]) => parseStateKey(key)[0] === 'm.room.member').map(([, id]) => id);
  const members = await ctx.storage.events.getEvents(memberIds);
  const counts = new Map<string, number>();
  for (const m of members.values()) {
    const server = m.state_key !== undefined ? domainOf(m.state_key) : undefined;
    if (!server || server === ctx.config.server_name || m.content.membership !== 'join') continue;
    counts.set(server, (counts.get(server) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, MAX_SERVERS).map(([s]) => s);
}

/**
 * The room a PDU belongs to. A v12 create event has no room_id: its room id is derived from its
 * own event id (without this, backfill never stored the create event of a v12 room).
 */
function roomOfPdu(pdu: Pdu, eventId: string): string | undefined {
  if (typeof pdu.room_id === 'string') return pdu.room_id;
  return pdu.type === 'm.room.create' ? roomIdForCreateEvent(eventId) : undefined;
}

function depth(pdu: Pdu): number {
  return typeof pdu.depth === 'number' ? pdu.depth : 0;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
