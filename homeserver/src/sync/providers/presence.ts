/** The presence stream: `m.presence` of the user and of those who share a room with them. */
import type { JsonObject } from '../../events/types.js';
import type { StoredPresence } from '../../storage/presence-store.js';
import { matchesEventFilter } from '../filter.js';
import type { SyncProvider } from '../types.js';

/** Active within this long counts as `currently_active`. */
const CURRENTLY_ACTIVE_MS = 5 * 60_000;

export const presenceProvider: SyncProvider = {
  stream: 'presence',
  currentPosition: (ctx) => ctx.storage.presence.currentPosition(),
  async fill(req, out) {
    const filter = req.filter.presence;
    if (filter?.limit === 0) return;
    // Nothing numbered after the token: no query (most long-poll wake-ups are for room events).
    if (req.since && req.since.presence >= req.to.presence) return;
    const changed = await req.ctx.storage.presence.changedForViewer(req.userId, req.since?.presence ?? 0, req.to.presence);
    const now = Date.now();
    let events = changed.filter((p) => matchesEventFilter(filter, 'm.presence', p.userId)).map((p) => presenceEvent(p, now));
    if (filter?.limit !== undefined) events = events.slice(-filter.limit);
    if (events.length === 0) return;
    out.body.presence.events.push(...events);
    out.hasContent = true;
  },
};

export function presenceContent(p: StoredPresence, now: number): JsonObject {
  const content: JsonObject = {
    presence: p.presence,
    last_active_ago: Math.max(0, now - p.lastActiveTs),
    currently_active: p.presence === 'online' && now - p.lastActiveTs < CURRENTLY_ACTIVE_MS,
  };
  if (p.statusMsg !== null) content.status_msg = p.statusMsg;
  return content;
}

function presenceEvent(p: StoredPresence, now: number): JsonObject {
  return { type: 'm.presence', sender: p.userId, content: presenceContent(p, now) };
}
