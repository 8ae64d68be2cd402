// Codex's per-call requirement (NETWORK.md §3.6, §5.4 P16–P20): heuristics for unmatched commands,
// approval-policy refusals, amendments, bypass_sandbox; the dangerous-command classifier; the
// splitter's literal-word rule. Expected texts and verdicts were measured on Codex 0.171.0
// (`codex exec` with a scripted model, approval_policy = "never") where 0.171 can show them.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import {
  type ApprovalPolicy,
  dangerousCommandMatch,
  execRequirement,
  isBannedAmendment,
  type Policy,
  parseApprovalPolicy,
  policyFromSource,
  type RequirementInput,
  ShellSplitter,
} from '../../src/execpolicy/index.js';

let splitter: ShellSplitter;
before(async () => {
  splitter = await ShellSplitter.create();
});

const EMPTY = (): Policy => policyFromSource('');
const bash = (script: string): string[] => ['/bin/bash', '-lc', script];

function req(policy: Policy, argv: string[], approvalPolicy: ApprovalPolicy, extra: Partial<RequirementInput> = {}) {
  return execRequirement(policy, splitter, { argv, approvalPolicy, fileSystem: 'restricted', ...extra }).requirement;
}

describe('dangerous-command classifier (as Codex 0.171.0 flags it)', () => {
  const danger = (argv: string[]) => dangerousCommandMatch(argv, (a) => splitter.literalCommands(a));
  it('forced rm in every form Codex flags', () => {
    for (const argv of [
      ['rm', '-rf', 'x'],
      ['rm', '-f', 'x'],
      ['rm', 'x', '-f'],
      ['rm', '-r', '-f', 'x'],
      ['rm', '--force', 'x'],
      ['rm', '-fi', 'x'],
      ['/bin/rm', '-fr', 'x'],
      ['sudo', 'rm', '-rf', 'x'],
      ['env', 'FOO=1', 'rm', '-rf', 'x'],
      ['env', '-i', 'rm', '-rf', 'x'],
      bash('rm -rf x'),
      bash('echo "$(rm -rf x)"'),
      bash('bash -c "rm -rf x"'),
      bash('trap "rm -rf x" EXIT'),
      bash('trap -- "rm -rf x" EXIT'),
      bash('for t in a; do rm -rf "$t"; done'),
      bash('rm -rf $HOME/x'),
      bash('(rm -rf x)'),
      bash('rm -rf x > out'),
      bash('RM=1 rm -rf x'),
      bash('sh -c "sudo rm -f x"'),
    ])
      assert.equal(danger(argv), 'forcedRm', JSON.stringify(argv));
  });
  it('what Codex does not flag: git subcommands, unforced rm, non-literal and unknown wrappers', () => {
    for (const argv of [
      ['git', 'reset', '--hard'],
      ['git', 'push', '--force'],
      ['git', 'clean', '-fdx'],
      ['git', 'branch', '-D', 'x'],
      ['rm', '-r', 'x'],
      ['rm', '--', '-f'],
      ['rm', '-i', 'x'],
      bash("echo 'rm -rf x'"),
      bash('cmd=rm; $cmd -rf x'),
      bash('xargs rm -rf'),
      bash('find . -exec rm -rf {} \\;'),
      bash('sudo -u root rm -rf x'),
      bash('env -u FOO rm -rf x'),
      bash('nice rm -rf x'),
      bash('time rm -rf x'),
      bash('if then rm -rf x'),
      bash("trap 'echo rm -rf x' EXIT"),
    ])
      assert.equal(danger(argv), undefined, JSON.stringify(argv));
  });
  it('wrappers nested deeper than 8 are dangerous (fail closed)', () => {
    assert.equal(danger([...Array(8).fill('env'), 'rm', '-rf', 'x']), 'forcedRm');
    assert.equal(danger([...Array(9).fill('env'), 'ls']), 'other');
  });
});

describe('the splitter keeps only literal words (Codex 0.171.0)', () => {
  it('a word the shell would expand makes the script unsplittable', () => {
    for (const script of [
      'echo ~',
      'echo HEAD^',
      'echo *.py',
      'echo a{b,c}',
      'echo foo#bar',
      'echo =sh',
      'find . -de\\lete',
      'echo "a\\"b"',
    ])
      assert.deepEqual(splitter.commandsFor(bash(script)), { commands: [bash(script)], unsplittableScript: true }, script);
  });
  it('quoted, the same characters are literal', () => {
    assert.deepEqual(splitter.commandsFor(bash(`echo "~HOME" 'HEAD~1' "HEAD^" -"{a,b}" '*?'`)).commands, [
      ['echo', '~HOME', 'HEAD~1', 'HEAD^', '-{a,b}', '*?'],
    ]);
    assert.deepEqual(splitter.commandsFor(bash('rg -g"*.py" x')).commands, [['rg', '-g*.py', 'x']]);
  });
});

describe('per-call requirement (NETWORK.md §3.6)', () => {
  it('P17: unmatched `rm -rf x` under never is forbidden with the rm -f text', () => {
    assert.deepEqual(req(EMPTY(), ['rm', '-rf', 'x'], 'never'), {
      kind: 'forbidden',
      reason: '`rm -rf x` rejected: rm -f style commands are not permitted. Use a safer approach',
    });
    // The text names the argv as given, shlex-joined, as Codex 0.171.0 printed it.
    assert.deepEqual(req(EMPTY(), bash('rm -rf x'), 'never'), {
      kind: 'forbidden',
      reason: "`/bin/bash -lc 'rm -rf x'` rejected: rm -f style commands are not permitted. Use a safer approach",
    });
    // Its allowed twins: not dangerous, or not under never.
    assert.deepEqual(req(EMPTY(), ['rm', '-r', 'x'], 'never'), {
      kind: 'skip',
      bypassSandbox: false,
      proposedAmendment: ['rm', '-r', 'x'],
    });
    assert.equal(req(EMPTY(), ['git', 'reset', '--hard'], 'never').kind, 'skip');
    assert.deepEqual(req(EMPTY(), ['rm', '-rf', 'x'], 'on-request'), { kind: 'needsApproval', proposedAmendment: ['rm', '-rf', 'x'] });
  });

  it('P16: a rule forbids: the longest forbidding rule speaks, the last of equal ones (measured)', () => {
    const p = policyFromSource(
      'prefix_rule(pattern=["rm"], decision="forbidden", justification="j1")\nprefix_rule(pattern=["rm","-x"], decision="forbidden")\n' +
        'prefix_rule(pattern=["cp"], decision="forbidden", justification="a")\nprefix_rule(pattern=["cp"], decision="forbidden", justification="b")\n',
    );
    assert.deepEqual(req(p, bash('rm -x y'), 'never'), {
      kind: 'forbidden',
      reason: "`/bin/bash -lc 'rm -x y'` rejected: policy forbids commands starting with `rm -x`",
    });
    assert.deepEqual(req(p, bash('cp a b'), 'never'), { kind: 'forbidden', reason: "`/bin/bash -lc 'cp a b'` rejected: b" });
    assert.deepEqual(req(p, ['rm', 'z'], 'on-request'), { kind: 'forbidden', reason: '`rm z` rejected: j1' });
  });

  it('prompts under a policy that cannot prompt are refusals with Codex texts', () => {
    const p = policyFromSource('prefix_rule(pattern=["git","push"], decision="prompt", justification="remote")\n');
    assert.deepEqual(req(p, ['git', 'push'], 'never'), {
      kind: 'forbidden',
      reason: 'approval required by policy, but AskForApproval is set to Never',
    });
    const noRules: ApprovalPolicy = { granular: { sandboxApproval: true, rules: false } };
    assert.deepEqual(req(p, ['git', 'push'], noRules), {
      kind: 'forbidden',
      reason: 'approval required by policy rule, but AskForApproval::Granular.rules is false',
    });
    const noSandbox: ApprovalPolicy = { granular: { sandboxApproval: false, rules: true } };
    assert.deepEqual(req(EMPTY(), ['sudo', 'rm', '-f', 'x'], noSandbox), {
      kind: 'forbidden',
      reason: 'rm -f style commands are not permitted. Use a safer approach',
    });
    // The first dangerous heuristic prompt speaks, even after a harmless one.
    assert.deepEqual(req(EMPTY(), bash('ls && rm -f x'), noSandbox, { requestsSandboxOverride: true }), {
      kind: 'forbidden',
      reason: 'rm -f style commands are not permitted. Use a safer approach',
    });
    assert.deepEqual(req(EMPTY(), ['ls'], noSandbox, { requestsSandboxOverride: true }), {
      kind: 'forbidden',
      reason: 'approval required by policy, but AskForApproval::Granular.sandbox_approval is false',
    });
    assert.deepEqual(req(p, ['git', 'push'], 'on-request'), { kind: 'needsApproval', reason: '`git push` requires approval: remote' });
  });

  it('P18: untrusted asks about unmatched commands and proposes the command; a rule prompt proposes nothing', () => {
    assert.deepEqual(req(EMPTY(), ['cargo', 'build'], 'untrusted'), { kind: 'needsApproval', proposedAmendment: ['cargo', 'build'] });
    // The first heuristically prompted part of a split script.
    assert.deepEqual(req(EMPTY(), bash('make && make install'), 'untrusted'), { kind: 'needsApproval', proposedAmendment: ['make'] });
    const p = policyFromSource('prefix_rule(pattern=["make"], decision="prompt")\n');
    assert.deepEqual(req(p, bash('make && cargo build'), 'untrusted'), {
      kind: 'needsApproval',
      reason: "`/bin/bash -lc 'make && cargo build'` requires approval by policy",
    });
    // The model's own proposal wins when it would allow every part and no rule matched.
    assert.deepEqual(req(EMPTY(), ['cargo', 'build', '--release'], 'untrusted', { proposedPrefixRule: ['cargo', 'build'] }), {
      kind: 'needsApproval',
      proposedAmendment: ['cargo', 'build'],
    });
    // ... and is dropped when it would not allow every part: the first prompted command is proposed instead.
    assert.deepEqual(req(EMPTY(), bash('cargo build && make'), 'untrusted', { proposedPrefixRule: ['cargo', 'build'] }), {
      kind: 'needsApproval',
      proposedAmendment: ['cargo', 'build'],
    });
    assert.deepEqual(req(EMPTY(), bash('make && cargo build'), 'untrusted', { proposedPrefixRule: ['cargo', 'build'] }), {
      kind: 'needsApproval',
      proposedAmendment: ['make'],
    });
    // Prefix rules not honoured: no amendment at all, and allow rules do not count.
    const allowCargo = policyFromSource('prefix_rule(pattern=["cargo"])\n');
    assert.deepEqual(req(allowCargo, ['cargo', 'build'], 'untrusted', { prefixRules: 'ignore' }), { kind: 'needsApproval' });
    assert.deepEqual(req(allowCargo, ['cargo', 'build'], 'untrusted'), { kind: 'skip', bypassSandbox: true });
  });

  it('on-request: unmatched commands run in a restricted sandbox unless the call asks to leave it', () => {
    assert.deepEqual(req(EMPTY(), ['ls'], 'on-request'), { kind: 'skip', bypassSandbox: false, proposedAmendment: ['ls'] });
    assert.deepEqual(req(EMPTY(), ['ls'], 'on-request', { requestsSandboxOverride: true }), {
      kind: 'needsApproval',
      proposedAmendment: ['ls'],
    });
    assert.equal(req(EMPTY(), ['ls'], 'on-request', { requestsSandboxOverride: true, fileSystem: 'unrestricted' }).kind, 'skip');
  });

  it('P19: bypass_sandbox only when every split command has an explicit allow rule', () => {
    const p = policyFromSource('prefix_rule(pattern=["git","status"])\nprefix_rule(pattern=["ls"])\n');
    assert.deepEqual(req(p, bash('git status && ls'), 'on-request'), { kind: 'skip', bypassSandbox: true });
    assert.deepEqual(req(p, bash('git status && pwd'), 'on-request'), { kind: 'skip', bypassSandbox: false });
    assert.deepEqual(req(p, bash('git status && pwd'), 'never'), { kind: 'skip', bypassSandbox: false });
    // Unsplittable: judged whole, which no rule allows.
    assert.deepEqual(req(p, bash('git status && ls $HOME'), 'on-request'), {
      kind: 'skip',
      bypassSandbox: false,
      proposedAmendment: bash('git status && ls $HOME'),
    });
  });

  it('P20: a banned prefix is never proposed', () => {
    for (const banned of [
      ['bash', '-lc'],
      ['python3', '-c'],
      ['rm'],
      ['git'],
      ['/bin/zsh', '-lc'],
      ['node', '-e'],
      ['pwsh', '-EncodedCommand'],
      ['sudo'],
    ]) {
      assert.ok(isBannedAmendment(banned), banned.join(' '));
      const argv = [...banned, 'x'];
      const r = req(EMPTY(), argv, 'untrusted', { proposedPrefixRule: banned });
      assert.equal(r.kind, 'needsApproval');
      // Not the model's banned proposal: Codex falls back to the command itself.
      assert.notDeepEqual((r as { proposedAmendment?: string[] }).proposedAmendment, banned, banned.join(' '));
    }
    // Exact length: a longer prefix is fine.
    assert.ok(!isBannedAmendment(['git', 'status']));
    assert.deepEqual(req(EMPTY(), ['git', 'status', '-s'], 'untrusted', { proposedPrefixRule: ['git', 'status'] }), {
      kind: 'needsApproval',
      proposedAmendment: ['git', 'status'],
    });
  });

  it('the approval policy as written in cordon.toml', () => {
    assert.equal(parseApprovalPolicy('never'), 'never');
    assert.deepEqual(parseApprovalPolicy({ granular: { rules: false } }), { granular: { sandboxApproval: true, rules: false } });
    assert.throws(() => parseApprovalPolicy('sometimes'), /approval policy must be never, on-request, untrusted/);
  });
});
