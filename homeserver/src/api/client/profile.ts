/**
 * Client-Server API, "Profiles": `GET /profile/{userId}`, and `GET/PUT/DELETE
 * /profile/{userId}/{keyName}` for `displayname`, `avatar_url` and the extended fields of v1.16
 * (`m.tz`, custom namespaced keys with any JSON value).
 *
 * - Only the user changes their own profile (403 M_FORBIDDEN otherwise).
 * - The whole profile stays under 64 KiB (M_PROFILE_TOO_LARGE); keys are at most 255 bytes
 *   (M_KEY_TOO_LARGE) and follow the spec's key grammar (M_INVALID_PARAM).
 * - A change of `displayname` or `avatar_url` is carried into the user's m.room.member event in
 *   every room they are joined to (spec "Events on Change of Profile Information"), each sent
 *   through the room event pipeline; a room that refuses does not fail the profile update.
 * - Look-ups: `require_auth_for_profile_requests` and
 *   `limit_profile_requests_to_users_who_share_rooms` (Synapse's options) restrict them.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../../context.js';
import type { JsonObject, JsonValue } from '../../events/types.js';
import { readAccessToken, requireUser } from '../../http/auth.js';
import { badJson, forbidden, MatrixError, notFound } from '../../http/errors.js';
import { remoteProfile } from '../../federation/queries-client.js';
import { domainOf, isValidUserId } from '../../rooms/power-levels.js';
import { pathParam } from './params.js';
import { userVisibleTo } from './user-directory.js';

/** The spec's limit on a whole profile, in bytes of JSON. */
export const MAX_PROFILE_BYTES = 64 * 1024;
/** The spec's limit on a key, in bytes. */
const MAX_KEY_BYTES = 255;
/** As Synapse: display names up to 256 characters, avatar URLs up to 1000. */
export const MAX_DISPLAYNAME_LENGTH = 256;
const MAX_AVATAR_URL_LENGTH = 1000;

/** `displayname`, `avatar_url`, or a key in the Common Namespaced Identifier Grammar with a dot. */
const KEY_PATTERN = /^(?:displayname|avatar_url|[a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)+)$/;
const MXC_URI = /^mxc:\/\/[A-Za-z0-9.:[\]-]+\/[A-Za-z0-9_-]+$/;

const objectBody = { type: 'object' } as const;

export function registerProfile(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/_matrix/client/v3/profile/:userId', async (req) => {
    const userId = await lookupTarget(ctx, req);
    if (domainOf(userId) !== ctx.config.server_name) return remoteProfile(ctx, userId);
    return fullProfile(ctx, userId);
  });

  app.get('/_matrix/client/v3/profile/:userId/:keyName', async (req) => {
    const key = checkedKey(req);
    const userId = await lookupTarget(ctx, req);
    const remote = domainOf(userId) !== ctx.config.server_name;
    // The federation query knows displayname and avatar_url; other keys come with the whole profile.
    const profile = remote ? await remoteProfile(ctx, userId, key === 'displayname' || key === 'avatar_url' ? key : undefined) : await fullProfile(ctx, userId);
    if (!Object.hasOwn(profile, key)) throw notFound(`The user has no profile field ${key}`);
    return { [key]: profile[key]! };
  });

  app.put('/_matrix/client/v3/profile/:userId/:keyName', { schema: { body: objectBody } }, async (req, reply) => {
    const userId = await ownProfile(ctx, req);
    const key = checkedKey(req);
    ctx.rateLimiter.check('profile', userId, ctx.config.rc_message, reply);
    const body = req.body as JsonObject;
    if (!Object.hasOwn(body, key)) throw new MatrixError(400, 'M_MISSING_PARAM', `The body must have the key ${JSON.stringify(key)}`);
    const value = checkedValue(key, body[key]!);

    const profile = await fullProfile(ctx, userId);
    if (value === undefined) delete profile[key];
    else profile[key] = value;
    if (Buffer.byteLength(JSON.stringify(profile), 'utf8') > MAX_PROFILE_BYTES) {
      throw new MatrixError(400, 'M_PROFILE_TOO_LARGE', `A profile may be at most ${MAX_PROFILE_BYTES} bytes`);
    }
    await setField(ctx, userId, key, value);
    return {};
  });

  app.delete('/_matrix/client/v3/profile/:userId/:keyName', async (req, reply) => {
    const userId = await ownProfile(ctx, req);
    const key = checkedKey(req);
    ctx.rateLimiter.check('profile', userId, ctx.config.rc_message, reply);
    await setField(ctx, userId, key, undefined);
    return {};
  });
}

/** The user's whole profile: displayname and avatar_url when set, then the extended fields. */
export async function fullProfile(ctx: ServerContext, userId: string): Promise<Record<string, JsonValue>> {
  const user = await ctx.storage.accounts.getUser(userId);
  const profile: Record<string, JsonValue> = {};
  if (user?.displayname) profile.displayname = user.displayname;
  if (user?.avatarUrl) profile.avatar_url = user.avatarUrl;
  for (const [key, value] of Object.entries(await ctx.storage.profiles.getFields(userId))) {
    if (key !== 'displayname' && key !== 'avatar_url') profile[key] = value;
  }
  return profile;
}

/**
 * Sets (or with `undefined`, removes) one field. Display name and avatar changes are carried
 * into the user's member events.
 */
async function setField(ctx: ServerContext, userId: string, key: string, value: JsonValue | undefined): Promise<void> {
  if (key === 'displayname' || key === 'avatar_url') {
    const user = await ctx.storage.accounts.getUser(userId);
    const before = key === 'displayname' ? user?.displayname : user?.avatarUrl;
    const after = (value as string | undefined) ?? null;
    if ((before ?? null) === after) return;
    await ctx.storage.accounts.setProfile(userId, key === 'displayname' ? { displayname: after } : { avatarUrl: after });
    await updateMemberEvents(ctx, userId);
    return;
  }
  if (value === undefined) await ctx.storage.profiles.deleteField(userId, key);
  else await ctx.storage.profiles.setField(userId, key, value);
}

/**
 * Sends an updated m.room.member event (membership join, the new display name and avatar, the
 * rest of the content kept) into every room the user is joined to. Failures are logged only.
 */
export async function updateMemberEvents(ctx: ServerContext, userId: string): Promise<void> {
  const user = await ctx.storage.accounts.getUser(userId);
  const rooms = await ctx.storage.memberships.roomsForUser(userId, ['join']);
  await Promise.all(
    rooms.map(async ({ roomId }) => {
      try {
        const current = await ctx.storage.events.getCurrentStateEvent(roomId, 'm.room.member', userId);
        if (current?.content.membership !== 'join') return;
        // A reason belongs to the original join; a restricted-join authorisation only to the join itself.
        const { reason: _reason, join_authorised_via_users_server: _via, displayname: _d, avatar_url: _a, ...rest } = current.content;
        const content: JsonObject = { ...rest, membership: 'join' };
        if (user?.displayname) content.displayname = user.displayname;
        if (user?.avatarUrl) content.avatar_url = user.avatarUrl;
        if (current.content.displayname === content.displayname && current.content.avatar_url === content.avatar_url) return;
        await ctx.pipeline.send(roomId, userId, { type: 'm.room.member', state_key: userId, content });
      } catch (err) {
        ctx.log.warn({ err, roomId, userId }, 'could not update the member event after a profile change');
      }
    }),
  );
}

/** The key name of the path, checked against the spec's grammar. */
function checkedKey(req: FastifyRequest): string {
  const key = pathParam(req, 'keyName');
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw new MatrixError(400, 'M_KEY_TOO_LARGE', `Profile keys may be at most ${MAX_KEY_BYTES} bytes`);
  }
  if (!KEY_PATTERN.test(key)) {
    throw new MatrixError(400, 'M_INVALID_PARAM', `Invalid profile key ${JSON.stringify(key)}: use displayname, avatar_url, m.tz or a namespaced key such as com.example.field`);
  }
  return key;
}

/** The value to store, checked for the key; undefined means "clear" (an empty name or avatar). */
function checkedValue(key: string, value: JsonValue): JsonValue | undefined {
  switch (key) {
    case 'displayname':
      if (typeof value !== 'string') throw badJson('displayname must be a string');
      if ([...value].length > MAX_DISPLAYNAME_LENGTH) {
        throw new MatrixError(400, 'M_INVALID_PARAM', `displayname may be at most ${MAX_DISPLAYNAME_LENGTH} characters`);
      }
      return value === '' ? undefined : value;
    case 'avatar_url':
      if (typeof value !== 'string') throw badJson('avatar_url must be a string (an mxc:// URI)');
      if (value === '') return undefined;
      if (value.length > MAX_AVATAR_URL_LENGTH || !MXC_URI.test(value)) {
        throw new MatrixError(400, 'M_INVALID_PARAM', 'avatar_url must be an mxc:// URI');
      }
      return value;
    case 'm.tz':
      if (typeof value !== 'string') throw badJson('m.tz must be a string (an IANA time zone)');
      return value;
    default:
      return value;
  }
}

/** The user whose profile is looked up: local, existing, and visible to the requester. */
async function lookupTarget(ctx: ServerContext, req: FastifyRequest): Promise<string> {
  const userId = checkedUserId(req);
  let viewer: string | undefined;
  if (ctx.config.require_auth_for_profile_requests || readAccessToken(req) !== undefined) {
    viewer = (await requireUser(ctx, req, { allowGuest: true })).userId;
  }
  if (ctx.config.limit_profile_requests_to_users_who_share_rooms && !(await userVisibleTo(ctx.storage, viewer, userId))) {
    throw forbidden('You may only look up the profiles of users you share a room with');
  }
  // Users of other servers are asked over federation by the caller.
  if (domainOf(userId) !== ctx.config.server_name) return userId;
  const user = await ctx.storage.accounts.getUser(userId);
  if (!user || user.deactivated) throw notFound('Profile not found');
  return userId;
}

/** The user of the path, who must be the requester. */
async function ownProfile(ctx: ServerContext, req: FastifyRequest): Promise<string> {
  const requester = await requireUser(ctx, req, { allowGuest: true });
  const userId = checkedUserId(req);
  if (userId !== requester.userId) throw forbidden("You may not change another user's profile");
  return userId;
}

function checkedUserId(req: FastifyRequest): string {
  const userId = pathParam(req, 'userId');
  if (!isValidUserId(userId)) throw new MatrixError(400, 'M_INVALID_PARAM', `Invalid user id ${JSON.stringify(userId)}`);
  return userId;
}
