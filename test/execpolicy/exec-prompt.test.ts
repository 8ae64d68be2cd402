// `cordon exec --url` answers a server's exec-policy prompt: y/N on a terminal, refusal without one.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pty from '@lydell/node-pty';
import { ExecPolicyEnforcer, policyFromSource } from '../../src/execpolicy/index.js';
import { builtinProfile } from '../../src/sandbox/builtin-profiles.js';
import type { CordonServer } from '../../src/server/index.js';
import { CLI } from '../cli-helpers.js';
import { SH_ENV, startServer } from '../helpers.js';

describe('cordon exec answers exec-policy prompts', () => {
  let server: CordonServer;
  let url: string;
  let dir: string;
  let ws: string;
  before(async () => {
    dir = await mkdtemp('/var/tmp/cordon-exec-prompt-');
    ws = path.join(dir, 'ws');
    mkdirSync(ws);
    const execPolicy = await ExecPolicyEnforcer.create(
      policyFromSource('prefix_rule(pattern=["touch"], decision="prompt", justification="creates files")\n'),
    );
    ({ server, url } = await startServer({
      execPolicy,
      environment: { ceiling: { profile: builtinProfile(':workspace'), cwd: ws, workspaceRoots: [ws], name: ':workspace' } },
    }));
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  function onTerminal(file: string, answer: string, at = url, marker = '[y/N]'): Promise<{ code: number; screen: string }> {
    return new Promise((resolve) => {
      const term = pty.spawn(process.execPath, [CLI, 'exec', '--url', at, '--cwd', ws, '--', 'touch', file], {
        cwd: ws,
        env: { ...process.env, ...SH_ENV },
        cols: 200,
        rows: 30,
      });
      let screen = '';
      let answered = false;
      term.onData((d) => {
        screen += d;
        if (!answered && screen.includes(marker)) {
          answered = true;
          term.write(`${answer}\r`);
        }
      });
      term.onExit(({ exitCode }) => resolve({ code: exitCode, screen }));
    });
  }

  it('on a terminal: y runs the command, n refuses it', async () => {
    const yes = path.join(ws, 'yes.txt');
    const r = await onTerminal(yes, 'y');
    assert.match(r.screen, /`touch \S+yes\.txt` requires approval: creates files/);
    assert.equal(r.code, 0, r.screen);
    assert.ok(existsSync(yes));
    const no = path.join(ws, 'no.txt');
    const n = await onTerminal(no, 'n');
    assert.notEqual(n.code, 0);
    assert.match(n.screen, /rejected by the client: denied at the terminal/);
    assert.equal(existsSync(no), false);
  });

  it('under an approval policy: the proposed rule is offered, and `a` accepts it', async () => {
    const execPolicy = await ExecPolicyEnforcer.create(policyFromSource(''), { approvalPolicy: 'untrusted' });
    const strict = await startServer({
      execPolicy,
      environment: { ceiling: { profile: builtinProfile(':workspace'), cwd: ws, workspaceRoots: [ws], name: ':workspace' } },
    });
    try {
      const f = path.join(ws, 'amended.txt');
      const r = await onTerminal(f, 'a', strict.url, '[y/N/a]');
      assert.match(r.screen, /`touch \S+amended\.txt` requires approval under the approval policy untrusted/);
      assert.match(r.screen, /\[a\] allow, and for the rest of the session allow commands starting with `touch \S+amended\.txt`/);
      assert.equal(r.code, 0, r.screen);
      assert.ok(existsSync(f));
      const g = path.join(ws, 'refused.txt');
      const n = await onTerminal(g, 'n', strict.url, '[y/N/a]');
      assert.notEqual(n.code, 0);
      assert.equal(existsSync(g), false);
    } finally {
      await strict.server.close();
    }
  });

  it('without a terminal: refused', async () => {
    const f = path.join(ws, 'notty.txt');
    const child = spawn(process.execPath, [CLI, 'exec', '--url', url, '--cwd', ws, '--', 'touch', f], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end();
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.notEqual(code, 0);
    assert.match(stderr, /rejected by the client: no terminal to ask for approval on/);
    assert.equal(existsSync(f), false);
  });
});
