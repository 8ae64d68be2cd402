// Command rules (docs/exec-policy.md): the .rules loader, the evaluator and the shell splitter.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { formatCheck, type Policy, PolicyLoadError, policyFromSource, ShellSplitter } from '../../src/execpolicy/index.js';

const RULES_B1 = `prefix_rule(
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
`;

function loadError(src: string): string {
  try {
    policyFromSource(src, 'x.rules');
  } catch (err) {
    assert.ok(err instanceof PolicyLoadError, String(err));
    return /^(?:starlark error: )?error: (.*)$/m.exec(err.detail)?.[1] ?? err.detail;
  }
  assert.fail(`loaded: ${src}`);
}

const check = (p: Policy, argv: string[], resolve = false): string =>
  formatCheck(p.check([argv], { resolveHostExecutables: resolve }), false);

describe('exec policy rules (docs/exec-policy.md)', () => {
  it('P1: every load error, with Codex text', () => {
    const table: Array<[string, string]> = [
      ['prefix_rule(pattern=["git"], decision="deny")', 'invalid decision: deny'],
      ['prefix_rule(pattern=[])', 'invalid pattern element: pattern cannot be empty'],
      ['prefix_rule(pattern=["git", []])', 'invalid pattern element: pattern alternatives cannot be empty'],
      ['prefix_rule(pattern=["git", 3])', 'invalid pattern element: pattern element must be a string or list of strings (got int)'],
      ['prefix_rule(pattern=["git"], justification="   ")', 'invalid rule: justification cannot be empty'],
      ['network_rule(host="", protocol="https", decision="allow")', 'invalid rule: network_rule host cannot be empty'],
      [
        'network_rule(host="a.com", protocol="ftp", decision="allow")',
        'invalid rule: network_rule protocol must be one of http, https, socks5_tcp, socks5_udp (got ftp)',
      ],
      ['host_executable(name="git", paths=["git"])', 'invalid rule: host_executable paths must be absolute (got git)'],
      [
        'host_executable(name="/usr/bin/git", paths=["/usr/bin/git"])',
        'invalid rule: host_executable name must be a bare executable name (got /usr/bin/git)',
      ],
      [
        'host_executable(name="git", paths=["/usr/bin/gitx"])',
        'invalid rule: host_executable path `/usr/bin/gitx` must have basename `git`',
      ],
      ['prefix_rule(pattern=["git"]\n', "Parse error: unexpected new line, expected symbol ')'"],
      ['frobnicate(1)', 'Variable `frobnicate` not found'],
      ['prefix_rule(pattern=["git"], unknown_kw=1)', 'Found `unknown_kw` extra named parameter(s) for call to prefix_rule'],
      [
        'network_rule(host="*.example.com", protocol="https", decision="allow")',
        'invalid rule: network_rule host must be a specific host; wildcards are not allowed',
      ],
      [
        'network_rule(host="exa mple.com", protocol="https", decision="allow")',
        'invalid rule: network_rule host cannot contain whitespace',
      ],
      [
        'network_rule(host="https://example.com", protocol="https", decision="allow")',
        'invalid rule: network_rule host must be a hostname or IP literal (without scheme or path)',
      ],
      ['network_rule(host="a.com", protocol="https", decision="ask")', 'invalid decision: ask'],
    ];
    for (const [src, message] of table) assert.equal(loadError(src), message, src);
    assert.equal(
      loadError('prefix_rule(pattern=["git","status"], match=["git log"])'),
      'expected every example to match at least one rule. rules: ["PrefixRule { pattern: PrefixPattern { canonical_matching: false, first: \\"git\\", rest: [Single(\\"status\\")] }, decision: Allow, justification: None }"]; unmatched examples: ["git log"]',
    );
    assert.equal(
      loadError('prefix_rule(pattern=["git"], not_match=["git log"])'),
      'expected example to not match rule `PrefixRuleMatch { matched_prefix: ["git"], decision: Allow, resolved_program: None, justification: None }`: git log',
    );
  });

  it('P2: the `codex execpolicy check` transcripts, byte for byte', () => {
    const p = policyFromSource(RULES_B1, 'a.rules');
    assert.equal(
      check(p, ['git', 'status']),
      '{"matchedRules":[{"prefixRuleMatch":{"matchedPrefix":["git","status"],"decision":"allow"}},{"prefixRuleMatch":{"matchedPrefix":["git"],"decision":"prompt"}}],"decision":"prompt"}',
    );
    assert.equal(
      check(p, ['git', 'push', 'origin', 'main']),
      '{"matchedRules":[{"prefixRuleMatch":{"matchedPrefix":["git","push","origin"],"decision":"prompt","justification":"ask a human before touching the remote"}},{"prefixRuleMatch":{"matchedPrefix":["git"],"decision":"prompt"}}],"decision":"prompt"}',
    );
    assert.equal(
      check(p, ['rm', '-rf', '/']),
      '{"matchedRules":[{"prefixRuleMatch":{"matchedPrefix":["rm","-rf"],"decision":"forbidden","justification":"Use `trash` instead."}}],"decision":"forbidden"}',
    );
    assert.equal(check(p, ['ls', '-la']), '{"matchedRules":[]}');
    assert.equal(
      check(p, ['/usr/bin/git', 'status'], true),
      '{"matchedRules":[{"prefixRuleMatch":{"matchedPrefix":["git","status"],"decision":"allow","resolvedProgram":"/usr/bin/git"}},{"prefixRuleMatch":{"matchedPrefix":["git"],"decision":"prompt","resolvedProgram":"/usr/bin/git"}}],"decision":"prompt"}',
    );
  });

  it('P3/P4: exact tokens, alternatives in the first position', () => {
    const p = policyFromSource(RULES_B1);
    assert.equal(check(p, ['rm', '-r', '-f', '/']), '{"matchedRules":[]}');
    assert.equal(
      check(p, ['pnpm', 'install', 'x']),
      '{"matchedRules":[{"prefixRuleMatch":{"matchedPrefix":["pnpm","install"],"decision":"prompt"}}],"decision":"prompt"}',
    );
  });

  it('P5/P6: absolute paths and host_executable', () => {
    const p = policyFromSource(`${RULES_B1}prefix_rule(pattern=["rm"], decision="prompt")\n`);
    assert.equal(check(p, ['/usr/bin/git', 'status']), '{"matchedRules":[]}');
    assert.match(check(p, ['/usr/bin/git', 'status'], true), /"resolvedProgram":"\/usr\/bin\/git"/);
    assert.equal(check(p, ['/usr/local/bin/git', 'status'], true), '{"matchedRules":[]}');
    assert.match(check(p, ['/bin/rm', 'x'], true), /"matchedPrefix":\["rm"\],"decision":"prompt","resolvedProgram":"\/bin\/rm"/);
  });

  it('P7/P8/P11: output shapes', () => {
    const p = policyFromSource(RULES_B1);
    assert.doesNotMatch(check(p, ['ls']), /decision/);
    const pretty = formatCheck(p.check([['rm', '-rf', 'x']], { resolveHostExecutables: false }), true);
    assert.match(pretty, /^\{\n {2}"matchedRules": \[\n {4}\{/);
  });

  it('P9/P10: variables, +, def; load() is refused', () => {
    const p = policyFromSource(
      'x = ["git", "status"]\nprefix_rule(pattern = x + ["-s"], decision="prompt")\ndef f(p):\n    prefix_rule(pattern=p)\nf(["ls"])\n',
    );
    assert.match(check(p, ['git', 'status', '-s']), /"matchedPrefix":\["git","status","-s"\]/);
    assert.match(check(p, ['ls', '-l']), /"matchedPrefix":\["ls"\]/);
    assert.equal(loadError('load("foo.star", "x")'), 'No imports are available, you tried `foo.star` (no call to `Evaluator.set_loader`)');
  });

  it('a rules file that would run for ever fails to load instead', () => {
    assert.match(loadError('for a in range(100000):\n    for b in range(100000):\n        pass\n'), /evaluation exceeded \d+ steps/);
    assert.match(loadError('def f():\n    f()\nf()\n'), /call stack overflow/);
  });

  it('P15: the strictest decision wins across files, matches in file order', () => {
    const a = 'prefix_rule(pattern=["git"])\n';
    const b = 'prefix_rule(pattern=["git", "push"], decision="forbidden")\n';
    const p = policyFromSource(a + b);
    assert.equal(
      check(p, ['git', 'push']),
      '{"matchedRules":[{"prefixRuleMatch":{"matchedPrefix":["git"],"decision":"allow"}},{"prefixRuleMatch":{"matchedPrefix":["git","push"],"decision":"forbidden"}}],"decision":"forbidden"}',
    );
  });

  it('network_rule data is exposed for the managed proxy', () => {
    const p = policyFromSource(`${RULES_B1}network_rule(host="API.Example.com.", protocol="http", decision="forbidden")\n`);
    assert.deepEqual(
      p.networkRules.map((r) => [r.normalizedHost, r.protocol, r.decision, r.justification]),
      [
        ['example.com', 'https', 'allow', 'docs'],
        ['api.example.com', 'http', 'deny', null],
      ],
    );
  });

  describe('shell splitting (P12–P14)', () => {
    let splitter: ShellSplitter;
    before(async () => {
      splitter = await ShellSplitter.create();
    });
    it('P12: plain words joined by && ; | are split', () => {
      assert.deepEqual(splitter.commandsFor(['bash', '-lc', "ls && pwd; echo 'hi there' | wc -l"]).commands, [
        ['ls'],
        ['pwd'],
        ['echo', 'hi there'],
        ['wc', '-l'],
      ]);
      assert.deepEqual(splitter.commandsFor(['bash', '-c', 'rg -g"*.py" foo || true']).commands, [['rg', '-g*.py', 'foo'], ['true']]);
    });
    it('P13: anything else is one command', () => {
      for (const script of [
        'echo $HOME',
        'ls > out',
        '(ls)',
        'echo hi & echo bye',
        'FOO=bar ls',
        'ls &&',
        'echo `id`',
        'echo $(id)',
        'if true; then ls; fi',
      ]) {
        const r = splitter.commandsFor(['bash', '-lc', script]);
        assert.deepEqual(r.commands, [['bash', '-lc', script]], script);
        assert.equal(r.unsplittableScript, true, script);
      }
    });
    it('P14: shell detection', () => {
      assert.deepEqual(splitter.commandsFor(['/usr/bin/zsh', '-c', 'ls']).commands, [['ls']]);
      assert.deepEqual(splitter.commandsFor(['sh', '-lc', 'ls']).commands, [['ls']]);
      assert.deepEqual(splitter.commandsFor(['fish', '-c', 'ls']).commands, [['fish', '-c', 'ls']]);
      assert.deepEqual(splitter.commandsFor(['bash', '-x', 'ls']).commands, [['bash', '-x', 'ls']]);
    });
  });
});
