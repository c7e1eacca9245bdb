/**
 * The Server-Server API routes, one module per spec section. Routes that need the requesting
 * server call `requireServer` (http/x-matrix.ts) first.
 */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../context.js';

export function registerFederationApi(app: FastifyInstance, ctx: ServerContext): void {
  void app;
  void ctx;
}
