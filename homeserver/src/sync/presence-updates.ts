/** Setting a user's presence: store it, and wake whoever shares a room with them. */
import type { ServerContext } from '../context.js';
import { federatePresence } from '../federation/outgoing-edus.js';
import type { PresenceChange } from '../storage/presence-store.js';

export async function setPresence(ctx: ServerContext, userId: string, change: PresenceChange): Promise<void> {
  const position = await ctx.storage.presence.set(userId, change);
  if (position === undefined) return;
  const rooms = await ctx.storage.memberships.roomsForUser(userId, ['join']);
  ctx.notifier.notify({ userIds: [userId], roomIds: rooms.map((r) => r.roomId) });
  federatePresence(ctx, userId);
}
