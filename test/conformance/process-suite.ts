import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SandboxRequest } from '../../src/environment/permissions.js';
import type { Environment, EnvPolicy, ProcessEvent, StartProcessRequest } from '../../src/environment/types.js';
import { RpcError } from '../../src/protocol/errors.js';
import { eventually, isAlive, SH_ENV, tempDir } from '../helpers.js';

export interface EnvironmentFixture {
  env: Environment;
  cleanup(): Promise<void>;
}

interface Run {
  events: ProcessEvent[];
  output(stream?: string): string;
  exitCode: number | undefined;
  done: Promise<void>;
}

/**
 * The process conformance suite: the definition of correct for any Environment. It runs against the
 * local implementation and against a remote one through a real server.
 */
export function processConformance(name: string, makeFixture: () => Promise<EnvironmentFixture>): void {
  describe(`process conformance: ${name}`, () => {
    let fx: EnvironmentFixture;
    let env: Environment;
    let tmp: { dir: string; cleanup: () => Promise<void> };
    let n = 0;
    const id = (label: string): string => `${label}-${++n}`;

    before(async () => {
      fx = await makeFixture();
      env = fx.env;
      tmp = await tempDir();
    });
    after(async () => {
      await fx.cleanup();
      await tmp.cleanup();
    });

    const watch = (processId: string): Run => {
      const events: ProcessEvent[] = [];
      let resolveDone!: () => void;
      const done = new Promise<void>((r) => (resolveDone = r));
      const off = env.exec.subscribe((e) => {
        if (e.processId !== processId) return;
        events.push(e);
        if (e.type === 'closed') {
          off();
          resolveDone();
        }
      });
      return {
        events,
        done,
        output: (stream) =>
          Buffer.concat(events.flatMap((e) => (e.type === 'output' && (!stream || e.stream === stream) ? [e.data] : []))).toString(),
        get exitCode() {
          const ex = events.find((e) => e.type === 'exited');
          return ex && ex.type === 'exited' ? ex.exitCode : undefined;
        },
      };
    };

    const run = async (req: Partial<StartProcessRequest> & { argv: string[] }): Promise<Run & { processId: string }> => {
      const processId = req.processId ?? id('p');
      const r = watch(processId);
      await env.exec.start({ processId, cwd: tmp.dir, env: SH_ENV, tty: false, ...req });
      return Object.assign(r, { processId });
    };

    const sh = (script: string, extra: Partial<StartProcessRequest> = {}) => run({ argv: ['/bin/sh', '-c', script], ...extra });

    const rejectsWith = async (p: Promise<unknown>, code: number, message: string | RegExp): Promise<void> => {
      await assert.rejects(p, (err: unknown) => {
        assert.ok(err instanceof RpcError, `expected RpcError, got ${String(err)}`);
        assert.equal(err.code, code);
        if (typeof message === 'string') assert.equal(err.message, message);
        else assert.match(err.message, message);
        return true;
      });
    };

    it('streams output, then exited, then closed, with one seq counter', async () => {
      const r = await sh('echo out; echo err >&2; exit 3');
      await r.done;
      assert.equal(r.output('stdout'), 'out\n');
      assert.equal(r.output('stderr'), 'err\n');
      assert.equal(r.exitCode, 3);
      assert.deepEqual(
        r.events.map((e) => e.seq),
        r.events.map((_, i) => i + 1),
      );
      assert.equal(r.events.at(-1)?.type, 'closed');
      assert.equal(r.events.at(-2)?.type, 'exited');
    });

    it('never notifies output after exited (50 runs)', async () => {
      for (let i = 0; i < 50; i++) {
        const r = await sh('echo out; echo err >&2; printf tail; exit 0');
        await r.done;
        const types = r.events.map((e) => e.type);
        assert.deepEqual(types.slice(-2), ['exited', 'closed'], `run ${i}: ${types.join(',')}`);
        assert.equal(r.output('stderr'), 'err\n');
        assert.equal(r.output('stdout'), 'out\ntail');
      }
    });

    it('reads retained output by seq, with afterSeq, maxBytes and nextSeq semantics', async () => {
      const r = await sh('printf aaaaa; sleep 0.05; printf bbbbb; sleep 0.05; printf ccccc >&2; exit 4');
      await r.done;
      const all = await env.exec.read(r.processId, { afterSeq: null });
      assert.equal(Buffer.concat(all.chunks.map((c) => c.data)).toString(), 'aaaaabbbbbccccc');
      assert.equal(all.exited, true);
      assert.equal(all.closed, true);
      assert.equal(all.exitCode, 4);
      assert.equal(all.failure, null);
      const last = all.chunks.at(-1)!;
      assert.equal(all.nextSeq, last.seq + 1);
      const first = all.chunks[0]!;
      const rest = await env.exec.read(r.processId, { afterSeq: first.seq });
      assert.deepEqual(
        rest.chunks.map((c) => c.seq),
        all.chunks.slice(1).map((c) => c.seq),
      );
      const one = await env.exec.read(r.processId, { afterSeq: 0, maxBytes: 0 });
      assert.equal(one.chunks.length, 1, 'maxBytes 0 still returns one chunk');
      assert.equal(one.nextSeq, one.chunks[0]!.seq + 1);
      const none = await env.exec.read(r.processId, { afterSeq: 1000 });
      assert.deepEqual(none.chunks, []);
      assert.equal(none.nextSeq, r.events.at(-1)!.seq + 1, 'nextSeq counts exited and closed when nothing is returned');
    });

    it('long-polls: a waiting read returns promptly on new output, and after waitMs when silent', async () => {
      const r = await sh('sleep 0.3; echo late; sleep 5');
      const t0 = Date.now();
      const res = await env.exec.read(r.processId, { afterSeq: 0, waitMs: 5000 });
      const waited = Date.now() - t0;
      assert.equal(Buffer.concat(res.chunks.map((c) => c.data)).toString(), 'late\n');
      assert.ok(waited >= 200 && waited < 3000, `returned after ${waited} ms`);
      const t1 = Date.now();
      const silent = await env.exec.read(r.processId, { afterSeq: res.nextSeq - 1, waitMs: 200 });
      assert.ok(Date.now() - t1 >= 190, 'waited for waitMs');
      assert.deepEqual(silent.chunks, []);
      assert.equal(silent.exited, false);
      assert.equal(silent.nextSeq, 2);
      await env.exec.terminate(r.processId);
      await r.done;
    });

    it('a silent running process reads as nextSeq 1', async () => {
      const r = await sh('sleep 5');
      const res = await env.exec.read(r.processId, {});
      assert.deepEqual(res, { chunks: [], nextSeq: 1, exited: false, exitCode: null, closed: false, failure: null, sandboxDenied: false });
      await env.exec.terminate(r.processId);
      await r.done;
    });

    it('writes stdin with pipeStdin, and closeStdin ends it', async () => {
      const r = await run({ argv: ['cat'], pipeStdin: true });
      assert.equal(await env.exec.write({ processId: r.processId, data: Buffer.from('hello\n') }), 'accepted');
      assert.equal(await env.exec.write({ processId: r.processId, data: Buffer.alloc(0) }), 'accepted');
      assert.equal(await env.exec.write({ processId: r.processId, data: Buffer.from('bye\n'), closeStdin: true }), 'accepted');
      await r.done;
      assert.equal(r.output(), 'hello\nbye\n');
      assert.equal(r.exitCode, 0);
      assert.equal(await env.exec.write({ processId: r.processId, data: Buffer.from('x') }), 'stdinClosed');
    });

    it('dedupes writes by writeId', async () => {
      const r = await run({ argv: ['cat'], pipeStdin: true });
      for (const writeId of ['w1', 'w1', 'w2', 'w1']) {
        assert.equal(await env.exec.write({ processId: r.processId, data: Buffer.from(`${writeId};`), writeId }), 'accepted');
      }
      await env.exec.write({ processId: r.processId, data: Buffer.alloc(0), closeStdin: true });
      await r.done;
      assert.equal(r.output(), 'w1;w2;');
    });

    it('answers stdinClosed and unknownProcess where stdin cannot be written', async () => {
      const r = await sh('sleep 5');
      assert.equal(await env.exec.write({ processId: r.processId, data: Buffer.from('x') }), 'stdinClosed');
      assert.equal(await env.exec.write({ processId: 'no-such-process', data: Buffer.from('x') }), 'unknownProcess');
      await env.exec.terminate(r.processId);
      await r.done;
      const exitedPipe = await run({ argv: ['head', '-n', '1'], pipeStdin: true });
      await env.exec.write({ processId: exitedPipe.processId, data: Buffer.from('one\n') });
      await exitedPipe.done;
      assert.equal(await env.exec.write({ processId: exitedPipe.processId, data: Buffer.from('two\n') }), 'stdinClosed');
    });

    it('runs on a pty: 24x80 by default, stream "pty", echo, resize, Ctrl-D', async () => {
      const r = await sh('echo out; echo err >&2; tty; stty size; exit 3', { tty: true });
      await r.done;
      assert.ok(r.events.filter((e) => e.type === 'output').every((e) => e.type === 'output' && e.stream === 'pty'));
      assert.match(r.output(), /^out\r\nerr\r\n\/dev\/pts\/\d+\r\n24 80\r\n$/);
      assert.equal(r.exitCode, 3);

      const t = await sh('echo ready; read x; echo got:$x; stty size; read y; stty size; exit 5', { tty: true });
      await eventually(() => t.output().includes('ready'), 5000, 'the shell to start');
      assert.equal(await env.exec.write({ processId: t.processId, data: Buffer.from('hello\n') }), 'accepted');
      await eventually(() => t.output().includes('24 80'), 5000, 'first stty size');
      await env.exec.resize(t.processId, 40, 120);
      await env.exec.write({ processId: t.processId, data: Buffer.from('\n') });
      await t.done;
      assert.match(t.output(), /hello\r\ngot:hello\r\n24 80\r\n/);
      assert.match(t.output(), /40 120\r\n$/);
      assert.equal(t.exitCode, 5);

      const cat = await run({ argv: ['cat'], tty: true, rows: 10, cols: 30 });
      await env.exec.write({ processId: cat.processId, data: Buffer.from('\x04') });
      await cat.done;
      assert.equal(cat.exitCode, 0);
    });

    it('delivers every byte a fast writer wrote before exiting, on pipes and on a pty', async () => {
      for (const tty of [false, true]) {
        for (const size of [100_000, 3_000_000]) {
          const r = await run({ argv: ['head', '-c', String(size), '/dev/zero'], tty });
          await r.done;
          const bytes = r.events.reduce((n, e) => n + (e.type === 'output' ? e.data.length : 0), 0);
          assert.equal(bytes, size, `tty=${tty} size=${size}`);
        }
      }
    });

    it('refuses resize of a process without a tty', async () => {
      const r = await sh('sleep 5');
      await rejectsWith(env.exec.resize(r.processId, 10, 10), -32600, `process ${r.processId} is not a tty`);
      await env.exec.terminate(r.processId);
      await r.done;
    });

    it('terminate kills the whole process group (grandchildren too) and reports 137', async () => {
      const pidFile = path.join(tmp.dir, 'grandchild.pid');
      const r = await sh(`sleep 60 & echo $! > ${pidFile}; trap '' TERM INT HUP; wait`);
      await eventually(
        async () => {
          const fs = await import('node:fs');
          return fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').endsWith('\n');
        },
        5000,
        'grandchild pid',
      );
      const grandchild = Number((await import('node:fs')).readFileSync(pidFile, 'utf8').trim());
      assert.ok(isAlive(grandchild));
      assert.deepEqual(await env.exec.terminate(r.processId), { running: true });
      await r.done;
      assert.equal(r.exitCode, 137);
      await eventually(() => !isAlive(grandchild), 5000, 'grandchild to die');
      assert.deepEqual(await env.exec.terminate(r.processId), { running: false });
      assert.deepEqual(await env.exec.terminate('never-started'), { running: false });
    });

    it('terminates a tty process with 137 as well', async () => {
      const r = await sh('sleep 30', { tty: true });
      assert.deepEqual(await env.exec.terminate(r.processId), { running: true });
      await r.done;
      assert.equal(r.exitCode, 137);
    });

    it('reports 128+signal for a signal death', async () => {
      const r = await sh('kill -TERM $$');
      await r.done;
      assert.equal(r.exitCode, 143);
    });

    it('interrupts with process/signal', async () => {
      const r = await sh("trap 'echo interrupted; exit 9' INT; echo ready; while :; do sleep 0.05; done");
      await eventually(() => r.output().includes('ready'), 5000, 'ready');
      await env.exec.signal(r.processId, 'interrupt');
      await r.done;
      assert.equal(r.exitCode, 9);
      assert.match(r.output(), /interrupted/);
      await env.exec.signal('no-such-process', 'interrupt');
    });

    it('runs each child as the leader of its own process group and session', async () => {
      const r = await sh('cat /proc/$$/stat');
      await r.done;
      const fields = r
        .output()
        .slice(r.output().lastIndexOf(')') + 2)
        .split(' ');
      const pid = Number(r.output().split(' ')[0]);
      assert.equal(Number(fields[2]), pid, 'pgid == pid');
      assert.equal(Number(fields[3]), pid, 'sid == pid');
    });

    it('gives the child exactly `env` without envPolicy', async () => {
      const r = await run({ argv: ['/usr/bin/env'], env: { ONLY: 'this' } });
      await r.done;
      assert.equal(r.output(), 'ONLY=this\n');
      const empty = await run({ argv: ['/usr/bin/env'], env: {} });
      await empty.done;
      assert.equal(empty.output(), '');
    });

    it('applies envPolicy: inherit, default excludes, exclude, set, includeOnly, env on top', async () => {
      const base: EnvPolicy = { inherit: 'all', ignoreDefaultExcludes: false, exclude: [], set: {}, includeOnly: [] };
      const envOf = async (envPolicy: EnvPolicy, extra: Record<string, string> = {}) => {
        const r = await run({ argv: ['/usr/bin/env'], env: extra, envPolicy });
        await r.done;
        return Object.fromEntries(
          r
            .output()
            .split('\n')
            .filter(Boolean)
            .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
        ) as Record<string, string>;
      };
      const none = await envOf({ ...base, inherit: 'none', set: { S: '1', T: '1' } }, { S: '2', EXPLICIT_TOKEN: 'kept' });
      assert.deepEqual(none, { S: '2', T: '1', EXPLICIT_TOKEN: 'kept' });
      const all = await envOf({ ...base, set: { MY_API_KEY: 'set-wins-over-excludes' } });
      assert.ok('PATH' in all);
      assert.equal(all.MY_API_KEY, 'set-wins-over-excludes');
      assert.ok(!Object.keys(all).some((k) => k !== 'MY_API_KEY' && /KEY|SECRET|TOKEN/i.test(k)), 'default excludes');
      const only = await envOf({ ...base, includeOnly: ['path'] }, { X: 'y' });
      assert.deepEqual(Object.keys(only).sort(), ['PATH', 'X']);
      const excluded = await envOf({ ...base, exclude: ['PA?H', 'HOME'] });
      assert.ok(!('PATH' in excluded) && !('HOME' in excluded));
    });

    it('passes arg0 as the argv[0] the child sees, on pipes and on a pty', async () => {
      const r = await run({ argv: ['/bin/sh', '-c', 'tr "\\0" " " < /proc/$$/cmdline'], arg0: 'my-arg0' });
      await r.done;
      assert.match(r.output(), /^my-arg0 -c /);
      const t = await run({ argv: ['/bin/sh', '-c', 'tr "\\0" " " < /proc/$$/cmdline'], arg0: 'tty-arg0', tty: true });
      await t.done;
      assert.match(t.output(), /^tty-arg0 -c /);
    });

    it('keeps only the most recent output (1 MiB by default)', async () => {
      const r = await sh('head -c 3000000 /dev/zero');
      await r.done;
      const res = await env.exec.read(r.processId, { afterSeq: 0 });
      const bytes = res.chunks.reduce((s, c) => s + c.data.length, 0);
      assert.ok(bytes <= 1024 * 1024 && bytes > 900 * 1024, `retained ${bytes}`);
      assert.ok(res.chunks[0]!.seq > 1, 'the oldest chunks were dropped');
      const streamed = r.events.reduce((s, e) => s + (e.type === 'output' ? e.data.length : 0), 0);
      assert.equal(streamed, 3_000_000, 'every byte was notified');
    });

    it('rejects a duplicate processId while the old one is retained', async () => {
      const r = await sh('true');
      await r.done;
      await rejectsWith(
        env.exec.start({ processId: r.processId, argv: ['true'], cwd: tmp.dir, env: SH_ENV, tty: false }),
        -32600,
        `process ${r.processId} already exists`,
      );
    });

    it('rejects reads of an unknown process', async () => {
      await rejectsWith(env.exec.read('nope'), -32600, 'unknown process id nope');
    });

    it('fails to start with the OS error text', async () => {
      const start = (argv: string[], cwd = tmp.dir, extra: Partial<StartProcessRequest> = {}) =>
        env.exec.start({ processId: id('bad'), argv, cwd, env: SH_ENV, tty: false, ...extra });
      const enoent = 'No such file or directory (os error 2)';
      await rejectsWith(start(['definitely-not-a-command']), -32603, enoent);
      await rejectsWith(start(['/nonexistent/bin']), -32603, enoent);
      await rejectsWith(start(['true'], path.join(tmp.dir, 'missing')), -32603, enoent);
      await writeFile(path.join(tmp.dir, 'plain'), 'x');
      await rejectsWith(start(['true'], path.join(tmp.dir, 'plain')), -32603, 'Not a directory (os error 20)');
      await mkdir(path.join(tmp.dir, 'adir'), { recursive: true });
      await rejectsWith(start([path.join(tmp.dir, 'adir')]), -32603, 'Permission denied (os error 13)');
      await rejectsWith(start([path.join(tmp.dir, 'plain')]), -32603, 'Permission denied (os error 13)');
      const bogus = path.join(tmp.dir, 'bogus-binary');
      await writeFile(bogus, Buffer.from([0, 1, 2, 3, 4, 5, 6, 7]));
      await chmod(bogus, 0o755);
      await rejectsWith(start([bogus]), -32603, 'Exec format error (os error 8)');
      await rejectsWith(start(['definitely-not-a-command'], tmp.dir, { tty: true }), -32603, enoent);
      // A failed start does not take the id.
      const retry = await run({ argv: ['true'], processId: 'retry-id' });
      await retry.done;
    });

    it('handles many concurrent processes', async () => {
      const runs = await Promise.all(Array.from({ length: 20 }, (_, i) => sh(`echo ${i}`)));
      await Promise.all(runs.map((r) => r.done));
      runs.forEach((r, i) => assert.equal(r.output(), `${i}\n`));
    });

    it('reports environment info', async () => {
      const info = await env.info();
      assert.ok(info.shell.path.startsWith('/'));
      assert.ok(info.shell.name.length > 0);
      assert.equal(info.platformOs, 'linux');
      assert.match(info.providerId ?? '', /^sha256:[0-9a-f]{64}$/);
      assert.equal(typeof info.executorVersion, 'string');
      assert.equal(info.cwd, process.cwd(), 'plain paths on both sides of the seam');
      assert.ok(info.tempDir?.startsWith('/'));
      assert.deepEqual(info.prependPathDirs, []);
    });

    it('tells spawn failures apart with data.kind', async () => {
      const start = (argv: string[], cwd = tmp.dir) => env.exec.start({ processId: id('kind'), argv, cwd, env: SH_ENV, tty: false });
      const kindOf = async (p: Promise<unknown>): Promise<unknown> => {
        const err = await p.then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(err instanceof RpcError, String(err));
        return (err.data as { kind?: unknown } | undefined)?.kind;
      };
      assert.equal(await kindOf(start(['definitely-not-a-command'])), 'spawnNotFound');
      assert.equal(await kindOf(start(['true'], path.join(tmp.dir, 'no-such-cwd'))), 'spawnNotFound');
      await mkdir(path.join(tmp.dir, 'kind-dir'), { recursive: true });
      assert.equal(await kindOf(start([path.join(tmp.dir, 'kind-dir')])), 'spawnPermissionDenied');
      const bogus = path.join(tmp.dir, 'kind-bogus');
      await writeFile(bogus, Buffer.from([0, 1, 2, 3]));
      await chmod(bogus, 0o755);
      assert.equal(await kindOf(start([bogus])), 'spawnFailed');
    });

    it('refuses enforceManagedNetwork without a managed proxy, and runs nothing', async () => {
      const marker = path.join(tmp.dir, 'managed-network-ran');
      await rejectsWith(sh(`touch ${marker}`, { enforceManagedNetwork: true }), -32602, /enforceManagedNetwork/);
      assert.equal(existsSync(marker), false);
    });

    describe('sandboxed starts (bubblewrap)', { skip: !existsSync('/usr/bin/bwrap') ? 'bubblewrap is not installed' : false }, () => {
      const roots = (cwd: string, workspaceRoots?: string[]): SandboxRequest => ({
        profile: {
          enforcement: 'managed',
          network: 'restricted',
          fileSystem: {
            kind: 'restricted',
            entries: [
              { path: { type: 'special', kind: 'root' }, access: 'read' },
              { path: { type: 'special', kind: 'project_roots' }, access: 'write' },
            ],
          },
        },
        cwd,
        ...(workspaceRoots ? { workspaceRoots } : {}),
      });

      it('reports linuxSeccomp and sandboxDenied for a refused write, none and false for its allowed twin', async () => {
        const ws = path.join(tmp.dir, 'sbx-ws');
        await mkdir(ws, { recursive: true });
        const outsideFile = path.join(tmp.dir, 'sbx-outside');
        const processId = id('sbx');
        const r = watch(processId);
        const started = await env.exec.start({
          processId,
          argv: ['/bin/sh', '-c', `touch ${outsideFile}`],
          cwd: ws,
          env: SH_ENV,
          tty: false,
          sandbox: roots(ws),
        });
        assert.equal(started.sandboxType, 'linuxSeccomp');
        await r.done;
        assert.equal(existsSync(outsideFile), false);
        const exited = r.events.find((e) => e.type === 'exited');
        assert.ok(exited?.type === 'exited' && exited.exitCode !== 0 && exited.sandboxDenied === true, JSON.stringify(exited));
        assert.equal((await env.exec.read(processId)).sandboxDenied, true);
        const twin = await run({ argv: ['/bin/sh', '-c', `touch ${path.join(ws, 'inside')}`], cwd: ws, sandbox: roots(ws) });
        await twin.done;
        assert.equal(existsSync(path.join(ws, 'inside')), true);
        const twinExit = twin.events.find((e) => e.type === 'exited');
        assert.ok(twinExit?.type === 'exited' && twinExit.sandboxDenied === false);
        const plain = await sh('echo permission denied; exit 1');
        await plain.done;
        const plainExit = plain.events.find((e) => e.type === 'exited');
        assert.ok(plainExit?.type === 'exited' && plainExit.sandboxDenied === false, 'unsandboxed: never a denial');
        assert.equal((await env.exec.read(plain.processId)).sandboxDenied, false);
      });

      it('makes every workspace root writable (--add-dir), and only those', async () => {
        const ws = path.join(tmp.dir, 'roots-ws');
        const extra = path.join(tmp.dir, 'roots-extra');
        const other = path.join(tmp.dir, 'roots-other');
        for (const d of [ws, extra, other]) await mkdir(d, { recursive: true });
        const r = await run({
          argv: ['/bin/sh', '-c', `touch ${ws}/a ${extra}/b ${other}/c; true`],
          cwd: ws,
          sandbox: roots(ws, [ws, extra]),
        });
        await r.done;
        assert.equal(existsSync(path.join(ws, 'a')), true);
        assert.equal(existsSync(path.join(extra, 'b')), true);
        assert.equal(existsSync(path.join(other, 'c')), false);
      });
    });
  });
}
