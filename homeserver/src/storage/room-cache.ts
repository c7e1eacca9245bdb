/**
 * What persisting and authorising an event in a room re-reads every time, kept in memory per room:
 * the room version, its current state group, its forward extremities (with the state group after
 * each), the current state event ids asked for so far, and its joined members (push rules).
 *
 * This process is the only writer of its database and every write of these tables goes through
 * `EventsStore.persistEvent`, so the cache is kept exact there:
 * - `beginWrite` (inside the write transaction, once the events stream is locked) hands the
 *   persist path the room's data as of the last commit, if nothing else is writing the room;
 * - `endWrite` after the transaction: on commit it applies what the transaction changed; on
 *   rollback, or when another write of the room overlapped (PostgreSQL, several connections), it
 *   drops the room's data, and the next reader loads it again from the database.
 * Readers fill it through `fill`, which keeps what they read only when no write of the room began
 * or ended meanwhile (a read racing a commit may have seen either side of it).
 */
export interface RoomData {
  version?: string;
  /** `rooms.current_state_group` (null: current state is only in `current_state`). */
  currentStateGroup?: number | null;
  /** The forward extremities, sorted, when known. */
  extremities?: string[];
  /** Forward extremity → the state group after it (those known). */
  afterGroups: Map<string, number>;
  /** State key → current event id, null when the room has none; only keys asked for or changed. */
  stateIds: Map<string, string | null>;
  /** The joined members with their room display names (push rules), when known. */
  joined?: readonly JoinedMember[];
}

export interface JoinedMember {
  user_id: string;
  display_name: string | null;
}

/** What a committed persist changed, for `endWrite`. */
export interface RoomWrite {
  version?: string;
  currentStateGroup?: number | null;
  /** The extremities after the write; undefined when the write did not compute them (then dropped). */
  extremities?: string[];
  /** The persisted event's state group after it, if it has state. */
  afterGroup?: { eventId: string; group: number };
  stateDelta?: ReadonlyMap<string, string | null>;
  /** The write changed memberships (a member event, or member state changed by resolution). */
  membersChanged?: boolean;
  /** The joined members, read in a write that did not change them. */
  joined?: readonly JoinedMember[];
}

interface Entry {
  /** Writes in progress. */
  writers: number;
  /** Counts write starts and ends: a fill started before a change must not be kept. */
  seq: number;
  data: RoomData | undefined;
}

/** Writes in progress when `beginWrite` returned; passed back to `endWrite`. */
export interface WriteTicket {
  roomId: string;
  entry: Entry;
  seq: number;
  /** The room's data as of the last commit (undefined: unknown or another write is in progress). */
  data: RoomData | undefined;
}

const DEFAULT_ROOMS = 1000;
/** State keys kept per room (each sender's membership is one). */
const MAX_STATE_IDS_PER_ROOM = 2000;

export class RoomCache {
  private readonly rooms = new Map<string, Entry>();

  constructor(private readonly maxRooms = DEFAULT_ROOMS) {}

  /** The room's data, when known and no write of it is in progress. Do not modify it. */
  get(roomId: string): RoomData | undefined {
    const entry = this.rooms.get(roomId);
    return entry && entry.writers === 0 ? entry.data : undefined;
  }

  /** Call before reading from the database what `fill` will store. */
  readToken(roomId: string): { entry: Entry; seq: number } {
    const entry = this.entry(roomId);
    return { entry, seq: entry.seq };
  }

  /** Stores what was read since `token`, unless a write of the room began or ended meanwhile. */
  fill(roomId: string, token: { entry: Entry; seq: number }, apply: (data: RoomData) => void): void {
    const { entry, seq } = token;
    if (this.rooms.get(roomId) !== entry || entry.writers > 0 || entry.seq !== seq) return;
    entry.data ??= { afterGroups: new Map(), stateIds: new Map() };
    apply(entry.data);
    bound(entry.data);
  }

  beginWrite(roomId: string): WriteTicket {
    const entry = this.entry(roomId);
    entry.writers++;
    entry.seq++;
    return { roomId, entry, seq: entry.seq, data: entry.writers === 1 ? entry.data : undefined };
  }

  /** After the transaction: `write` on commit, undefined on rollback. */
  endWrite(ticket: WriteTicket, write: RoomWrite | undefined): void {
    const { entry } = ticket;
    entry.writers--;
    entry.seq++;
    const alone = entry.seq === ticket.seq + 1 && entry.data === ticket.data;
    if (!write || !alone || this.rooms.get(ticket.roomId) !== entry) {
      entry.data = undefined;
      return;
    }
    const data = (entry.data ??= { afterGroups: new Map(), stateIds: new Map() });
    applyWrite(data, write);
  }

  /** Forgets a room (e.g. a write this module does not see). */
  drop(roomId: string): void {
    const entry = this.rooms.get(roomId);
    if (entry) {
      entry.seq++;
      entry.data = undefined;
    }
  }

  private entry(roomId: string): Entry {
    let entry = this.rooms.get(roomId);
    if (entry) {
      // Most recently used last.
      this.rooms.delete(roomId);
      this.rooms.set(roomId, entry);
      return entry;
    }
    entry = { writers: 0, seq: 0, data: undefined };
    this.rooms.set(roomId, entry);
    if (this.rooms.size > this.maxRooms) this.evictOne();
    return entry;
  }

  private evictOne(): void {
    for (const [roomId, entry] of this.rooms) {
      // A room being written keeps its entry: its writers must find it at the end.
      if (entry.writers > 0) continue;
      this.rooms.delete(roomId);
      return;
    }
  }
}

function applyWrite(data: RoomData, write: RoomWrite): void {
  if (write.version !== undefined) data.version = write.version;
  if (write.currentStateGroup !== undefined) data.currentStateGroup = write.currentStateGroup;
  if (write.stateDelta) for (const [key, id] of write.stateDelta) data.stateIds.set(key, id);
  if (write.extremities) {
    data.extremities = write.extremities;
    if (write.afterGroup) data.afterGroups.set(write.afterGroup.eventId, write.afterGroup.group);
    for (const id of data.afterGroups.keys()) if (!write.extremities.includes(id)) data.afterGroups.delete(id);
  } else {
    data.extremities = undefined;
    data.afterGroups.clear();
  }
  if (write.membersChanged) data.joined = undefined;
  else if (write.joined) data.joined = write.joined;
  bound(data);
}

function bound(data: RoomData): void {
  if (data.stateIds.size > MAX_STATE_IDS_PER_ROOM) data.stateIds.clear();
}
