/** The receipts stream: `m.receipt` in the ephemeral events of joined rooms. */
import type { JsonObject } from '../../events/types.js';
import type { StoredReceipt } from '../../storage/receipts-store.js';
import { matchesEventFilter, roomAllowed } from '../filter.js';
import type { SyncProvider } from '../types.js';

export const receiptsProvider: SyncProvider = {
  stream: 'receipts',
  currentPosition: (ctx) => ctx.storage.receipts.currentPosition(),
  async fill(req, out) {
    const filter = req.filter.room?.ephemeral;
    if (!matchesEventFilter(filter && { types: filter.types, not_types: filter.not_types }, 'm.receipt', '')) return;
    const joined = req.rooms.join.map((p) => p.roomId).filter((r) => roomAllowed(filter, r));
    const fresh = joined.filter((r) => req.rooms.fresh.has(r));
    const known = joined.filter((r) => !req.rooms.fresh.has(r));
    const since = req.since?.receipts ?? 0;
    // Most wake-ups are for room events: no receipt numbered after the token, no query.
    const store = req.ctx.storage.receipts;
    const receipts = [
      ...(fresh.length > 0 ? await store.changedInRooms(fresh, 0, req.to.receipts, req.userId) : []),
      ...(known.length > 0 && since < req.to.receipts ? await store.changedInRooms(known, since, req.to.receipts, req.userId) : []),
    ].filter((r) => matchesEventFilter(filter && { senders: filter.senders, not_senders: filter.not_senders }, 'm.receipt', r.userId));
    for (const [roomId, content] of receiptContents(receipts)) {
      out.joined(roomId).ephemeral.events.push({ type: 'm.receipt', content });
      out.hasContent = true;
    }
  },
};

/** One `m.receipt` content per room: event id → receipt type → user → {ts, thread_id}. */
export function receiptContents(receipts: readonly StoredReceipt[]): Map<string, JsonObject> {
  const out = new Map<string, JsonObject>();
  for (const r of receipts) {
    let content = out.get(r.roomId);
    if (!content) out.set(r.roomId, (content = {}));
    const byType = (content[r.eventId] ??= {}) as JsonObject;
    const byUser = (byType[r.receiptType] ??= {}) as JsonObject;
    byUser[r.userId] = r.threadId === '' ? { ts: r.ts } : { ts: r.ts, thread_id: r.threadId };
  }
  return out;
}
