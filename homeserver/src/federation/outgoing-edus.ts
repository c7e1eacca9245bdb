/**
 * EDUs this server sends (spec "Typing Notifications", "Receipts", "Presence", "Device
 * Management", "Send-to-device messaging" of the Server-Server API), queued through
 * `ctx.federation.sender`. The client API calls these after its local change; none of them
 * throws (a federation problem never fails a client request): failures are logged.
 */
import { randomBytes } from 'node:crypto';
import type { ServerContext } from '../context.js';
import type { JsonObject } from '../events/types.js';
import { presenceContent } from '../sync/providers/presence.js';
import { federationQueuesOf } from '../storage/federation-queues-store.js';
import { serverOfUser, serversInRoom, serversSharingARoomWith } from './sender.js';

function isLocal(ctx: ServerContext, userId: string): boolean {
  return serverOfUser(userId) === ctx.config.server_name;
}

/** Runs `fn` without waiting; its failure is logged. */
function detached(ctx: ServerContext, what: string, fn: () => Promise<void>): void {
  fn().catch((err: unknown) => ctx.log.warn({ err }, `could not send ${what} over federation`));
}

/** The presence EDUs are sent only when presence is enabled (`presence.enabled`). */
export function presenceEnabled(ctx: ServerContext): boolean {
  const section = (ctx.config as unknown as { presence?: { enabled?: boolean } }).presence;
  return section?.enabled !== false;
}

async function otherServersInRoom(ctx: ServerContext, roomId: string): Promise<string[]> {
  const servers = await serversInRoom(ctx.storage, roomId);
  servers.delete(ctx.config.server_name);
  return [...servers];
}

async function otherServersSharingARoomWith(ctx: ServerContext, userId: string): Promise<string[]> {
  const servers = await serversSharingARoomWith(ctx.storage, userId);
  servers.delete(ctx.config.server_name);
  return [...servers];
}

/** m.typing to the room's other servers. */
export function federateTyping(ctx: ServerContext, roomId: string, userId: string, typing: boolean, timeoutMs?: number): void {
  if (!isLocal(ctx, userId)) return;
  detached(ctx, 'a typing notification', async () => {
    const servers = await otherServersInRoom(ctx, roomId);
    const content: JsonObject = { room_id: roomId, user_id: userId, typing };
    if (typing && timeoutMs !== undefined) content.timeout = timeoutMs;
    ctx.federation.sender.sendEdu(servers, { edu_type: 'm.typing', content });
  });
}

/** m.receipt (public receipts only) to the room's other servers. */
export function federateReceipt(
  ctx: ServerContext,
  r: { roomId: string; receiptType: string; userId: string; eventId: string; threadId: string; ts: number },
): void {
  if (r.receiptType !== 'm.read' || !isLocal(ctx, r.userId)) return;
  detached(ctx, 'a receipt', async () => {
    const servers = await otherServersInRoom(ctx, r.roomId);
    const data: JsonObject = { ts: r.ts };
    if (r.threadId !== '') data.thread_id = r.threadId;
    const content: JsonObject = { [r.roomId]: { [r.receiptType]: { [r.userId]: { event_ids: [r.eventId], data } } } };
    ctx.federation.sender.sendEdu(servers, { edu_type: 'm.receipt', content });
  });
}

/** m.presence of a local user to the servers sharing a room with them. */
export function federatePresence(ctx: ServerContext, userId: string): void {
  if (!presenceEnabled(ctx) || !isLocal(ctx, userId)) return;
  detached(ctx, 'presence', async () => {
    const stored = await ctx.storage.presence.get(userId);
    if (!stored) return;
    const servers = await otherServersSharingARoomWith(ctx, userId);
    if (servers.length === 0) return;
    ctx.federation.sender.sendEdu(servers, { edu_type: 'm.presence', content: { push: [{ user_id: userId, ...presenceContent(stored, Date.now()) }] } });
  });
}

/**
 * m.device_list_update of a local user: one EDU per current device (with its keys) and per
 * device deleted since the last announcement, chained by stream_id/prev_id, to the servers
 * sharing a room with the user. A receiver that missed one resyncs with GET /user/devices.
 */
export function federateDeviceListChange(ctx: ServerContext, userId: string): void {
  if (!isLocal(ctx, userId)) return;
  detached(ctx, 'a device list update', async () => {
    const servers = await otherServersSharingARoomWith(ctx, userId);
    if (servers.length === 0) return;
    const devices = await ctx.storage.accounts.listDevices(userId);
    const keys = (await ctx.storage.e2eKeys.deviceKeys(new Map([[userId, []]]))).get(userId);
    const current = devices.map((d) => d.deviceId);
    const store = federationQueuesOf(ctx.storage);
    const announced = await store.announcedDevices(userId);
    const deleted = announced.filter((id) => !current.includes(id));
    const updates = [...current.map((id) => ({ id, deleted: false })), ...deleted.map((id) => ({ id, deleted: true }))];
    if (updates.length === 0) return;
    const { prev, first } = await store.nextDeviceStream(userId, updates.length, current);
    updates.forEach((u, i) => {
      const streamId = first + i;
      const previous = i === 0 ? prev : streamId - 1;
      const content: JsonObject = { user_id: userId, device_id: u.id, stream_id: streamId, prev_id: previous > 0 ? [previous] : [] };
      if (u.deleted) content.deleted = true;
      else {
        const stored = keys?.get(u.id);
        if (stored) content.keys = stored.keys;
        const name = devices.find((d) => d.deviceId === u.id)?.displayName;
        if (name) content.device_display_name = name;
      }
      ctx.federation.sender.sendEdu(servers, { edu_type: 'm.device_list_update', content });
    });
  });
}

/** m.signing_key_update: the user's master and self-signing keys changed. */
export function federateSigningKeyUpdate(ctx: ServerContext, userId: string): void {
  if (!isLocal(ctx, userId)) return;
  detached(ctx, 'a signing key update', async () => {
    const servers = await otherServersSharingARoomWith(ctx, userId);
    if (servers.length === 0) return;
    const keys = (await ctx.storage.e2eKeys.crossSigningKeys([userId])).get(userId);
    const content: JsonObject = { user_id: userId };
    const master = keys?.get('master');
    const selfSigning = keys?.get('self_signing');
    if (master) content.master_key = master.key;
    if (selfSigning) content.self_signing_key = selfSigning.key;
    ctx.federation.sender.sendEdu(servers, { edu_type: 'm.signing_key_update', content });
  });
}

/**
 * m.direct_to_device: messages for users of other servers, one EDU per server with a fresh
 * message_id (the receiver de-duplicates by it). Called once per new client transaction; resolves
 * once the EDUs are in the outbox, so that the client's 200 means they will be delivered.
 */
export async function federateToDevice(
  ctx: ServerContext,
  sender: string,
  type: string,
  remote: ReadonlyMap<string, ReadonlyMap<string, JsonObject>>,
): Promise<void> {
  const byServer = new Map<string, JsonObject>();
  for (const [userId, byDevice] of remote) {
    const server = serverOfUser(userId);
    if (!server || server === ctx.config.server_name) continue;
    let messages = byServer.get(server);
    if (!messages) byServer.set(server, (messages = {}));
    messages[userId] = Object.fromEntries(byDevice);
  }
  for (const [server, messages] of byServer) {
    const content: JsonObject = { sender, type, message_id: randomBytes(16).toString('hex'), messages };
    ctx.federation.sender.sendEdu([server], { edu_type: 'm.direct_to_device', content });
  }
  if (byServer.size > 0) await ctx.federation.sender.flushQueue?.();
}
