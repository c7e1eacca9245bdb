/**
 * Client-Server API, "Receipts" and "Fully read markers": `POST /rooms/{roomId}/receipt/…` and
 * `POST /rooms/{roomId}/read_markers`. Receipts are stored in their stream (m.read for everyone
 * in the room, m.read.private for its owner only); the fully-read marker is the room account
 * data `m.fully_read`.
 */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../context.js';
import { federateReceipt } from '../../federation/outgoing-edus.js';
import { requireUser, type Requester } from '../../http/auth.js';
import { forbidden, invalidParam, notFound } from '../../http/errors.js';
import { emptyBodyAsObject, pathParam, roomIdParam } from './params.js';

const RECEIPT_TYPES = new Set(['m.read', 'm.read.private', 'm.fully_read']);

const receiptBody = { type: 'object', properties: { thread_id: { type: 'string' } } } as const;
const markersBody = {
  type: 'object',
  properties: {
    'm.fully_read': { type: 'string' },
    'm.read': { type: 'string' },
    'm.read.private': { type: 'string' },
  },
} as const;

export function registerReceipts(app: FastifyInstance, ctx: ServerContext): void {
  app.post(
    '/_matrix/client/v3/rooms/:roomId/receipt/:receiptType/:eventId',
    { preValidation: emptyBodyAsObject, schema: { body: receiptBody } },
    async (req) => {
      const requester = await requireUser(ctx, req, { allowGuest: true });
      const roomId = roomIdParam(req);
      const receiptType = pathParam(req, 'receiptType');
      if (!RECEIPT_TYPES.has(receiptType)) throw invalidParam(`Unknown receipt type ${JSON.stringify(receiptType)}`);
      const threadId = (req.body as { thread_id?: string }).thread_id;
      if (threadId !== undefined) {
        if (threadId === '') throw invalidParam('thread_id must be a non-empty string');
        if (receiptType === 'm.fully_read') throw invalidParam('m.fully_read does not take a thread_id');
        if (threadId !== 'main' && !threadId.startsWith('$')) throw invalidParam('thread_id must be "main" or an event id');
      }
      const eventId = pathParam(req, 'eventId');
      await checkTarget(ctx, requester, roomId, eventId);
      if (receiptType === 'm.fully_read') await setFullyRead(ctx, requester, roomId, eventId);
      else await sendReceipt(ctx, requester, roomId, receiptType, eventId, threadId ?? '');
      return {};
    },
  );

  app.post('/_matrix/client/v3/rooms/:roomId/read_markers', { schema: { body: markersBody } }, async (req) => {
    const requester = await requireUser(ctx, req, { allowGuest: true });
    const roomId = roomIdParam(req);
    const body = req.body as Record<'m.fully_read' | 'm.read' | 'm.read.private', string | undefined>;
    for (const eventId of Object.values(body)) if (eventId !== undefined) await checkTarget(ctx, requester, roomId, eventId);
    if (body['m.fully_read'] !== undefined) await setFullyRead(ctx, requester, roomId, body['m.fully_read']);
    if (body['m.read'] !== undefined) await sendReceipt(ctx, requester, roomId, 'm.read', body['m.read'], '');
    if (body['m.read.private'] !== undefined) await sendReceipt(ctx, requester, roomId, 'm.read.private', body['m.read.private'], '');
    return {};
  });
}

/** The requester is in the room, and the event is one of the room's. */
async function checkTarget(ctx: ServerContext, requester: Requester, roomId: string, eventId: string): Promise<void> {
  const membership = await ctx.storage.memberships.get(roomId, requester.userId);
  if (membership?.membership !== 'join') throw forbidden('You are not in this room');
  if (!eventId.startsWith('$')) throw invalidParam(`Invalid event id ${JSON.stringify(eventId)}`);
  const event = await ctx.storage.events.getEvent(eventId);
  if (!event || event.room_id !== roomId) throw notFound('Event not found in this room');
}

async function sendReceipt(
  ctx: ServerContext,
  requester: Requester,
  roomId: string,
  receiptType: string,
  eventId: string,
  threadId: string,
): Promise<void> {
  const ts = Date.now();
  const position = await ctx.storage.receipts.put({ roomId, receiptType, userId: requester.userId, threadId, eventId, ts });
  // Either kind of read receipt clears the notifications up to the event (push-store.ts).
  const info = await ctx.storage.events.getEventInfo(eventId);
  if (info) await ctx.storage.push.markRead(requester.userId, roomId, info.streamPosition, threadId === '' ? undefined : threadId);
  if (position === undefined) return;
  federateReceipt(ctx, { roomId, receiptType, userId: requester.userId, eventId, threadId, ts });
  // A private receipt concerns its owner only.
  ctx.notifier.notify(receiptType === 'm.read.private' ? { userIds: [requester.userId] } : { roomId });
}

async function setFullyRead(ctx: ServerContext, requester: Requester, roomId: string, eventId: string): Promise<void> {
  await ctx.storage.accountData.put(requester.userId, roomId, 'm.fully_read', { event_id: eventId });
  ctx.notifier.notify({ userIds: [requester.userId] });
}
