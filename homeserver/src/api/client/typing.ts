/** Client-Server API, "Typing Notifications": `PUT /rooms/{roomId}/typing/{userId}`. */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../context.js';
import { requireUser } from '../../http/auth.js';
import { federateTyping } from '../../federation/outgoing-edus.js';
import { forbidden } from '../../http/errors.js';
import { requireSelf } from './filter.js';
import { roomIdParam } from './params.js';

const typingBody = {
  type: 'object',
  required: ['typing'],
  properties: { typing: { type: 'boolean' }, timeout: { type: 'integer', minimum: 0 } },
} as const;

export function registerTyping(app: FastifyInstance, ctx: ServerContext): void {
  app.put('/_matrix/client/v3/rooms/:roomId/typing/:userId', { schema: { body: typingBody } }, async (req) => {
    const requester = await requireUser(ctx, req, { allowGuest: true });
    requireSelf(req, requester, 'Cannot set the typing state of another user');
    const roomId = roomIdParam(req);
    const membership = await ctx.storage.memberships.get(roomId, requester.userId);
    if (membership?.membership !== 'join') throw forbidden('You are not in this room');
    const body = req.body as { typing: boolean; timeout?: number };
    ctx.sync.typing.setTyping(roomId, requester.userId, body.typing, body.timeout);
    federateTyping(ctx, roomId, requester.userId, body.typing, body.timeout);
    return {};
  });
}
