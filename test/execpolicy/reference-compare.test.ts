// `cordon policy check` against `codex execpolicy check` 0.171.0: same stdout, stderr and exit
// status on a corpus of rules files and commands. Needs the reference binary
// (../shared/reference/install.sh 0.171.0); skipped without it, except in CI where it must exist.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type PolicyCheckOptions, policyCheck } from '../../src/cli/policy.js';
import { ROOT } from '../built-cli.js';
import { CLI } from '../cli-helpers.js';

const repo = ROOT;
// shared/ sits beside the clone (CI), or beside the folder of worktrees.
const installer =
  ['../shared', '../../shared'].map((d) => path.resolve(repo, d, 'reference/install.sh')).find((f) => existsSync(f)) ??
  path.resolve(repo, '../shared/reference/install.sh');

function referenceBinary(): string | undefined {
  if (!existsSync(installer)) return undefined;
  const r = spawnSync('bash', [installer, '0.171.0'], { encoding: 'utf8' });
  const bin = r.stdout.trim().split('\n').at(-1);
  return r.status === 0 && bin && existsSync(bin) ? bin : undefined;
}

const FILES: Record<string, string> = {
  'a.rules': `prefix_rule(
    pattern = ["git", ["push", "fetch"], "origin"],
    decision = "prompt",
    justification = "ask a human before touching the remote",
    match = [["git", "push", "origin"], "git fetch origin main"],
    not_match = ["git pull origin"],
)
prefix_rule(pattern = ["git", "status"])
prefix_rule(pattern = ["git"], decision = "prompt")
prefix_rule(pattern = ["rm", "-rf"], decision = "forbidden", justification = "Use \`trash\` instead.")
prefix_rule(pattern = [["npm", "pnpm"], "install"], decision = "prompt")
host_executable(name = "git", paths = ["/usr/bin/git"])
network_rule(host = "example.com", protocol = "https", decision = "allow", justification = "docs")
`,
  'b.rules': 'prefix_rule(pattern=["git", "push"], decision="forbidden")\nprefix_rule(["ls"])\n',
  'starlark.rules':
    'x = ["git", "status"]\nprefix_rule(pattern = x + ["-s"], decision="prompt")\ndef f(p, d="allow"):\n    prefix_rule(pattern=p, decision=d)\nf(["ls"])\nf(["cat", ["a", "b"]], d="forbidden")\n',
  'loops.rules':
    'SUBS = {"status": "allow", "push": "prompt"}\nfor k, v in SUBS.items():\n    prefix_rule(pattern=["git", k], decision=v)\nprefix_rule(pattern=[t for t in "ls cat".split()], decision="prompt") if len(SUBS) == 2 else None\nif True:\n    prefix_rule(pattern=["x", [s for s in ["a", "b"] if s != "a"]])\n',
  'net.rules': 'network_rule(host = "example.com", protocol = "https", decision = "allow")\n',
  'deny.rules': 'prefix_rule(pattern=["git"], decision="deny")\n',
  'empty.rules': 'prefix_rule(pattern=[])\n',
  'emptyalt.rules': 'prefix_rule(pattern=["git", []])\n',
  'int.rules': 'prefix_rule(pattern=["git", 3])\n',
  'just.rules': 'prefix_rule(pattern=["git"], justification="   ")\n',
  'match.rules': 'prefix_rule(pattern=["git","status"], match=["git log"])\n',
  'match2.rules':
    'prefix_rule(pattern=[["git","hg"], ["status","st"]], decision="prompt", justification="j", match=["git log", ["hg","x"]])\n',
  'notmatch.rules': 'prefix_rule(pattern=["git"], not_match=["git log"])\n',
  'notmatch2.rules': 'prefix_rule(pattern=["hg"], match=[["hg"]], not_match=[["hg", "a b"]])\n',
  'nhost.rules': 'network_rule(host="", protocol="https", decision="allow")\n',
  'nproto.rules': 'network_rule(host="a.com", protocol="ftp", decision="allow")\n',
  'nwild.rules': 'network_rule(host="*.a.com", protocol="https", decision="allow")\n',
  'hpath.rules': 'host_executable(name="git", paths=["git"])\n',
  'hname.rules': 'host_executable(name="/usr/bin/git", paths=["/usr/bin/git"])\n',
  'hbase.rules': 'host_executable(name="git", paths=["/usr/bin/gitx"])\n',
  'paren.rules': 'prefix_rule(pattern=["git"]\n\n',
  'tok.rules': 'prefix_rule(pattern=["git"] decision="allow")\n',
  'str.rules': 'prefix_rule(pattern=["git], decision="allow")\n',
  'load.rules': 'load("foo.star", "x")\n',
  'var.rules': 'frobnicate(1)\n',
  'kw.rules': 'prefix_rule(pattern=["git"], unknown_kw=1)\n',
  'typ.rules': 'prefix_rule(pattern="git")\n',
  'miss.rules': 'prefix_rule(decision="allow")\n',
  'none.rules': 'prefix_rule(pattern=["git"], justification=None)\n',
  'multi.rules': '# c\nx = 1\nprefix_rule(\n    pattern = ["git", "status"],\n    decision = "deny",\n)\n',
  'def.rules': 'def f(p):\n    prefix_rule(\n        pattern=p,\n        decision="nope",\n    )\nf(["ls"])\n',
  'op.rules': 'x = "a" + 1\n',
  'opdef.rules': 'def f():\n    return "a" + 1\nprefix_rule(pattern=[f()])\n',
  'badexample.rules': 'prefix_rule(pattern=["git"], match=[3])\n',
};

/** The corpus's argument lists as `policy check` options (the corpus uses no other flags). */
function parseArgs(args: string[]): [string[], PolicyCheckOptions] {
  const opts: PolicyCheckOptions = { rules: [] };
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--rules' || a === '-r') opts.rules.push(args[++i] as string);
    else if (a === '--pretty') opts.pretty = true;
    else if (a === '--resolve-host-executables') opts.resolveHostExecutables = true;
    else if (a === '--') {
      i++;
      break;
    } else break;
  }
  return [args.slice(i), opts];
}

const CASES: string[][] = [
  ['--rules', 'a.rules', '--', 'git', 'status'],
  ['--rules', 'a.rules', '--', 'git', 'push', 'origin', 'main'],
  ['--rules', 'a.rules', '--', 'rm', '-rf', '/'],
  ['--rules', 'a.rules', '--', 'rm', '-r', '-f', '/'],
  ['--rules', 'a.rules', 'rm', '-rf', '/'],
  ['-r', 'a.rules', '--pretty', 'ls', '-la'],
  ['--rules', 'a.rules', '--', 'ls', '-la'],
  ['--rules', 'a.rules', '--', 'pnpm', 'install', 'x'],
  ['--rules', 'a.rules', '--', '/usr/bin/git', 'status'],
  ['--rules', 'a.rules', '--resolve-host-executables', '--', '/usr/bin/git', 'status'],
  ['--rules', 'a.rules', '--resolve-host-executables', '--', '/usr/local/bin/git', 'status'],
  ['--rules', 'a.rules', '--resolve-host-executables', '--', '/bin/rm', '-rf', 'x'],
  ['--rules', 'a.rules', '--pretty', '--', 'git', 'push', 'origin'],
  ['--rules', 'a.rules', '--', 'bash', '-lc', 'git status && rm -rf x'],
  ['--rules', 'a.rules', '--rules', 'b.rules', '--', 'git', 'push', 'x'],
  ['--rules', 'b.rules', '--rules', 'a.rules', '--', 'git', 'push', 'origin'],
  ['--rules', 'starlark.rules', '--', 'git', 'status', '-s'],
  ['--rules', 'starlark.rules', '--', 'cat', 'b', 'c'],
  ['--rules', 'net.rules', '--', 'curl', 'https://example.com'],
  ['--rules', 'loops.rules', '--', 'git', 'push', 'x'],
  ['--rules', 'loops.rules', '--', 'ls', 'cat'],
  ['--rules', 'loops.rules', '--', 'x', 'b'],
  ['--rules', 'loops.rules', '--', 'x', 'a'],
  ['--rules', 'missing.rules', '--', 'git'],
  ['--rules', 'a.rules', '--rules', 'missing.rules', '--', 'git'],
  ...Object.keys(FILES)
    .filter((f) => !['a.rules', 'b.rules', 'starlark.rules', 'net.rules', 'loops.rules'].includes(f))
    .map((f) => ['--rules', f, '--', 'git', 'status']),
];

describe('cordon policy check matches codex execpolicy check 0.171.0', { concurrency: 4 }, () => {
  const bin = referenceBinary();
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cordon-policy-'));
    for (const [name, text] of Object.entries(FILES)) await writeFile(path.join(dir, name), text);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  if (!bin) {
    if (process.env.CI) it('needs the reference binary in CI', () => assert.fail(`codex 0.171.0 not installed (${installer})`));
    else
      it('skipped: reference codex 0.171.0 not installed (bash ../shared/reference/install.sh 0.171.0)', { skip: true }, () => undefined);
    return;
  }

  const env = { ...process.env };
  delete env.RUST_BACKTRACE;
  delete env.RUST_LIB_BACKTRACE;
  // Codex wants a CODEX_HOME that exists and is not under /tmp.
  const codexHome = path.join(homedir(), '.cache', 'cordon-reference', 'home');
  mkdirSync(codexHome, { recursive: true });

  // Asynchronous, so the cases (independent, in one scratch directory they only read) run a few at a time.
  const reference = (args: string[]): Promise<{ stdout: string; stderr: string; status: number | null }> =>
    new Promise((resolve) => {
      execFile(
        bin,
        ['execpolicy', 'check', ...args],
        { cwd: dir, encoding: 'utf8', env: { ...env, CODEX_HOME: codexHome } },
        (err, stdout, stderr) =>
          resolve({
            stdout,
            // Codex's start-up, not its policy check: several CLIs starting at once on one CODEX_HOME
            // contend for the lock of its PATH aliases, and the loser says so (seen in a full run).
            stderr: stderr.replace(/^WARNING: proceeding, even though we could not create PATH aliases: .*\n/m, ''),
            status: err ? (typeof err.code === 'number' ? err.code : null) : 0,
          }),
      );
    });

  // The whole corpus in-process (one node start per case would be slow on a busy machine)…
  for (const args of CASES) {
    it(args.join(' '), async () => {
      const ref = await reference(args);
      const ours = await policyCheck(...parseArgs(args), dir);
      assert.equal(ours.stdout, ref.stdout, 'stdout');
      assert.equal(ours.stderr, ref.stderr, 'stderr');
      assert.equal(ours.code, ref.status, 'exit status');
    });
  }

  // …and a few through the real command line.
  for (const args of [
    ['-r', 'a.rules', '--pretty', 'rm', '-rf', '/'],
    ['--rules', 'deny.rules', '--', 'git'],
    ['--rules', 'a.rules'],
  ]) {
    it(`cli: ${args.join(' ')}`, async () => {
      const ref = await reference(args);
      const ours = spawnSync(process.execPath, [CLI, 'policy', 'check', ...args], {
        cwd: dir,
        encoding: 'utf8',
        env: { ...env, NODE_OPTIONS: '' },
      });
      assert.equal(ours.stdout, ref.stdout, 'stdout');
      if (ref.status === 2)
        assert.match(ours.stderr, /^error: the following required arguments were not provided:\n {2}<COMMAND>\.\.\./, 'stderr');
      else assert.equal(ours.stderr, ref.stderr, 'stderr');
      assert.equal(ours.status, ref.status, 'exit status');
    });
  }
});
