// The spawn helper (src/local/spawner.ts): one long-lived Perl process that forks a keeper per
// command. Real processes and pipes throughout.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FsEntry } from '../src/environment/permissions.js';
import { LocalEnvironment } from '../src/local/local-environment.js';
import { type SpawnedCommand, Spawner, type SpawnRequest } from '../src/local/spawner.js';
import { eventually, isAlive, SH_ENV, tempDir } from './helpers.js';

interface Run {
  command: SpawnedCommand;
  stdout: Promise<string>;
  stderr: Promise<string>;
  exit: Promise<number>;
  gone: Promise<number | null>;
}

const collect = (stream: Socket): Promise<string> =>
  new Promise((resolve) => {
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => (text += d));
    stream.once('close', () => resolve(text));
  });

async function run(spawner: Spawner, request: Partial<SpawnRequest> & { argv: string[] }): Promise<Run> {
  let exited = (_: number): void => undefined;
  let gone = (_: number | null): void => undefined;
  const exit = new Promise<number>((r) => (exited = r));
  const goneP = new Promise<number | null>((r) => (gone = r));
  const command = await spawner.spawn(
    { file: request.file ?? (request.argv[0] as string), cwd: '/', env: SH_ENV, pipeStdin: false, ...request },
    { exit: (s) => exited(s), gone: (s) => gone(s) },
  );
  return { command, stdout: collect(command.stdout), stderr: collect(command.stderr), exit, gone: goneP };
}

/** Reads the pid a command prints on its first line, while its output keeps being collected. */
async function printedPid(r: Run, what: string): Promise<{ pid: number; text(): string }> {
  let text = '';
  r.command.stdout.on('data', (d: string) => (text += d));
  await eventually(() => text.includes('\n'), 10_000, what);
  return { pid: Number(text.split('\n')[0]), text: () => text };
}

const sh = (script: string, extra: Partial<SpawnRequest> = {}) => ({ file: '/bin/sh', argv: ['sh', '-c', script], ...extra });

describe('spawn helper', () => {
  const spawner = new Spawner();
  before(async () => assert.equal(await spawner.available(), true, 'perl and /proc are available here'));
  after(() => spawner.dispose());

  it('runs a command on pipes and reports its output, exit status and end', async () => {
    const r = await run(spawner, sh('echo out; echo err >&2; exit 3'));
    assert.equal(await r.stdout, 'out\n');
    assert.equal(await r.stderr, 'err\n');
    assert.equal((await r.exit) >> 8, 3);
    assert.equal(await r.gone, 0);
  });

  it('gives the command exactly its argv[0], cwd and environment, its own session, default SIGPIPE and no stray descriptors', async () => {
    const r = await run(spawner, {
      file: '/bin/sh',
      argv: ['custom-name', '-c', 'echo "$0"; pwd; env | sort; ps -o sid= -p $$; echo $$; grep SigIgn /proc/$$/status; ls /proc/$$/fd'],
      cwd: '/tmp',
      env: { PATH: SH_ENV.PATH, ONLY: 'this=one' },
    });
    const lines = (await r.stdout).trim().split('\n');
    assert.equal(lines[0], 'custom-name');
    assert.equal(lines[1], '/tmp');
    const env = lines.filter((l) => /^[A-Z_]+=/.test(l) && !l.startsWith('PWD=') && !l.startsWith('SHLVL=') && !l.startsWith('_='));
    assert.deepEqual(env, ['ONLY=this=one', `PATH=${SH_ENV.PATH}`]);
    const sid = Number(lines.find((l, i) => i > 1 && /^\s*\d+$/.test(l)));
    const pid = r.command.commandPid;
    assert.equal(sid, pid, 'the command leads its own session');
    assert.match(lines.find((l) => l.startsWith('SigIgn')) ?? '', /^SigIgn:\s+0+$/, 'no signal ignored (SIGPIPE default)');
    assert.deepEqual(lines.slice(-3), ['0', '1', '2'], 'only stdin, stdout and stderr are open');
  });

  it('feeds stdin through its pipe; end of input reaches the command even while other commands run', async () => {
    const sleeper = await run(spawner, sh('sleep 60'));
    const cat = await run(spawner, { file: '/bin/cat', argv: ['cat'], pipeStdin: true });
    const later = await run(spawner, sh('sleep 60', { pipeStdin: true }));
    cat.command.stdin?.end('through the pipe\n');
    assert.equal(await cat.stdout, 'through the pipe\n');
    assert.equal(await cat.exit, 0);
    for (const r of [sleeper, later]) r.command.signal('TERM');
    assert.equal(await sleeper.gone, 137 << 8);
    await later.gone;
  });

  it('a write to the stdin of a command that has exited fails instead of hanging', async () => {
    const r = await run(spawner, sh('exit 0', { pipeStdin: true }));
    await r.gone;
    const stdin = r.command.stdin as Socket;
    const err = await new Promise<Error | null | undefined>((resolve) => {
      stdin.once('error', resolve);
      stdin.write(Buffer.alloc(256 * 1024), (e) => resolve(e));
    });
    assert.ok(err instanceof Error, 'the write failed');
  });

  it('refuses a program that cannot run with its OS error, and keeps working', async () => {
    await assert.rejects(
      spawner.spawn({ file: '/nonexistent/prog', argv: ['prog'], cwd: '/', env: {}, pipeStdin: false }, { exit() {}, gone() {} }),
      {
        code: 'ENOENT',
      },
    );
    await assert.rejects(
      spawner.spawn({ file: '/etc/passwd', argv: ['passwd'], cwd: '/', env: {}, pipeStdin: false }, { exit() {}, gone() {} }),
      {
        code: 'EACCES',
      },
    );
    await assert.rejects(
      spawner.spawn({ file: '/bin/true', argv: ['true'], cwd: '/nonexistent-dir', env: {}, pipeStdin: false }, { exit() {}, gone() {} }),
      {
        code: 'ENOENT',
      },
    );
    await assert.rejects(
      spawner.spawn({ file: '/bin/echo', argv: ['echo', 'a\0b'], cwd: '/', env: {}, pipeStdin: false }, { exit() {}, gone() {} }),
      TypeError,
    );
    const r = await run(spawner, sh('echo still here'));
    assert.equal(await r.stdout, 'still here\n');
  });

  it('keeps forty concurrent starts apart', async () => {
    const runs = await Promise.all(Array.from({ length: 40 }, (_, i) => run(spawner, sh(`echo ${i}; echo e${i} >&2; exit ${i % 7}`))));
    for (const [i, r] of runs.entries()) {
      assert.equal(await r.stdout, `${i}\n`);
      assert.equal(await r.stderr, `e${i}\n`);
      assert.equal((await r.exit) >> 8, i % 7);
    }
  });

  it('INT reaches the command’s process group; TERM ends the command and what it started, setsid children included', async () => {
    const r = await run(spawner, sh("trap 'echo got INT; exit 5' INT; setsid sleep 60 & echo $!; while :; do sleep 0.05; done"));
    const { pid: daemon, text: first } = await printedPid(r, 'the setsid child pid');
    assert.ok(isAlive(daemon));
    r.command.signal('INT');
    assert.equal((await r.exit) >> 8, 5);
    await eventually(() => first().includes('got INT'), 10_000, 'the trap ran');
    assert.ok(isAlive(daemon), 'the setsid child outlives the command');
    r.command.signal('TERM');
    await r.gone;
    await eventually(() => !isAlive(daemon), 10_000, 'the setsid child ended');
  });

  it('when the helper dies, its commands die with it and the next start runs a new helper', async () => {
    const r = await run(spawner, sh('sleep 60 & echo $!; wait'));
    const { pid: background } = await printedPid(r, 'the background pid');
    const helper = spawner.helperPid as number;
    process.kill(helper, 'SIGKILL');
    assert.equal(await r.gone, null);
    await eventually(() => !isAlive(background) && !isAlive(r.command.commandPid), 10_000, 'the commands ended');
    const again = await run(spawner, sh('echo new helper'));
    assert.equal(await again.stdout, 'new helper\n');
    assert.notEqual(spawner.helperPid, helper);
  });
});

/** The parent pid of a process, from /proc. */
const parentOf = (pid: number): number => Number(/\) \S+ (\d+)/.exec(readFileSync(`/proc/${pid}/stat`, 'latin1'))?.[1]);

describe('spawn helper: starts without a keeper (a command that contains its descendants, as bubblewrap does)', () => {
  const spawner = new Spawner();
  const direct = (script: string, extra: Partial<SpawnRequest> = {}) => sh(script, { keeper: false, ...extra });
  before(async () => assert.equal(await spawner.available(), true, 'perl and /proc are available here'));
  after(() => spawner.dispose());

  it('forks the command from the helper itself: output, exit status, its own session, no stray descriptors', async () => {
    const r = await run(spawner, direct('echo out; echo err >&2; ps -o sid= -p $$; ls /proc/$$/fd; sleep 0.2; exit 3'));
    const pid = r.command.commandPid;
    assert.equal(r.command.pid, pid, 'no keeper between');
    assert.equal(parentOf(pid), spawner.helperPid, 'the helper is its parent');
    const lines = (await r.stdout).trim().split('\n');
    assert.equal(lines[0], 'out');
    assert.equal(Number(lines[1]), pid, 'it leads its own session');
    assert.deepEqual(lines.slice(2), ['0', '1', '2'], 'only stdin, stdout and stderr are open');
    assert.equal(await r.stderr, 'err\n');
    assert.equal((await r.exit) >> 8, 3);
    assert.equal(((await r.gone) as number) >> 8, 3);
    // The twin under a keeper: a keeper stands between.
    const kept = await run(spawner, sh('sleep 0.2'));
    assert.notEqual(kept.command.pid, kept.command.commandPid);
    assert.equal(parentOf(kept.command.commandPid), kept.command.pid, 'the keeper is its parent');
    await kept.gone;
  });

  it('refuses a program that cannot run with its OS error, and keeps working', async () => {
    const start = (file: string, cwd = '/') =>
      spawner.spawn({ file, argv: [file], cwd, env: {}, pipeStdin: false, keeper: false }, { exit() {}, gone() {} });
    await assert.rejects(start('/nonexistent/prog'), { code: 'ENOENT' });
    await assert.rejects(start('/etc/passwd'), { code: 'EACCES' });
    await assert.rejects(start('/bin/true', '/nonexistent-dir'), { code: 'ENOENT' });
    const r = await run(spawner, direct('cat', { pipeStdin: true }));
    r.command.stdin?.end('still here\n');
    assert.equal(await r.stdout, 'still here\n');
  });

  it('passes descriptors as fds 3, 4, ... and nothing else, with a keeper or without', async () => {
    for (const keeper of [true, false]) {
      const r = await run(spawner, sh('ls /proc/$$/fd', { keeper, descriptors: ['/dev/null', '/dev/zero'] }));
      assert.deepEqual((await r.stdout).trim().split('\n'), ['0', '1', '2', '3', '4'], `keeper: ${keeper}`);
    }
  });

  it('keeps forty concurrent starts apart, mixed with kept ones', async () => {
    const runs = await Promise.all(
      Array.from({ length: 40 }, (_, i) => run(spawner, (i % 2 ? direct : sh)(`echo ${i}; echo e${i} >&2; exit ${i % 7}`))),
    );
    for (const [i, r] of runs.entries()) {
      assert.equal(await r.stdout, `${i}\n`);
      assert.equal(await r.stderr, `e${i}\n`);
      assert.equal((await r.exit) >> 8, i % 7);
      await r.gone;
    }
  });

  it('INT reaches the command’s process group; TERM kills the group', async () => {
    const r = await run(spawner, direct("trap 'echo got INT' INT; while :; do sleep 0.05; done"));
    let text = '';
    r.command.stdout.on('data', (d: string) => (text += d));
    await new Promise((done) => setTimeout(done, 200));
    r.command.signal('INT');
    await eventually(() => text.includes('got INT'), 10_000, 'the trap ran');
    r.command.signal('TERM');
    assert.equal((await r.exit) & 127, 9, 'killed');
    assert.equal((await r.gone) as number & 127, 9);
  });

  it('ends what such a command left behind when it exits (bubblewrap killed before its child asked to die with it)', async () => {
    // A plain shell contains nothing: what it leaves in the background comes back to the helper,
    // a subreaper, which ends it. Under a keeper (the twin) the command is not gone while it runs.
    const r = await run(spawner, direct('setsid sleep 60 & echo $!'));
    const orphan = Number((await r.stdout).trim());
    await r.gone;
    await eventually(() => !isAlive(orphan), 10_000, 'the orphan ended');
    // Reaped too: the helper is left with its spare keeper alone (no zombie).
    const helper = spawner.helperPid as number;
    const children = (): string[] =>
      readFileSync(`/proc/${helper}/task/${helper}/children`, 'latin1')
        .split(' ')
        .filter(Boolean)
        .map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0+$/, ''));
    await eventually(() => children().join() === 'cordon-spawn-helper: spare keeper', 10_000, 'only the spare keeper left');
    const kept = await run(spawner, sh('sleep 60 >/dev/null 2>&1 & echo $!'));
    const background = Number((await kept.stdout).trim());
    let gone = false;
    void kept.gone.then(() => (gone = true));
    await new Promise((done) => setTimeout(done, 300));
    assert.ok(!gone && isAlive(background), 'the keeper waits for what the command left');
    kept.command.signal('TERM');
    await kept.gone;
    assert.ok(!isAlive(background));
  });

  it('a keeper killed from outside leaves nothing running: its command’s processes come back to the helper and end', async () => {
    const r = await run(spawner, sh('sleep 60 & echo $!; wait'));
    const { pid: background } = await printedPid(r, 'the background pid');
    process.kill(r.command.pid, 'SIGKILL');
    await r.gone;
    await eventually(() => !isAlive(background) && !isAlive(r.command.commandPid), 10_000, 'the command and its child ended');
  });

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`when the helper gets ${signal} (the server died), every command ends with it, kept or not`, async () => {
      const own = new Spawner();
      try {
        assert.equal(await own.available(), true);
        // (exec: a plain shell contains nothing; once the helper is gone, nothing ends a grandchild.)
        const plain = await run(own, direct('exec sleep 60'));
        const kept = await run(own, sh('sleep 60 & echo $!; wait'));
        const { pid: background } = await printedPid(kept, 'the background pid');
        const pids = [plain.command.commandPid, kept.command.commandPid, background];
        assert.ok(pids.every(isAlive));
        process.kill(own.helperPid as number, signal);
        await Promise.all([plain.gone, kept.gone]);
        await eventually(() => !pids.some(isAlive), 10_000, 'every process ended');
      } finally {
        await own.dispose();
      }
    });
  }
});

/** The command lines of a process's children, by pid. */
function childrenOf(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').split(' ').filter(Boolean))
    try {
      out.set(Number(child), readFileSync(`/proc/${child}/cmdline`, 'latin1').replace(/\0+$/, '').replaceAll('\0', ' '));
    } catch {
      // gone meanwhile
    }
  return out;
}

const BWRAP = '/usr/bin/bwrap';

describe('spawn helper: bubblewrap', { skip: !existsSync(BWRAP) && !process.env.CI ? 'bubblewrap is not installed' : false }, () => {
  it('a sandboxed pipe command is bwrap forked by the helper itself; an unsandboxed one runs under a keeper', async () => {
    const spawner = new Spawner();
    const env = new LocalEnvironment({ spawner });
    const tmp = await tempDir('cordon-spawner-bwrap-');
    const special = (kind: 'root' | 'project_roots', access: FsEntry['access']): FsEntry => ({ path: { type: 'special', kind }, access });
    try {
      const sandbox = {
        profile: {
          enforcement: 'managed' as const,
          network: 'restricted' as const,
          fileSystem: { kind: 'restricted' as const, entries: [special('root', 'read'), special('project_roots', 'write')] },
        },
        cwd: tmp.dir,
      };
      await env.exec.start({ processId: 'boxed', argv: ['sleep', '31'], cwd: tmp.dir, env: SH_ENV, tty: false, sandbox });
      await env.exec.start({ processId: 'plain', argv: ['sleep', '32'], cwd: tmp.dir, env: SH_ENV, tty: false });
      const children = [...childrenOf(spawner.helperPid as number).values()];
      assert.ok(
        children.some((c) => c.startsWith(`${BWRAP} `) && c.endsWith('/sleep 31')),
        `bwrap is the helper's child: ${JSON.stringify(children)}`,
      );
      assert.ok(
        children.some((c) => c.startsWith('cordon-keeper ')),
        `a keeper is the helper's child: ${JSON.stringify(children)}`,
      );
      assert.ok(!children.some((c) => c.endsWith(' 32')), 'the unsandboxed command is not');
    } finally {
      await env.close();
      await spawner.dispose();
      await tmp.cleanup();
    }
  });

  it('the helper killed with SIGKILL while bwrap starts leaves no sandbox behind (its guard ends what comes back)', async () => {
    // The moment between bwrap's clone and its child's --die-with-parent: a child that asked for its
    // death signal after bwrap died would run on. Killed at varied moments of bwrap's start.
    const mark = `cordon-race-${process.pid}`;
    for (let i = 0; i < 60; i++) {
      const spawner = new Spawner();
      assert.equal(await spawner.available(), true);
      const argv = [
        'bwrap',
        '--die-with-parent',
        '--unshare-user',
        '--unshare-pid',
        '--ro-bind',
        '/',
        '/',
        '--dev',
        '/dev',
        '--proc',
        '/proc',
      ];
      spawner
        .spawn(
          {
            file: BWRAP,
            argv: [...argv, '--new-session', '--', '/bin/sleep', '600'],
            cwd: '/',
            env: { ...SH_ENV, MARK: mark },
            pipeStdin: false,
            keeper: false,
          },
          { exit() {}, gone() {} },
        )
        .catch(() => undefined);
      await new Promise((done) => setTimeout(done, (i % 20) * 0.4));
      await eventually(() => spawner.helperPid !== undefined, 5000, 'the helper');
      process.kill(spawner.helperPid as number, 'SIGKILL');
      await spawner.dispose();
    }
    const marked = (): string[] =>
      readdirSync('/proc').filter((pid) => {
        try {
          return /^\d+$/.test(pid) && readFileSync(`/proc/${pid}/environ`, 'latin1').includes(mark);
        } catch {
          return false;
        }
      });
    await eventually(() => marked().length === 0, 10_000, 'no marked process left');
  });
});

describe('spawn helper lifetime', () => {
  it('does not hold the server’s event loop open while no command runs, and ends with dispose', async () => {
    const spawner = new Spawner();
    assert.equal(await spawner.available(), true);
    const r = await run(spawner, sh('exit 0'));
    await r.gone;
    const pid = spawner.helperPid as number;
    assert.ok(readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('cordon-spawn-helper'), 'named in ps');
    await spawner.dispose();
    await eventually(() => !isAlive(pid), 5000, 'the helper ended');
    await assert.rejects(
      spawner.spawn({ file: '/bin/true', argv: ['true'], cwd: '/', env: {}, pipeStdin: false }, { exit() {}, gone() {} }),
      /shut down/,
    );
  });
});
