/** PLACEHOLDER (helper F4 replaces it): per-destination outgoing queues. */
import type { Logger } from 'pino';
import type { HearthConfig } from '../config/load.js';
import type { RoomEvent } from '../events/types.js';
import type { Storage } from '../storage/database.js';
import type { Edu, FederationClient, OutgoingFederation } from './runtime.js';

export interface SenderDeps {
  config: HearthConfig;
  storage: Storage;
  client: FederationClient;
  log: Logger;
}

export class FederationSender implements OutgoingFederation {
  constructor(private readonly deps: SenderDeps) {}

  sendPdu(_event: RoomEvent): void {}

  sendEdu(_destinations: Iterable<string>, _edu: Edu): void {}

  async close(): Promise<void> {}
}
