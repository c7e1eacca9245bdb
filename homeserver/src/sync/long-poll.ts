/**
 * /sync's long-poll: compute the response; if it is empty and the client is willing to wait,
 * sleep on the notifier until something concerning this user happens (or the timeout, or the
 * client leaves), then compute again. No polling: each round is caused by a notice. The
 * notifier's position is read before computing, so a change that lands while computing wakes
 * the wait at once instead of being missed.
 *
 * The same holds across requests: every `next_batch` this process hands out is remembered with
 * the notifier position its response was computed at (`IssuedTokens`). A client coming back with
 * it is in the state of a long-poll that just computed that response: unless a notice concerning
 * the user came since, it waits without computing anything. A busy server thus computes a
 * response when there is news for the user, not once more every time the client comes back
 * (other rooms' events move the streams, so the token alone cannot tell).
 */
import type { ServerContext } from '../context.js';
import { buildSync, joinedRoomIds, wakeRoomsIfNothingNew, type SyncParams } from './builder.js';
import { formatSyncToken } from './tokens.js';
import type { SyncResponseBody } from './types.js';

export async function syncWithLongPoll(
  ctx: ServerContext,
  params: SyncParams,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<SyncResponseBody> {
  const deadline = Date.now() + timeoutMs;
  const issued = ctx.sync.issuedTokens;
  const device = deviceKey(params);
  // The notifier position the token's response was computed at, when this process issued it.
  let quietSince =
    params.since && !params.fullState ? issued.computedAt(device, formatSyncToken({ positions: params.since, typingEpoch: ctx.sync.typing.epoch })) : undefined;
  let woken = false;
  for (;;) {
    const noticesSeen = ctx.notifier.position;
    if (!woken && params.since && !params.fullState && deadline - Date.now() > 0 && !signal.aborted) {
      // Nothing new for the user since the token: wait before computing anything.
      const idle =
        quietSince !== undefined
          ? { rooms: await joinedRooms(ctx, params.userId), since: quietSince }
          : await wakeRoomsIfNothingNew(ctx, params).then((rooms) => rooms && { rooms, since: noticesSeen });
      quietSince = undefined;
      if (idle) {
        woken = await ctx.notifier.wait({ userId: params.userId, rooms: idle.rooms }, deadline - Date.now(), signal, idle.since);
        if (woken) continue;
      }
    }
    woken = false;
    const { response, wakeRooms, complete } = await buildSync(ctx, params);
    const remaining = deadline - Date.now();
    // An initial sync and full_state return at once, as does anything with content.
    if (response.hasContent || !params.since || params.fullState || remaining <= 0 || signal.aborted) {
      if (complete) issued.remember(device, response.body.next_batch, noticesSeen);
      return response.body;
    }
    woken = await ctx.notifier.wait({ userId: params.userId, rooms: wakeRooms }, remaining, signal, noticesSeen);
    if (!woken) {
      if (complete) issued.remember(device, response.body.next_batch, noticesSeen);
      return response.body;
    }
  }
}

async function joinedRooms(ctx: ServerContext, userId: string): Promise<Set<string>> {
  return joinedRoomIds(await ctx.storage.memberships.roomsForUser(userId, ['join']));
}

/** To-device messages are per device: a token is remembered for the device it was issued to. */
function deviceKey(params: SyncParams): string {
  return `${params.userId}\u0000${params.deviceId ?? ''}`;
}

/** Devices whose latest token is remembered, at most (the least recently syncing go first). */
const ISSUED_TOKENS_LIMIT = 50_000;

/**
 * The latest `next_batch` handed out to each device, with the notifier position its response was
 * computed at. Only the latest: that is what a client comes back with (any other token is computed
 * as usual), and the memory stays one entry per syncing device.
 */
export class IssuedTokens {
  private readonly latest = new Map<string, { token: string; noticePosition: number }>();

  remember(device: string, token: string, noticePosition: number): void {
    this.latest.delete(device);
    if (this.latest.size >= ISSUED_TOKENS_LIMIT) this.latest.delete(this.latest.keys().next().value!);
    this.latest.set(device, { token, noticePosition });
  }

  computedAt(device: string, token: string): number | undefined {
    const entry = this.latest.get(device);
    return entry?.token === token ? entry.noticePosition : undefined;
  }
}
