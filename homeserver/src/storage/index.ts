/**
 * The storage layer: `openDatabase(config)` gives a `Storage` with the stores. One schema and one
 * set of migrations (migrations/) for SQLite and PostgreSQL.
 *
 * Event core tables (schema.ts has the columns):
 *   rooms                      room id → version, creator, is_public, current_state_group
 *   events                     one row per event: normalised columns + the PDU as received (TEXT)
 *   event_edges, event_auth    prev_events / auth_events edges
 *   event_forward_extremities  per room
 *   state_groups (+ _entries)  immutable state sets: snapshot, or delta from prev_group
 *   event_to_state_group       state BEFORE and AFTER each non-outlier event
 *   current_state              (room, type, state_key) → event id
 *   stream_positions           high-water mark per stream; serialises its writers (transactions.ts)
 *   server_keys                remote servers' verify keys
 *   schema_version             applied migrations
 */
export {
  openDatabase,
  SCHEMA_VERSION,
  type DatabaseConfig,
  type OpenOptions,
  type PostgresConfig,
  type SqliteConfig,
  type Storage,
} from './database.js';
export { MissingStateError, SchemaTooNewError, UnknownRoomError } from './errors.js';
export {
  EVENTS_STREAM,
  EventsStore,
  type PersistEventOptions,
  type PersistEventResult,
  type StoredEventInfo,
  type TimelineEvent,
} from './events-store.js';
export { RoomsStore, type StoredRoom } from './rooms-store.js';
export type { Database } from './schema.js';
export { ServerKeysStore, type StoredServerKey } from './server-keys-store.js';
export {
  AccountsStore,
  registrationTokenValid,
  type AccessTokenInfo,
  type StoredDevice,
  type StoredRegistrationToken,
  type StoredUser,
} from './accounts-store.js';
export { SyncReadsStore, type SummaryMember, type SyncTimelineRow, type TimelineRange } from './sync-reads.js';
export { StateGroupStore, diffStates, type StateDelta, type StateGroupOptions } from './state-groups.js';
export {
  currentStreamPosition,
  nextStreamPosition,
  writeTransaction,
  type Engine,
} from './transactions.js';
