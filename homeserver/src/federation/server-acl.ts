/**
 * Server ACLs (`m.room.server_acl`, client-server API "Server Access Control Lists"): which
 * servers may take part in a room. Room-scoped federation endpoints call `checkServerAcl`
 * with the requesting server before doing anything for it.
 *
 * Order (event schema): no ACL → allow; IP literal with `allow_ip_literals: false` → deny;
 * a `deny` glob matches → deny; an `allow` glob matches → allow; otherwise deny. Globs are
 * case-insensitive and matched against the server name without its port.
 */
import type { ServerContext } from '../context.js';
import type { JsonObject } from '../events/types.js';
import { MatrixError } from '../http/errors.js';
import { parseServerName } from './discovery.js';

export const SERVER_ACL_EVENT = 'm.room.server_acl';

/** True when the ACL content lets `serverName` take part in the room. */
export function serverAllowedByAcl(content: JsonObject, serverName: string): boolean {
  const parsed = parseServerName(serverName);
  const host = (parsed?.host ?? serverName.replace(/:\d+$/, '')).toLowerCase();
  const isIpLiteral = parsed?.isIpLiteral ?? false;
  if (isIpLiteral && content.allow_ip_literals === false) return false;
  // An IPv6 literal is matched in its bracketed form, as it is written in server names.
  const subject = isIpLiteral && host.includes(':') ? `[${host}]` : host;
  if (globList(content.deny).some((glob) => glob.test(subject))) return false;
  return globList(content.allow).some((glob) => glob.test(subject));
}

/** 403 M_FORBIDDEN when the room's current server ACL denies `serverName`. */
export async function checkServerAcl(ctx: ServerContext, roomId: string, serverName: string): Promise<void> {
  const acl = await ctx.storage.events.getCurrentStateEvent(roomId, SERVER_ACL_EVENT, '');
  if (!acl) return;
  if (!serverAllowedByAcl(acl.content, serverName)) {
    throw new MatrixError(403, 'M_FORBIDDEN', `Server ${serverName} is denied by the room's server ACL`);
  }
}

const globCache = new Map<string, RegExp>();

function globList(value: unknown): RegExp[] {
  if (!Array.isArray(value)) return [];
  return value.filter((v): v is string => typeof v === 'string').map(globToRegExp);
}

/** Glob-style matching (spec appendix): `*` any run of characters, `?` exactly one. */
export function globToRegExp(glob: string): RegExp {
  let re = globCache.get(glob);
  if (!re) {
    const body = [...glob].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/-]/g, '\\$&'))).join('');
    re = new RegExp(`^${body}$`, 'is');
    if (globCache.size > 1000) globCache.clear();
    globCache.set(glob, re);
  }
  return re;
}
