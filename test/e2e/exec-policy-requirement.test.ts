// Codex's per-call requirement and its rules-directory warning, compared with the real Codex 0.171.0
// controller: `codex exec` (approval policy never, as `codex exec` always runs) with a scripted model
// asks to run each command of a corpus; what Codex refused (and its text) or ran must be what
// Cordon's execRequirement says. Bad rules files: Codex's `Error loading rules:` line must be the
// warning Cordon prints. Bad requirements files: Codex reads /etc/codex/requirements.toml, so it
// runs in a bubblewrap mount namespace whose /etc holds only passwd, group and that file. Needs the reference binary (../shared/reference/install.sh 0.171.0);
// skipped without it, except in CI. Everything runs in scratch directories; the model is on 127.0.0.1.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  execRequirement,
  loadRulesDirectory,
  policyFromSource,
  RequirementsLoadError,
  requirementsPolicyFromToml,
  ShellSplitter,
} from '../../src/execpolicy/index.js';
import { ROOT } from '../built-cli.js';
import { runCodexExec } from './codex-exec.js';
import { functionCall, startMockModel, toolOutput } from './mock-model.js';

const repo = ROOT;
const installer =
  ['../shared', '../../shared'].map((d) => path.resolve(repo, d, 'reference/install.sh')).find((f) => existsSync(f)) ??
  path.resolve(repo, '../shared/reference/install.sh');

function referenceBinary(): string | undefined {
  if (!existsSync(installer)) return undefined;
  const r = spawnSync('bash', [installer, '0.171.0'], { encoding: 'utf8' });
  const bin = r.stdout.trim().split('\n').at(-1);
  return r.status === 0 && bin && existsSync(bin) ? bin : undefined;
}

const RULES = `prefix_rule(pattern=["rm"], decision="forbidden", justification="j1")
prefix_rule(pattern=["rm", "-x"], decision="forbidden")
prefix_rule(pattern=["cp"], decision="forbidden", justification="a")
prefix_rule(pattern=["cp"], decision="forbidden", justification="b")
prefix_rule(pattern=["git", "push"], decision="prompt", justification="remote")
prefix_rule(pattern=["echo"], decision="forbidden", justification="no echo")
`;

// Scripts run by `codex exec` for real when it allows them: all harmless in a scratch directory.
const COMMANDS = [
  'rm -x y',
  'cp a b',
  'git push',
  'echo hi',
  'echo ~',
  'printf "%s" *.none',
  'shred -f x',
  'rmdir -f x',
  '/bin/rm -fr x',
  'command rm x -f',
  'sudo rm -rf x',
  'env FOO=1 rm -rf x',
  'env -u FOO true',
  'trap "rm -rf x" EXIT',
  'for t in a; do rm -r -f "$t"; done',
  'true "$(rm -rf x)"',
  "bash -c 'rm --force x'",
  'true rm -rf x',
  'cmd=rm; $cmd -rf x',
  'git clean -fdx',
  'git reset --hard',
  'ls > listing',
  'true && false || true',
  'cp "a b" c',
  "echo 'x!y' \"it's\"",
  'rm -x "$HOME" ^z',
];

describe('the per-call requirement against Codex 0.171.0', () => {
  const bin = referenceBinary();
  if (!bin) {
    if (process.env.CI) it('needs the reference binary in CI', () => assert.fail(`codex 0.171.0 not installed (${installer})`));
    else
      it('skipped: reference codex 0.171.0 not installed (bash ../shared/reference/install.sh 0.171.0)', { skip: true }, () => undefined);
    return;
  }
  let scratch = '';
  let splitter: ShellSplitter;
  before(async () => {
    // Codex wants a CODEX_HOME that is not under /tmp.
    const base = path.join(homedir(), '.cache', 'cordon-reference');
    mkdirSync(base, { recursive: true });
    scratch = await mkdtemp(path.join(base, 'requirement-'));
    splitter = await ShellSplitter.create();
  });
  after(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  async function codexExec(name: string, rules: Record<string, string>, commands: string[]) {
    const home = path.join(scratch, name, 'home');
    const cwd = path.join(scratch, name, 'cwd');
    mkdirSync(path.join(home, 'rules'), { recursive: true });
    mkdirSync(cwd, { recursive: true });
    for (const [file, text] of Object.entries(rules)) writeFileSync(path.join(home, 'rules', file), text);
    const mock = await startMockModel(commands.map((cmd, i) => [functionCall(`c${i}`, 'exec_command', { cmd, yield_time_ms: 10_000 })]));
    try {
      const run = await runCodexExec({
        bin: bin as string,
        codexHome: home,
        cwd,
        modelUrl: mock.url,
        execServerUrl: '',
        timeoutMs: 120_000,
      });
      return { run, outputs: commands.map((_, i) => toolOutput(mock.requests, `c${i}`)), rulesDir: path.join(home, 'rules') };
    } finally {
      await mock.close();
    }
  }

  /** The reason inside `exec_command failed: CreateProcess { message: "Rejected(\"…\")" }`, or undefined when it ran. */
  function rejection(output: string): string | undefined {
    const m = /^exec_command failed: CreateProcess \{ message: (".*") \}$/s.exec(output);
    if (!m) return undefined;
    const inner = JSON.parse(m[1] as string) as string;
    const r = /^Rejected\((".*")\)$/s.exec(inner);
    assert.ok(r, inner);
    return JSON.parse(r[1] as string) as string;
  }

  it('refusals and their texts, and what runs, match Codex on a corpus (approval policy never)', async () => {
    const { run, outputs } = await codexExec('corpus', { 'team.rules': RULES }, COMMANDS);
    const policy = policyFromSource(RULES);
    let shell: string | undefined;
    COMMANDS.forEach((cmd, i) => {
      const output = outputs[i];
      assert.ok(output !== undefined, `codex never reported ${cmd}\n${run.output}`);
      const refused = rejection(output);
      // Codex runs the script in the user's shell; its refusal names that argv.
      shell ??= refused ? /^`(\S+) -lc /.exec(refused)?.[1] : undefined;
      const argv = [shell ?? '/bin/bash', '-lc', cmd];
      const ours = execRequirement(policy, splitter, { argv, approvalPolicy: 'never', fileSystem: 'restricted' }).requirement;
      if (refused !== undefined) assert.deepEqual(ours, { kind: 'forbidden', reason: refused }, cmd);
      else assert.equal(ours.kind, 'skip', `${cmd}: Codex ran it (${output.slice(0, 200)}), Cordon says ${JSON.stringify(ours)}`);
    });
  });

  it("a rules file that does not load: Codex's line is Cordon's warning", async () => {
    const bad: Record<string, string> = {
      'decision.rules': 'prefix_rule(pattern=["git"])\n\nprefix_rule(pattern=["ls"], decision="deny")\n',
      'syntax.rules': 'prefix_rule(pattern=["git"])\nprefix_rule(pattern=["ls"]\n',
      'nested.rules': 'def f(p):\n    prefix_rule(pattern=p, decision="nope")\n\nf(["x"])\n',
      'example.rules': 'x = 1\nprefix_rule(\n    pattern=["git"],\n    not_match=["git log"],\n)\n',
    };
    for (const [file, text] of Object.entries(bad)) {
      const { run, rulesDir } = await codexExec(file.replace('.rules', ''), { [file]: text }, []);
      assert.equal(run.code, 1, run.output);
      const line = /^Error loading rules:\n(.*)$/m.exec(run.output)?.[1];
      assert.ok(line, run.output);
      const ours = await loadRulesDirectory([rulesDir]);
      assert.deepEqual(ours.warnings, [line], file);
    }
  });

  it('a requirements file that does not load: the text Codex prints', async () => {
    const corpus = [
      '[rules]\nprefix_rules = [{ pattern = [{ token = "rm" }], decision = "allow" }]\n',
      '[rules]\nprefix_rules = [{ pattern = [{ token = "rm" }] }]\n',
      '[rules]\nprefix_rules = []\n',
      '[rules]\nprefix_rules = [{ pattern = [], decision = "prompt" }]\n',
      '[rules]\nprefix_rules = [{ pattern = [{ token = "a" }, { any_of = ["b", " "] }], decision = "forbidden" }]\n',
      '[rules]\nprefix_rules = [{ pattern = [{ token = "a", any_of = ["b"] }], decision = "prompt", justification = "" }]\n',
      '[rules]\nprefix_rules = [{ pattern = [{ token = "a" }], decision = "prompt" }, { pattern = [{}], decision = "prompt" }]\n',
      '[rules]\nprefix_rules = [{ pattern = [{ token = "a" }], decision = "ask" }]\n',
      '[rules]\n',
    ];
    for (const [i, toml] of corpus.entries()) {
      const etc = path.join(scratch, `requirements-${i}`);
      const home = path.join(etc, 'home');
      mkdirSync(path.join(etc, 'codex'), { recursive: true });
      mkdirSync(home, { recursive: true });
      writeFileSync(path.join(etc, 'codex', 'requirements.toml'), toml);
      const mock = await startMockModel([]);
      try {
        const run = await runCodexExec({
          bin: bin as string,
          codexHome: home,
          cwd: home,
          modelUrl: mock.url,
          execServerUrl: '',
          timeoutMs: 60_000,
          wrap: (command, args) => [
            'bwrap',
            ...['--dev-bind', '/', '/', '--tmpfs', '/etc', '--ro-bind', '/etc/passwd', '/etc/passwd'],
            ...['--ro-bind', '/etc/group', '/etc/group', '--ro-bind', path.join(etc, 'codex'), '/etc/codex', '--', command],
            ...args,
          ],
        });
        assert.equal(run.code, 1, run.output);
        let ours = '';
        try {
          requirementsPolicyFromToml(toml, '/etc/codex/requirements.toml');
          assert.fail(`Cordon loaded ${toml}`);
        } catch (err) {
          assert.ok(err instanceof RequirementsLoadError, String(err));
          ours = err.message;
        }
        assert.equal(run.output.trim(), `Error loading config.toml: ${ours}`, toml);
      } finally {
        await mock.close();
      }
    }
  });
});
