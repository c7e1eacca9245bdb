/**
 * What request handlers are given: passed explicitly to each API module's register function
 * (no global service locator), so a reader sees what a module depends on.
 */
import type { Logger } from 'pino';
import type { AccountsRuntime } from './accounts/runtime.js';
import type { HearthConfig } from './config/load.js';
import type { KeyResponseCache, ServerKeys } from './federation/own-keys.js';
import type { FederationRuntime } from './federation/runtime.js';
import type { RateLimiter } from './http/rate-limit.js';
import type { RoomEventPipeline } from './rooms/pipeline.js';
import type { Storage } from './storage/database.js';
import type { Notifier } from './sync/notifier.js';
import type { SyncRuntime } from './sync/runtime.js';

export interface ServerContext {
  config: HearthConfig;
  keys: ServerKeys;
  keyResponses: KeyResponseCache;
  storage: Storage;
  log: Logger;
  /** Wakes long-polling /sync requests. */
  notifier: Notifier;
  /** Typing notifications and the lazy-loading members cache (in memory, sync/runtime.ts). */
  sync: SyncRuntime;
  /** The one path every local room event takes. */
  pipeline: RoomEventPipeline;
  /** UIA sessions, device last-seen throttle, admin registration nonces (accounts module). */
  accounts: AccountsRuntime;
  /** Outgoing client, remote keys and per-destination queues (federation/). */
  federation: FederationRuntime;
  /** Token buckets for the config's rc_* limits (http/rate-limit.ts). */
  rateLimiter: RateLimiter;
}
