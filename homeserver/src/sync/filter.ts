/**
 * Filters (spec "Filtering"): what a client wants from /sync, /messages and /context. Parsing
 * checks the shape and refuses wrong types with 400 M_BAD_JSON; matching follows the spec:
 * `types`/`senders`/`rooms` include (absent: all), `not_*` exclude and win over the includes,
 * `*` in a type is a wildcard.
 */
import type { JsonObject, RoomEvent } from '../events/types.js';
import { badJson, MatrixError, notFound } from '../http/errors.js';
import type { Storage } from '../storage/database.js';

export interface EventFilter {
  limit?: number;
  types?: string[];
  not_types?: string[];
  senders?: string[];
  not_senders?: string[];
}

export interface RoomEventFilter extends EventFilter {
  rooms?: string[];
  not_rooms?: string[];
  contains_url?: boolean;
  lazy_load_members?: boolean;
  include_redundant_members?: boolean;
  unread_thread_notifications?: boolean;
}

export interface RoomFilter {
  rooms?: string[];
  not_rooms?: string[];
  include_leave?: boolean;
  timeline?: RoomEventFilter;
  state?: RoomEventFilter;
  ephemeral?: RoomEventFilter;
  account_data?: RoomEventFilter;
}

export interface Filter {
  event_fields?: string[];
  event_format?: 'client' | 'federation';
  presence?: EventFilter;
  account_data?: EventFilter;
  room?: RoomFilter;
}

/** Checks a filter definition (the body of POST /filter, or inline JSON); 400 M_BAD_JSON if wrong. */
export function parseFilter(value: unknown): Filter {
  const f = object(value, 'filter');
  const out: Filter = {};
  if (f.event_fields !== undefined) out.event_fields = strings(f.event_fields, 'event_fields');
  if (f.event_format !== undefined) {
    if (f.event_format !== 'client' && f.event_format !== 'federation') throw badJson('event_format must be "client" or "federation"');
    out.event_format = f.event_format;
  }
  if (f.presence !== undefined) out.presence = eventFilter(f.presence, 'presence');
  if (f.account_data !== undefined) out.account_data = eventFilter(f.account_data, 'account_data');
  if (f.room !== undefined) {
    const r = object(f.room, 'room');
    const room: RoomFilter = {};
    if (r.rooms !== undefined) room.rooms = strings(r.rooms, 'room.rooms');
    if (r.not_rooms !== undefined) room.not_rooms = strings(r.not_rooms, 'room.not_rooms');
    if (r.include_leave !== undefined) room.include_leave = bool(r.include_leave, 'room.include_leave');
    for (const key of ['timeline', 'state', 'ephemeral', 'account_data'] as const) {
      if (r[key] !== undefined) room[key] = roomEventFilter(r[key], `room.${key}`);
    }
    out.room = room;
  }
  return out;
}

export function roomEventFilter(value: unknown, path: string): RoomEventFilter {
  const f = object(value, path);
  const out: RoomEventFilter = eventFilter(f, path);
  if (f.rooms !== undefined) out.rooms = strings(f.rooms, `${path}.rooms`);
  if (f.not_rooms !== undefined) out.not_rooms = strings(f.not_rooms, `${path}.not_rooms`);
  for (const key of ['contains_url', 'lazy_load_members', 'include_redundant_members', 'unread_thread_notifications'] as const) {
    if (f[key] !== undefined) out[key] = bool(f[key], `${path}.${key}`);
  }
  return out;
}

function eventFilter(value: unknown, path: string): EventFilter {
  const f = object(value, path);
  const out: EventFilter = {};
  if (f.limit !== undefined) {
    if (typeof f.limit !== 'number' || !Number.isSafeInteger(f.limit) || f.limit < 0) {
      throw badJson(`${path}.limit must be a non-negative integer`);
    }
    out.limit = f.limit;
  }
  for (const key of ['types', 'not_types', 'senders', 'not_senders'] as const) {
    if (f[key] !== undefined) out[key] = strings(f[key], `${path}.${key}`);
  }
  return out;
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badJson(`${path} must be an object`);
  return value as Record<string, unknown>;
}

function strings(value: unknown, path: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw badJson(`${path} must be a list of strings`);
  return value as string[];
}

function bool(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') throw badJson(`${path} must be true or false`);
  return value;
}

/**
 * The `filter` query parameter of /sync, /messages, /context: a stored filter's id, or JSON
 * (it starts with `{`). Unknown id → 404 M_NOT_FOUND; bad JSON → 400.
 */
export async function loadFilter(storage: Storage, userId: string, param: string | undefined): Promise<Filter> {
  if (param === undefined || param === '') return {};
  if (param.trimStart().startsWith('{')) return parseFilter(parseJson(param));
  const stored = await storedFilter(storage, userId, param);
  if (stored === undefined) throw notFound(`No filter ${JSON.stringify(param.slice(0, 100))}`);
  return parseFilter(JSON.parse(stored));
}

/**
 * Stored filters never change once created, and a long-polling client sends the same filter id with
 * every /sync: their JSON is kept in memory (per database: ids are numbered per database), so a
 * sync does not read it again. Misses are not remembered (the filter may be created later).
 */
const FILTER_CACHE_LIMIT = 10_000;
const filterCaches = new WeakMap<Storage, Map<string, string>>();

async function storedFilter(storage: Storage, userId: string, filterId: string): Promise<string | undefined> {
  let cache = filterCaches.get(storage);
  if (!cache) filterCaches.set(storage, (cache = new Map()));
  const key = `${userId}\u0000${filterId}`;
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const stored = await storage.filters.get(userId, filterId);
  if (stored !== undefined) {
    if (cache.size >= FILTER_CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    cache.set(key, stored);
  }
  return stored;
}

/** The `filter` parameter of /messages and /context: a RoomEventFilter as JSON. */
export function parseRoomEventFilterParam(param: string | undefined): RoomEventFilter {
  if (param === undefined || param === '') return {};
  return roomEventFilter(parseJson(param), 'filter');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new MatrixError(400, 'M_NOT_JSON', 'filter is not valid JSON');
  }
}

// ------------------------------------------------------------------ matching

const globs = new Map<string, RegExp>();

function typeMatches(pattern: string, type: string): boolean {
  if (!pattern.includes('*')) return pattern === type;
  let re = globs.get(pattern);
  if (!re) {
    const source = pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
    globs.set(pattern, (re = new RegExp(`^${source}$`, 's')));
    if (globs.size > 1000) globs.clear();
  }
  return re.test(type);
}

/** Does an event of this type and sender pass the filter? */
export function matchesEventFilter(filter: EventFilter | undefined, type: string, sender: string): boolean {
  if (!filter) return true;
  if (filter.not_senders?.includes(sender)) return false;
  if (filter.senders && !filter.senders.includes(sender)) return false;
  if (filter.not_types?.some((p) => typeMatches(p, type))) return false;
  if (filter.types && !filter.types.some((p) => typeMatches(p, type))) return false;
  return true;
}

export function roomAllowed(filter: { rooms?: string[]; not_rooms?: string[] } | undefined, roomId: string): boolean {
  if (!filter) return true;
  if (filter.not_rooms?.includes(roomId)) return false;
  return !filter.rooms || filter.rooms.includes(roomId);
}

export function matchesRoomEventFilter(filter: RoomEventFilter | undefined, event: RoomEvent): boolean {
  if (!filter) return true;
  if (!roomAllowed(filter, event.room_id) || !matchesEventFilter(filter, event.type, event.sender)) return false;
  if (filter.contains_url !== undefined) {
    const hasUrl = typeof event.content.url === 'string';
    if (hasUrl !== filter.contains_url) return false;
  }
  return true;
}

/**
 * Keeps only the listed fields (`event_fields`: dotted paths, `\.` for a literal dot) of a
 * formatted event.
 */
export function pickEventFields(event: JsonObject, fields: readonly string[] | undefined): JsonObject {
  if (!fields) return event;
  const out: JsonObject = {};
  for (const field of fields) {
    const path = field.split(/(?<!\\)\./).map((p) => p.replace(/\\\./g, '.'));
    let src: unknown = event;
    for (const part of path) {
      src = typeof src === 'object' && src !== null && !Array.isArray(src) ? (src as JsonObject)[part] : undefined;
    }
    if (src === undefined) continue;
    let dst = out;
    path.slice(0, -1).forEach((part) => {
      const next = dst[part];
      dst = typeof next === 'object' && next !== null && !Array.isArray(next) ? next : (dst[part] = {});
    });
    dst[path[path.length - 1]!] = src as JsonObject;
  }
  return out;
}
