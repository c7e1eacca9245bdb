/**
 * EDUs received in transactions (PUT /send, api/federation/transactions.ts calls this for each).
 * Every EDU is checked: its user (or sender) must belong to the server that sent it, and a
 * user's typing or receipts count only in rooms they are joined to. Unknown or malformed EDUs
 * are ignored (the spec: EDUs are best effort); this function never throws.
 */
import { parseUserId } from '../accounts/user-ids.js';
import type { ServerContext } from '../context.js';
import type { JsonObject } from '../events/types.js';
import type { PresenceState } from '../storage/presence-store.js';
import { federationQueuesOf } from '../storage/federation-queues-store.js';
import { presenceEnabled } from './outgoing-edus.js';
import { checkServerAcl } from './server-acl.js';
import { resyncRemoteDevices, storeRemoteDeviceList } from './queries-client.js';
import type { Edu } from './runtime.js';

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const PRESENCE_STATES = new Set(['online', 'unavailable', 'offline']);
/** The most a remote server may ask us to show a user typing. */
const MAX_REMOTE_TYPING_MS = 120_000;

/** Applies one EDU from `origin` (already authenticated); unknown or malformed EDUs are ignored. */
export async function handleIncomingEdu(ctx: ServerContext, origin: string, edu: Edu): Promise<void> {
  if (!isObject(edu) || typeof edu.edu_type !== 'string' || !isObject(edu.content)) return;
  try {
    switch (edu.edu_type) {
      case 'm.typing':
        return await onTyping(ctx, origin, edu.content);
      case 'm.receipt':
        return await onReceipts(ctx, origin, edu.content);
      case 'm.presence':
        return await onPresence(ctx, origin, edu.content);
      case 'm.device_list_update':
        return await onDeviceListUpdate(ctx, origin, edu.content);
      case 'm.signing_key_update':
        return await onSigningKeyUpdate(ctx, origin, edu.content);
      case 'm.direct_to_device':
        return await onToDevice(ctx, origin, edu.content);
      default:
        return;
    }
  } catch (err) {
    ctx.log.warn({ err, origin, eduType: edu.edu_type }, 'could not apply an incoming EDU');
  }
}

/** A user id of `origin`. */
function userOf(origin: string, value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return parseUserId(value)?.serverName === origin ? value : undefined;
}

async function isJoined(ctx: ServerContext, roomId: string, userId: string): Promise<boolean> {
  return (await ctx.storage.memberships.get(roomId, userId))?.membership === 'join';
}

/** Server ACLs apply to EDUs too (spec "Server Access Control Lists"): is `origin` allowed in the room? */
async function aclAllows(ctx: ServerContext, roomId: string, origin: string): Promise<boolean> {
  try {
    await checkServerAcl(ctx, roomId, origin);
    return true;
  } catch {
    return false;
  }
}

async function onTyping(ctx: ServerContext, origin: string, c: JsonObject): Promise<void> {
  const userId = userOf(origin, c.user_id);
  if (!userId || typeof c.room_id !== 'string' || typeof c.typing !== 'boolean') return;
  if (!(await isJoined(ctx, c.room_id, userId)) || !(await aclAllows(ctx, c.room_id, origin))) return;
  const timeout = typeof c.timeout === 'number' && c.timeout > 0 ? Math.min(c.timeout, MAX_REMOTE_TYPING_MS) : undefined;
  ctx.sync.typing.setTyping(c.room_id, userId, c.typing, timeout);
}

/** `{room_id: {receipt type: {user_id: {event_ids, data: {ts, thread_id?}}}}}` */
async function onReceipts(ctx: ServerContext, origin: string, c: JsonObject): Promise<void> {
  for (const [roomId, byType] of Object.entries(c)) {
    if (!isObject(byType) || !(await aclAllows(ctx, roomId, origin))) continue;
    let changed = false;
    for (const [receiptType, byUser] of Object.entries(byType)) {
      // Private receipts never leave their server.
      if (receiptType === 'm.read.private' || !isObject(byUser)) continue;
      for (const [user, receipt] of Object.entries(byUser)) {
        const userId = userOf(origin, user);
        if (!userId || !isObject(receipt) || !Array.isArray(receipt.event_ids)) continue;
        const eventId = receipt.event_ids.find((e): e is string => typeof e === 'string' && e.startsWith('$'));
        if (!eventId || !(await isJoined(ctx, roomId, userId))) continue;
        const data = isObject(receipt.data) ? receipt.data : {};
        const threadId = typeof data.thread_id === 'string' && data.thread_id !== '' ? data.thread_id : '';
        const ts = typeof data.ts === 'number' ? data.ts : Date.now();
        const position = await ctx.storage.receipts.put({ roomId, receiptType, userId, threadId, eventId, ts });
        if (position !== undefined) changed = true;
      }
    }
    if (changed) ctx.notifier.notify({ roomId });
  }
}

async function onPresence(ctx: ServerContext, origin: string, c: JsonObject): Promise<void> {
  if (!presenceEnabled(ctx) || !Array.isArray(c.push)) return;
  for (const p of c.push) {
    if (!isObject(p)) continue;
    const userId = userOf(origin, p.user_id);
    if (!userId || typeof p.presence !== 'string' || !PRESENCE_STATES.has(p.presence)) continue;
    // Only users someone here can see (they share a room with a local user).
    const rooms = await ctx.storage.memberships.roomsForUser(userId, ['join']);
    if (rooms.length === 0) continue;
    const ago = typeof p.last_active_ago === 'number' && p.last_active_ago >= 0 ? p.last_active_ago : 0;
    const position = await ctx.storage.presence.set(userId, {
      presence: p.presence as PresenceState,
      statusMsg: typeof p.status_msg === 'string' ? p.status_msg : null,
      lastActiveTs: Date.now() - ago,
    });
    if (position !== undefined) ctx.notifier.notify({ userIds: [userId], roomIds: rooms.map((r) => r.roomId) });
  }
}

/** Remote users we keep device lists of: those sharing a room with someone here. */
async function tracked(ctx: ServerContext, userId: string): Promise<boolean> {
  return (await ctx.storage.memberships.roomsForUser(userId, ['join'])).length > 0;
}

/**
 * `{user_id, device_id, stream_id, prev_id?, deleted?, keys?, device_display_name?}`: applied
 * to the cached list when it follows the update we know last; otherwise the whole list is
 * fetched again (in the background: the transaction does not wait for it).
 */
async function onDeviceListUpdate(ctx: ServerContext, origin: string, c: JsonObject): Promise<void> {
  const userId = userOf(origin, c.user_id);
  if (!userId || typeof c.device_id !== 'string' || typeof c.stream_id !== 'number') return;
  if (!(await tracked(ctx, userId))) return;
  const cached = await federationQueuesOf(ctx.storage).remoteDeviceList(userId);
  if (cached && c.stream_id <= cached.streamId) return;
  const prevIds = Array.isArray(c.prev_id) ? c.prev_id.filter((p): p is number => typeof p === 'number') : [];
  const follows = cached !== undefined && prevIds.length > 0 && prevIds.every((p) => p <= cached.streamId) && prevIds.includes(cached.streamId);
  if (!follows) {
    resyncRemoteDevices(ctx, userId).catch((err: unknown) => ctx.log.info({ err, userId }, 'device list resync failed'));
    return;
  }
  const devices = { ...cached.devices };
  if (c.deleted === true) delete devices[c.device_id];
  else {
    const keys = isObject(c.keys) && c.keys.user_id === userId && c.keys.device_id === c.device_id ? c.keys : (devices[c.device_id]?.keys ?? null);
    devices[c.device_id] = { keys, ...(typeof c.device_display_name === 'string' ? { device_display_name: c.device_display_name } : {}) };
  }
  await storeRemoteDeviceList(ctx, { ...cached, streamId: c.stream_id, devices });
}

/** `{user_id, master_key?, self_signing_key?}` */
async function onSigningKeyUpdate(ctx: ServerContext, origin: string, c: JsonObject): Promise<void> {
  const userId = userOf(origin, c.user_id);
  if (!userId || !(await tracked(ctx, userId))) return;
  const cached = await federationQueuesOf(ctx.storage).remoteDeviceList(userId);
  if (!cached) {
    resyncRemoteDevices(ctx, userId).catch((err: unknown) => ctx.log.info({ err, userId }, 'device list resync failed'));
    return;
  }
  const key = (v: unknown) => (isObject(v) && v.user_id === userId ? v : undefined);
  await storeRemoteDeviceList(ctx, {
    ...cached,
    masterKey: key(c.master_key) ?? cached.masterKey,
    selfSigningKey: key(c.self_signing_key) ?? cached.selfSigningKey,
  });
}

/** `{sender, type, message_id, messages: {user_id: {device_id or *: content}}}` for local users. */
async function onToDevice(ctx: ServerContext, origin: string, c: JsonObject): Promise<void> {
  const sender = userOf(origin, c.sender);
  if (!sender || typeof c.type !== 'string' || typeof c.message_id !== 'string' || c.message_id === '' || !isObject(c.messages)) return;
  const local = new Map<string, Map<string, JsonObject>>();
  for (const [userId, byDevice] of Object.entries(c.messages)) {
    if (parseUserId(userId)?.serverName !== ctx.config.server_name || !isObject(byDevice)) continue;
    const devices = new Map<string, JsonObject>();
    for (const [deviceId, content] of Object.entries(byDevice)) if (isObject(content)) devices.set(deviceId, content);
    if (devices.size > 0) local.set(userId, devices);
  }
  if (local.size === 0) return;
  // The message id, recorded as the sender's transaction id, makes a retried EDU a no-op.
  const result = await ctx.storage.toDevice.send({
    sender,
    senderDeviceId: '',
    txnId: `federation:${c.message_id.slice(0, 200)}`,
    type: c.type,
    messages: local,
  });
  if (result.recipients.length > 0) ctx.notifier.notify({ userIds: result.recipients });
}
