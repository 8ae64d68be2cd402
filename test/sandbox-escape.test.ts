import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FsEntry, PermissionProfile, SandboxRequest } from '../src/environment/permissions.js';
import type { Environment } from '../src/environment/types.js';
import { LocalEnvironment } from '../src/local/local-environment.js';
import { RpcError } from '../src/protocol/errors.js';
import { LinuxSandbox } from '../src/sandbox/linux-sandbox.js';
import { CLI } from './cli-helpers.js';
import { SH_ENV, tempDir } from './helpers.js';

const special = (
  kind: 'root' | 'project_roots' | 'slash_tmp' | 'tmpdir' | 'minimal',
  access: FsEntry['access'],
  subpath?: string,
): FsEntry => ({
  path: { type: 'special', kind, ...(subpath ? { subpath } : {}) },
  access,
});
const exact = (p: string, access: FsEntry['access']): FsEntry => ({ path: { type: 'path', path: p }, access });
const glob = (pattern: string): FsEntry => ({ path: { type: 'glob_pattern', pattern }, access: 'deny' });

function profile(entries: FsEntry[], network: 'restricted' | 'enabled' = 'restricted'): PermissionProfile {
  return { enforcement: 'managed', network, fileSystem: { kind: 'restricted', entries } };
}

interface Outcome {
  code: number;
  out: string;
}

/**
 * The escape suite: every test tries to get out of the sandbox and passes only if it is refused,
 * and proves the matching allowed operation works, so a sandbox that refuses everything fails.
 */
describe('sandbox escape suite (bubblewrap + seccomp)', {
  skip: !existsSync('/usr/bin/bwrap') && !process.env.CI ? 'bubblewrap is not installed' : false,
}, () => {
  let env: Environment;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let ws: string;
  let outside: string;
  let n = 0;

  before(async () => {
    env = new LocalEnvironment();
    tmp = await tempDir('cordon-escape-');
    ws = path.join(tmp.dir, 'ws');
    outside = path.join(tmp.dir, 'outside');
    mkdirSync(path.join(ws, 'sub'), { recursive: true });
    mkdirSync(path.join(ws, '.git', 'hooks'), { recursive: true });
    writeFileSync(path.join(ws, '.git', 'config'), '[core]\n');
    writeFileSync(path.join(ws, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    mkdirSync(path.join(ws, 'private'), { recursive: true });
    writeFileSync(path.join(ws, 'private', 'key'), 'PRIVATE');
    writeFileSync(path.join(ws, 'secret.txt'), 'SECRET');
    writeFileSync(path.join(ws, 'visible.txt'), 'VISIBLE');
    writeFileSync(path.join(ws, '.env'), 'DOTENV');
    writeFileSync(path.join(ws, 'sub', 'deep.env'), 'DEEPENV');
    writeFileSync(path.join(ws, 'sub', 'plain.txt'), 'PLAIN');
    mkdirSync(outside, { recursive: true });
    writeFileSync(path.join(outside, 'host.txt'), 'HOST');
    symlinkSync(path.join(ws, 'secret.txt'), path.join(ws, 'sub', 'planted-link'));
  });
  after(async () => {
    await env.close();
    await tmp.cleanup();
  });

  const workspace = (extra: FsEntry[] = [], network: 'restricted' | 'enabled' = 'restricted'): SandboxRequest => ({
    profile: profile(
      [
        special('root', 'read'),
        special('project_roots', 'write'),
        exact(path.join(ws, 'secret.txt'), 'deny'),
        exact(path.join(ws, 'private'), 'deny'),
        glob(`${ws}/**/*.env`),
        ...extra,
      ],
      network,
    ),
    cwd: ws,
  });

  /** Starts a sandboxed `sh -c script`; `out()` is what it wrote so far, `done` resolves with the outcome. */
  async function launch(
    script: string,
    sandbox: SandboxRequest = workspace(),
    tty = false,
  ): Promise<{ processId: string; out(): string; done: Promise<Outcome> }> {
    const processId = `escape-${++n}`;
    let out = '';
    let code = -1;
    const done = new Promise<Outcome>((resolve) => {
      const off = env.exec.subscribe((e) => {
        if (e.processId !== processId) return;
        if (e.type === 'output') out += e.data.toString();
        if (e.type === 'exited') code = e.exitCode;
        if (e.type === 'closed') {
          off();
          resolve({ code, out });
        }
      });
    });
    const started = await env.exec.start({
      processId,
      argv: ['/bin/sh', '-c', script],
      cwd: ws,
      env: { ...SH_ENV, HOME: ws },
      tty,
      sandbox,
    });
    assert.equal(started.sandboxType, 'linuxSeccomp');
    return { processId, out: () => out, done };
  }

  const sh = async (script: string, sandbox: SandboxRequest = workspace()): Promise<Outcome> => (await launch(script, sandbox)).done;

  it('runs sandboxed with no capabilities, no_new_privs, seccomp, and the sandbox markers', async () => {
    const r = await sh(
      'grep -E "^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status; echo "$CORDON_SANDBOX $CODEX_SANDBOX_NETWORK_DISABLED"',
    );
    assert.match(r.out, /CapEff:\s+0000000000000000/);
    assert.match(r.out, /CapBnd:\s+0000000000000000/);
    assert.match(r.out, /NoNewPrivs:\s+1/);
    assert.match(r.out, /Seccomp:\s+2/);
    assert.match(r.out, /bwrap 1/);
    const open = await sh('echo "[$CODEX_SANDBOX_NETWORK_DISABLED]"', workspace([], 'enabled'));
    assert.match(open.out, /\[\]/, 'no network marker when the network is enabled');
  });

  it('refuses writes outside the writable roots; writes inside work', async () => {
    const r = await sh(
      `echo x > ${outside}/new.txt; echo "rc=$?"; echo x > /etc/cordon-escape; echo "rc=$?"; echo ok > inside.txt && cat inside.txt`,
    );
    assert.match(r.out, /Read-only file system/);
    assert.equal(existsSync(path.join(outside, 'new.txt')), false);
    assert.equal(existsSync('/etc/cordon-escape'), false);
    assert.match(r.out, /\nok\n?$/);
    assert.equal(readFileSync(path.join(ws, 'inside.txt'), 'utf8'), 'ok\n');
  });

  it('protects .git (hooks, config), .codex, .agents and .cordon, also when they do not exist yet', async () => {
    const r = await sh(
      'echo evil > .git/hooks/pre-commit; echo evil >> .git/config; mkdir -p .codex/x; echo e > .codex/config.toml; mkdir .agents; echo e > .agents/a; mkdir .cordon; ' +
        'rm -rf .git; echo fine > sub/allowed.txt && cat sub/allowed.txt',
    );
    assert.equal(existsSync(path.join(ws, '.git', 'hooks', 'pre-commit')), false);
    assert.equal(readFileSync(path.join(ws, '.git', 'config'), 'utf8'), '[core]\n');
    for (const name of ['.codex', '.agents', '.cordon'])
      assert.equal(existsSync(path.join(ws, name)), false, `${name} was not created (nor left behind)`);
    assert.ok(existsSync(path.join(ws, '.git', 'HEAD')));
    assert.match(r.out, /fine/);
  });

  it('refuses reading a denied file directly, through a planted symlink, through .., and through /proc/*/root', async () => {
    const secret = path.join(ws, 'secret.txt');
    for (const attempt of [
      `cat ${secret}`,
      'cat sub/planted-link',
      'cat sub/../secret.txt',
      `cat /proc/self/root${secret}`,
      `cat /proc/1/root${secret}`,
    ]) {
      const r = await sh(`${attempt}; echo "rc=$?"`);
      assert.ok(!r.out.includes('SECRET'), `${attempt} leaked: ${r.out}`);
      assert.match(r.out, /rc=[1-9]/, attempt);
    }
    const allowed = await sh('cat visible.txt');
    assert.equal(allowed.out, 'VISIBLE');
  });

  it('refuses listing or writing into a denied directory', async () => {
    const r = await sh(
      'ls private; echo "ls=$?"; cat private/key; echo "cat=$?"; echo x > private/new; echo "w=$?"; ls sub >/dev/null && echo listed',
    );
    assert.ok(!r.out.includes('key\n') && !r.out.includes('PRIVATE'), r.out);
    assert.match(r.out, /ls=[1-9]/);
    assert.match(r.out, /w=[1-9]/);
    assert.equal(existsSync(path.join(ws, 'private', 'new')), false);
    assert.match(r.out, /listed/);
  });

  it('refuses reading files matched by a deny glob, at any depth', async () => {
    const r = await sh('cat .env; cat sub/deep.env; cat sub/plain.txt');
    assert.ok(!r.out.includes('DOTENV') && !r.out.includes('DEEPENV'), r.out);
    assert.match(r.out, /PLAIN/);
  });

  it('refuses connecting to a TCP server on the host 127.0.0.1 with the network restricted; allows it when enabled', async () => {
    const server = net.createServer((s) => s.end('HELLO-FROM-HOST'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const client = `${process.execPath} -e "const s=require('net').connect(${port},'127.0.0.1');s.on('data',d=>process.stdout.write(d));s.on('error',e=>{console.log('ERR',e.code);process.exit(3)})"`;
    try {
      const restricted = await sh(client);
      assert.ok(!restricted.out.includes('HELLO-FROM-HOST'), restricted.out);
      assert.match(restricted.out, /ERR E(PERM|ACCES|NETUNREACH)/, 'the connection itself was refused (node ran)');
      assert.equal(restricted.code, 3);
      const enabled = await sh(client, workspace([], 'enabled'));
      assert.match(enabled.out, /HELLO-FROM-HOST/);
    } finally {
      server.close();
    }
  });

  it('refuses connecting to a host Unix socket with the network restricted; socketpair still works', async () => {
    const sock = path.join(tmp.dir, 'host.sock');
    const server = net.createServer((s) => s.end('UNIX-HOST'));
    await new Promise<void>((r) => server.listen(sock, () => r()));
    try {
      const r = await sh(
        `${process.execPath} -e "const s=require('net').connect('${sock}');s.on('data',d=>process.stdout.write(d));s.on('error',e=>{console.log('ERR',e.code);process.exit(3)})"`,
      );
      assert.ok(!r.out.includes('UNIX-HOST'), r.out);
      assert.match(r.out, /ERR E(PERM|ACCES)/, 'the connect itself was refused (node ran)');
      assert.equal(r.code, 3);
      const pair = await sh(
        `perl -e 'use Socket; socketpair(my $a, my $b, AF_UNIX, SOCK_STREAM, 0) or die "socketpair: $!"; syswrite($a, "PAIR-OK"); sysread($b, my $buf, 7); print $buf'`,
      );
      assert.equal(pair.out, 'PAIR-OK');
    } finally {
      server.close();
    }
  });

  it('refuses ptrace of a sibling process', async () => {
    const r = await sh(
      `sleep 5 & pid=$!; perl -e 'my $r = syscall(101, 16, $ARGV[0], 0, 0); print $r == -1 ? "refused:$!" : "attached"' $pid; kill $pid; echo; kill -0 $$ && echo alive`,
    );
    assert.match(r.out, /refused:Operation not permitted/);
    assert.match(r.out, /alive/);
  });

  it('refuses mount, umount and remounting / read-write, even as root', async () => {
    const r = await sh(
      'mkdir -p m; mount -t tmpfs none m; echo "mount=$?"; umount /proc; echo "umount=$?"; mount -o remount,rw /; echo "remount=$?"; echo x > /etc/cordon-remount; echo "write=$?"; echo done',
    );
    assert.match(r.out, /mount=[1-9]/);
    assert.match(r.out, /umount=[1-9]/);
    assert.match(r.out, /remount=[1-9]/);
    assert.match(r.out, /write=[1-9]/);
    assert.equal(existsSync('/etc/cordon-remount'), false);
    assert.match(r.out, /done/);
  });

  it('refuses a new user namespace and io_uring', async () => {
    const r = await sh(
      `unshare -U true; echo "unshare=$?"; unshare -r true; echo "unshare_r=$?"; perl -e 'my $p = "\\0" x 120; my $r = syscall(425, 8, $p); print "io_uring=", ($r == -1 ? "refused:$!" : "created")'; echo; true && echo fine`,
    );
    assert.match(r.out, /unshare=[1-9]/);
    assert.match(r.out, /unshare_r=[1-9]/);
    assert.match(r.out, /io_uring=refused:Operation not permitted/);
    assert.match(r.out, /fine/);
  });

  it("cannot read another host process's /proc/PID/environ; its own works", async () => {
    const r = await sh(`cat /proc/${process.pid}/environ; echo "rc=$?"; cat /proc/self/environ | tr '\\0' '\\n' | grep -c CORDON_SANDBOX`);
    assert.match(r.out, /rc=[1-9]/);
    assert.match(r.out, /\n1\n$/);
  });

  it('keeps a working terminal inside the sandbox: size, input, Ctrl-C', async () => {
    const run = await launch(
      "stty size; read line; echo got:$line; trap 'echo interrupted; exit 7' INT; while :; do sleep 0.05; done",
      workspace(),
      true,
    );
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 200 && !re.test(run.out()); i++) await new Promise((r) => setTimeout(r, 25));
      assert.match(run.out(), re);
    };
    await waitFor(/24 80/);
    await env.exec.write({ processId: run.processId, data: Buffer.from('hello\n') });
    await waitFor(/got:hello/);
    await env.exec.signal(run.processId, 'interrupt');
    const outcome = await run.done;
    assert.match(outcome.out, /interrupted/);
    assert.equal(outcome.code, 7);
  });

  it('fails closed when bubblewrap is unavailable: a clear error, and nothing runs', async () => {
    const noBwrap = new LocalEnvironment({ serverEnv: { PATH: '/nonexistent' } });
    const marker = path.join(ws, 'ran-unsandboxed');
    try {
      await assert.rejects(
        noBwrap.exec.start({
          processId: 'nb',
          argv: ['/bin/sh', '-c', `touch ${marker}`],
          cwd: ws,
          env: SH_ENV,
          tty: false,
          sandbox: workspace(),
        }),
        (err: unknown) =>
          err instanceof RpcError &&
          err.code === -32603 &&
          /bubblewrap \(bwrap\) was not found/.test(err.message) &&
          /cordon doctor/.test(err.message),
      );
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(existsSync(marker), false);
    } finally {
      await noBwrap.close();
    }
  });

  it('fails closed when a deny glob matches more paths than the cap, and nothing runs', async () => {
    const many = path.join(ws, 'many');
    mkdirSync(many, { recursive: true });
    for (let i = 0; i < 30; i++) writeFileSync(path.join(many, `f${i}.key`), 'KEYDATA');
    const capped = new LocalEnvironment({
      sandbox: new LinuxSandbox({ searchPath: process.env.PATH, tmpdir: undefined, maxGlobMatches: 10 }),
    });
    const marker = path.join(ws, 'ran-despite-cap');
    try {
      await assert.rejects(
        capped.exec.start({
          processId: 'cap',
          argv: ['/bin/sh', '-c', `touch ${marker}`],
          cwd: ws,
          env: SH_ENV,
          tty: false,
          sandbox: workspace([glob(`${many}/*.key`)]),
        }),
        (err: unknown) => err instanceof RpcError && /matched more than 10 paths/.test(err.message),
      );
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(existsSync(marker), false);
      const r = await sh('cat many/f1.key; echo "rc=$?"; ls many | wc -l', workspace([glob(`${many}/*.key`)]));
      assert.ok(!r.out.includes('KEYDATA'), r.out);
      assert.match(r.out, /30/, 'under the default cap the matches are hidden, the directory still lists');
    } finally {
      await capped.close();
    }
  });

  it('does not leak a descriptor the server inherited into children, sandboxed or not', async () => {
    const secretFile = path.join(tmp.dir, 'inherited-secret');
    writeFileSync(secretFile, 'INHERITED-SECRET');
    const fd = openSync(secretFile, 'r');
    const run = (args: string[]) =>
      new Promise<string>((resolve) => {
        const child = spawn(process.execPath, [CLI, 'exec', ...args], { stdio: ['ignore', 'pipe', 'pipe', fd] });
        let out = '';
        child.stdout?.on('data', (d) => (out += d));
        child.stderr?.on('data', (d) => (out += d));
        child.on('close', () => resolve(out));
      });
    const plain = await run(['--', 'sh', '-c', 'cat <&3; cat /proc/self/fd/3; ls /proc/self/fd']);
    assert.ok(!plain.includes('INHERITED-SECRET'), plain);
    assert.match(plain, /^0\n1\n2\n/m, 'the child has its stdio');
    const sandboxedRun = await new Promise<string>((resolve) => {
      const child = spawn(
        process.execPath,
        [CLI, 'sandbox', '--cwd', ws, '--', 'sh', '-c', 'cat <&3; cat /proc/self/fd/3; echo sandboxed-ran'],
        { stdio: ['ignore', 'pipe', 'pipe', fd] },
      );
      let out = '';
      child.stdout?.on('data', (d) => (out += d));
      child.stderr?.on('data', (d) => (out += d));
      child.on('close', () => resolve(out));
    });
    assert.ok(!sandboxedRun.includes('INHERITED-SECRET'), sandboxedRun);
    assert.match(sandboxedRun, /sandboxed-ran/);
  });
});
