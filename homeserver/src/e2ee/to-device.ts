/**
 * Sending to-device messages (spec "Send-to-Device messaging"): checks the request, queues a
 * message per recipient device (`*`: every device of the user) and wakes the recipients' /sync.
 * Delivery and deletion are the to-device store's and sync provider's (storage/to-device-store.ts).
 * Messages for users of other servers go out as m.direct_to_device EDUs (federation/outgoing-edus.ts).
 */
import type { ServerContext } from '../context.js';
import type { JsonObject } from '../events/types.js';
import { federateToDevice } from '../federation/outgoing-edus.js';
import { badJson, invalidParam, tooLarge } from '../http/errors.js';
import { isObject, isUserId, serverOf } from './validation.js';

/** Messages (recipient devices named) in one request. Encrypting to a big room names many. */
export const MAX_TO_DEVICE_MESSAGES = 20_000;
/** The content of one message. */
export const MAX_TO_DEVICE_CONTENT_BYTES = 64 * 1024;

export interface ToDeviceRequest {
  sender: string;
  senderDeviceId: string | undefined;
  type: string;
  txnId: string;
  body: unknown;
}

export async function sendToDevice(ctx: ServerContext, r: ToDeviceRequest): Promise<void> {
  if (r.type === '' || r.type.length > 255) throw invalidParam('Invalid event type');
  if (r.txnId === '' || r.txnId.length > 255) throw invalidParam('Invalid transaction id');
  if (!isObject(r.body) || !isObject(r.body.messages)) throw badJson('messages must be an object');
  const serverName = ctx.config.server_name;
  const local = new Map<string, Map<string, JsonObject>>();
  const remote = new Map<string, Map<string, JsonObject>>();
  let count = 0;
  for (const [userId, byDevice] of Object.entries(r.body.messages)) {
    if (!isUserId(userId)) throw invalidParam(`${JSON.stringify(userId.slice(0, 100))} is not a user id`);
    if (!isObject(byDevice)) throw badJson('messages must map user ids to device ids to contents');
    const devices = new Map<string, JsonObject>();
    for (const [deviceId, content] of Object.entries(byDevice)) {
      if (!isObject(content)) throw badJson('Each message content must be an object');
      if (++count > MAX_TO_DEVICE_MESSAGES) throw tooLarge(`At most ${MAX_TO_DEVICE_MESSAGES} messages per request`);
      if (Buffer.byteLength(JSON.stringify(content), 'utf8') > MAX_TO_DEVICE_CONTENT_BYTES) throw tooLarge('A message content is too large');
      devices.set(deviceId, content);
    }
    if (serverOf(userId) === serverName) local.set(userId, devices);
    else remote.set(userId, devices);
  }
  const result = await ctx.storage.toDevice.send({
    sender: r.sender,
    senderDeviceId: r.senderDeviceId ?? '',
    txnId: r.txnId,
    type: r.type,
    messages: local,
  });
  if (result.recipients.length > 0) ctx.notifier.notify({ userIds: result.recipients });
  // A retried client transaction (sent false) is not sent again.
  if (result.sent && remote.size > 0) await federateToDevice(ctx, r.sender, r.type, remote);
}
