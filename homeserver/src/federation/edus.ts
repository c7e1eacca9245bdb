/** PLACEHOLDER (helper F4 replaces it): EDUs received in transactions. */
import type { ServerContext } from '../context.js';
import type { Edu } from './runtime.js';

/** Applies one EDU from `origin` (already authenticated); unknown or malformed EDUs are ignored. */
export async function handleIncomingEdu(_ctx: ServerContext, _origin: string, _edu: Edu): Promise<void> {}
