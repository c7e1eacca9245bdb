/**
 * The federation side of the server as the rest of the server sees it: one object on the
 * ServerContext (`ctx.federation`) with the outgoing client, the keyring that verifies other
 * servers' signatures, and the sender that queues PDUs and EDUs per destination.
 *
 * Implementations: federation/client.ts (HttpFederationClient), federation/keyring.ts
 * (RemoteKeyring), federation/sender.ts (FederationSender).
 */
import type { Readable } from 'node:stream';
import type { JsonObject, RoomEvent } from '../events/types.js';

export interface FederationRequest {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** The path with its URL-encoded segments, e.g. `/_matrix/federation/v1/make_join/!r%3Aa/%40u%3Ab`. */
  path: string;
  query?: Record<string, string | number | boolean | readonly (string | number)[]>;
  body?: JsonObject;
  /** Default 60 s; a destination that never answers must not block the caller longer. */
  timeoutMs?: number;
}

/**
 * A request that did not get a 2xx answer: the remote's Matrix error when it sent one, or a
 * network, TLS, discovery or timeout failure (status undefined).
 */
export class FederationRequestError extends Error {
  override name = 'FederationRequestError';
  constructor(
    message: string,
    readonly destination: string,
    readonly status?: number,
    readonly errcode?: string,
    readonly body?: unknown,
  ) {
    super(message);
  }
}

export interface FederationResponseStream {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

/** Outgoing Server-Server requests, signed with X-Matrix, resolved by the spec's discovery rules. */
export interface FederationClient {
  /** A JSON request; resolves with the parsed 2xx body, rejects with FederationRequestError. */
  request<T = JsonObject>(destination: string, req: FederationRequest): Promise<T>;
  /** A request whose answer is streamed (media downloads); the caller consumes or destroys the body. */
  requestStream(destination: string, req: FederationRequest): Promise<FederationResponseStream>;
}

/** Thrown when a signature is missing, made with an unknown key, or does not verify. */
export class SignatureError extends Error {
  override name = 'SignatureError';
}

/** Other servers' verify keys: fetched directly or from notaries, cached with valid_until_ts. */
export interface Keyring {
  /**
   * Checks that `json` carries a valid signature of `serverName` (signatures and unsigned
   * ignored as the spec says), with a key valid at `validAtTs` (default now; for events their
   * origin_server_ts). Rejects with SignatureError.
   */
  verifySignedJson(serverName: string, json: JsonObject, validAtTs?: number): Promise<void>;
}

export interface Edu {
  edu_type: string;
  content: JsonObject;
}

/** The outgoing half: per-destination queues that batch, persist and retry. */
export interface OutgoingFederation {
  /** A PDU made on this server: queued to every other server with members in its room. */
  sendPdu(event: RoomEvent): void;
  /** An EDU for some servers (typing, receipts, presence, device lists, to-device). */
  sendEdu(destinations: Iterable<string>, edu: Edu): void;
  /** Stops timers and in-flight requests (shutdown). */
  close(): Promise<void>;
  /** `server` contacted us (a verified request): retry what waits for it now, without backoff. */
  markDestinationUp?(server: string): void;
  /** Resolves once everything given so far is persisted in the outbox (before answering 200). */
  flushQueue?(): Promise<void>;
}

export interface FederationRuntime {
  client: FederationClient;
  keyring: Keyring;
  sender: OutgoingFederation;
}
