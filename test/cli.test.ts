import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLI, cordon, ROOT, serve } from './cli-helpers.js';
import { eventually, isAlive, RawClient, tempDir } from './helpers.js';

describe('cli', () => {
  it('cordon exec (in-process) streams output and exits with the command exit code', async () => {
    const r = await cordon(['exec', '--env', 'GREETING=hi there', '--', 'sh', '-c', 'echo "$GREETING"; echo oops >&2; exit 7']);
    assert.equal(r.code, 7);
    assert.equal(r.stdout, 'hi there\n');
    assert.equal(r.stderr, 'oops\n');
  });

  it('cordon exec forwards stdin and its end', async () => {
    const r = await cordon(['exec', '--', 'wc', '-c'], 'twelve bytes');
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), '12');
  });

  it('cordon exec reports a missing command clearly', async () => {
    const r = await cordon(['exec', '--', 'no-such-command-xyz']);
    assert.equal(r.code, 127);
    assert.match(r.stderr, /no-such-command-xyz: No such file or directory \(os error 2\)/);
  });

  it('cordon serve prints its URL; cordon exec --url runs through it with a token; SIGTERM stops it and its children', async () => {
    const tmp = await tempDir();
    const tokenFile = path.join(tmp.dir, 'token');
    await writeFile(tokenFile, 'cli-token\n');
    const { child, url } = await serve(['--listen', 'ws://127.0.0.1:0', '--token-file', tokenFile, '--permissions', ':danger-full-access']);
    try {
      const r = await cordon(['exec', '--url', url, '--token-file', tokenFile, '--cwd', tmp.dir, '--', 'sh', '-c', 'pwd; exit 3']);
      assert.equal(r.code, 3);
      assert.equal(r.stdout.trim(), tmp.dir);
      const denied = await cordon(['exec', '--url', url, '--', 'true']);
      assert.equal(denied.code, 125);
      assert.match(denied.stderr, /401/);
      const pidFile = path.join(tmp.dir, 'pid');
      const exec = spawn(
        process.execPath,
        [CLI, 'exec', '--url', url, '--token-file', tokenFile, '--', 'sh', '-c', `echo $$ > ${pidFile}; sleep 60`],
        { cwd: ROOT },
      );
      await eventually(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'), 10_000, 'pid file');
      const pid = Number(readFileSync(pidFile, 'utf8'));
      assert.ok(isAlive(pid));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      await eventually(() => !isAlive(pid), 5000, 'child killed on shutdown');
      exec.kill();
    } finally {
      child.kill('SIGKILL');
      await tmp.cleanup();
    }
  });

  it('cordon serve refuses a non-loopback address without a token', async () => {
    const r = await cordon(['serve', '--listen', 'ws://0.0.0.0:0']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refusing to listen on non-loopback address/);
  });

  it('cordon serve --listen stdio speaks newline-delimited JSON-RPC and ends with its input', async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--listen', 'stdio', '--log-level', 'silent', '--permissions', ':danger-full-access'],
      { cwd: ROOT },
    );
    const lines: Record<string, any>[] = [];
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        lines.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
      }
    });
    const send = (m: unknown) => child.stdin.write(`${typeof m === 'string' ? m : JSON.stringify(m)}\n`);
    send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { clientName: 'stdio-test' } });
    send({ method: 'initialized', params: {} });
    send('not json');
    send({
      id: 2,
      method: 'process/start',
      params: { processId: 'p', argv: ['sh', '-c', 'echo via-stdio; exit 2'], cwd: '/tmp', env: { PATH: '/usr/bin:/bin' }, tty: false },
    });
    await eventually(() => lines.some((l) => l.method === 'process/closed'), 10_000, 'process/closed');
    assert.ok(lines.find((l) => l.id === 1)?.result.sessionId);
    const parseError = lines.find((l) => l.id === -1);
    assert.equal(parseError?.error.code, -32600);
    assert.match(parseError?.error.message, /^failed to parse stdio JSON-RPC message/);
    assert.deepEqual(lines.find((l) => l.id === 2)?.result, { processId: 'p', sandboxType: 'none' });
    const out = lines.find((l) => l.method === 'process/output');
    assert.equal(Buffer.from(out?.params.chunk, 'base64').toString(), 'via-stdio\n');
    assert.equal(lines.find((l) => l.method === 'process/exited')?.params.exitCode, 2);
    // A file large enough to be streamed in parts still arrives as one line.
    const big = randomBytes(3 * 256 * 1024 * 2 + 1);
    const bigFile = path.join(os.tmpdir(), `cordon-stdio-${process.pid}.bin`);
    writeFileSync(bigFile, big);
    try {
      send({ id: 3, method: 'fs/readFile', params: { path: bigFile } });
      await eventually(() => lines.some((l) => l.id === 3), 10_000, 'fs/readFile response');
      assert.ok(Buffer.from(lines.find((l) => l.id === 3)?.result.dataBase64, 'base64').equals(big));
    } finally {
      rmSync(bigFile, { force: true });
    }
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.stdin.end();
    assert.equal(await exited, 0);
  });
});

describe('cli: fs', () => {
  it('cordon fs put/get/ls/cat/stat/rm through a server, with chunked transfers', async () => {
    const tmp = await tempDir();
    const { child, url } = await serve(['--listen', 'ws://127.0.0.1:0', '--permissions', ':danger-full-access']);
    try {
      const { randomBytes } = await import('node:crypto');
      const data = randomBytes(9 * 1024 * 1024 + 123);
      await writeFile(path.join(tmp.dir, 'local.bin'), data);
      assert.equal((await cordon(['fs', 'put', '--url', url, path.join(tmp.dir, 'local.bin'), path.join(tmp.dir, 'remote.bin')])).code, 0);
      assert.deepEqual(readFileSync(path.join(tmp.dir, 'remote.bin')), data);
      assert.equal((await cordon(['fs', 'get', '--url', url, path.join(tmp.dir, 'remote.bin'), path.join(tmp.dir, 'back.bin')])).code, 0);
      assert.deepEqual(readFileSync(path.join(tmp.dir, 'back.bin')), data);
      const ls = await cordon(['fs', 'ls', '--url', url, tmp.dir]);
      assert.equal(ls.stdout, 'back.bin\nlocal.bin\nremote.bin\n');
      await writeFile(path.join(tmp.dir, 'hello.txt'), 'hello\n');
      assert.equal((await cordon(['fs', 'cat', '--url', url, path.join(tmp.dir, 'hello.txt')])).stdout, 'hello\n');
      const st = JSON.parse((await cordon(['fs', 'stat', '--url', url, path.join(tmp.dir, 'hello.txt')])).stdout);
      assert.equal(st.size, 6);
      assert.equal(st.isFile, true);
      assert.equal((await cordon(['fs', 'rm', '--url', url, path.join(tmp.dir, 'hello.txt')])).code, 0);
      assert.equal(existsSync(path.join(tmp.dir, 'hello.txt')), false);
      const missing = await cordon(['fs', 'cat', '--url', url, path.join(tmp.dir, 'nope')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /No such file or directory \(os error 2\)/);
    } finally {
      child.kill('SIGKILL');
      await tmp.cleanup();
    }
  });
});

describe('cli: sandbox and doctor', () => {
  it('cordon sandbox runs a command under a profile and exits with its code', async () => {
    const tmp = await tempDir();
    try {
      const ws = await cordon([
        'sandbox',
        '--cwd',
        tmp.dir,
        '--',
        'sh',
        '-c',
        `echo inside > ${tmp.dir}/in.txt; echo x > /etc/cordon-cli-escape; exit 4`,
      ]);
      assert.equal(ws.code, 4);
      assert.equal(existsSync(path.join(tmp.dir, 'in.txt')), true);
      assert.equal(existsSync('/etc/cordon-cli-escape'), false);
      assert.match(ws.stderr, /Read-only file system/);
      const ro = await cordon(['sandbox', '--permissions', ':read-only', '--cwd', tmp.dir, '--', 'sh', '-c', `echo x > ${tmp.dir}/ro.txt`]);
      assert.notEqual(ro.code, 0);
      assert.equal(existsSync(path.join(tmp.dir, 'ro.txt')), false);
      await writeFile(
        path.join(tmp.dir, 'cordon.toml'),
        `default_permissions = "docs"\n[permissions.docs]\nextends = ":read-only"\n[permissions.docs.filesystem]\n"${tmp.dir}/docs" = "write"\n`,
      );
      await (await import('node:fs/promises')).mkdir(path.join(tmp.dir, 'docs'));
      const custom = await cordon([
        'sandbox',
        '--config',
        path.join(tmp.dir, 'cordon.toml'),
        '--cwd',
        tmp.dir,
        '--',
        'sh',
        '-c',
        `echo ok > ${tmp.dir}/docs/a && echo no > ${tmp.dir}/b`,
      ]);
      assert.notEqual(custom.code, 0);
      assert.equal(existsSync(path.join(tmp.dir, 'docs', 'a')), true);
      assert.equal(existsSync(path.join(tmp.dir, 'b')), false);
      const bad = await cordon(['sandbox', '--permissions', 'nope', '--', 'true']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /unknown permission profile nope/);
    } finally {
      await tmp.cleanup();
    }
  });

  it('cordon doctor reports each check', async () => {
    const r = await cordon(['doctor']);
    assert.match(r.stdout, /bubblewrap/);
    assert.match(r.stdout, /seccomp filter/);
    assert.match(r.stdout, /read-only sandbox refuses a write/);
    assert.equal(r.code, r.stdout.includes('The sandbox works on this host.') ? 0 : 1);
  });
});

describe('server over the library', () => {
  it('serves many servers in one process independently', async () => {
    const { startServer } = await import('./helpers.js');
    const a = await startServer();
    const b = await startServer();
    const { client: ca, sessionId } = await RawClient.ready(a.url);
    const cb = await RawClient.open(b.url);
    assert.ok((await cb.request('initialize', { clientName: 'x', resumeSessionId: sessionId })).error, 'sessions are per server');
    ca.close();
    cb.close();
    await a.server.close();
    await b.server.close();
  });
});
