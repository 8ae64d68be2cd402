// Exec policy enforced by a real server on process/start: forbidden, prompt (answered yes / no /
// not at all / by a client that cannot answer), allow, split and unsplittable scripts, absolute
// paths through host_executable, Codex's wrapper form, and rules files that fail to load.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ExecServerClient } from '../../src/client/exec-server-client.js';
import { ExecPolicyEnforcer, policyFromSource } from '../../src/execpolicy/index.js';
import { builtinProfile } from '../../src/sandbox/builtin-profiles.js';
import type { CordonServer } from '../../src/server/index.js';
import { CLI } from '../cli-helpers.js';
import { RawClient, SH_ENV, startServer } from '../helpers.js';

const RULES = `
prefix_rule(pattern=["rm"], decision="forbidden", justification="use trash instead")
prefix_rule(pattern=["touch"], decision="prompt", justification="creates files")
prefix_rule(pattern=["cp"], decision="forbidden")
prefix_rule(pattern=["echo"])
host_executable(name="rm", paths=["/usr/bin/rm"])
`;

describe('exec policy on process/start', () => {
  let server: CordonServer;
  let url: string;
  let dir: string;
  let ws: string;
  before(async () => {
    // Not under /tmp: the :workspace ceiling lets everyone write /tmp.
    dir = await mkdtemp('/var/tmp/cordon-execpolicy-');
    ws = path.join(dir, 'ws');
    mkdirSync(ws);
    const execPolicy = await ExecPolicyEnforcer.create(policyFromSource(RULES));
    ({ server, url } = await startServer({
      execPolicy,
      execPolicyPromptTimeoutMs: 1500,
      environment: { ceiling: { profile: builtinProfile(':workspace'), cwd: ws, workspaceRoots: [ws], name: ':workspace' } },
    }));
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const victim = (name: string): string => {
    const f = path.join(ws, name);
    writeFileSync(f, 'x');
    return f;
  };

  async function output(
    client: ExecServerClient,
    processId: string,
    argv: string[],
    extra: Record<string, unknown> = {},
  ): Promise<{ out: string; code: number | null }> {
    const { events } = await client.spawn({ processId, argv, cwd: ws, env: SH_ENV, tty: false, ...extra });
    let out = '';
    let code: number | null = null;
    for await (const e of events) {
      if (e.type === 'output') out += Buffer.from(e.data).toString();
      if (e.type === 'exited') code = e.exitCode;
    }
    return { out, code };
  }

  it('forbidden is refused with the justification; an allowed twin runs', async () => {
    const c = await RawClient.ready(url);
    try {
      const f = victim('forbidden.txt');
      const refused = await c.client.request('process/start', { processId: 'rm', argv: ['rm', '-f', f], cwd: ws, env: SH_ENV, tty: false });
      assert.equal(refused.error?.code, -32600);
      assert.equal(refused.error?.message, `\`rm -f ${f}\` rejected: use trash instead`);
      const bare = await c.client.request('process/start', {
        processId: 'cp',
        argv: ['cp', f, `${f}.2`],
        cwd: ws,
        env: SH_ENV,
        tty: false,
      });
      assert.match(bare.error?.message, /rejected: policy forbids commands starting with `cp`/);
      assert.ok(existsSync(f));
    } finally {
      c.client.close();
    }
    // Run to its end: a sandbox starting while another stops can race on the protected-name mount targets.
    const client = await ExecServerClient.connect({ url, reconnect: false });
    try {
      assert.deepEqual(await output(client, 'echo', ['echo', 'ok']), { out: 'ok\n', code: 0 });
    } finally {
      await client.close();
    }
  });

  it('prompt answered yes runs, answered no is refused', async () => {
    const asked: unknown[] = [];
    let answer: unknown = { decision: { type: 'allow' } };
    const client = await ExecServerClient.connect({
      url,
      reconnect: false,
      requestHandlers: {
        'execPolicy/request': (params) => {
          asked.push(params);
          return answer;
        },
      },
    });
    try {
      const yes = path.join(ws, 'yes.txt');
      const r = await output(client, 'touch-yes', ['touch', yes]);
      assert.equal(r.code, 0, r.out);
      assert.ok(existsSync(yes));
      assert.deepEqual(asked[0], {
        processId: 'touch-yes',
        argv: ['touch', yes],
        commands: [['touch', yes]],
        evaluation: {
          matchedRules: [{ prefixRuleMatch: { matchedPrefix: ['touch'], decision: 'prompt', justification: 'creates files' } }],
          decision: 'prompt',
        },
        reason: `\`touch ${yes}\` requires approval: creates files`,
      });
      answer = { decision: { type: 'deny', reason: 'not today' } };
      const no = path.join(ws, 'no.txt');
      await assert.rejects(
        client.startProcess({ processId: 'touch-no', argv: ['touch', no], cwd: ws, env: SH_ENV }),
        /rejected by the client: not today/,
      );
      answer = { decision: 'allow' }; // malformed: fails closed
      await assert.rejects(
        client.startProcess({ processId: 'touch-bad', argv: ['touch', no], cwd: ws, env: SH_ENV }),
        /rejected by the client/,
      );
      assert.equal(existsSync(no), false);
      assert.equal(asked.length, 3);
    } finally {
      await client.close();
    }
  });

  it('prompt: a client that did not declare it is refused; an unanswered prompt times out and denies', async () => {
    const plain = await ExecServerClient.connect({ url, reconnect: false });
    const silent = await ExecServerClient.connect({
      url,
      reconnect: false,
      requestHandlers: { 'execPolicy/request': () => new Promise(() => undefined) },
    });
    try {
      const f = path.join(ws, 'never.txt');
      await assert.rejects(
        plain.startProcess({ processId: 't1', argv: ['touch', f], cwd: ws, env: SH_ENV }),
        /cannot be asked \(it did not declare capabilities\.execPolicyPrompt/,
      );
      await assert.rejects(
        silent.startProcess({ processId: 't2', argv: ['touch', f], cwd: ws, env: SH_ENV }),
        /no approval came: the client did not answer execPolicy\/request/,
      );
      assert.equal(existsSync(f), false);
      // The connection still works.
      assert.equal((await output(silent, 'after', ['echo', 'still here'])).out, 'still here\n');
    } finally {
      await plain.close();
      await silent.close();
    }
  });

  it('bash -lc scripts are split as Codex splits them; unsplittable ones are judged whole', async () => {
    const client = await ExecServerClient.connect({ url, reconnect: false });
    try {
      const f = victim('split.txt');
      await assert.rejects(
        client.startProcess({ processId: 's1', argv: ['bash', '-lc', `echo hi && rm -f ${f}`], cwd: ws, env: SH_ENV }),
        /rejected: use trash instead/,
      );
      await assert.rejects(
        client.startProcess({ processId: 's2', argv: ['/bin/sh', '-c', `echo hi | rm -f ${f}`], cwd: ws, env: SH_ENV }),
        /rejected: use trash instead/,
      );
      assert.ok(existsSync(f));
      assert.equal((await output(client, 's3', ['bash', '-c', "echo one && echo 'two three'"])).out, 'one\ntwo three\n');
      // Not splittable ($HOME): judged as `bash -lc …`, which no rule matches, so it runs, rm included.
      // This is Codex's behaviour, documented in docs/exec-policy.md.
      const r = await output(client, 's4', ['bash', '-c', `echo $HOME >/dev/null; rm -f ${f}`]);
      assert.equal(r.code, 0);
      assert.equal(existsSync(f), false);
    } finally {
      await client.close();
    }
  });

  it('absolute paths match through host_executable only when listed', async () => {
    const client = await ExecServerClient.connect({ url, reconnect: false });
    try {
      const f = victim('abs.txt');
      await assert.rejects(
        client.startProcess({ processId: 'a1', argv: ['/usr/bin/rm', '-f', f], cwd: ws, env: SH_ENV }),
        /rejected: use trash instead/,
      );
      assert.ok(existsSync(f));
      // /bin/rm is not one of host_executable's paths for rm: no rule applies (as in Codex).
      assert.equal((await output(client, 'a2', ['/bin/rm', '-f', f])).code, 0);
      assert.equal(existsSync(f), false);
      // echo has no host_executable: any absolute path falls back to the basename rule.
      assert.equal((await output(client, 'a3', ['/bin/echo', 'abs'])).out, 'abs\n');
    } finally {
      await client.close();
    }
  });

  it("Codex's codex-linux-sandbox wrapper form is judged on the wrapped command", async () => {
    const c = await RawClient.ready(url);
    try {
      const f = victim('wrapped.txt');
      const profile = {
        type: 'managed',
        file_system: {
          type: 'restricted',
          entries: [
            { path: { type: 'special', value: { kind: 'root' } }, access: 'read' },
            { path: { type: 'path', path: ws }, access: 'write' },
          ],
        },
        network: 'restricted',
      };
      const wrapped = (processId: string, cmd: string[]) =>
        c.client.request('process/start', {
          processId,
          argv: [
            '/home/someone/.npm/bin/codex',
            '--sandbox-policy-cwd',
            ws,
            '--command-cwd',
            ws,
            '--permission-profile',
            JSON.stringify(profile),
            '--',
            ...cmd,
          ],
          arg0: 'codex-linux-sandbox',
          cwd: ws,
          env: SH_ENV,
          tty: false,
        });
      const refused = await wrapped('w1', ['/bin/bash', '-lc', `rm -f ${f}`]);
      assert.match(refused.error?.message, /rejected: use trash instead/);
      const ok = await wrapped('w2', ['/bin/bash', '-c', 'echo wrapped']);
      assert.equal(ok.error, undefined, JSON.stringify(ok));
      await c.client.untilClosed('w2');
      assert.ok(existsSync(f));
    } finally {
      c.client.close();
    }
  });
});

describe('cordon serve --rules', () => {
  it('serves with the rules loaded: a forbidden command is refused, others run', async () => {
    const dir = await mkdtemp('/var/tmp/cordon-execpolicy-serve-');
    writeFileSync(path.join(dir, 'ok.rules'), 'prefix_rule(pattern=["rm"], decision="forbidden", justification="keep it")\n');
    const server = spawn(
      process.execPath,
      [CLI, 'serve', '--listen', 'ws://127.0.0.1:0', '--workspace', dir, '--rules', 'ok.rules', '--log-level', 'silent'],
      {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        server.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /^(ws:\/\/\S+)$/m.exec(out);
          if (m) resolve(m[1] as string);
        });
        server.on('exit', (code) => reject(new Error(`cordon serve exited ${code}`)));
      });
      const client = await ExecServerClient.connect({ url, reconnect: false });
      try {
        await assert.rejects(
          client.startProcess({ processId: 'r', argv: ['rm', '-rf', path.join(dir, 'ok.rules')], cwd: dir, env: SH_ENV }),
          /rejected: keep it/,
        );
        assert.ok(existsSync(path.join(dir, 'ok.rules')));
        const { events } = await client.spawn({ processId: 'e', argv: ['echo', 'fine'], cwd: dir, env: SH_ENV });
        let text = '';
        for await (const e of events) if (e.type === 'output') text += Buffer.from(e.data).toString();
        assert.equal(text, 'fine\n');
      } finally {
        await client.close();
      }
    } finally {
      server.kill('SIGTERM');
      await new Promise((resolve) => (server.exitCode === null ? server.once('exit', resolve) : resolve(null)));
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start on a rules file that does not load, with the text Codex prints', async () => {
    const dir = await mkdtemp('/var/tmp/cordon-execpolicy-serve-');
    try {
      writeFileSync(path.join(dir, 'bad.rules'), 'prefix_rule(pattern=["git"], decision="deny")\n');
      const r = spawnSync(process.execPath, [CLI, 'serve', '--listen', 'ws://127.0.0.1:0', '--workspace', dir, '--rules', 'bad.rules'], {
        cwd: dir,
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 1);
      assert.equal(
        r.stderr,
        'Error: failed to parse policy at bad.rules\n\nCaused by:\n    starlark error: Traceback (most recent call last):\n      * bad.rules:1, in <module>\n' +
          '          prefix_rule(pattern=["git"], decision="deny")\n    error: invalid decision: deny\n     --> bad.rules:1:1\n      |\n' +
          '    1 | prefix_rule(pattern=["git"], decision="deny")\n      | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n      |\n    \n',
      );
      const missing = spawnSync(
        process.execPath,
        [CLI, 'serve', '--listen', 'ws://127.0.0.1:0', '--workspace', dir, '--rules', 'nope.rules'],
        {
          cwd: dir,
          encoding: 'utf8',
          timeout: 60_000,
        },
      );
      assert.equal(missing.status, 1);
      assert.equal(
        missing.stderr,
        'Error: failed to read policy at nope.rules\n\nCaused by:\n    No such file or directory (os error 2)\n',
      );
      // The same from cordon.toml's `rules`, resolved next to the file.
      mkdirSync(path.join(dir, 'conf'));
      writeFileSync(path.join(dir, 'conf', 'cordon.toml'), 'rules = ["../bad.rules"]\n');
      const fromConfig = spawnSync(
        process.execPath,
        [CLI, 'serve', '--listen', 'ws://127.0.0.1:0', '--workspace', dir, '--config', 'conf/cordon.toml'],
        {
          cwd: dir,
          encoding: 'utf8',
          timeout: 60_000,
        },
      );
      assert.equal(fromConfig.status, 1, fromConfig.stderr);
      assert.match(fromConfig.stderr, new RegExp(`^Error: failed to parse policy at ${dir}/bad.rules\n\nCaused by:\n {4}starlark error: `));
      assert.match(fromConfig.stderr, /error: invalid decision: deny/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
