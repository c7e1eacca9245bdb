/**
 * Mounting the media repository in the homeserver: every listener app with the `client` or
 * `media` resource registers the routes, and every one with `federation` the federation media
 * endpoints; they share one MediaService per running homeserver, closed with the last of those
 * apps. Remote media is fetched through the homeserver's federation client.
 */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../homeserver/src/context.js';
import { requireUser } from '../../homeserver/src/http/auth.js';
import { requireServer } from '../../homeserver/src/http/x-matrix.js';
import { createMediaService, type MediaService } from './create.js';
import type { MediaAuth } from './http/context.js';
import { registerFederationMediaRoutes } from './http/federation-routes.js';
import { SAFE_HEADERS } from './http/headers.js';
import { mediaRoutes } from './http/plugin.js';
import { FederationMediaFetcher } from './remote-fetch.js';

interface Shared {
  service: Promise<MediaService>;
  apps: number;
}

const services = new WeakMap<ServerContext, Shared>();

/** The media service of a running homeserver (once a listener mounted it). */
export function mediaServiceOf(ctx: ServerContext): Promise<MediaService> | undefined {
  return services.get(ctx)?.service;
}

/**
 * The shared media service of the homeserver, created by the first app that needs it, closed
 * with the last one. It fetches remote media through the homeserver's federation client.
 */
async function acquireService(app: FastifyInstance, ctx: ServerContext): Promise<MediaService> {
  let shared = services.get(ctx);
  if (!shared) {
    shared = { service: createMediaService(ctx.config, ctx.storage, ctx.log.child({ component: 'media' })), apps: 0 };
    services.set(ctx, shared);
  }
  const entry = shared;
  const service = await entry.service.catch((err: unknown) => {
    if (services.get(ctx) === entry) services.delete(ctx);
    throw err;
  });
  service.repo.remote ??= new FederationMediaFetcher(ctx.federation.client);
  entry.apps++;
  app.addHook('onClose', async () => {
    if (--entry.apps > 0) return;
    if (services.get(ctx) === entry) services.delete(ctx);
    await service.close();
  });
  return service;
}

export async function mountMediaRepo(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const service = await acquireService(app, ctx);
  await app.register(mediaRoutes, {
    repo: service.repo,
    previewer: service.previewer,
    rateLimiter: ctx.rateLimiter,
    auth: mediaAuthOf(ctx),
  });
}

/**
 * The federation media endpoints (`/_matrix/federation/v1/media/download|thumbnail/{mediaId}`)
 * on a listener with the `federation` resource, behind X-Matrix verification.
 */
export async function mountFederationMedia(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const service = await acquireService(app, ctx);
  await app.register(async (scoped) => {
    scoped.addHook('onSend', async (_request, reply, payload) => {
      for (const [name, value] of Object.entries(SAFE_HEADERS)) void reply.header(name, value);
      return payload;
    });
    registerFederationMediaRoutes(scoped, {
      repo: service.repo,
      previewer: service.previewer,
      rateLimiter: ctx.rateLimiter,
      auth: mediaAuthOf(ctx),
      federationAuth: (request) => requireServer(ctx, request),
    });
  });
}

function mediaAuthOf(ctx: ServerContext): MediaAuth {
  return {
    requireUser: (request, opts) => requireUser(ctx, request, opts),
    isAdmin: async (userId) => (await ctx.storage.accounts.getUser(userId))?.admin ?? false,
  };
}
