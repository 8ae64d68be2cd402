import { existsSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Where the Codex CLI packages from npm live: `$CORDON_CODEX_DIR/VERSION` (default
 * `~/.cache/cordon-reference/VERSION`, the same layout the reference install script uses), each an
 * `npm install @openai/codex@VERSION`. `test/e2e/install-codex.sh VERSION` creates one.
 */
export function codexInstallRoot(): string {
  return process.env.CORDON_CODEX_DIR ?? path.join(os.homedir(), '.cache', 'cordon-reference');
}

/** The native `codex` binary of an installed version, or undefined when it is not installed. */
export function findCodexBinary(version: string): string | undefined {
  const scope = path.join(codexInstallRoot(), version, 'node_modules', '@openai');
  if (!existsSync(scope)) return undefined;
  for (const pkg of readdirSync(scope)) {
    if (!pkg.startsWith('codex-linux-')) continue;
    const vendor = path.join(scope, pkg, 'vendor');
    if (!existsSync(vendor)) continue;
    for (const triple of readdirSync(vendor)) {
      const bin = path.join(vendor, triple, 'bin', 'codex');
      if (existsSync(bin) && statSync(bin).size > 1024 * 1024) return bin;
    }
  }
  return undefined;
}
