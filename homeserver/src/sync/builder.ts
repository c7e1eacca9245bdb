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
}

export async function buildSync(ctx: ServerContext, params: SyncParams): Promise<BuiltSync> {
  const to = await currentPositions(ctx);
  const memberships = await ctx.storage.memberships.roomsForUser(params.userId, ['join', 'invite', 'knock', 'leave', 'ban']);
  // A membership committed after the events position was read: everything up to it is committed
  // too (commit order is position order), so the response may safely reach it.
  for (const m of memberships) to.events = Math.max(to.events, m.streamPosition);
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
  return { response, wakeRooms: rooms.wakeRooms };
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
