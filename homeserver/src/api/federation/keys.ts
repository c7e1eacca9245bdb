/**
 * Server-Server API: "Publishing keys" — `GET /_matrix/key/v2/server` — and "Querying keys
 * through another server" — `POST /_matrix/key/v2/query`, `GET /_matrix/key/v2/query/{serverName}`:
 * as a notary we answer with our own key response, and with other servers' self-signed
 * responses (held by the keyring, fetched when missing or expiring too soon), each signed by us
 * as well. Neither needs authentication.
 */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../context.js';
import { signJson } from '../../events/signing.js';
import type { KeyResponseCache } from '../../federation/own-keys.js';
import { parseServerName } from '../../federation/discovery.js';
import { RemoteKeyring, type ServerKeyResponse } from '../../federation/keyring.js';
import { badJson, invalidParam } from '../../http/errors.js';

export function registerKeyServer(app: FastifyInstance, keyResponses: KeyResponseCache): void {
  const serve = async () => keyResponses.get();
  app.get('/_matrix/key/v2/server', serve);
  // Deprecated form with a key id: the full set is returned, which includes the key asked for.
  app.get('/_matrix/key/v2/server/:keyId', serve);
}

/** Servers one batch query may ask about: each may cost an outgoing request. */
const MAX_SERVERS_PER_QUERY = 100;

export function registerKeyQuery(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/_matrix/key/v2/query', async (request) => {
    const wanted = parseBatch(request.body);
    const now = Date.now();
    const answers = await Promise.all(
      [...wanted].map(([serverName, minimumValidUntilTs]) => notaryResponses(ctx, serverName, minimumValidUntilTs ?? now)),
    );
    return { server_keys: answers.flat() };
  });

  const single = async (request: { params: unknown; query: unknown }) => {
    const { serverName } = request.params as { serverName: string };
    const minimum = (request.query as Record<string, unknown>).minimum_valid_until_ts;
    let minimumValidUntilTs = Date.now();
    if (minimum !== undefined) {
      if (typeof minimum !== 'string' || !/^\d{1,16}$/.test(minimum)) {
        throw invalidParam('minimum_valid_until_ts must be a timestamp in milliseconds');
      }
      minimumValidUntilTs = Number(minimum);
    }
    if (!parseServerName(serverName)) throw invalidParam(`"${serverName}" is not a server name`);
    return { server_keys: await notaryResponses(ctx, serverName, minimumValidUntilTs) };
  };
  app.get('/_matrix/key/v2/query/:serverName', single);
  // Deprecated form with a key id: answered with every key of the server.
  app.get('/_matrix/key/v2/query/:serverName/:keyId', single);
}

/** Server name → minimum_valid_until_ts (undefined: now) from `{server_keys: {name: {keyId: {…}}}}`. */
function parseBatch(body: unknown): Map<string, number | undefined> {
  const serverKeys = isObject(body) ? body.server_keys : undefined;
  if (!isObject(serverKeys)) throw badJson('server_keys must be an object of server names');
  const entries = Object.entries(serverKeys);
  if (entries.length > MAX_SERVERS_PER_QUERY) throw invalidParam(`at most ${MAX_SERVERS_PER_QUERY} servers per query`);
  const wanted = new Map<string, number | undefined>();
  for (const [serverName, keyIds] of entries) {
    if (!parseServerName(serverName)) throw invalidParam(`"${serverName}" is not a server name`);
    if (!isObject(keyIds)) throw badJson(`server_keys.${serverName} must be an object of key ids`);
    let minimum: number | undefined;
    for (const [keyId, criteria] of Object.entries(keyIds)) {
      if (!isObject(criteria)) throw badJson(`server_keys.${serverName}.${keyId} must be an object`);
      const ts = criteria.minimum_valid_until_ts;
      if (ts === undefined) continue;
      if (typeof ts !== 'number' || !Number.isInteger(ts)) {
        throw badJson(`server_keys.${serverName}.${keyId}.minimum_valid_until_ts must be an integer`);
      }
      minimum = Math.max(minimum ?? 0, ts);
    }
    wanted.set(serverName, minimum);
  }
  return wanted;
}

/** The key responses we vouch for, each signed by us too. */
async function notaryResponses(ctx: ServerContext, serverName: string, minimumValidUntilTs: number): Promise<ServerKeyResponse[]> {
  if (serverName === ctx.config.server_name) return [ctx.keyResponses.get() as unknown as ServerKeyResponse];
  const keyring = ctx.federation.keyring;
  if (!(keyring instanceof RemoteKeyring)) return [];
  let responses: ServerKeyResponse[];
  try {
    responses = await keyring.keyResponsesFor(serverName, minimumValidUntilTs);
  } catch (err) {
    ctx.log.info({ server: serverName, err: (err as Error).message }, 'notary: no keys for server');
    return [];
  }
  return responses.map((r) => signJson(r, ctx.config.server_name, ctx.keys.signingKey));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
