// The operator's approval policy, requirements file and rules directory, end to end through real
// servers (`cordon serve` processes and an in-process server): `never` refuses an unmatched
// `rm -rf` with Codex's text, `untrusted` prompts and a session-accepted amendment lets the same
// command run again unasked, a bad requirements file stops the server, a bad file in a rules
// directory is skipped with a warning while the server starts with the others.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ExecPolicyRequest, execPolicyRequestHandler } from '../../src/client/exec-policy-requests.js';
import { ExecServerClient } from '../../src/client/exec-server-client.js';
import { ExecPolicyEnforcer, policyFromSource } from '../../src/execpolicy/index.js';
import { builtinProfile } from '../../src/sandbox/builtin-profiles.js';
import type { CordonServer } from '../../src/server/index.js';
import { cordon, serve } from '../cli-helpers.js';
import { RawClient, SH_ENV, startServer } from '../helpers.js';

async function run(
  client: ExecServerClient,
  processId: string,
  argv: string[],
  cwd: string,
): Promise<{ out: string; code: number | null }> {
  const { events } = await client.spawn({ processId, argv, cwd, env: SH_ENV, tty: false });
  let out = '';
  let code: number | null = null;
  for await (const e of events) {
    if (e.type === 'output') out += Buffer.from(e.data).toString();
    if (e.type === 'exited') code = e.exitCode;
  }
  return { out, code };
}

async function stop(child: import('node:child_process').ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
}

describe('cordon serve --approval-policy never', () => {
  let dir: string;
  let child: import('node:child_process').ChildProcessWithoutNullStreams;
  let url: string;
  before(async () => {
    // Not under /tmp: the :workspace ceiling lets everyone write /tmp.
    dir = await mkdtemp('/var/tmp/cordon-approval-never-');
    writeFileSync(path.join(dir, 'team.rules'), 'prefix_rule(pattern=["git","push"], decision="prompt")\n');
    ({ child, url } = await serve([
      '--listen',
      'ws://127.0.0.1:0',
      '--workspace',
      dir,
      '--rules',
      path.join(dir, 'team.rules'),
      '--approval-policy',
      'never',
    ]));
  });
  after(async () => {
    await stop(child);
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses an unmatched `rm -rf` with Codex's text; an unforced rm runs", async () => {
    const client = await ExecServerClient.connect({ url, reconnect: false });
    try {
      const victim = path.join(dir, 'victim');
      mkdirSync(victim);
      writeFileSync(path.join(victim, 'f'), 'x');
      await assert.rejects(client.startProcess({ processId: 'rf', argv: ['rm', '-rf', victim], cwd: dir, env: SH_ENV }), {
        message: `\`rm -rf ${victim}\` rejected: rm -f style commands are not permitted. Use a safer approach`,
      });
      // Hidden in a script Codex cannot split: still seen, and the text names the argv as sent.
      const script = `for d in ${victim}; do rm -r -f "$d"; done`;
      await assert.rejects(client.startProcess({ processId: 'loop', argv: ['/bin/bash', '-lc', script], cwd: dir, env: SH_ENV }), {
        message: `\`/bin/bash -lc '${script}'\` rejected: rm -f style commands are not permitted. Use a safer approach`,
      });
      assert.ok(existsSync(path.join(victim, 'f')));
      // A rule's prompt cannot be asked under never.
      await assert.rejects(client.startProcess({ processId: 'push', argv: ['git', 'push'], cwd: dir, env: SH_ENV }), {
        message: 'approval required by policy, but AskForApproval is set to Never',
      });
      // The allowed twin: no force, no rule: runs (the sandbox still applies).
      assert.deepEqual(await run(client, 'r', ['rm', path.join(victim, 'f')], dir), { out: '', code: 0 });
      assert.equal(existsSync(path.join(victim, 'f')), false);
    } finally {
      await client.close();
    }
  });

  it("sandboxed starts and Codex's wrapper form are judged too", async () => {
    const c = await RawClient.ready(url);
    try {
      const victim = path.join(dir, 'wrapped');
      mkdirSync(victim);
      const fileSystem = {
        type: 'restricted',
        entries: [
          { path: { type: 'special', value: { kind: 'root' } }, access: 'read' },
          { path: { type: 'path', path: dir }, access: 'write' },
        ],
      };
      const sandboxed = await c.client.request('process/start', {
        processId: 'sb',
        argv: ['rm', '-fr', victim],
        cwd: dir,
        env: SH_ENV,
        tty: false,
        sandbox: {
          permissions: { type: 'managed', network: 'restricted', file_system: fileSystem },
          cwd: dir,
          windowsSandboxLevel: 'disabled',
        },
      });
      assert.equal(sandboxed.error?.message, `\`rm -fr ${victim}\` rejected: rm -f style commands are not permitted. Use a safer approach`);
      const profile = { type: 'managed', file_system: fileSystem, network: 'restricted' };
      const wrapped = (processId: string, cmd: string[]) =>
        c.client.request('process/start', {
          processId,
          argv: [
            '/home/someone/.npm/bin/codex',
            '--sandbox-policy-cwd',
            dir,
            '--command-cwd',
            dir,
            '--permission-profile',
            JSON.stringify(profile),
            '--',
            ...cmd,
          ],
          arg0: 'codex-linux-sandbox',
          cwd: dir,
          env: SH_ENV,
          tty: false,
        });
      const refused = await wrapped('w1', ['/bin/bash', '-lc', `sudo rm -rf ${victim}`]);
      assert.equal(
        refused.error?.message,
        `\`/bin/bash -lc 'sudo rm -rf ${victim}'\` rejected: rm -f style commands are not permitted. Use a safer approach`,
      );
      const ok = await wrapped('w2', ['/bin/bash', '-lc', `rmdir ${victim}`]);
      assert.equal(ok.error, undefined, JSON.stringify(ok));
      await c.client.untilClosed('w2');
      assert.equal(existsSync(victim), false);
    } finally {
      c.client.close();
    }
  });
});

describe('approval policy untrusted: prompts and session amendments', () => {
  let server: CordonServer;
  let url: string;
  let dir: string;
  before(async () => {
    dir = await mkdtemp('/var/tmp/cordon-approval-untrusted-');
    const execPolicy = await ExecPolicyEnforcer.create(
      policyFromSource('prefix_rule(pattern=["echo"])\nprefix_rule(pattern=["touch"], decision="prompt", justification="creates files")\n'),
      { approvalPolicy: 'untrusted' },
    );
    ({ server, url } = await startServer({
      execPolicy,
      execPolicyPromptTimeoutMs: 5000,
      environment: { ceiling: { profile: builtinProfile(':workspace'), cwd: dir, workspaceRoots: [dir], name: ':workspace' } },
    }));
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('asks about an unmatched command with the proposed amendment; accepted, the same command runs unasked for the session', async () => {
    const asked: ExecPolicyRequest[] = [];
    let decision: 'allowOnce' | 'allowWithAmendment' | 'deny' = 'allowOnce';
    const connect = () =>
      ExecServerClient.connect({
        url,
        reconnect: false,
        requestHandlers: {
          'execPolicy/request': execPolicyRequestHandler((q) => {
            asked.push(q);
            return decision;
          }),
        },
      });
    const client = await connect();
    const other = await connect();
    try {
      const argv = ['expr', 'hi'];
      assert.deepEqual(await run(client, 'p1', argv, dir), { out: 'hi\n', code: 0 });
      assert.equal(asked.length, 1);
      assert.deepEqual(asked[0], {
        processId: 'p1',
        argv,
        commands: [argv],
        evaluation: { matchedRules: [] },
        reason: '`expr hi` requires approval under the approval policy untrusted',
        proposedAmendment: argv,
      });
      // Allowed once only: asked again.
      assert.equal((await run(client, 'p2', argv, dir)).code, 0);
      assert.equal(asked.length, 2);
      decision = 'allowWithAmendment';
      assert.equal((await run(client, 'p3', argv, dir)).code, 0);
      assert.equal(asked.length, 3);
      // Now the session has `prefix_rule(pattern=["expr","hi"])`: no prompt.
      decision = 'deny';
      assert.deepEqual(await run(client, 'p4', argv, dir), { out: 'hi\n', code: 0 });
      assert.deepEqual(await run(client, 'p5', ['expr', 'hi', ':', 'h'], dir), { out: '1\n', code: 0 });
      assert.equal(asked.length, 3);
      // Only for that session: another connection is asked, and denied.
      await assert.rejects(
        other.startProcess({ processId: 'o1', argv, cwd: dir, env: SH_ENV }),
        /`expr hi` rejected by the client: denied/,
      );
      assert.equal(asked.length, 4);
      // A rule's prompt proposes no amendment; an allow rule needs no prompt.
      const file = path.join(dir, 'made');
      await assert.rejects(client.startProcess({ processId: 't', argv: ['touch', file], cwd: dir, env: SH_ENV }), /rejected by the client/);
      assert.equal(asked[4]?.reason, `\`touch ${file}\` requires approval: creates files`);
      assert.equal(asked[4]?.proposedAmendment, undefined);
      assert.equal(existsSync(file), false);
      assert.equal((await run(client, 'e', ['echo', 'ok'], dir)).out, 'ok\n');
      assert.equal(asked.length, 5);
    } finally {
      await client.close();
      await other.close();
    }
  });
});

describe('cordon serve --requirements and --rules-dir', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp('/var/tmp/cordon-approval-files-');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a requirements file that does not load stops the server with the text Codex prints', async () => {
    const bad = path.join(dir, 'bad-requirements.toml');
    writeFileSync(bad, '[rules]\nprefix_rules = [{ pattern = [{ token = "rm" }], decision = "allow" }]\n');
    const r = await cordon(['serve', '--listen', 'ws://127.0.0.1:0', '--workspace', dir, '--requirements', bad]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `cordon serve: invalid rules in requirements (set by ${bad}): rules prefix_rule at index 0 has decision 'allow', which is not permitted in requirements.toml: Codex merges these rules with other config and uses the most restrictive result (use 'prompt', 'prompt-user', or 'forbidden')\n`,
    );
    writeFileSync(bad, '[rules]\nprefix_rules = [{ pattern = [{ token = "rm" }] }]\n');
    const missing = await cordon(['serve', '--listen', 'ws://127.0.0.1:0', '--workspace', dir, '--requirements', bad]);
    assert.equal(missing.code, 1);
    assert.equal(
      missing.stderr,
      `cordon serve: invalid rules in requirements (set by ${bad}): rules prefix_rule at index 0 is missing a decision\n`,
    );
  });

  it('a bad file in the rules directory is skipped with a warning; the server starts and applies the rest and the requirements', async () => {
    const rulesDir = path.join(dir, 'rules');
    mkdirSync(rulesDir);
    writeFileSync(path.join(rulesDir, 'good.rules'), 'prefix_rule(pattern=["cp"], decision="forbidden", justification="no copies")\n');
    writeFileSync(
      path.join(rulesDir, 'typo.rules'),
      'prefix_rule(pattern=["mv"], decision="forbidden")\n\nprefix_rule(pattern=["ls"], decision="deny")\n',
    );
    writeFileSync(
      path.join(dir, 'requirements.toml'),
      '[rules]\nprefix_rules = [{ pattern = [{ token = "shred" }], decision = "forbidden", justification = "managed" }]\n',
    );
    writeFileSync(path.join(dir, 'cordon.toml'), 'rules_dir = "rules"\nrequirements = "requirements.toml"\n');
    const { child, url } = await serve(['--listen', 'ws://127.0.0.1:0', '--workspace', dir, '--config', path.join(dir, 'cordon.toml')]);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const client = await ExecServerClient.connect({ url, reconnect: false });
    try {
      const f = path.join(dir, 'f');
      writeFileSync(f, 'x');
      await assert.rejects(client.startProcess({ processId: 'cp', argv: ['cp', f, `${f}2`], cwd: dir, env: SH_ENV }), {
        message: `\`cp ${f} ${f}2\` rejected: no copies`,
      });
      await assert.rejects(client.startProcess({ processId: 'sh', argv: ['shred', f], cwd: dir, env: SH_ENV }), {
        message: `\`shred ${f}\` rejected: managed`,
      });
      // typo.rules did not load at all: its mv rule is not applied.
      const mv = await run(client, 'mv', ['mv', '--version'], dir);
      assert.equal(mv.code, 0, mv.out);
      assert.match(mv.out, /^mv \(GNU coreutils\)/);
      const typo = path.join(rulesDir, 'typo.rules');
      assert.ok(
        stderr.includes(
          `cordon serve: warning: ignoring a rules file that does not load: ${typo}:3: error: invalid decision: deny (problem is on or around line 3)\n`,
        ),
        stderr,
      );
      assert.ok(
        stderr.includes(
          'cordon serve: command rules: 2 prefix rules checked before every process start; no approval policy (commands no rule matches run).\n',
        ),
        stderr,
      );
    } finally {
      await client.close();
      await stop(child);
    }
  });
});
