/** Client-Server API, "Creation": `POST /createRoom`. */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../context.js';
import { requireUser } from '../../http/auth.js';
import { badJson } from '../../http/errors.js';
import { createRoom, type CreateRoomRequest } from '../../rooms/create-room.js';
import { isValidUserId } from '../../rooms/power-levels.js';
import { emptyBodyAsObject } from './params.js';
import { serverNameOf } from '../../events/event-signing.js';
import { inviteCountersigner } from '../../rooms/remote-membership.js';

const stateEvent = {
  type: 'object',
  required: ['type', 'content'],
  properties: { type: { type: 'string' }, state_key: { type: 'string' }, content: { type: 'object' } },
} as const;

const createRoomBody = {
  type: 'object',
  properties: {
    visibility: { type: 'string', enum: ['public', 'private'] },
    room_alias_name: { type: 'string' },
    name: { type: 'string' },
    topic: { type: 'string' },
    invite: { type: 'array', items: { type: 'string' } },
    invite_3pid: { type: 'array' },
    room_version: { type: 'string' },
    creation_content: { type: 'object' },
    initial_state: { type: 'array', items: stateEvent },
    preset: { type: 'string', enum: ['private_chat', 'public_chat', 'trusted_private_chat'] },
    is_direct: { type: 'boolean' },
    power_level_content_override: { type: 'object' },
  },
} as const;

export function registerRoomCreation(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/_matrix/client/v3/createRoom', { preValidation: emptyBodyAsObject, schema: { body: createRoomBody } }, async (req) => {
    const requester = await requireUser(ctx, req);
    const body = req.body as CreateRoomRequest;
    for (const invitee of body.invite ?? []) {
      if (!isValidUserId(invitee)) throw badJson(`invite: ${JSON.stringify(invitee)} is not a user id`);
    }
    const roomId = await createRoom(
      {
        storage: ctx.storage,
        pipeline: ctx.pipeline,
        serverName: ctx.config.server_name,
        defaultRoomVersion: ctx.config.default_room_version,
        countersignInvite: (roomId, invitee) =>
          serverNameOf(invitee) !== ctx.config.server_name ? inviteCountersigner(ctx, roomId, invitee) : undefined,
      },
      requester.userId,
      body,
    );
    return { room_id: roomId };
  });
}
