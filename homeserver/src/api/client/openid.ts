/**
 * Client-Server API, "OpenID": `POST /user/{userId}/openid/request_token`. The token proves the
 * user's identity to a third party, which checks it with this server's
 * `GET /_matrix/federation/v1/openid/userinfo` (api/federation/queries.ts).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../context.js';
import { requireUser } from '../../http/auth.js';
import { OpenIdTokensStore } from '../../storage/federation-queues-store.js';
import { requireSelf } from './filter.js';
import { emptyBodyAsObject } from './params.js';

/** As Synapse: an hour. */
const OPENID_TOKEN_LIFETIME_S = 3600;

export function registerOpenId(app: FastifyInstance, ctx: ServerContext): void {
  const tokens = new OpenIdTokensStore(ctx.storage.db);
  app.post(
    '/_matrix/client/v3/user/:userId/openid/request_token',
    { preValidation: emptyBodyAsObject, schema: { body: { type: 'object' } } },
    async (req) => {
      const requester = await requireUser(ctx, req);
      requireSelf(req, requester, 'Cannot request an OpenID token for another user');
      const token = randomBytes(24).toString('base64url');
      await tokens.create(token, requester.userId, Date.now() + OPENID_TOKEN_LIFETIME_S * 1000);
      return { access_token: token, token_type: 'Bearer', matrix_server_name: ctx.config.server_name, expires_in: OPENID_TOKEN_LIFETIME_S };
    },
  );
}
