/**
 * The string formats of the config schema (schema.ts), by name. In their own module so that the
 * validator precompiled at build time (validator.ts, scripts/build-server.mjs) refers to them.
 */
import { isIP } from 'node:net';
import { getRoomVersion } from '../rooms/room-versions.js';
import { parseDuration, parseSize } from './units.js';

const SERVER_NAME = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

export function isIpRange(s: string): boolean {
  const [address, prefix, ...rest] = s.split('/');
  if (rest.length > 0 || !address) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

export const CONFIG_FORMATS: Record<string, (s: string) => boolean> = {
  'server-name': (s) => SERVER_NAME.test(s) && s.length <= 255,
  'http-url': (s) => /^https?:\/\/[^\s/]+/.test(s),
  duration: (s) => parseDuration(s) !== undefined,
  size: (s) => parseSize(s) !== undefined,
  'ip-range': isIpRange,
  'room-version': (s) => getRoomVersion(s) !== undefined,
};
