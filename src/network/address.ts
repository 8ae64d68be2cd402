import ipaddr from 'ipaddr.js';

export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * Parses a host as an IP literal, in every spelling `inet_aton` accepts for IPv4 (`127.1`,
 * `2852039166`, `0x7f.1`, `0177.0.0.1`) and with or without IPv6 brackets. Returns undefined for
 * a name. Canonicalising here is what keeps `127.1` from being judged as a hostname.
 */
export function parseIpLiteral(host: string): IpAddress | undefined {
  let h = host;
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.includes('%')) return undefined; // zone ids are never valid proxy targets
  if (ipaddr.IPv6.isValid(h)) return ipaddr.IPv6.parse(h);
  if (ipaddr.IPv4.isValid(h)) return ipaddr.IPv4.parse(h);
  return undefined;
}

/** The canonical text of an address (IPv4 dotted quad, IPv6 RFC 5952). */
export const canonicalIp = (addr: IpAddress): string =>
  addr.kind() === 'ipv6' ? (addr as ipaddr.IPv6).toRFC5952String() : addr.toString();

/** Cloud metadata and platform endpoints outside link-local (srt's list, plus Azure's WireServer). */
const METADATA_V4 = ['100.100.100.200', '168.63.129.16', '192.0.0.192'];
const METADATA_V6_CIDRS = ['fd00:ec2::/32', 'fd20:ce::254/128', 'fd00:c1::a9fe:a9fe/128', 'fd00:42::42/128'];

/** The IPv4 address an IPv6 form embeds (v4-mapped, v4-compatible, NAT64 64:ff9b::/96, 6to4, rfc6145). */
function embeddedV4(addr: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const range = addr.range();
  const b = addr.toByteArray();
  if (range === 'ipv4Mapped') return addr.toIPv4Address();
  if (range === 'rfc6052' || range === 'rfc6145') return ipaddr.IPv4.parse(b.slice(12, 16).join('.'));
  if (range === '6to4') return ipaddr.IPv4.parse(b.slice(2, 6).join('.'));
  // v4-compatible ::a.b.c.d (deprecated, but some stacks still route it)
  if (b.slice(0, 12).every((x) => x === 0) && !(b[12] === 0 && b[13] === 0 && b[14] === 0 && (b[15] ?? 0) <= 1)) {
    return ipaddr.IPv4.parse(b.slice(12, 16).join('.'));
  }
  return undefined;
}

/** A cloud metadata / platform endpoint (link-local 169.254.0.0/16 included): refused even with allowLocalBinding. */
export function isMetadataAddress(input: IpAddress): boolean {
  let addr: IpAddress = input;
  if (addr.kind() === 'ipv6') {
    const v6 = addr as ipaddr.IPv6;
    for (const cidr of METADATA_V6_CIDRS) if (v6.match(ipaddr.parseCIDR(cidr) as [ipaddr.IPv6, number])) return true;
    addr = embeddedV4(v6) ?? addr;
  }
  return addr.kind() === 'ipv4' && (METADATA_V4.includes(addr.toString()) || addr.range() === 'linkLocal');
}

/** The address to dial and to compare with ranges: an IPv6 form embedding IPv4 becomes that IPv4 address. */
export function unwrapAddress(addr: IpAddress): IpAddress {
  return addr.kind() === 'ipv6' ? (embeddedV4(addr as ipaddr.IPv6) ?? addr) : addr;
}

export type AddressClass = 'public' | 'private' | 'local';

/**
 * `public`: ordinary unicast. `private`: non-public but a legitimate intranet target an operator may
 * trust by range (RFC 1918, unique-local, CGNAT, reserved/documentation). `local`: never reachable
 * through the proxy unless the exact literal is allow-listed: loopback, unspecified, link-local,
 * multicast, broadcast, cloud metadata endpoints. IPv6 forms that embed an IPv4 address are judged
 * by the embedded address.
 */
export function classifyAddress(input: IpAddress): AddressClass {
  let addr: IpAddress = input;
  if (addr.kind() === 'ipv6') {
    const v6 = addr as ipaddr.IPv6;
    for (const cidr of METADATA_V6_CIDRS) if (v6.match(ipaddr.parseCIDR(cidr) as [ipaddr.IPv6, number])) return 'local';
    const v4 = embeddedV4(v6);
    if (v4) addr = v4;
  }
  if (addr.kind() === 'ipv4' && METADATA_V4.includes(addr.toString())) return 'local';
  const range = addr.range();
  switch (range) {
    case 'unicast':
      return 'public';
    case 'private':
    case 'uniqueLocal':
    case 'carrierGradeNat':
    case 'reserved':
    case 'benchmarking':
      return 'private';
    default:
      // loopback, unspecified, linkLocal, multicast, broadcast, teredo, and anything newer
      return 'local';
  }
}

/** CIDR ranges an operator trusts (`trustedRanges`): only `private` addresses can be trusted, never `local` ones. */
export function parseCidrs(cidrs: readonly string[]): Array<[IpAddress, number]> {
  return cidrs.map((c) => {
    try {
      return ipaddr.parseCIDR(c);
    } catch {
      throw new Error(`invalid CIDR range ${JSON.stringify(c)}`);
    }
  });
}

export function inRanges(addr: IpAddress, ranges: ReadonlyArray<[IpAddress, number]>): boolean {
  return ranges.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits));
}
