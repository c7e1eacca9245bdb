/**
 * The Fastify app of one listener: the Matrix conventions every endpoint shares (JSON bodies,
 * Matrix errors, CORS, 404/405 M_UNRECOGNIZED) and the API modules of the listener's resources.
 */
import cors from '@fastify/cors';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import FindMyWay from 'find-my-way';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import type { ServerContext } from '../context.js';
import { registerAccounts } from '../api/client/account.js';
import { registerRelations } from '../api/client/relations.js';
import { registerRoomCreation } from '../api/client/room-creation.js';
import { registerSearch } from '../api/client/search.js';
import { registerRoomEvents } from '../api/client/room-events.js';
import { registerRoomMembership } from '../api/client/room-membership.js';
import { registerVersions } from '../api/client/versions.js';
import { registerCapabilities } from '../api/client/capabilities.js';
import { registerProfile } from '../api/client/profile.js';
import { registerRoomDirectory } from '../api/client/room-directory.js';
import { registerRoomSummary } from '../api/client/room-summary.js';
import { registerRoomUpgrades } from '../api/client/room-upgrades.js';
import { registerTimestampToEvent } from '../api/client/timestamp-to-event.js';
import { registerUserDirectory } from '../api/client/user-directory.js';
import { registerFilters } from '../api/client/filter.js';
import { registerSync } from '../api/client/sync.js';
import { registerMessages } from '../api/client/messages.js';
import { registerTyping } from '../api/client/typing.js';
import { registerReceipts } from '../api/client/receipts.js';
import { registerPresence } from '../api/client/presence.js';
import { registerAccountData } from '../api/client/account-data.js';
import { registerNotifications } from '../api/client/notifications.js';
import { registerPushRules } from '../api/client/push-rules.js';
import { registerPushers } from '../api/client/pushers.js';
import { registerKeys } from '../api/client/keys.js';
import { registerKeyBackup } from '../api/client/key-backup.js';
import { registerToDevice } from '../api/client/to-device.js';
import { registerDehydratedDevice } from '../api/client/dehydrated-device.js';
import { registerOpenId } from '../api/client/openid.js';
import { registerKeyServer } from '../api/federation/keys.js';
import { registerFederationVersion } from '../api/federation/version.js';
import { registerFederationApi } from '../api/federation/index.js';
import { registerWellKnown } from '../api/well-known.js';
import { registerWebClient } from './web-client.js';
import { mountFederationMedia, mountMediaRepo } from '../../../media-repo/src/mount.js';
import { fromFrameworkError, MatrixError, notJson, unrecognized } from './errors.js';
import { lazyValidatorFactory } from './lazy-validation.js';

/** Every route of a listener app, as `app.hearthRoutes` (for tests that sweep all endpoints). */
export interface RouteSummary {
  method: string;
  url: string;
}

export interface ListenerAppOptions {
  resources: ReadonlySet<string>;
  https?: HttpsServerOptions;
  trustProxy?: boolean;
}

/** The methods clients use; a path known under another method answers 405, not 404. */
const METHODS = ['GET', 'POST', 'PUT', 'DELETE'] as const;

export async function buildListenerApp(ctx: ServerContext, opts: ListenerAppOptions): Promise<FastifyInstance> {
  // Route schemas compile on each route's first request, not at start-up (lazy-validation.ts).
  const lazy = lazyValidatorFactory();
  const serverOptions: FastifyServerOptions & { https?: HttpsServerOptions } = {
    loggerInstance: ctx.log,
    logController: new OneLinePerRequest(),
    trustProxy: opts.trustProxy ?? false,
    // Event content is at most 64 KiB; batches (keys, to-device) stay well under this.
    bodyLimit: 10 * 1024 * 1024,
    return503OnClosing: true,
    // On shutdown, idle keep-alive connections close at once; requests in flight still finish.
    forceCloseConnections: 'idle',
    routerOptions: {
      // `/state/m.room.name/` (empty state key) and `/state/m.room.name` are the same request.
      ignoreTrailingSlash: true,
      // Path parameters (user ids, aliases, state keys, profile keys) may be 255 bytes, percent-encoded.
      maxParamLength: 2048,
    },
    // Wrong types are 400 M_BAD_JSON, never silently converted; query strings are parsed by hand.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false } },
    schemaController: { compilersFactory: { buildValidator: lazy.buildValidator as never } },
    ...(opts.https ? { https: opts.https } : {}),
  };
  const app = Fastify(serverOptions) as unknown as FastifyInstance;
  // Tests compile every route's schemas at once: a broken schema must fail there, not on a request.
  app.decorate('hearthCompileSchemas', () => lazy.validators.compileAll());

  useMatrixJsonBodies(app);
  useMatrixErrors(app);
  await app.register(cors, {
    origin: '*',
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
    allowedHeaders: ['X-Requested-With', 'Content-Type', 'Authorization'],
  });

  const has = (name: string) => opts.resources.has(name);
  if (has('client') || has('federation')) registerWellKnown(app, ctx.config);
  if (has('client')) {
    registerVersions(app);
    registerAccounts(app, ctx);
    registerRoomCreation(app, ctx);
    registerRoomMembership(app, ctx);
    registerRoomEvents(app, ctx);
    registerRelations(app, ctx);
    registerSearch(app, ctx);
    registerProfile(app, ctx);
    registerUserDirectory(app, ctx);
    registerRoomDirectory(app, ctx);
    registerCapabilities(app, ctx);
    registerRoomUpgrades(app, ctx);
    registerRoomSummary(app, ctx);
    registerTimestampToEvent(app, ctx);
    registerSync(app, ctx);
    registerFilters(app, ctx);
    registerMessages(app, ctx);
    registerTyping(app, ctx);
    registerReceipts(app, ctx);
    registerPresence(app, ctx);
    registerAccountData(app, ctx);
    registerPushRules(app, ctx);
    registerPushers(app, ctx);
    registerNotifications(app, ctx);
    registerKeys(app, ctx);
    registerToDevice(app, ctx);
    registerKeyBackup(app, ctx);
    registerDehydratedDevice(app, ctx);
    registerOpenId(app, ctx);
  }
  // The media repository (media-repo/): in this process unless a separate media-repo serves it.
  if ((has('client') || has('media')) && ctx.config.enable_media_repo) await mountMediaRepo(app, ctx);
  if (has('federation') && ctx.config.enable_media_repo) await mountFederationMedia(app, ctx);
  if ((has('client') || has('webclient')) && ctx.config.serve_web_client) registerWebClient(app);
  if (has('federation') || has('keys')) registerKeyServer(app, ctx.keyResponses);
  if (has('federation')) {
    registerFederationVersion(app);
    registerFederationApi(app, ctx);
  }

  return app;
}

/**
 * Parses every request body as JSON whatever its content type (clients are not consistent about
 * it), and answers malformed JSON with 400 M_NOT_JSON. An empty body parses as undefined.
 */
function useMatrixJsonBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(notJson('Request body is not valid JSON'), undefined);
    }
  });
}

function useMatrixErrors(app: FastifyInstance): void {
  const routes: RouteSummary[] = [];
  app.decorate('hearthRoutes', routes);
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat().filter((m) => m !== 'HEAD' && m !== 'OPTIONS');
    for (const method of methods) routes.push({ method, url: route.url });
  });
  // A second router over the same routes, to tell "unknown path" (404) from "wrong method" (405);
  // built on the first unknown request (its routes cost as much as Fastify's own at start-up).
  let knownPaths: ReturnType<typeof FindMyWay> | undefined;
  const knownPathsRouter = () => {
    if (knownPaths) return knownPaths;
    knownPaths = FindMyWay();
    for (const { method, url } of routes) {
      if (!knownPaths.hasRoute(method as 'GET', url)) knownPaths.on(method as 'GET', url, () => {});
    }
    return knownPaths;
  };

  const unrecognizedRequest = (request: FastifyRequest): MatrixError => {
    const path = request.url.split('?')[0]!;
    const router = knownPathsRouter();
    const otherMethod = METHODS.some((m) => m !== request.method && router.find(m, path) !== null);
    return otherMethod ? unrecognized(405, 'Unrecognized request: method not allowed') : unrecognized(404);
  };

  app.setNotFoundHandler((request, reply) => {
    const error = unrecognizedRequest(request);
    void reply.code(error.statusCode).send(error.toJSON());
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    // Fastify parses the body of an unknown route too: its errors must not hide the 404/405.
    const matrixError = request.is404 ? unrecognizedRequest(request) : fromFrameworkError(err);
    if (matrixError) {
      return reply.code(matrixError.statusCode).send(matrixError.toJSON());
    }
    request.log.error({ err }, 'unhandled error');
    const internal = new MatrixError(500, 'M_UNKNOWN', 'Internal server error');
    return reply.code(500).send(internal.toJSON());
  });
}

/**
 * Fastify logs two lines per request (received, completed), each with the whole URL; one line at
 * completion carries the same (method, URL, status, time) at half the cost of every request, and
 * hides the deprecated `access_token` query parameter. Errors are logged as Fastify does.
 */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) {
      super.requestCompleted(error, request, reply);
      return;
    }
    reply.log.info(
      {
        method: request.method,
        url: withoutAccessToken(request.url),
        statusCode: reply.statusCode,
        responseTime: Math.round(reply.elapsedTime * 10) / 10,
      },
      'request completed',
    );
  }
}

/** The deprecated `access_token` query parameter must not reach the logs. */
export function withoutAccessToken(url: string): string {
  return url.includes('access_token=') ? url.replace(/([?&]access_token=)[^&#]*/g, '$1<redacted>') : url;
}
