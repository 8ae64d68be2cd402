// No process outlives its session or its server (issue #15 §4), whatever it does to its process
// group: background jobs, `setsid` children, double-forked daemons; after terminate, after the
// session ends, after `kill -9` of the server.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { describe, it } from 'node:test';
import { builtinProfile } from '../src/sandbox/builtin-profiles.js';
import { eventually, isAlive, type Json, RawClient, SH_ENV, startServer, startServerProcess, tempDir } from './helpers.js';

/** A command that leaves, besides itself, a background job, a setsid child and a double-forked setsid daemon, and prints their pids. */
const SPREAD = [
  'sleep 600 & echo $!',
  'setsid sleep 600 & echo $!',
  "setsid sh -c 'sleep 600 >/dev/null 2>&1 & echo $!' </dev/null",
  'echo $$',
].join('; ');

const DIE_WITHIN_MS = 20_000;

async function pidsOf(client: RawClient, processId: string, count: number): Promise<number[]> {
  let text = '';
  await eventually(
    () => {
      text = client.received
        .filter((m) => m.method === 'process/output' && m.params.processId === processId)
        .map((m) => Buffer.from(m.params.chunk, 'base64').toString())
        .join('');
      return text.trim().split(/\s+/).filter(Boolean).length >= count;
    },
    DIE_WITHIN_MS,
    `${count} pids from ${processId}`,
  );
  return text.trim().split(/\s+/).map(Number);
}

async function start(client: RawClient, processId: string, command: string, cwd: string, tty = false): Promise<Json> {
  const res = await client.request('process/start', { processId, argv: ['sh', '-c', command], cwd, env: SH_ENV, tty });
  assert.equal(res.error, undefined, JSON.stringify(res.error));
  return res;
}

const alive = (pids: number[]): number[] => pids.filter(isAlive);

describe('process lifetime', () => {
  for (const [sandboxed, tty] of [
    [false, false],
    [false, true],
    [true, false],
  ]) {
    it(`kill -9 of the server takes down every ${sandboxed ? 'sandboxed ' : ''}${tty ? 'terminal' : 'pipe'} child and all they started`, {
      skip: sandboxed && !existsSync('/usr/bin/bwrap') ? 'no bwrap' : false,
    }, async () => {
      const scratch = await tempDir('cordon-lifetime-');
      const ceiling = sandboxed
        ? { profile: builtinProfile(':workspace'), cwd: scratch.dir, workspaceRoots: [scratch.dir], name: ':workspace' }
        : undefined;
      const server = await startServerProcess({ environment: { ceiling } });
      const pids: number[] = [];
      try {
        const { client } = await RawClient.ready(server.url);
        for (let i = 0; i < 5; i++) await start(client, `p${i}`, `${SPREAD}; sleep 600`, scratch.dir, tty);
        // One that already exited, leaving its daemon behind.
        if (!tty) await start(client, 'gone', SPREAD, scratch.dir);
        for (let i = 0; i < 5; i++) pids.push(...(await pidsOf(client, `p${i}`, 4)));
        if (!tty) pids.push(...(await pidsOf(client, 'gone', 4)));
        // Its shell prints its pid last and then exits: seen still running, once in eight runs.
        // (Never `closed`: its background job keeps the output pipe open.)
        if (!tty)
          await eventually(
            () => client.received.some((m) => m.method === 'process/exited' && m.params.processId === 'gone'),
            DIE_WITHIN_MS,
            'the exit of gone',
          );
        if (!sandboxed) assert.equal(alive(pids).length, pids.length - (tty ? 0 : 1), 'all running before (but the exited one)');
        else assert.ok(sandboxSleepers(scratch.dir) >= 20, 'the sandboxed sleepers run before');
        server.child.kill('SIGKILL');
        await server.stop();
        if (sandboxed) {
          // The pids printed are the sandbox's own (its PID namespace): count the processes by their
          // command line instead.
          await eventually(() => sandboxSleepers(scratch.dir) === 0, DIE_WITHIN_MS, 'no sandboxed process left');
        } else {
          await eventually(() => alive(pids).length === 0, DIE_WITHIN_MS, `no survivor (alive: ${alive(pids).join(' ')})`);
        }
      } finally {
        for (const pid of alive(pids)) process.kill(pid, 'SIGKILL');
        server.child.kill('SIGKILL');
        await scratch.cleanup();
      }
    });
  }

  it('process/terminate ends what the process started, setsid children included', async () => {
    const scratch = await tempDir('cordon-lifetime-');
    const { server, url } = await startServer();
    const { client } = await RawClient.ready(url);
    const pids: number[] = [];
    try {
      await start(client, 't', `${SPREAD}; sleep 600`, scratch.dir);
      pids.push(...(await pidsOf(client, 't', 4)));
      assert.equal(alive(pids).length, 4);
      assert.equal((await client.request('process/terminate', { processId: 't' })).result?.running, true);
      await eventually(() => alive(pids).length === 0, DIE_WITHIN_MS, `no survivor (alive: ${alive(pids).join(' ')})`);
      const exited = await client.next((m) => m.method === 'process/exited' && m.params.processId === 't');
      assert.equal(exited.params.exitCode, 137);
    } finally {
      for (const pid of alive(pids)) process.kill(pid, 'SIGKILL');
      client.close();
      await server.close();
      await scratch.cleanup();
    }
  });

  it('a process that exited reports its exit at once; what it left running ends with the session', async () => {
    const scratch = await tempDir('cordon-lifetime-');
    const { server, url } = await startServer();
    const { client } = await RawClient.ready(url);
    const pids: number[] = [];
    try {
      await start(client, 'e', `${SPREAD}; exit 3`, scratch.dir);
      pids.push(...(await pidsOf(client, 'e', 4)));
      const exited = await client.next((m) => m.method === 'process/exited' && m.params.processId === 'e');
      assert.equal(exited.params.exitCode, 3, "the command's own exit code, while its background job still runs");
      assert.equal(alive(pids.slice(0, 3)).length, 3, 'what it started in the background keeps running meanwhile');
      await server.close();
      await eventually(() => alive(pids).length === 0, DIE_WITHIN_MS, `no survivor (alive: ${alive(pids).join(' ')})`);
    } finally {
      for (const pid of alive(pids)) process.kill(pid, 'SIGKILL');
      client.close();
      await server.close();
      await scratch.cleanup();
    }
  });
});

describe('process lifetime: kill -9 right after a start', () => {
  // bubblewrap's --die-with-parent takes effect only once bwrap runs; a server killed in the moment
  // between its spawn and that used to leave the sandbox running for good (seen in a reliability
  // run). Each round kills the server the moment its process/start is answered.
  for (const [sandboxed, tty] of [
    [false, false],
    [true, false],
    [true, true],
  ]) {
    it(`leaves no ${sandboxed ? 'sandboxed ' : ''}${tty ? 'terminal' : 'pipe'} process behind, round after round`, {
      skip: sandboxed && !existsSync('/usr/bin/bwrap') ? 'no bwrap' : false,
    }, async () => {
      const scratch = await tempDir('cordon-lifetime-');
      const mark = `cordon-race-${process.pid}-${sandboxed ? 's' : 'u'}${tty ? 't' : 'p'}`;
      const ceiling = sandboxed
        ? { profile: builtinProfile(':workspace'), cwd: scratch.dir, workspaceRoots: [scratch.dir], name: ':workspace' }
        : undefined;
      try {
        for (let round = 0; round < 8; round++) {
          const server = await startServerProcess({ environment: { ceiling } });
          try {
            const { client } = await RawClient.ready(server.url);
            const answered = client.request('process/start', {
              processId: 'p',
              argv: ['sleep', '600'],
              cwd: scratch.dir,
              env: { ...SH_ENV, CORDON_RACE_MARK: mark },
              tty,
            });
            const res = await answered;
            server.child.kill('SIGKILL');
            assert.equal(res.error, undefined, JSON.stringify(res.error));
          } finally {
            server.child.kill('SIGKILL');
            await server.stop();
          }
        }
        await eventually(() => markedPids(mark).length === 0, DIE_WITHIN_MS, `no survivor (alive: ${markedPids(mark).join(' ')})`);
      } finally {
        for (const pid of markedPids(mark)) process.kill(pid, 'SIGKILL');
        await scratch.cleanup();
      }
    });
  }
});

/** Processes whose environment holds `mark`. */
function markedPids(mark: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').includes(mark)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Sleepers started by the sandboxed test commands (found by their working directory). */
function sandboxSleepers(dir: string): number {
  let n = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`) === dir && readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'sleep') n++;
    } catch {
      // gone meanwhile
    }
  }
  return n;
}
