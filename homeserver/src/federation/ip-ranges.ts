/**
 * The outgoing address filter (Synapse's `ip_range_blacklist` / `ip_range_whitelist`): other
 * servers must not make us connect to our own network. The check runs on the addresses a
 * connection actually uses (the lookup function handed to the socket), so that a name resolving
 * to a public address at discovery time and to a private one a moment later (DNS rebinding)
 * is still refused.
 */
import { BlockList, isIP, type LookupFunction } from 'node:net';

/** Always refused unless whitelisted, whatever the configured blacklist says. */
const ALWAYS_BLOCKED = ['127.0.0.0/8', '0.0.0.0/8', '::1/128', '::/128'];

export class BlockedAddressError extends Error {
  override name = 'BlockedAddressError';
  readonly code = 'EHEARTHBLOCKED';
}

export class IpRangeFilter {
  private readonly blocked = new BlockList();
  private readonly allowed = new BlockList();

  constructor(blacklist: readonly string[], whitelist: readonly string[]) {
    for (const range of [...ALWAYS_BLOCKED, ...blacklist]) addRange(this.blocked, range);
    for (const range of whitelist) addRange(this.allowed, range);
  }

  static fromConfig(config: { ip_range_blacklist: string[]; ip_range_whitelist: string[] }): IpRangeFilter {
    return new IpRangeFilter(config.ip_range_blacklist, config.ip_range_whitelist);
  }

  /** True when an outgoing connection to this IP address may be made. */
  isAllowed(address: string): boolean {
    const ip = unmapIpv4(address);
    const family = isIP(ip);
    if (family === 0) return false;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.allowed.check(ip, type)) return true;
    return !this.blocked.check(ip, type);
  }

  /** Throws BlockedAddressError for a refused address. */
  assertAllowed(address: string, hostname = address): void {
    if (!this.isAllowed(address)) {
      throw new BlockedAddressError(
        `refusing to connect to ${hostname === address ? address : `${hostname} (${address})`}: the address is in ip_range_blacklist`,
      );
    }
  }
}

function addRange(list: BlockList, range: string): void {
  const [address, prefix] = range.split('/') as [string, string | undefined];
  const ip = unmapIpv4(address);
  const family = isIP(ip);
  if (family === 0) return; // the config loader has validated the ranges already
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (prefix === undefined) list.addAddress(ip, type);
  else list.addSubnet(ip, Number(prefix), type);
}

/** `::ffff:10.0.0.1` is 10.0.0.1: check it against the IPv4 ranges. */
function unmapIpv4(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

/**
 * A socket `lookup` function that resolves with `resolve` and drops refused addresses; when
 * none is left the connection fails with BlockedAddressError.
 */
export function filteringLookup(
  filter: IpRangeFilter,
  resolve: (hostname: string) => Promise<ResolvedAddress[]>,
): LookupFunction {
  return (hostname, options, callback) => {
    const cb = callback as (err: NodeJS.ErrnoException | null, address: string | ResolvedAddress[], family?: number) => void;
    resolve(hostname).then(
      (addresses) => {
        const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
        const usable = wanted.filter((a) => filter.isAllowed(a.address));
        if (usable.length === 0) {
          const err =
            wanted.length === 0
              ? Object.assign(new Error(`${hostname}: no address found`), { code: 'ENOTFOUND' })
              : new BlockedAddressError(
                  `refusing to connect to ${hostname} (${wanted.map((a) => a.address).join(', ')}): the address is in ip_range_blacklist`,
                );
          cb(err, options.all ? [] : '', 0);
          return;
        }
        if (options.all) cb(null, usable);
        else cb(null, usable[0]!.address, usable[0]!.family);
      },
      (err: NodeJS.ErrnoException) => cb(err, options.all ? [] : '', 0),
    );
  };
}
