import type { Access, FsEntry, PermissionProfile } from '../environment/permissions.js';
import { PLATFORM_DEFAULT_READ_ROOTS, type ResolveContext, type ResolvedPolicy, resolveAccess, resolvePolicy } from './resolve.js';

const ORDER: Record<Access, number> = { deny: 0, read: 1, write: 2 };
const lesser = (a: Access, b: Access): Access => (ORDER[a] <= ORDER[b] ? a : b);

function explicitEntries(p: ResolvedPolicy): ResolvedPolicy {
  if (p.kind !== 'restricted' || !p.includePlatformDefaults) return p;
  return {
    ...p,
    includePlatformDefaults: false,
    entries: [...p.entries, ...PLATFORM_DEFAULT_READ_ROOTS.map((path) => ({ path, access: 'read' as const }))],
  };
}

/**
 * The intersection of two profiles (the operator's ceiling and a client's request): every path gets
 * the lesser of its two accesses, deny globs are united, and the network is the lesser. Exact: each
 * path's access is decided by its most specific entry, and every entry path of either side is an
 * entry of the result with the lesser access, so no path gains access.
 */
export function intersectProfiles(
  a: PermissionProfile,
  aContext: ResolveContext,
  b: PermissionProfile,
  bContext: ResolveContext,
): PermissionProfile {
  const network = a.network === 'enabled' && b.network === 'enabled' ? 'enabled' : 'restricted';
  if (a.enforcement === 'disabled' && b.enforcement === 'disabled')
    return { enforcement: 'disabled', network: 'enabled', fileSystem: { kind: 'unrestricted' } };
  const ra = explicitEntries(resolvePolicy(a.fileSystem, aContext));
  const rb = explicitEntries(resolvePolicy(b.fileSystem, bContext));
  if (ra.kind !== 'restricted' && rb.kind !== 'restricted')
    return { enforcement: 'managed', network, fileSystem: { kind: 'unrestricted' } };
  const paths = new Set<string>(['/', ...ra.entries.map((e) => e.path), ...rb.entries.map((e) => e.path)]);
  const entries: FsEntry[] = [];
  for (const p of [...paths].sort()) {
    entries.push({ path: { type: 'path', path: p }, access: lesser(resolveAccess(ra, p), resolveAccess(rb, p)) });
  }
  const globs = [...new Set([...ra.denyGlobs, ...rb.denyGlobs])].sort();
  for (const g of globs) entries.push({ path: { type: 'glob_pattern', pattern: g }, access: 'deny' });
  const depths = [ra.globScanMaxDepth, rb.globScanMaxDepth];
  // A deeper scan hides more, so the stronger bound is the larger one; none (uncapped) wins.
  const depth = depths.some((d) => d === undefined) ? undefined : Math.max(...(depths as number[]));
  return {
    enforcement: 'managed',
    network,
    fileSystem: { kind: 'restricted', entries, ...(depth !== undefined && globs.length ? { globScanMaxDepth: depth } : {}) },
  };
}
