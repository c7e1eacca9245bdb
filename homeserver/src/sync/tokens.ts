/**
 * Sync and pagination tokens.
 *
 * A sync token (`next_batch`, `since`) holds one position per stream:
 *
 *   s{events}_{receipts}_{account_data}_{presence}_{to_device}_{device_lists}_{typing}.{typing epoch}
 *
 * Every stream but typing is numbered in the database (storage/transactions.ts), so those
 * positions mean the same after a restart. Typing lives in memory and restarts at 0: its position
 * carries the epoch of the process that numbered it, and a position from another epoch (an
 * earlier run) reads as 0 ("send the current typing state"), never as a future position.
 * Fields missing at the end (a token from a version with fewer streams) read as 0.
 *
 * A pagination token (`prev_batch`, /messages `start`/`end`) is `t{events}`: "between the event
 * at that position and the next one". Anything that reads a room position from a token takes
 * the first number (`/^[a-z]?(\d+)/`), which is the events position in both kinds.
 */
import { MatrixError } from '../http/errors.js';

export const STREAMS = ['events', 'receipts', 'account_data', 'presence', 'to_device', 'device_lists', 'typing'] as const;
export type StreamName = (typeof STREAMS)[number];

export type StreamPositions = Record<StreamName, number>;

export interface SyncToken {
  positions: StreamPositions;
  /** The epoch of the typing position (which process numbered it). */
  typingEpoch: string;
}

export function zeroPositions(): StreamPositions {
  return { events: 0, receipts: 0, account_data: 0, presence: 0, to_device: 0, device_lists: 0, typing: 0 };
}

export function formatSyncToken(token: SyncToken): string {
  return `s${STREAMS.map((s) => token.positions[s]).join('_')}.${token.typingEpoch}`;
}

/**
 * Reads a sync token. `currentTypingEpoch`: a typing position of another epoch reads as 0.
 * Throws 400 M_INVALID_PARAM for anything that is not a token.
 */
export function parseSyncToken(text: string, currentTypingEpoch: string): SyncToken {
  const match = /^s(\d{1,15}(?:_\d{1,15}){0,15})(?:\.([0-9a-z]{1,16}))?$/.exec(text);
  if (!match) throw new MatrixError(400, 'M_INVALID_PARAM', `Invalid sync token ${JSON.stringify(text.slice(0, 100))}`);
  const numbers = match[1]!.split('_').map(Number);
  const positions = zeroPositions();
  STREAMS.forEach((s, i) => (positions[s] = numbers[i] ?? 0));
  const epoch = match[2] ?? '';
  if (epoch !== currentTypingEpoch) positions.typing = 0;
  return { positions, typingEpoch: currentTypingEpoch };
}

/** `t{events position}`; backfilled history sits at negative positions (`t-12`). */
export function formatPaginationToken(eventsPosition: number): string {
  return `t${eventsPosition}`;
}

/**
 * The events position of a pagination token, or of a sync token (clients may paginate from a
 * `next_batch`). 400 M_INVALID_PARAM otherwise.
 */
export function parsePaginationToken(text: string): number {
  const match = /^(?:t-?|s)(\d{1,15})(?:[_.][0-9a-z_.]*)?$/.exec(text);
  if (!match) throw new MatrixError(400, 'M_INVALID_PARAM', `Invalid pagination token ${JSON.stringify(text.slice(0, 100))}`);
  return text.startsWith('t-') ? -Number(match[1]) : Number(match[1]);
}
