import { canonicalIp, parseIpLiteral } from './address.js';

/**
 * One entry of a domain table: `example.com` (that host only), `*.example.com` (subdomains, not the
 * apex), `**.example.com` (apex and subdomains), `*` (everything), an IP literal in any spelling, and
 * optionally `:port` (`[v6]:port` for IPv6). Case and a trailing dot do not matter. Unlike Codex,
 * a port in an entry is honoured: `host:443` allows that port only.
 */
export interface DomainPattern {
  text: string;
  kind: 'any' | 'exact' | 'subdomains' | 'apexAndSubdomains';
  /** Lower-case host without trailing dot; an IP in canonical form. */
  host: string;
  port: number | undefined;
}

export class DomainPatternError extends Error {}

/** Lower-cases, drops one trailing dot, and canonicalises IP literals (`127.1` -> `127.0.0.1`). */
export function normalizeHost(host: string): string {
  let h = host.toLowerCase();
  if (h.endsWith('.') && h.length > 1) h = h.slice(0, -1);
  const ip = parseIpLiteral(h);
  return ip ? canonicalIp(ip) : h.replace(/^\[|\]$/g, '');
}

export function parseDomainPattern(raw: string): DomainPattern {
  const text = raw.trim();
  if (!text) throw new DomainPatternError('empty domain pattern');
  if (/[\s/@?#\u0000-\u001f]/.test(text))
    throw new DomainPatternError(`invalid domain pattern ${JSON.stringify(raw)}: no scheme, path or whitespace`);
  let hostPart = text;
  let port: number | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) {
    hostPart = bracketed[1] as string;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if ((text.match(/:/g) ?? []).length === 1) {
    const i = text.lastIndexOf(':');
    const p = text.slice(i + 1);
    if (!/^\d+$/.test(p)) throw new DomainPatternError(`invalid port in domain pattern ${JSON.stringify(raw)}`);
    port = Number(p);
    hostPart = text.slice(0, i);
  } else if (text.includes(':') && !parseIpLiteral(text)) {
    throw new DomainPatternError(`ambiguous domain pattern ${JSON.stringify(raw)}: write IPv6 addresses as [addr] or [addr]:port`);
  }
  if (port !== undefined && (port < 1 || port > 65535))
    throw new DomainPatternError(`port out of range in domain pattern ${JSON.stringify(raw)}`);
  if (hostPart === '*') return { text, kind: 'any', host: '*', port };
  if (hostPart.startsWith('**.')) return { text, kind: 'apexAndSubdomains', host: normalizeHost(hostPart.slice(3)), port };
  if (hostPart.startsWith('*.')) return { text, kind: 'subdomains', host: normalizeHost(hostPart.slice(2)), port };
  if (hostPart.includes('*'))
    throw new DomainPatternError(`invalid wildcard in domain pattern ${JSON.stringify(raw)}: only a leading *. or **. is supported`);
  return { text, kind: 'exact', host: normalizeHost(hostPart), port };
}

/** `host` must already be normalised (normalizeHost). */
export function patternMatches(p: DomainPattern, host: string, port: number): boolean {
  if (p.port !== undefined && p.port !== port) return false;
  switch (p.kind) {
    case 'any':
      return true;
    case 'exact':
      return host === p.host;
    case 'subdomains':
      return host.endsWith(`.${p.host}`);
    case 'apexAndSubdomains':
      return host === p.host || host.endsWith(`.${p.host}`);
  }
}
