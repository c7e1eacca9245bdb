/**
 * The client's state and services over matrix-js-sdk: rooms, friends (direct-message rooms) and
 * moments (one moments room per user). Components read from it and listen for `change`.
 *
 * Friends, on plain Matrix: a friend request is an `is_direct` invite, accepting is joining,
 * rejecting is leaving the invite, removing a friend is leaving the room and dropping it from
 * `m.direct`. When a friendship starts the friend is invited to our moments room; when it ends
 * they are removed from it.
 */
import {
  ClientEvent,
  EventType,
  KnownMembership,
  MatrixEvent,
  NotificationCountType,
  Preset,
  RelationType,
  RoomEvent,
  RoomMemberEvent,
  RoomStateEvent,
  SyncState,
  UserEvent,
  Visibility,
  type MatrixClient,
  type Room,
  type RoomMember,
} from 'matrix-js-sdk';
import { clientFor, type StoredSession } from './session.js';
import { uploadFile } from './media.js';
import { LIKE_KEY, MAX_MOMENT_IMAGES, MOMENT_IMAGES_FIELD, MOMENTS_ACCOUNT_DATA, MOMENTS_ROOM_TYPE } from './namespace.js';

export interface Friend {
  userId: string;
  room: Room;
}

export interface FriendRequest {
  userId: string;
  room: Room;
  direction: 'incoming' | 'outgoing';
}

export interface MomentImage {
  url: string;
  info?: { w?: number; h?: number; mimetype?: string; size?: number };
}

export interface Moment {
  event: MatrixEvent;
  room: Room;
  author: string;
  text: string;
  images: MomentImage[];
  likes: MatrixEvent[];
  myLike?: MatrixEvent;
  comments: MatrixEvent[];
}

export class Hearth extends EventTarget {
  readonly client: MatrixClient;
  readonly userId: string;
  syncState: SyncState | null = null;
  ready = false;
  private changeScheduled = false;
  private readonly fetchedPresence = new Map<string, { presence: string; status_msg?: string; last_active_ago?: number; currently_active?: boolean; at: number }>();
  private presenceTimer?: number;
  private reconciling = false;

  private constructor(readonly session: StoredSession) {
    super();
    this.client = clientFor(session);
    this.userId = session.userId;
  }

  static async start(session: StoredSession): Promise<Hearth> {
    const hearth = new Hearth(session);
    // Calls are not part of this client yet: no TURN server polling.
    (hearth.client as unknown as { canSupportVoip: boolean }).canSupportVoip = false;
    hearth.listen();
    await hearth.client.startClient({ initialSyncLimit: 40, lazyLoadMembers: false });
    return hearth;
  }

  async stop(logout: boolean): Promise<void> {
    clearInterval(this.presenceTimer);
    this.client.stopClient();
    if (logout) await this.client.logout(true).catch(() => undefined);
  }

  /** Coalesces the SDK's many events into one `change` per frame. */
  changed(): void {
    if (this.changeScheduled) return;
    this.changeScheduled = true;
    requestAnimationFrame(() => {
      this.changeScheduled = false;
      this.dispatchEvent(new Event('change'));
    });
  }

  private listen(): void {
    const c = this.client;
    c.on(ClientEvent.Sync, (state) => {
      this.syncState = state;
      if ((state === SyncState.Prepared || state === SyncState.Syncing) && !this.ready) {
        this.ready = true;
        // No MatrixRTC (group calls) either: its session manager starts on this same sync.
        setTimeout(() => this.client.matrixRTC.stop(), 0);
        void this.afterFirstSync();
      }
      this.changed();
    });
    c.on(RoomEvent.Timeline, () => this.changed());
    c.on(RoomEvent.Redaction, () => this.changed());
    c.on(RoomEvent.Receipt, () => this.changed());
    c.on(RoomEvent.LocalEchoUpdated, () => this.changed());
    c.on(RoomEvent.Name, () => this.changed());
    c.on(ClientEvent.Room, () => this.changed());
    c.on(ClientEvent.AccountData, () => this.changed());
    c.on(RoomMemberEvent.Typing, () => this.changed());
    c.on(UserEvent.Presence, () => this.changed());
    c.on(UserEvent.DisplayName, () => this.changed());
    c.on(UserEvent.AvatarUrl, () => this.changed());
    c.on(RoomEvent.MyMembership, (room, membership) => {
      this.changed();
      if (membership === KnownMembership.Invite) void this.autoJoinFriendMoments(room);
      if (membership === KnownMembership.Join && this.ready && this.dmPartner(room)) void this.refreshFriendsPresence();
    });
    c.on(RoomStateEvent.Members, (_event, _state, member) => {
      this.changed();
      if (this.ready) void this.onMemberChange(member);
    });
  }

  private async afterFirstSync(): Promise<void> {
    await this.ensureMomentsRoom().catch((e: unknown) => console.warn('moments room', e));
    await this.reconcileMoments();
    // A friend's presence reaches /sync only when it changes: ask for it now and then.
    void this.refreshFriendsPresence();
    this.presenceTimer = window.setInterval(() => void this.refreshFriendsPresence(), 60_000);
    for (const room of this.client.getRooms()) {
      if (room.getMyMembership() === KnownMembership.Invite) await this.autoJoinFriendMoments(room);
    }
  }

  // ------------------------------------------------------------------ rooms

  isMomentsRoom(room: Room): boolean {
    return room.getType() === MOMENTS_ROOM_TYPE;
  }

  /** The m.direct map: user id → room ids. */
  private directMap(): Record<string, string[]> {
    return (this.client.getAccountData(EventType.Direct)?.getContent() as Record<string, string[]> | undefined) ?? {};
  }

  /** The other person of a direct-message room, or undefined for groups. */
  dmPartner(room: Room): string | undefined {
    if (this.isMomentsRoom(room)) return undefined;
    for (const [userId, rooms] of Object.entries(this.directMap())) {
      if (Array.isArray(rooms) && rooms.includes(room.roomId)) return userId;
    }
    const mine = room.getMember(this.userId);
    if (room.getMyMembership() === KnownMembership.Invite) {
      return mine?.events.member?.getContent().is_direct === true ? room.getDMInviter() : undefined;
    }
    if (mine?.events.member?.getContent().is_direct === true) {
      const others = room.getMembers().filter((m) => m.userId !== this.userId);
      if (others.length === 1) return others[0]!.userId;
    }
    return undefined;
  }

  /** Joined chats (friends and groups), most recent activity first. */
  chats(): Room[] {
    return this.client
      .getRooms()
      .filter((r) => r.getMyMembership() === KnownMembership.Join && !this.isMomentsRoom(r))
      .filter((r) => {
        const partner = this.dmPartner(r);
        if (partner === undefined) return true;
        const membership = r.getMember(partner)?.membership;
        return membership === KnownMembership.Join || membership === KnownMembership.Invite || membership === KnownMembership.Leave;
      })
      .sort((a, b) => b.getLastActiveTimestamp() - a.getLastActiveTimestamp());
  }

  /** Invitations to group rooms (not friend requests, not moments). */
  groupInvites(): Room[] {
    return this.client
      .getRooms()
      .filter((r) => r.getMyMembership() === KnownMembership.Invite && !this.isMomentsRoom(r) && this.dmPartner(r) === undefined);
  }

  roomName(room: Room): string {
    const partner = this.dmPartner(room);
    if (partner) return this.displayName(partner, room);
    return room.name || 'Group';
  }

  unread(room: Room): number {
    return room.getUnreadNotificationCount(NotificationCountType.Total);
  }

  displayName(userId: string, room?: Room): string {
    const member = room?.getMember(userId);
    if (member?.rawDisplayName && member.rawDisplayName !== userId) return member.rawDisplayName;
    const user = this.client.getUser(userId);
    if (user?.displayName && user.displayName !== userId) return user.displayName;
    return userId.replace(/^@/, '').split(':')[0]!;
  }

  avatarUrl(userId: string, room?: Room): string | undefined {
    return room?.getMember(userId)?.getMxcAvatarUrl() ?? this.client.getUser(userId)?.avatarUrl ?? undefined;
  }

  presence(userId: string): { state: string; status?: string; lastActiveAgo?: number } {
    const user = this.client.getUser(userId);
    const fetched = this.fetchedPresence.get(userId);
    // Presence from /sync when we have it; otherwise what we asked the server for.
    if (!user?.events.presence && fetched) {
      return {
        state: fetched.currently_active ? 'online' : fetched.presence,
        status: fetched.status_msg ?? undefined,
        lastActiveAgo: fetched.last_active_ago === undefined ? undefined : fetched.last_active_ago + (Date.now() - fetched.at),
      };
    }
    return {
      state: user?.currentlyActive ? 'online' : (user?.presence ?? 'offline'),
      status: user?.presenceStatusMsg,
      lastActiveAgo: user?.lastActiveAgo,
    };
  }

  /** The last message of a room (for previews). */
  lastMessage(room: Room): MatrixEvent | undefined {
    const events = room.getLiveTimeline().getEvents();
    for (let i = events.length - 1; i >= 0; i--) {
      const e = events[i]!;
      if (e.getType() === EventType.RoomMessage && !e.isRedacted() && e.getRelation()?.rel_type !== RelationType.Replace) return e;
    }
    return undefined;
  }

  async createGroup(name: string, invite: string[]): Promise<string> {
    const { room_id } = await this.client.createRoom({
      name,
      invite,
      preset: Preset.PrivateChat,
      visibility: Visibility.Private,
    });
    return room_id;
  }

  // ------------------------------------------------------------------ friends

  friends(): Friend[] {
    const result: Friend[] = [];
    const seen = new Set<string>();
    for (const room of this.client.getRooms()) {
      if (room.getMyMembership() !== KnownMembership.Join) continue;
      const partner = this.dmPartner(room);
      if (!partner || seen.has(partner)) continue;
      if (room.getMember(partner)?.membership !== KnownMembership.Join) continue;
      seen.add(partner);
      result.push({ userId: partner, room });
    }
    return result.sort((a, b) => this.displayName(a.userId).localeCompare(this.displayName(b.userId)));
  }

  private async refreshFriendsPresence(): Promise<void> {
    for (const { userId } of this.friends()) {
      try {
        const p = await this.client.getPresence(userId);
        this.fetchedPresence.set(userId, { ...p, at: Date.now() });
      } catch {
        // presence may be disabled on the server
      }
    }
    this.changed();
  }

  friendRequests(): FriendRequest[] {
    const result: FriendRequest[] = [];
    const friends = new Set(this.friends().map((f) => f.userId));
    for (const room of this.client.getRooms()) {
      const partner = this.dmPartner(room);
      if (!partner || friends.has(partner)) continue;
      const mine = room.getMyMembership();
      if (mine === KnownMembership.Invite) result.push({ userId: partner, room, direction: 'incoming' });
      else if (mine === KnownMembership.Join && room.getMember(partner)?.membership === KnownMembership.Invite) {
        result.push({ userId: partner, room, direction: 'outgoing' });
      }
    }
    return result;
  }

  friendRoom(userId: string): Room | undefined {
    return this.friends().find((f) => f.userId === userId)?.room;
  }

  async sendFriendRequest(userId: string): Promise<string> {
    if (userId === this.userId) throw new Error("You can't add yourself.");
    const existing = this.friendRoom(userId) ?? this.friendRequests().find((r) => r.userId === userId)?.room;
    if (existing) return existing.roomId;
    const { room_id } = await this.client.createRoom({
      is_direct: true,
      invite: [userId],
      preset: Preset.TrustedPrivateChat,
      visibility: Visibility.Private,
    });
    await this.setDirect(userId, room_id, true);
    return room_id;
  }

  async acceptFriendRequest(room: Room): Promise<void> {
    const partner = this.dmPartner(room);
    await this.client.joinRoom(room.roomId);
    if (partner) {
      await this.setDirect(partner, room.roomId, true);
      await this.inviteToMoments(partner);
      void this.refreshFriendsPresence();
    }
  }

  async rejectFriendRequest(room: Room): Promise<void> {
    await this.client.leave(room.roomId);
    await this.client.forget(room.roomId).catch(() => undefined);
  }

  async cancelFriendRequest(room: Room): Promise<void> {
    const partner = this.dmPartner(room);
    await this.client.leave(room.roomId);
    if (partner) await this.setDirect(partner, room.roomId, false);
  }

  async removeFriend(userId: string): Promise<void> {
    for (const roomId of this.directMap()[userId] ?? []) {
      const room = this.client.getRoom(roomId);
      if (room?.getMyMembership() === KnownMembership.Join) await this.client.leave(roomId);
    }
    const map = { ...this.directMap() };
    delete map[userId];
    await this.client.setAccountData(EventType.Direct, map);
    await this.removeFromMoments(userId);
  }

  private async setDirect(userId: string, roomId: string, present: boolean): Promise<void> {
    const map = { ...this.directMap() };
    const rooms = new Set(map[userId] ?? []);
    if (present === rooms.has(roomId)) return;
    if (present) rooms.add(roomId);
    else rooms.delete(roomId);
    if (rooms.size > 0) map[userId] = [...rooms];
    else delete map[userId];
    await this.client.setAccountData(EventType.Direct, map);
  }

  /** A friend accepted our request (joined) or left: keep our moments room's members in step. */
  private async onMemberChange(member: RoomMember): Promise<void> {
    if (member.userId === this.userId) return;
    const room = this.client.getRoom(member.roomId);
    if (!room || room.getMyMembership() !== KnownMembership.Join) return;
    if (this.dmPartner(room) !== member.userId) return;
    if (member.membership === KnownMembership.Join) {
      await this.inviteToMoments(member.userId);
      void this.refreshFriendsPresence();
    }
    else if (member.membership === KnownMembership.Leave) await this.removeFromMoments(member.userId);
  }

  // ------------------------------------------------------------------ moments

  myMomentsRoom(): Room | undefined {
    const pointer = this.client.getAccountData(MOMENTS_ACCOUNT_DATA as never)?.getContent<{ room_id?: string }>();
    const byPointer = pointer?.room_id ? this.client.getRoom(pointer.room_id) : null;
    if (byPointer && byPointer.getMyMembership() === KnownMembership.Join) return byPointer;
    return this.client
      .getRooms()
      .find((r) => this.isMomentsRoom(r) && r.getMyMembership() === KnownMembership.Join && r.getCreator() === this.userId);
  }

  private async ensureMomentsRoom(): Promise<Room> {
    const existing = this.myMomentsRoom();
    if (existing) return existing;
    const { room_id } = await this.client.createRoom({
      name: `${this.displayName(this.userId)}'s moments`,
      preset: Preset.PrivateChat,
      visibility: Visibility.Private,
      creation_content: { type: MOMENTS_ROOM_TYPE },
      initial_state: [{ type: EventType.RoomHistoryVisibility, state_key: '', content: { history_visibility: 'shared' } }],
      power_level_content_override: { events_default: 0, invite: 100, kick: 100, redact: 50 },
    });
    await this.client.setAccountData(MOMENTS_ACCOUNT_DATA as never, { room_id } as never);
    const room = await this.waitForRoom(room_id);
    return room;
  }

  private waitForRoom(roomId: string): Promise<Room> {
    const now = this.client.getRoom(roomId);
    if (now && now.getMyMembership() === KnownMembership.Join) return Promise.resolve(now);
    return new Promise((resolve) => {
      const check = (room: Room) => {
        if (room.roomId !== roomId) return;
        this.client.off(ClientEvent.Room, check);
        resolve(room);
      };
      this.client.on(ClientEvent.Room, check);
    });
  }

  /** Friends we have who are not yet in our moments room get an invite (and vice versa). */
  private async reconcileMoments(): Promise<void> {
    if (this.reconciling) return;
    this.reconciling = true;
    try {
      for (const friend of this.friends()) await this.inviteToMoments(friend.userId);
    } finally {
      this.reconciling = false;
    }
  }

  private async inviteToMoments(userId: string): Promise<void> {
    const room = this.myMomentsRoom() ?? (await this.ensureMomentsRoom().catch(() => undefined));
    if (!room) return;
    const membership = room.getMember(userId)?.membership;
    if (membership === KnownMembership.Join || membership === KnownMembership.Invite) return;
    await this.client.invite(room.roomId, userId).catch((e: unknown) => console.warn('moments invite', e));
  }

  private async removeFromMoments(userId: string): Promise<void> {
    const room = this.myMomentsRoom();
    if (!room) return;
    const membership = room.getMember(userId)?.membership;
    if (membership !== KnownMembership.Join && membership !== KnownMembership.Invite) return;
    await this.client.kick(room.roomId, userId, 'No longer friends').catch((e: unknown) => console.warn('moments kick', e));
  }

  /** A friend's moments room invites us: join it, so their posts reach our feed. */
  private async autoJoinFriendMoments(room: Room): Promise<void> {
    if (!this.isMomentsRoom(room)) return;
    const inviter = room.getDMInviter() ?? room.getMember(this.userId)?.events.member?.getSender();
    if (!inviter) return;
    const isFriend = this.friends().some((f) => f.userId === inviter) || this.friendRequests().some((r) => r.userId === inviter);
    if (!isFriend) return;
    await this.client.joinRoom(room.roomId).catch((e: unknown) => console.warn('moments join', e));
  }

  momentsRooms(): Room[] {
    return this.client.getRooms().filter((r) => this.isMomentsRoom(r) && r.getMyMembership() === KnownMembership.Join);
  }

  /** The feed: posts of our and our friends' moments rooms, newest first, with likes and comments. */
  moments(): Moment[] {
    const posts: Moment[] = [];
    for (const room of this.momentsRooms()) {
      const events = room.getLiveTimeline().getEvents();
      const byId = new Map<string, Moment>();
      for (const e of events) {
        if (e.getType() !== EventType.RoomMessage || e.isRedacted() || e.getRelation()) continue;
        const content = e.getContent();
        const images = Array.isArray(content[MOMENT_IMAGES_FIELD]) ? (content[MOMENT_IMAGES_FIELD] as MomentImage[]) : [];
        if (content.msgtype === 'm.image' && typeof content.url === 'string') images.push({ url: content.url, info: content.info });
        const moment: Moment = {
          event: e,
          room,
          author: e.getSender()!,
          text: content.msgtype === 'm.image' ? '' : String(content.body ?? ''),
          images: images.slice(0, MAX_MOMENT_IMAGES),
          likes: [],
          comments: [],
        };
        byId.set(e.getId()!, moment);
        posts.push(moment);
      }
      for (const e of events) {
        if (e.isRedacted()) continue;
        const relation = e.getRelation();
        const target = relation?.event_id ? byId.get(relation.event_id) : undefined;
        if (!target) continue;
        if (e.getType() === EventType.Reaction && relation?.rel_type === RelationType.Annotation && relation.key === LIKE_KEY) {
          if (target.likes.some((l) => l.getSender() === e.getSender())) continue;
          target.likes.push(e);
          if (e.getSender() === this.userId) target.myLike = e;
        } else if (e.getType() === EventType.RoomMessage && relation?.rel_type === RelationType.Thread) {
          target.comments.push(e);
        }
      }
    }
    return posts.sort((a, b) => b.event.getTs() - a.event.getTs());
  }

  async postMoment(text: string, files: File[], onProgress?: (fraction: number) => void): Promise<void> {
    const room = this.myMomentsRoom() ?? (await this.ensureMomentsRoom());
    const chosen = files.slice(0, MAX_MOMENT_IMAGES);
    const images: MomentImage[] = [];
    for (const [i, file] of chosen.entries()) {
      const uploaded = await uploadFile(this.client, file, file.name, (f) => onProgress?.((i + f) / Math.max(chosen.length, 1)));
      images.push({ url: uploaded.url, info: uploaded.info as MomentImage['info'] });
    }
    const body = text.trim() || (images.length > 0 ? `Shared ${images.length} photo${images.length > 1 ? 's' : ''}` : '');
    if (!body) throw new Error('Write something or add a photo.');
    await this.client.sendMessage(room.roomId, { msgtype: 'm.text', body, [MOMENT_IMAGES_FIELD]: images } as never);
  }

  async toggleLike(moment: Moment): Promise<void> {
    if (moment.myLike) {
      await this.client.redactEvent(moment.room.roomId, moment.myLike.getId()!);
      return;
    }
    await this.client.sendEvent(moment.room.roomId, EventType.Reaction, {
      'm.relates_to': { rel_type: RelationType.Annotation, event_id: moment.event.getId()!, key: LIKE_KEY },
    } as never);
  }

  async comment(moment: Moment, text: string): Promise<void> {
    const root = moment.event.getId()!;
    await this.client.sendMessage(moment.room.roomId, {
      msgtype: 'm.text',
      body: text,
      'm.relates_to': { rel_type: RelationType.Thread, event_id: root, is_falling_back: true, 'm.in_reply_to': { event_id: root } },
    } as never);
  }

  async deleteMoment(moment: Moment): Promise<void> {
    await this.client.redactEvent(moment.room.roomId, moment.event.getId()!);
  }
}
