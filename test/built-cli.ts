import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Tests that start Cordon as a process run the built JavaScript in dist/, not the TypeScript
 * source through tsx: a tsx start costs about a second of CPU, and the suite starts hundreds of
 * them. dist/ is never tested stale: `builtCli()` rebuilds it (`tsc -b`, incremental) when a
 * source file, a source directory or tsconfig.json is newer than the last build.
 */

/**
 * The repository's root: the nearest directory above this module holding package.json. The tests
 * run either from their source (test/, through tsx) or compiled (dist-test/test/, see
 * test/run.mjs), so a path relative to the module itself would differ between the two.
 */
export const ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
const DIST = path.join(ROOT, 'dist');
/** tsc rewrites (or touches) it on every build that saw a change; see tsconfig.json. */
const BUILD_INFO = path.join(DIST, 'tsconfig.tsbuildinfo');
const LOCK = path.join(DIST, '.build-lock');

function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

/** A file in the source tree (fixtures and the like are not compiled): `sourcePath('test', 'fixtures', 'x.mjs')`. */
export function sourcePath(...parts: string[]): string {
  return path.join(ROOT, ...parts);
}

function newestMtime(target: string): number {
  const stat = statSync(target);
  if (!stat.isDirectory()) return stat.mtimeMs;
  // A directory's own mtime changes when a file in it is added, removed or renamed.
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(target)) newest = Math.max(newest, newestMtime(path.join(target, entry)));
  return newest;
}

function isFresh(): boolean {
  if (!existsSync(BUILD_INFO) || !existsSync(path.join(DIST, 'cli', 'main.js'))) return false;
  const sources = Math.max(newestMtime(path.join(ROOT, 'src')), newestMtime(path.join(ROOT, 'tsconfig.json')));
  return sources <= statSync(BUILD_INFO).mtimeMs;
}

function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Builds dist/ unless it is fresh; test files start in parallel, so one builds while the others wait. */
export function ensureBuilt(): void {
  if (isFresh()) return;
  mkdirSync(DIST, { recursive: true });
  const deadline = Date.now() + 600_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A builder killed mid-way leaves its lock behind; no build takes ten minutes.
      const age = Date.now() - (statSync(LOCK, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 600_000) rmSync(LOCK, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`dist/ is locked by another build (${LOCK})`);
      pause(200);
    }
  }
  try {
    if (isFresh()) return;
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    try {
      execFileSync(process.execPath, [tsc, '-b', path.join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'pipe' });
    } catch (err) {
      const out = err as { stdout?: Buffer; stderr?: Buffer };
      throw new Error(`building dist/ for the tests failed:\n${out.stdout ?? ''}${out.stderr ?? ''}`);
    }
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** The built CLI's entry point (`node CLI args...`), built first if dist/ is stale. */
export function builtCli(): string {
  ensureBuilt();
  return path.join(DIST, 'cli', 'main.js');
}
