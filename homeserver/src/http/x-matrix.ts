/** PLACEHOLDER (helper F1 replaces it): verifying incoming `Authorization: X-Matrix` requests. */
import type { FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.js';
import { MatrixError } from './errors.js';

/**
 * The requesting server's name, once its X-Matrix signature over method, URI, origin,
 * destination and body has been verified; 401 M_UNAUTHORIZED otherwise.
 */
export async function requireServer(_ctx: ServerContext, _request: FastifyRequest): Promise<string> {
  throw new MatrixError(401, 'M_UNAUTHORIZED', 'Federation request authentication is not implemented yet');
}
