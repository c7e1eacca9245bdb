/**
 * initial-sync: one user in `rooms` rooms, each with `members` other members (drawn from a pool of
 * `member_pool` users) and `events` messages from `senders` of them in turn. Then the user's initial
 * /sync, `repeats` times each: with a lazy-loading filter and timeline limit 10, and with the
 * full state (no lazy loading, full_state=true). Time and response size; every room must be in
 * each response ending with its last message, and every message must be stored.
 */
import { expectStatus, seg, type Account } from '../client.js';
import {
  benchMessage,
  checkCounts,
  CountMismatch,
  createRoom,
  joinRoom,
  markerOf,
  Meter,
  newUsers,
  readRoomHistory,
  sendPath,
  txnId,
  type ClientEvent,
  type ScenarioContext,
  type ScenarioResult,
} from '../context.js';
import { forEachConcurrent, now, round, summarize } from '../stats.js';
import { uploadFilter } from './fanout.js';

export interface Populated {
  main: Account;
  rooms: string[];
  lastEventIds: string[];
  members: Account[][];
  events: number;
}

/** Builds the rooms: creates, joins and messages, `concurrency` rooms at a time. */
export async function populate(
  ctx: ScenarioContext,
  sizes: { rooms: number; events: number; members: number; member_pool: number; senders?: number },
  tag: string,
): Promise<Populated> {
  const R = sizes.rooms;
  const K = Math.min(sizes.members, sizes.member_pool);
  ctx.log(`${tag}: registering 1 + ${sizes.member_pool} users`);
  const [main] = await newUsers(ctx, `${tag}main`, 1);
  const pool = await newUsers(ctx, `${tag}m`, sizes.member_pool);
  ctx.log(`${tag}: ${R} rooms × ${K} members × ${sizes.events} messages`);
  const rooms: string[] = new Array<string>(R);
  const lastEventIds: string[] = new Array<string>(R);
  const members: Account[][] = new Array<Account[]>(R);
  let done = 0;
  let lastLog = Date.now();
  const t0 = now();
  const sendPool = ctx.target.hs.pool({ connections: 10 });
  try {
    await forEachConcurrent(R, 10, async (r) => {
      const roomId = (rooms[r] = await createRoom(ctx, main!, { name: `${tag} ${r}` }));
      const inRoom = Array.from({ length: K }, (_, j) => pool[(r + j) % pool.length]!);
      members[r] = inRoom;
      for (const m of inRoom) await joinRoom(ctx, m, roomId, sendPool);
      // The owner and the first few members talk; the others only listen (what lazy loading skips).
      const senders = [main!, ...inRoom].slice(0, Math.max(1, sizes.senders ?? inRoom.length + 1));
      for (let e = 0; e < sizes.events; e++) {
        const reply = await ctx.target.hs.request(sendPool, 'PUT', sendPath(roomId, txnId(ctx)), {
          token: senders[e % senders.length]!.accessToken,
          body: benchMessage(ctx, tag, r * sizes.events + e),
        });
        expectStatus(reply, 200, 'send');
        lastEventIds[r] = (reply.json as { event_id: string }).event_id;
      }
      done++;
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        ctx.log(`  ${done}/${R} rooms filled (${round((done * sizes.events) / ((now() - t0) / 1000), 0)} events/s)`);
      }
    });
  } finally {
    await sendPool.close();
  }
  return { main: main!, rooms, lastEventIds, members, events: sizes.events };
}

interface SyncRoom {
  timeline?: { events?: ClientEvent[]; limited?: boolean };
  state?: { events?: ClientEvent[] };
}

/** Checks one initial sync; returns how many member events it carried. */
function checkInitialSync(p: Populated, body: { rooms?: { join?: Record<string, SyncRoom> } }, kind: 'lazy' | 'full'): number {
  const joined = body.rooms?.join ?? {};
  const want = new Set(p.rooms);
  const got = Object.keys(joined).filter((id) => want.has(id));
  if (got.length !== p.rooms.length) {
    throw new CountMismatch(`initial-sync (${kind}): ${p.rooms.length} rooms joined, ${got.length} in the response`);
  }
  let memberEvents = 0;
  p.rooms.forEach((roomId, r) => {
    const room = joined[roomId]!;
    const timeline = room.timeline?.events ?? [];
    if (timeline.length === 0 || timeline[timeline.length - 1]!.event_id !== p.lastEventIds[r]) {
      throw new CountMismatch(`initial-sync (${kind}): room ${roomId}'s timeline does not end with its last message`);
    }
    if (timeline.length > 10) throw new CountMismatch(`initial-sync (${kind}): ${timeline.length} timeline events in ${roomId} (limit 10)`);
    const members = new Set(
      [...(room.state?.events ?? []), ...timeline].filter((e) => e.type === 'm.room.member').map((e) => e.state_key),
    );
    memberEvents += members.size;
    if (kind === 'full' && members.size !== p.members[r]!.length + 1) {
      throw new CountMismatch(`initial-sync (full): ${members.size} members of ${roomId} in the response, ${p.members[r]!.length + 1} in the room`);
    }
    if (kind === 'lazy') {
      for (const e of timeline) {
        if (!members.has(e.sender)) throw new CountMismatch(`initial-sync (lazy): ${roomId}: the member event of sender ${e.sender} is missing`);
      }
    }
  });
  return memberEvents;
}

export async function initialSyncScenario(ctx: ScenarioContext): Promise<ScenarioResult & { populated?: Populated }> {
  const s = ctx.sizes as { rooms: number; events: number; members: number; member_pool: number; senders: number; repeats: number };
  const { hs } = ctx.target;
  const t0 = now();
  const p = await populate(ctx, s, 'isync');
  const setupSeconds = (now() - t0) / 1000;
  ctx.log(`initial-sync: filled in ${round(setupSeconds, 1)} s`);

  // One filter per repeat, each excluding an event type nobody sends: the responses are the same,
  // but no two requests are, so a server's cache of identical /sync requests (Synapse keeps each
  // response 2 minutes) cannot answer the repeats.
  const distinct = (i: number) => [`org.hearth.bench.repeat${i}`];
  const filters = async (state: object) =>
    Promise.all(Array.from({ length: s.repeats }, (_, i) => uploadFilter(ctx, p.main, { room: { ...state, timeline: { limit: 10, not_types: distinct(i) } } })));
  const lazyFilters = await filters({ state: { lazy_load_members: true } });
  const fullFilters = await filters({});
  const kinds = [
    { kind: 'lazy' as const, query: (i: number) => `filter=${seg(lazyFilters[i]!)}&set_presence=offline` },
    { kind: 'full' as const, query: (i: number) => `filter=${seg(fullFilters[i]!)}&full_state=true&set_presence=offline` },
  ];
  const out: Record<string, unknown> = {};
  for (const { kind, query } of kinds) {
    ctx.log(`initial-sync: ${s.repeats} × ${kind === 'lazy' ? 'lazy-loading, timeline 10' : 'full state, timeline 10'}`);
    const times: number[] = [];
    let bytes = 0;
    let memberEvents = 0;
    const meter = await Meter.start(ctx);
    for (let i = 0; i < s.repeats; i++) {
      const reply = await hs.request(ctx.target.pool, 'GET', `/_matrix/client/v3/sync?${query(i)}`, { token: p.main.accessToken });
      expectStatus(reply, 200, `initial sync (${kind})`);
      times.push(reply.ms);
      bytes = reply.bytes;
      memberEvents = checkInitialSync(p, reply.json as { rooms?: { join?: Record<string, SyncRoom> } }, kind);
    }
    out[kind] = {
      first_ms: round(times[0]!, 1),
      ms: summarize(times),
      response_bytes: bytes,
      member_events: memberEvents,
      ...(await meter.stop(s.repeats, 'sync')),
    };
  }

  ctx.log('initial-sync: reading every room back to count what was stored');
  const found: number[] = [];
  await forEachConcurrent(p.rooms.length, 4, async (r) => {
    const history = await readRoomHistory(ctx, p.main, p.rooms[r]!, { types: ['m.room.message'] });
    for (const e of history) {
      const m = markerOf(ctx, e);
      if (m?.tag === 'isync') found.push(m.seq);
    }
  });
  const counts = checkCounts(
    'initial-sync: messages stored',
    Array.from({ length: p.rooms.length * p.events }, (_, i) => i),
    found,
  );
  const result: ScenarioResult & { populated?: Populated } = {
    status: 'ok',
    rooms: p.rooms.length,
    events_per_room: p.events,
    members_per_room: s.members + 1,
    setup_seconds: round(setupSeconds, 1),
    setup_events_per_s: round((p.rooms.length * p.events) / setupSeconds, 1),
    lazy: out.lazy,
    full_state: out.full,
    counts,
  };
  if (ctx.target.process) result.database_mb = round((await ctx.target.process.databaseBytes()) / 1024 / 1024, 1);
  Object.defineProperty(result, 'populated', { value: p, enumerable: false });
  return result;
}
