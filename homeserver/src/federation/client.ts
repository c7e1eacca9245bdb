/** PLACEHOLDER (helper F1 replaces it): outgoing Server-Server requests. */
import type { Logger } from 'pino';
import type { HearthConfig } from '../config/load.js';
import type { ServerKeys } from './own-keys.js';
import {
  FederationRequestError,
  type FederationClient,
  type FederationRequest,
  type FederationResponseStream,
} from './runtime.js';

export interface FederationClientDeps {
  config: HearthConfig;
  keys: ServerKeys;
  log: Logger;
}

export class HttpFederationClient implements FederationClient {
  constructor(private readonly deps: FederationClientDeps) {}

  async request<T>(destination: string, _req: FederationRequest): Promise<T> {
    throw new FederationRequestError('federation client not implemented yet', destination);
  }

  async requestStream(destination: string, _req: FederationRequest): Promise<FederationResponseStream> {
    throw new FederationRequestError('federation client not implemented yet', destination);
  }

  async close(): Promise<void> {}
}
