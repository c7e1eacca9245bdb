/** The account data stream: top-level `account_data`, and each joined or left room's. */
import { matchesEventFilter, roomAllowed } from '../filter.js';
import type { SyncProvider } from '../types.js';

export const accountDataProvider: SyncProvider = {
  stream: 'account_data',
  currentPosition: (ctx) => ctx.storage.accountData.currentPosition(),
  async fill(req, out) {
    const store = req.ctx.storage.accountData;
    const since = req.since?.account_data ?? 0;
    // Nothing numbered after the token and no room new to the client: nothing to send, no query.
    if (req.since && since >= req.to.account_data && req.rooms.fresh.size === 0) return;
    const entries = since < req.to.account_data ? await store.changedSince(req.userId, since, req.to.account_data) : [];
    // Rooms new to the client get all their account data, however old.
    if (since > 0 && req.rooms.fresh.size > 0) {
      const older = await store.changedSince(req.userId, 0, since);
      entries.push(...older.filter((e) => e.roomId !== undefined && req.rooms.fresh.has(e.roomId)));
    }
    const joined = new Set(req.rooms.join.map((p) => p.roomId));
    const left = new Set(req.rooms.leave.map((p) => p.roomId));
    const globalFilter = req.filter.account_data;
    const roomFilter = req.filter.room?.account_data;
    for (const e of entries) {
      const event = { type: e.type, content: e.content };
      if (e.roomId === undefined) {
        if (!matchesEventFilter(globalFilter, e.type, req.userId)) continue;
        out.body.account_data.events.push(event);
      } else {
        if (!roomAllowed(roomFilter, e.roomId) || !matchesEventFilter(roomFilter, e.type, req.userId)) continue;
        if (joined.has(e.roomId)) out.joined(e.roomId).account_data.events.push(event);
        else if (left.has(e.roomId)) out.left(e.roomId).account_data.events.push(event);
        else continue;
      }
      out.hasContent = true;
    }
    applyLimit(out.body.account_data.events, globalFilter?.limit);
  },
};

function applyLimit(events: unknown[], limit: number | undefined): void {
  if (limit !== undefined && events.length > limit) events.splice(0, events.length - limit);
}
