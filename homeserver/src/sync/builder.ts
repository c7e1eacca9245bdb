/**
 * Assembles one /sync response from the stream providers: read every stream's current position,
 * plan the rooms, let each provider add what changed between `since` and there.
 */
import type { ServerContext } from '../context.js';
import type { Filter } from './filter.js';
import { accountDataProvider } from './providers/account-data.js';
import { deviceListsProvider, toDeviceProvider } from './providers/e2ee.js';
import { presenceProvider } from './providers/presence.js';
import { receiptsProvider } from './providers/receipts.js';
import { roomEventsProvider } from './providers/room-events.js';
import { typingProvider } from './providers/typing.js';
import { planRooms } from './rooms.js';
import { addUnreadCounts } from './unread-counts.js';
import { formatSyncToken, STREAMS, zeroPositions, type StreamName, type StreamPositions } from './tokens.js';
import { PreparedQuery } from '../storage/prepared.js';
import type { MembershipRow } from '../storage/memberships-store.js';
import { SyncResponse, type SyncProvider, type SyncRequest } from './types.js';

/** Room events first: the others add to the rooms it planned. */
export const PROVIDERS: readonly SyncProvider[] = [
  roomEventsProvider,
  receiptsProvider,
  typingProvider,
  accountDataProvider,
  presenceProvider,
  toDeviceProvider,
  deviceListsProvider,
];

export interface SyncParams {
  userId: string;
  deviceId: string | undefined;
  filter: Filter;
  since: StreamPositions | undefined;
  fullState: boolean;
  useStateAfter: boolean;
}

export interface BuiltSync {
  response: SyncResponse;
  /** Rooms whose changes should wake a long-poll of this request. */
  wakeRooms: ReadonlySet<string>;
  /** Everything up to the read positions is in the response (false: to-device messages were held back for the next sync). */
  complete: boolean;
}

export async function buildSync(ctx: ServerContext, params: SyncParams): Promise<BuiltSync> {
  const { to, memberships } = await positionsFor(ctx, params.userId);
  const since = params.since && clampTo(params.since, to);
  if (!since) ctx.sync.lazyMembers.reset(params.userId, params.deviceId);

  const joinedAtSince = new Set<string>();
  if (since) {
    for (const m of memberships) {
      if (m.membership === 'join' && m.streamPosition > since.events && (await ctx.storage.events.membershipAt(m.roomId, m.userId, since.events)) === 'join') {
        joinedAtSince.add(m.roomId);
      }
    }
  }
  const rooms = planRooms({ memberships, filter: params.filter, since: since?.events, to: to.events, fullState: params.fullState, joinedAtSince });
  const toDeviceReached = to.to_device;
  const req: SyncRequest = { ctx, ...params, since, to, rooms };
  const response = new SyncResponse();
  for (const p of PROVIDERS) await p.fill(req, response);
  await addUnreadCounts(req, response);
  // A room listed for its ephemeral events or account data alone still has its (empty) state.
  const stateField = params.useStateAfter ? 'state_after' : 'state';
  for (const room of [...Object.values(response.body.rooms.join), ...Object.values(response.body.rooms.leave)]) {
    room[stateField] ??= { events: [] };
  }
  response.body.next_batch = formatSyncToken({ positions: to, typingEpoch: ctx.sync.typing.epoch });
  return { response, wakeRooms: rooms.wakeRooms, complete: req.to.to_device === toDeviceReached };
}

const SYNCED_MEMBERSHIPS = ['join', 'invite', 'knock', 'leave', 'ban'] as const;

/** The response's positions, and the user's memberships the rooms are planned from. */
async function positionsFor(ctx: ServerContext, userId: string): Promise<{ to: StreamPositions; memberships: MembershipRow[] }> {
  const to = await currentPositions(ctx);
  const memberships = await ctx.storage.memberships.roomsForUser(userId, SYNCED_MEMBERSHIPS);
  // A membership committed after the events position was read: everything up to it is committed
  // too (commit order is position order), so the response may safely reach it.
  for (const m of memberships) to.events = Math.max(to.events, m.streamPosition);
  return { to, memberships };
}

/**
 * For an incremental sync whose token is at every stream's current position: the rooms whose
 * changes should wake it. Nothing can be new then (every change moves a stream), so a long-poll
 * goes back to waiting without building a response. Undefined when something moved.
 */
export async function wakeRoomsIfNothingNew(ctx: ServerContext, params: SyncParams): Promise<ReadonlySet<string> | undefined> {
  if (!params.since || params.fullState) return undefined;
  const { to, memberships } = await positionsFor(ctx, params.userId);
  for (const s of STREAMS) if (params.since[s] < to[s]) return undefined;
  return joinedRoomIds(memberships);
}

/** The rooms of those memberships the user is joined to (forgotten rooms are never in them). */
export function joinedRoomIds(memberships: readonly MembershipRow[]): Set<string> {
  return new Set(memberships.filter((m) => m.membership === 'join').map((m) => m.roomId));
}

/**
 * Every stream's current position. The streams numbered in the database (all but typing: see
 * tokens.ts) are read with one statement instead of one per provider; /sync runs this for every
 * request and every long-poll wake-up.
 */
async function currentPositions(ctx: ServerContext): Promise<StreamPositions> {
  const to = zeroPositions();
  const stored = new Map((await ALL_STREAM_POSITIONS.rows(ctx.storage.db)).map((r) => [r.stream, Number(r.position)]));
  for (const p of PROVIDERS) {
    to[p.stream] = DATABASE_STREAMS.has(p.stream) ? (stored.get(p.stream) ?? 0) : await p.currentPosition(ctx);
  }
  return to;
}

const DATABASE_STREAMS: ReadonlySet<StreamName> = new Set(STREAMS.filter((s) => s !== 'typing'));
const ALL_STREAM_POSITIONS = new PreparedQuery<[], { stream: string; position: number }>((db) =>
  db.selectFrom('stream_positions').select(['stream', 'position']),
);


/** A token ahead of the server (e.g. a database restored from a backup) counts as "now". */
function clampTo(since: StreamPositions, to: StreamPositions): StreamPositions {
  const out = { ...since };
  for (const key of Object.keys(out) as (keyof StreamPositions)[]) out[key] = Math.min(out[key], to[key]);
  return out;
}
