/** PLACEHOLDER (helper F1 replaces it): other servers' verify keys. */
import type { Logger } from 'pino';
import type { HearthConfig } from '../config/load.js';
import type { JsonObject } from '../events/types.js';
import type { Storage } from '../storage/database.js';
import type { ServerKeys } from './own-keys.js';
import { SignatureError, type FederationClient, type Keyring } from './runtime.js';

export interface KeyringDeps {
  config: HearthConfig;
  keys: ServerKeys;
  storage: Storage;
  client: FederationClient;
  log: Logger;
}

export class RemoteKeyring implements Keyring {
  constructor(private readonly deps: KeyringDeps) {}

  async verifySignedJson(serverName: string, _json: JsonObject, _validAtTs?: number): Promise<void> {
    throw new SignatureError(`cannot verify signatures of ${serverName} yet`);
  }
}
