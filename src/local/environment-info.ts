import { createHash } from 'node:crypto';
import { accessSync, constants, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, hostname } from 'node:os';
import path from 'node:path';
import type { EnvironmentInfo } from '../environment/types.js';

type Env = Readonly<Record<string, string | undefined>>;

/** The login shell children get: `$SHELL` when executable, else bash, else sh. */
export function detectShell(env: Env): EnvironmentInfo['shell'] {
  for (const candidate of [env.SHELL, '/bin/bash', '/bin/sh']) {
    if (!candidate || !path.isAbsolute(candidate)) continue;
    try {
      accessSync(candidate, constants.X_OK);
      return { name: path.basename(candidate), path: candidate };
    } catch {
      // try the next one
    }
  }
  return { name: 'sh', path: '/bin/sh' };
}

/** Cordon's package version (package.json sits two levels up from both src/local and dist/local). */
export function cordonVersion(): string {
  try {
    return (createRequire(import.meta.url)('../../package.json') as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function machineId(): string {
  for (const file of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = readFileSync(file, 'utf8').trim();
      if (id) return id;
    } catch {
      // try the next one
    }
  }
  return `host:${hostname()}`;
}

/**
 * A stable id of this executor: `sha256:` + SHA-256 of `cordon`, the machine id (hostname when
 * there is none) and the server's uid. The same server account on the same machine keeps its id
 * across restarts, which a client may use to recognise the executor (say, on a resume); nothing
 * identifying leaves in clear.
 */
export function providerId(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  return `sha256:${createHash('sha256').update(`cordon\n${machineId()}\n${uid}`).digest('hex')}`;
}

function currentDirectory(): string | null {
  try {
    return process.cwd();
  } catch {
    return null; // the directory the server runs in was removed
  }
}

/** What a local environment says about itself (docs/clients.md, "`environmentInfo`"), plain paths. */
export function describeLocalEnvironment(env: Env): Required<Omit<EnvironmentInfo, 'capabilities'>> {
  const tmp = env.TMPDIR && path.isAbsolute(env.TMPDIR) ? env.TMPDIR : '/tmp';
  let home: string | null = env.HOME && path.isAbsolute(env.HOME) ? env.HOME : null;
  if (!home) {
    try {
      home = homedir();
    } catch {
      home = null;
    }
  }
  return {
    shell: detectShell(env),
    executorVersion: cordonVersion(),
    providerId: providerId(),
    cwd: currentDirectory(),
    userHomeDir: home,
    platformOs: process.platform === 'darwin' ? 'macos' : process.platform,
    // Cordon puts nothing of its own on a child's PATH.
    prependPathDirs: [],
    temporaryDirectories: [],
    tempDir: tmp,
  };
}
