/**
 * Putting the server together: keys, storage, listeners; and taking it apart again in the
 * reverse order on shutdown.
 */
import type { Logger } from 'pino';
import type { HearthConfig } from './config/load.js';
import { AccountsRuntime } from './accounts/runtime.js';
import type { ServerContext } from './context.js';
import { KeyResponseCache, readServerKeys } from './federation/own-keys.js';
import { HttpFederationClient } from './federation/client.js';
import { RemoteKeyring } from './federation/keyring.js';
import { FederationSender } from './federation/sender.js';
import { RateLimiter } from './http/rate-limit.js';
import { pushPersistHook } from './push/persist-hook.js';
import { startListeners, stopListeners, type BoundListener } from './http/server.js';
import { indexingHook } from './rooms/indexing.js';
import { RoomEventPipeline } from './rooms/pipeline.js';
import { openDatabase } from './storage/database.js';
import { InMemoryNotifier } from './sync/notifier.js';
import { announceDeviceListChange } from './e2ee/device-lists.js';
import { SyncRuntime } from './sync/runtime.js';

export interface RunningHomeserver {
  ctx: ServerContext;
  listeners: BoundListener[];
  stop(): Promise<void>;
}

export async function startHomeserver(config: HearthConfig, log: Logger): Promise<RunningHomeserver> {
  const keys = readServerKeys(config.signing_key_path, config.old_signing_keys);
  const storage = await openDatabase(config.databaseSettings, (msg) => log.info(msg));
  // Registrations in progress (UIA sessions) live in memory: none survive a restart.
  await storage.accounts.resetPendingRegistrationTokens();
  const notifier = new InMemoryNotifier();
  const pipeline = new RoomEventPipeline({
    storage,
    serverName: config.server_name,
    signingKey: keys.signingKey,
    notifier,
    log,
  });
  pipeline.onPersist(indexingHook(storage));
  pipeline.onPersist(pushPersistHook(storage, config.server_name));
  const federationClient = new HttpFederationClient({ config, keys, log });
  const federation = {
    client: federationClient,
    keyring: new RemoteKeyring({ config, keys, storage, client: federationClient, log }),
    sender: new FederationSender({ config, storage, client: federationClient, log }),
  };
  pipeline.useFederation(federation);
  // The last step of the pipeline for events made here: queue them to the room's other servers.
  pipeline.onSent((event, streamPosition) => federation.sender.sendPdu(event, streamPosition));
  const ctx: ServerContext = {
    config,
    keys,
    keyResponses: new KeyResponseCache(config.server_name, keys, config.key_refresh_interval),
    storage,
    log,
    accounts: new AccountsRuntime(storage.accounts, log),
    rateLimiter: new RateLimiter(),
    notifier,
    sync: new SyncRuntime(notifier),
    pipeline,
    federation,
  };
  // A deleted device (logout, deletion, deactivation) is news for everyone sharing a room.
  storage.accounts.afterDevicesRemoved((userId) => {
    announceDeviceListChange(ctx, userId).catch((err: unknown) => log.warn({ err }, 'device list notification failed'));
  });
  let listeners: BoundListener[];
  try {
    listeners = await startListeners(ctx);
  } catch (err) {
    await storage.close();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    ctx,
    listeners,
    stop: () =>
      (stopping ??= (async () => {
        await stopListeners(listeners);
        await federation.sender.close();
        await federationClient.close();
        ctx.sync.close();
        await storage.close();
      })()),
  };
}
