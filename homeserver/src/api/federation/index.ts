/**
 * The Server-Server API routes, one module per spec section. Routes that need the requesting
 * server call `requireServer` (http/x-matrix.ts) first.
 */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../context.js';
import { registerFederationQueries } from './queries.js';
import { registerEventRetrieval } from './events.js';
import { registerTransactions } from './transactions.js';
import { registerFederationMembership } from './membership.js';
import { registerKeyQuery } from './keys.js';

export function registerFederationApi(app: FastifyInstance, ctx: ServerContext): void {
  registerFederationQueries(app, ctx);
  void app;
  void ctx;
  registerTransactions(app, ctx);
  registerEventRetrieval(app, ctx);
  registerFederationMembership(app, ctx);
  registerKeyQuery(app, ctx);
}
