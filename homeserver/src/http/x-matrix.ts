/**
 * Verifying incoming `Authorization: X-Matrix` requests (server-server API, "Request
 * Authentication"): the requesting server signed `{method, uri, origin, destination, content}`;
 * we rebuild that object from the request as received and check the signature with the origin's
 * key (federation/keyring.ts).
 */
import type { FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.js';
import type { JsonValue } from '../events/types.js';
import { parseServerName } from '../federation/discovery.js';
import { parseXMatrixAuthorization, requestJson, XMatrixParseError } from '../federation/request-signing.js';
import { MatrixError } from './errors.js';

const unauthorized = (message: string) => new MatrixError(401, 'M_UNAUTHORIZED', message);

/**
 * The requesting server's name, once its X-Matrix signature over method, URI, origin,
 * destination and body has been verified; 401 M_UNAUTHORIZED otherwise, 403 M_FORBIDDEN for a
 * server outside `federation_domain_whitelist`.
 */
export async function requireServer(ctx: ServerContext, request: FastifyRequest): Promise<string> {
  const header = request.headers.authorization;
  if (!header) throw unauthorized('Missing Authorization header (X-Matrix request signature)');
  let params;
  try {
    params = parseXMatrixAuthorization(header);
  } catch (err) {
    if (err instanceof XMatrixParseError) throw unauthorized(`Malformed X-Matrix Authorization header: ${err.message}`);
    throw err;
  }
  const ourName = ctx.config.server_name;
  if (params.destination !== undefined && params.destination !== ourName) {
    throw unauthorized(`The request is for ${params.destination}, not for this server (${ourName})`);
  }
  if (!parseServerName(params.origin)) throw unauthorized(`The X-Matrix origin "${params.origin}" is not a server name`);
  if (params.origin === ourName) throw unauthorized('The X-Matrix origin is this server');
  const whitelist = ctx.config.federation_domain_whitelist;
  if (whitelist && !whitelist.includes(params.origin)) {
    throw new MatrixError(403, 'M_FORBIDDEN', `Federation with ${params.origin} is not allowed (federation_domain_whitelist)`);
  }
  if (!params.key.startsWith('ed25519:')) throw unauthorized(`Unsupported X-Matrix key algorithm in "${params.key}"`);

  const signed = {
    ...requestJson({
      method: request.method,
      uri: request.raw.url ?? request.url,
      origin: params.origin,
      destination: params.destination ?? ourName,
      content: request.body as JsonValue | undefined,
    }),
    signatures: { [params.origin]: { [params.key]: params.sig } },
  };
  try {
    await ctx.federation.keyring.verifySignedJson(params.origin, signed);
  } catch (err) {
    throw unauthorized(`Invalid X-Matrix signature from ${params.origin}: ${(err as Error).message}`);
  }
  // A server that talks to us is up: what waits for it in our queues goes out now.
  ctx.federation.sender.markDestinationUp?.(params.origin);
  return params.origin;
}
