// Runs test files compiled to JavaScript: `node test/run.mjs [node --test options] test/x.test.ts ...`.
//
// `tsc -b tsconfig.test.json` (incremental: about a second when nothing changed) checks the tests
// and emits them to dist-test/ (the sources to dist/); then `node --test` runs the emitted files.
// Loading TypeScript through tsx in every test file (and in every fs worker and pty host the
// in-process servers start) cost a large share of the suite's CPU time; see docs/testing.md.
//
// dist-test/test/x.test.js imports '../src/y.js', so dist-test/src is a link to dist/: the tests
// and the CLI processes they start run the same compiled sources.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist-test');

const options = [];
const files = [];
for (const arg of process.argv.slice(2)) (arg.startsWith('-') ? options : files).push(arg);
if (files.length === 0) {
  console.error('usage: node test/run.mjs [node --test options] test/file.test.ts ...');
  process.exit(2);
}

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const build = spawnSync(process.execPath, [tsc, '-b', path.join(root, 'tsconfig.test.json')], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const link = path.join(out, 'src');
if (!existsSync(link) || !lstatSync(link).isSymbolicLink() || readlinkSync(link) !== '../dist') {
  rmSync(link, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  symlinkSync('../dist', link, 'dir');
}

const compiled = files.map((file) => {
  const source = path.resolve(file);
  const rel = path.relative(root, source);
  if (rel.startsWith('..') || !rel.endsWith('.ts')) throw new Error(`${file}: not a TypeScript file in this repository`);
  const js = path.join(out, rel.replace(/\.ts$/, '.js'));
  // tsc does not emit a file it was not asked to compile (one outside tsconfig.test.json's include).
  if (!existsSync(js)) throw new Error(`${file}: not compiled to ${js}`);
  return js;
});

// The runner passes its own flags (--enable-source-maps) on to every test file's process.
const child = spawn(process.execPath, ['--enable-source-maps', '--test', ...options, ...compiled], { cwd: root, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
