/**
 * Request authentication (server-server API, "Authentication > Request Authentication"): the
 * method, target URI, origin, destination and JSON body are wrapped in one object, signed with
 * the JSON signing algorithm, and the signature travels in an `Authorization: X-Matrix` header.
 *
 * Both halves live here: building the header for outgoing requests (federation/client.ts) and
 * parsing it for incoming ones (http/x-matrix.ts), so that both sign the same object.
 */
import type { JsonObject, JsonValue } from '../events/types.js';
import { signJson, type SigningKey } from '../events/signing.js';

/** The object whose canonical JSON the X-Matrix signature covers. */
export interface SignedRequestJson {
  method: string;
  /** The path and query exactly as sent, starting with `/_matrix/`. */
  uri: string;
  origin: string;
  destination: string;
  /** The parsed JSON body; absent when the request has none. */
  content?: JsonValue;
}

export function requestJson(req: SignedRequestJson): JsonObject {
  const json: JsonObject = {
    method: req.method,
    uri: req.uri,
    origin: req.origin,
    destination: req.destination,
  };
  if (req.content !== undefined) json.content = req.content;
  return json;
}

/**
 * The `Authorization` header value for a request. Written the way older servers parse it: one
 * space after `X-Matrix`, lower-case names, quoted values, no backslashes.
 */
export function xMatrixAuthorization(req: SignedRequestJson, key: SigningKey): string {
  const signed = signJson(requestJson(req), req.origin, key);
  const sig = signed.signatures[req.origin]![key.keyId]!;
  return `X-Matrix origin="${req.origin}",destination="${req.destination}",key="${key.keyId}",sig="${sig}"`;
}

export interface XMatrixParams {
  origin: string;
  /** Absent in requests of servers older than spec v1.3. */
  destination?: string;
  key: string;
  sig: string;
}

export class XMatrixParseError extends Error {
  override name = 'XMatrixParseError';
}

/**
 * Parses `X-Matrix origin=…,destination=…,key=…,sig=…` (RFC 7235 auth-params): names are case
 * insensitive and in any order, values quoted (with backslash escapes) or bare tokens; bare
 * values may contain colons for older servers. Throws XMatrixParseError naming the problem.
 */
export function parseXMatrixAuthorization(header: string): XMatrixParams {
  const match = /^X-Matrix +(.*)$/is.exec(header.trim());
  if (!match) throw new XMatrixParseError('the Authorization header does not use the X-Matrix scheme');
  const params = parseAuthParams(match[1]!);
  const get = (name: string): string | undefined => params.get(name);
  const origin = get('origin');
  const key = get('key');
  const sig = get('sig');
  if (!origin) throw new XMatrixParseError('the X-Matrix header has no origin');
  if (!key) throw new XMatrixParseError('the X-Matrix header has no key');
  if (!sig) throw new XMatrixParseError('the X-Matrix header has no sig');
  const destination = get('destination');
  return destination === undefined ? { origin, key, sig } : { origin, destination, key, sig };
}

function parseAuthParams(text: string): Map<string, string> {
  const params = new Map<string, string>();
  let i = 0;
  const skipSpaces = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  while (i < text.length) {
    skipSpaces();
    if (text[i] === ',') {
      i++;
      continue;
    }
    if (i >= text.length) break;
    const nameStart = i;
    while (i < text.length && text[i] !== '=' && text[i] !== ',') i++;
    const name = text.slice(nameStart, i).trim().toLowerCase();
    if (text[i] !== '=' || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) {
      throw new XMatrixParseError(`malformed X-Matrix parameter near "${text.slice(nameStart, nameStart + 20)}"`);
    }
    i++; // '='
    skipSpaces();
    let value: string;
    if (text[i] === '"') {
      i++;
      value = '';
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
      if (text[i] !== '"') throw new XMatrixParseError(`unterminated quoted value for X-Matrix parameter ${name}`);
      i++;
    } else {
      const valueStart = i;
      while (i < text.length && text[i] !== ',') i++;
      value = text.slice(valueStart, i).trim();
    }
    skipSpaces();
    if (i < text.length && text[i] !== ',') {
      throw new XMatrixParseError(`unexpected text after X-Matrix parameter ${name}`);
    }
    if (params.has(name)) throw new XMatrixParseError(`the X-Matrix parameter ${name} is given twice`);
    params.set(name, value);
  }
  return params;
}

/**
 * The `uri` of an outgoing request: the path as given plus the query string, encoded the one
 * way both the URL we send and the signed object use.
 */
export function requestTarget(path: string, query?: Record<string, string | number | boolean | readonly (string | number)[]>): string {
  if (!query) return path;
  const parts: string[] = [];
  for (const [name, value] of Object.entries(query)) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(String(v))}`);
  }
  return parts.length === 0 ? path : `${path}?${parts.join('&')}`;
}
