/**
 * Room creation (Client-Server API, `POST /createRoom`): the events of a new room, in the order
 * the spec gives, each sent through the room event pipeline.
 *
 *   m.room.create → creator's join → m.room.power_levels → m.room.canonical_alias
 *   → preset state (join rules, history visibility, guest access) → initial_state
 *   → m.room.name → m.room.topic → invites
 */
import type { JsonObject, Pdu } from '../events/types.js';
import { badJson, MatrixError } from '../http/errors.js';
import type { Storage } from '../storage/database.js';
import type { RoomEventPipeline } from './pipeline.js';
import { getRoomVersion, type RoomVersion } from './room-versions.js';

export type Preset = 'private_chat' | 'public_chat' | 'trusted_private_chat';

export interface CreateRoomRequest {
  visibility?: 'public' | 'private';
  room_alias_name?: string;
  name?: string;
  topic?: string;
  invite?: string[];
  room_version?: string;
  creation_content?: JsonObject;
  initial_state?: Array<{ type: string; state_key?: string; content: JsonObject }>;
  preset?: Preset;
  is_direct?: boolean;
  power_level_content_override?: JsonObject;
}

export interface CreateRoomDeps {
  storage: Storage;
  pipeline: RoomEventPipeline;
  serverName: string;
  defaultRoomVersion: string;
  /** The countersign step for an invite of a user of another server (rooms/remote-membership.ts). */
  countersignInvite?: (roomId: string, invitee: string) => ((pdu: Pdu) => Promise<Pdu>) | undefined;
}

export async function createRoom(deps: CreateRoomDeps, creator: string, req: CreateRoomRequest): Promise<string> {
  const version = chooseVersion(req.room_version ?? deps.defaultRoomVersion);
  const preset: Preset = req.preset ?? (req.visibility === 'public' ? 'public_chat' : 'private_chat');
  const alias = req.room_alias_name !== undefined ? `#${req.room_alias_name}:${deps.serverName}` : undefined;
  if (alias) await checkAliasFree(deps.storage, alias, req.room_alias_name!);
  const invitees = [...new Set(req.invite ?? [])];
  const additionalCreators = creationCreators(req.creation_content, version);

  const { pipeline, storage } = deps;
  const { event: create } = await pipeline.create(version, creator, createContent(version, creator, req.creation_content));
  const roomId = create.room_id;
  const send = (type: string, content: JsonObject, stateKey = '') => pipeline.send(roomId, creator, { type, state_key: stateKey, content });

  await send('m.room.member', { membership: 'join', ...(await profileOf(storage, creator)) }, creator);
  await send('m.room.power_levels', powerLevels(version, creator, preset, invitees, additionalCreators, req.power_level_content_override));
  if (alias) {
    await storage.aliases.create(alias, roomId, creator);
    await send('m.room.canonical_alias', { alias });
  }

  const initial = new Map<string, { type: string; state_key: string; content: JsonObject }>();
  const put = (type: string, content: JsonObject, stateKey = '') => initial.set(JSON.stringify([type, stateKey]), { type, state_key: stateKey, content });
  put('m.room.join_rules', { join_rule: preset === 'public_chat' ? 'public' : 'invite' });
  put('m.room.history_visibility', { history_visibility: 'shared' });
  if (preset !== 'public_chat') put('m.room.guest_access', { guest_access: 'can_join' });
  // initial_state replaces preset state of the same key, as the spec says.
  for (const ev of req.initial_state ?? []) put(ev.type, ev.content, ev.state_key ?? '');
  for (const ev of initial.values()) await send(ev.type, ev.content, ev.state_key);

  if (req.name !== undefined) await send('m.room.name', { name: req.name });
  if (req.topic !== undefined) await send('m.room.topic', topicContent(req.topic));
  for (const invitee of invitees) {
    const content: JsonObject = { membership: 'invite', ...(req.is_direct ? { is_direct: true } : {}) };
    const countersign = deps.countersignInvite?.(roomId, invitee);
    await pipeline.send(roomId, creator, { type: 'm.room.member', state_key: invitee, content }, countersign ? { countersign } : {});
  }
  if (req.visibility === 'public') await storage.rooms.setPublic(roomId, true);
  return roomId;
}

function chooseVersion(id: string): RoomVersion {
  const version = getRoomVersion(id);
  if (!version) throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `Room version ${JSON.stringify(id)} is not supported`);
  return version;
}

async function checkAliasFree(storage: Storage, alias: string, localpart: string): Promise<void> {
  if (localpart === '' || /[:#\s]/.test(localpart) || alias.length > 255) {
    throw new MatrixError(400, 'M_INVALID_PARAM', 'room_alias_name must be a plain local part (no :, #, or spaces)');
  }
  if (await storage.aliases.get(alias)) throw new MatrixError(400, 'M_ROOM_IN_USE', `${alias} is already taken`);
}

function createContent(version: RoomVersion, creator: string, creationContent: JsonObject | undefined): JsonObject {
  const content: JsonObject = { ...(creationContent ?? {}), room_version: version.id };
  // Room versions 1–10 name the creator in the content; 11+ take the sender.
  if (!version.implicitRoomCreator) content.creator = creator;
  else delete content.creator;
  return content;
}

function creationCreators(creationContent: JsonObject | undefined, version: RoomVersion): string[] {
  if (!version.privilegedCreators) return [];
  const extra = creationContent?.additional_creators;
  if (extra === undefined) return [];
  if (!Array.isArray(extra) || !extra.every((u) => typeof u === 'string')) {
    throw badJson('creation_content.additional_creators must be a list of user ids');
  }
  return extra as string[];
}

/** The spec's default power levels for a new room, with the preset's and the client's changes. */
function powerLevels(
  version: RoomVersion,
  creator: string,
  preset: Preset,
  invitees: string[],
  additionalCreators: string[],
  override: JsonObject | undefined,
): JsonObject {
  const users: JsonObject = {};
  // v12 creators stand above every level and may not be listed in `users`.
  const creators = new Set([creator, ...additionalCreators]);
  if (!version.privilegedCreators) users[creator] = 100;
  if (preset === 'trusted_private_chat') {
    for (const invitee of invitees) if (!(version.privilegedCreators && creators.has(invitee))) users[invitee] = 100;
  }
  const content: JsonObject = {
    users,
    users_default: 0,
    events: {
      'm.room.name': 50,
      'm.room.power_levels': 100,
      'm.room.history_visibility': 100,
      'm.room.canonical_alias': 50,
      'm.room.avatar': 50,
      'm.room.tombstone': 100,
      'm.room.server_acl': 100,
      'm.room.encryption': 100,
    },
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: 0,
    notifications: { room: 50 },
  };
  return { ...content, ...(override ?? {}) };
}

function topicContent(topic: string): JsonObject {
  // v1.15 rich topics: keep the plain `topic` for older clients and add the m.topic block.
  return { topic, 'm.topic': { 'm.text': [{ body: topic, mimetype: 'text/plain' }] } };
}

async function profileOf(storage: Storage, userId: string): Promise<JsonObject> {
  const user = await storage.accounts.getUser(userId);
  const profile: JsonObject = {};
  if (user?.displayname) profile.displayname = user.displayname;
  if (user?.avatarUrl) profile.avatar_url = user.avatarUrl;
  return profile;
}
