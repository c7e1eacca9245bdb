/**
 * Push rule conditions (spec "Push Notifications" → "Conditions"), the glob-style matching of the
 * appendix and its dot-separated property paths. Pure functions: everything a condition needs
 * about the room and the user comes in an `EvaluationContext`.
 */
import type { JsonObject, JsonValue } from '../events/types.js';

/** A condition as a client sends and the API returns it (unknown kinds are kept, and never match). */
export interface PushCondition {
  kind: string;
  key?: string;
  pattern?: string;
  is?: string;
  value?: string | number | boolean | null;
  [extra: string]: JsonValue | undefined;
}

/** What conditions may ask about the room and the user the rules belong to. */
export interface EvaluationContext {
  /** The owner of the rules. */
  userId: string;
  /** The owner's display name in the room (member event, else profile); null when they have none. */
  displayName(): string | null;
  /** Joined members of the room, after the event. */
  memberCount: number;
  /** Whether the sender's power level reaches `notifications[key]` of the room's power levels. */
  senderHasNotificationPermission(key: string): boolean;
}

/**
 * Splits a dot-separated property path (`content.m\.relates_to.rel_type`): `\.` is a literal dot,
 * `\\` a literal backslash, any other `\x` stays as it is (both characters).
 */
export function splitPropertyPath(path: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < path.length; i++) {
    const ch = path[i]!;
    if (ch === '\\') {
      const next = path[i + 1];
      if (next === '.' || next === '\\') {
        current += next;
        i++;
      } else {
        current += ch;
      }
    } else if (ch === '.') {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

/** Split paths by path: every event is matched against the same few rule keys for every member. */
const pathCache = new Map<string, readonly string[]>();
const PATH_CACHE_LIMIT = 5000;

function cachedPath(path: string): readonly string[] {
  let parts = pathCache.get(path);
  if (!parts) {
    parts = splitPropertyPath(path);
    if (pathCache.size >= PATH_CACHE_LIMIT) pathCache.clear();
    pathCache.set(path, parts);
  }
  return parts;
}

/** The value at a dot-separated path of an event, or undefined when any step is missing. */
export function valueAtPath(event: JsonObject, path: string): JsonValue | undefined {
  let value: JsonValue | undefined = event;
  for (const part of cachedPath(path)) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(value, part)) return undefined;
    value = (value as JsonObject)[part];
  }
  return value;
}

const WORD_CHAR = 'A-Za-z0-9_';
const globCache = new Map<string, RegExp>();
const GLOB_CACHE_LIMIT = 5000;

/** The regular expression source of a glob: `*` any run of characters, `?` exactly one. */
function globSource(glob: string): string {
  let out = '';
  for (const ch of glob) {
    if (ch === '*') out += '[\\s\\S]*';
    else if (ch === '?') out += '[\\s\\S]';
    else out += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return out;
}

/**
 * Case-insensitive glob match. `wordBoundary`: the pattern may match any substring that starts
 * and ends at a word boundary (start or end of the value, or a character outside [A-Za-z0-9_]),
 * as for `content.body`; otherwise it must match the whole value.
 */
export function globMatches(pattern: string, value: string, wordBoundary: boolean): boolean {
  const cacheKey = `${wordBoundary ? 'w' : 'e'}${pattern}`;
  let re = globCache.get(cacheKey);
  if (!re) {
    const src = globSource(pattern);
    re = wordBoundary
      ? new RegExp(`(?:^|[^${WORD_CHAR}])${src}(?:[^${WORD_CHAR}]|$)`, 'iu')
      : new RegExp(`^${src}$`, 'iu');
    if (globCache.size >= GLOB_CACHE_LIMIT) globCache.clear();
    globCache.set(cacheKey, re);
  }
  return re.test(value);
}

/** Whether `text` contains `literal` (no glob characters) between word boundaries, case-insensitively. */
export function containsWord(text: string, literal: string): boolean {
  if (literal === '') return false;
  // Compiled once per name (each member's display name is tested against every message).
  const cacheKey = `l${literal}`;
  let re = globCache.get(cacheKey);
  if (!re) {
    const src = literal.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    re = new RegExp(`(?:^|[^${WORD_CHAR}])${src}(?:[^${WORD_CHAR}]|$)`, 'iu');
    if (globCache.size >= GLOB_CACHE_LIMIT) globCache.clear();
    globCache.set(cacheKey, re);
  }
  return re.test(text);
}

/** `room_member_count`'s `is`: a decimal integer, optionally prefixed by ==, <, >, >= or <=. */
export function parseMemberCountCondition(is: string): { op: '==' | '<' | '>' | '<=' | '>='; count: number } | undefined {
  const match = /^(==|<=|>=|<|>)?([0-9]+)$/.exec(is);
  if (!match) return undefined;
  const count = Number(match[2]);
  if (!Number.isSafeInteger(count)) return undefined;
  return { op: (match[1] ?? '==') as '==' | '<' | '>' | '<=' | '>=', count };
}

export function memberCountMatches(is: string, memberCount: number): boolean {
  const parsed = parseMemberCountCondition(is);
  if (!parsed) return false;
  switch (parsed.op) {
    case '==':
      return memberCount === parsed.count;
    case '<':
      return memberCount < parsed.count;
    case '>':
      return memberCount > parsed.count;
    case '<=':
      return memberCount <= parsed.count;
    case '>=':
      return memberCount >= parsed.count;
  }
}

/** Strings, integers within ±(2^53−1), booleans and null: the values `event_property_*` compare. */
export function isNonCompoundValue(value: unknown): value is string | number | boolean | null {
  return (
    value === null ||
    typeof value === 'string' ||
    typeof value === 'boolean' ||
    (typeof value === 'number' && Number.isSafeInteger(value))
  );
}

/** Whether one condition holds for the event. Unknown kinds and malformed conditions never match. */
export function conditionMatches(condition: PushCondition, event: JsonObject, ctx: EvaluationContext): boolean {
  switch (condition.kind) {
    case 'event_match': {
      if (typeof condition.key !== 'string' || typeof condition.pattern !== 'string') return false;
      const value = valueAtPath(event, condition.key);
      if (typeof value !== 'string') return false;
      return globMatches(condition.pattern, value, condition.key === 'content.body');
    }
    case 'event_property_is': {
      if (typeof condition.key !== 'string' || !isNonCompoundValue(condition.value)) return false;
      const value = valueAtPath(event, condition.key);
      return isNonCompoundValue(value) && value === condition.value;
    }
    case 'event_property_contains': {
      if (typeof condition.key !== 'string' || !isNonCompoundValue(condition.value)) return false;
      const value = valueAtPath(event, condition.key);
      if (!Array.isArray(value)) return false;
      return value.some((item) => isNonCompoundValue(item) && item === condition.value);
    }
    case 'contains_display_name': {
      const body = valueAtPath(event, 'content.body');
      if (typeof body !== 'string') return false;
      const name = ctx.displayName();
      return name !== null && name.trim() !== '' && containsWord(body, name);
    }
    case 'room_member_count':
      return typeof condition.is === 'string' && memberCountMatches(condition.is, ctx.memberCount);
    case 'sender_notification_permission':
      return typeof condition.key === 'string' && ctx.senderHasNotificationPermission(condition.key);
    default:
      return false;
  }
}
