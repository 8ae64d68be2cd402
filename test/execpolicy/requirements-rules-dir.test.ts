// P21: requirements.toml `[rules]` and its load errors; P22: a rules directory whose bad files are
// skipped with Codex's one-line warning. Texts measured on Codex 0.171.0 (`codex exec` with the
// file at /etc/codex/requirements.toml, and with the file in $CODEX_HOME/rules).
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadRulesDirectory, PolicyLoadError, RequirementsLoadError, requirementsPolicyFromToml } from '../../src/execpolicy/index.js';

const FILE = '/etc/codex/requirements.toml';

function loadError(toml: string): string {
  try {
    requirementsPolicyFromToml(toml, FILE);
  } catch (err) {
    assert.ok(err instanceof RequirementsLoadError, String(err));
    return err.message;
  }
  assert.fail(`loaded: ${toml}`);
}

const rules = (...entries: string[]): string => `[rules]\nprefix_rules = [\n${entries.map((e) => `  ${e},\n`).join('')}]\n`;
const invalid = (m: string): string => `invalid rules in requirements (set by ${FILE}): ${m}`;

describe('requirements.toml [rules] (P21)', () => {
  it('every load error, with the text of Codex 0.171.0', () => {
    const table: Array<[string, string]> = [
      [
        rules('{ pattern = [{ token = "rm" }], decision = "allow" }'),
        invalid(
          "rules prefix_rule at index 0 has decision 'allow', which is not permitted in requirements.toml: Codex merges these rules with other config and uses the most restrictive result (use 'prompt', 'prompt-user', or 'forbidden')",
        ),
      ],
      [rules('{ pattern = [{ token = "rm" }] }'), invalid('rules prefix_rule at index 0 is missing a decision')],
      ['[rules]\nprefix_rules = []\n', invalid('rules prefix_rules cannot be empty')],
      [
        rules('{ pattern = [{ token = "rm", any_of = ["a"] }], decision = "prompt" }'),
        invalid('rules prefix_rule at index 0 has an invalid pattern token at index 0: set either token or any_of, not both'),
      ],
      [rules('{ pattern = [], decision = "prompt" }'), invalid('rules prefix_rule at index 0 has an empty pattern')],
      [
        rules('{ pattern = [{ token = "a" }], decision = "prompt", justification = " " }'),
        invalid('rules prefix_rule at index 0 has an empty justification'),
      ],
      [
        rules('{ pattern = [{ token = "a" }, { token = " " }], decision = "prompt" }'),
        invalid('rules prefix_rule at index 0 has an invalid pattern token at index 1: token cannot be empty'),
      ],
      [
        rules('{ pattern = [{ any_of = [] }], decision = "prompt" }'),
        invalid('rules prefix_rule at index 0 has an invalid pattern token at index 0: any_of cannot be empty'),
      ],
      [
        rules('{ pattern = [{ any_of = ["a", ""] }], decision = "prompt" }'),
        invalid('rules prefix_rule at index 0 has an invalid pattern token at index 0: any_of cannot include empty tokens'),
      ],
      [
        rules('{ pattern = [{}], decision = "prompt" }'),
        invalid('rules prefix_rule at index 0 has an invalid pattern token at index 0: set either token or any_of'),
      ],
      [
        rules('{ pattern = [{ token = "a" }], decision = "deny" }'),
        `failed to parse requirements layer ${FILE}: unknown variant \`deny\`, expected one of \`allow\`, \`prompt\`, \`prompt-user\`, \`forbidden\`\nin \`rules.prefix_rules.decision\``,
      ],
      ['[rules]\n', `failed to parse requirements layer ${FILE}: missing field \`prefix_rules\`\nin \`rules\``],
      [
        rules('{ pattern = [{ token = "a" }], decision = "prompt" }', '{ pattern = [{ token = "b" }], decision = "allow" }'),
        invalid(
          "rules prefix_rule at index 1 has decision 'allow', which is not permitted in requirements.toml: Codex merges these rules with other config and uses the most restrictive result (use 'prompt', 'prompt-user', or 'forbidden')",
        ),
      ],
    ];
    for (const [toml, message] of table) assert.equal(loadError(toml), message, toml);
    assert.match(loadError('[rules\n'), new RegExp(`^failed to parse requirements layer ${FILE}: `));
  });

  it('valid rules: any_of heads make one rule each, prompt-user is prompt, unknown keys are reported', () => {
    const { policy, warnings } = requirementsPolicyFromToml(
      rules(
        '{ pattern = [{ any_of = ["rm", "shred"] }, { token = "-rf" }], decision = "forbidden", justification = "no" }',
        '{ pattern = [{ token = "git" }, { any_of = ["push", "fetch"] }], decision = "prompt-user", foo = 1 }',
      ) + '\n[experimental_network]\nenabled = true\n',
      FILE,
    );
    assert.deepEqual(warnings, [`requirements (${FILE}): \`rules.prefix_rules.1.foo\` is ignored.`]);
    const decide = (argv: string[]) => policy.check([argv], { resolveHostExecutables: true }).decision;
    assert.equal(decide(['shred', '-rf', 'x']), 'forbidden');
    assert.equal(decide(['rm', '-rf', 'x']), 'forbidden');
    assert.equal(decide(['rm', 'x']), undefined);
    assert.equal(decide(['git', 'fetch']), 'prompt');
    assert.equal(requirementsPolicyFromToml('allowed_approval_policies = ["never"]\n', FILE).policy.prefixRules.length, 0);
  });
});

describe('a rules directory (P22)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cordon-rules-dir-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("a file that does not load is skipped with Codex's one-line form; the others apply", async () => {
    const d = path.join(dir, 'rules');
    mkdirSync(d);
    const files: Record<string, string> = {
      'a.rules': 'prefix_rule(pattern=["echo"], decision="forbidden")\n',
      'b.rules': 'prefix_rule(pattern=["git"])\n\nprefix_rule(pattern=["ls"], decision="deny")\n',
      'c-syntax.rules': 'prefix_rule(pattern=["git"])\nprefix_rule(pattern=["ls"]\n',
      'd-var.rules': '\n\nfrobnicate(1)\n',
      'e-load.rules': 'load("foo.star", "x")\n',
      'f-match.rules': 'prefix_rule(pattern=["git","status"], match=["git log"])\n',
      'g-multi.rules': 'prefix_rule(\n  pattern=["git"],\n  decision="deny",\n)\n',
      'h-nested.rules': 'def f(p):\n    prefix_rule(pattern=p, decision="nope")\n\nf(["x"])\n',
      'i-partial.rules':
        'prefix_rule(pattern=["cat"], decision="forbidden")\nhost_executable(name="echo", paths=["/nowhere/echo"])\nboom\n',
      'not-rules.txt': 'this is not read',
    };
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(d, name), text);
    const r = await loadRulesDirectory([d]);
    const at = (name: string, line: number, message: string) =>
      `${path.join(d, name)}:${line}: ${message} (problem is on or around line ${line})`;
    assert.deepEqual(r.warnings, [
      at('b.rules', 3, 'error: invalid decision: deny'),
      at('c-syntax.rules', 3, "starlark error: error: Parse error: unexpected new line, expected symbol ')'"),
      at('d-var.rules', 3, 'starlark error: error: Variable `frobnicate` not found'),
      at('e-load.rules', 1, 'starlark error: error: No imports are available, you tried `foo.star` (no call to `Evaluator.set_loader`)'),
      at(
        'f-match.rules',
        1,
        'expected every example to match at least one rule. rules: ["PrefixRule { pattern: PrefixPattern { canonical_matching: false, first: \\"git\\", rest: [Single(\\"status\\")] }, decision: Allow, justification: None }"]; unmatched examples: ["git log"]',
      ),
      at('g-multi.rules', 1, 'error: invalid decision: deny'),
      at('h-nested.rules', 2, 'error: invalid decision: nope'),
      at('i-partial.rules', 3, 'starlark error: error: Variable `boom` not found'),
    ]);
    assert.deepEqual(r.loaded, [path.join(d, 'a.rules')]);
    const decide = (argv: string[]) => r.policy.check([argv], { resolveHostExecutables: true }).decision;
    assert.equal(decide(['echo', 'hi']), 'forbidden');
    // Nothing of a skipped file stays, not even what it defined before failing.
    assert.equal(decide(['git', 'status']), undefined);
    assert.equal(decide(['cat', 'x']), undefined);
    assert.equal(decide(['/bin/echo', 'hi']), 'forbidden');
  });

  it('a missing directory has no rules; named files after it still fail loudly', async () => {
    const none = await loadRulesDirectory([path.join(dir, 'nope')]);
    assert.deepEqual([none.loaded, none.warnings, none.policy.prefixRules.length], [[], [], 0]);
    writeFileSync(path.join(dir, 'bad.rules'), 'prefix_rule(pattern=["git"], decision="deny")\n');
    await assert.rejects(loadRulesDirectory([path.join(dir, 'nope')], ['bad.rules'], dir), (err: unknown) => {
      assert.ok(err instanceof PolicyLoadError);
      assert.match(err.report, /^Error: failed to parse policy at bad\.rules\n/);
      return true;
    });
  });
});
