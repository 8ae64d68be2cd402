import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { bash, bashAll, CLI, ROOT, serve } from './cli-helpers.js';
import { eventually, tempDir } from './helpers.js';

// Issue 15 §1, through a server: environment settings, slow and vanished readers, 401 hints, files, a server that dies.
describe('cli: a good Unix citizen, through a server', () => {
  it('through a server: CORDON_URL and CORDON_TOKEN, slow readers, 401 hints, fs get into a directory, fs cat | head', async () => {
    const tmp = await tempDir();
    // The server takes its token from CORDON_TOKEN too.
    const { child, url } = await serve(['--listen', 'ws://127.0.0.1:0', '--permissions', ':workspace', '--workspace', tmp.dir], {
      CORDON_TOKEN: 'env-token',
    });
    try {
      await writeFile(path.join(tmp.dir, 'big.txt'), Array.from({ length: 300_000 }, (_, i) => `${i + 1}\n`).join(''));
      await mkdir(path.join(tmp.dir, 'into'));
      const env = { CORDON_URL: url, CORDON_TOKEN: 'env-token', D: tmp.dir };
      const r = await bashAll(
        [
          '$CORDON exec -- seq 1 1000000 | tail -1; echo "exec ${PIPESTATUS[0]}"',
          '$CORDON fs cat "$D/big.txt" | (sleep 1; wc -l); echo "cat ${PIPESTATUS[0]}"',
          '$CORDON fs cat "$D/big.txt" | head -c 2; echo " head ${PIPESTATUS[0]}"',
          '$CORDON fs get "$D/big.txt" "$D/into"; echo "get $?"',
          'CORDON_TOKEN= $CORDON exec -- true; echo "none $?"',
          'CORDON_TOKEN=wrong $CORDON fs ls "$D"; echo "wrong $?"',
        ],
        env,
      );
      assert.equal(r.stdout, '1000000\nexec 0\n300000\ncat 0\n1\n head 141\nget 0\nnone 125\nwrong 1\n');
      assert.deepEqual(readFileSync(path.join(tmp.dir, 'into', 'big.txt')), readFileSync(path.join(tmp.dir, 'big.txt')));
      assert.match(r.stderr, /HTTP 401.*none was given \(give it with --token-file FILE or CORDON_TOKEN\)/);
      assert.match(r.stderr, /HTTP 401.*rejected the bearer token \(the token in CORDON_TOKEN is wrong\)/);
      assert.equal(r.stderr.split('\n').filter(Boolean).length, 2, `only the two 401 messages: ${r.stderr}`);
    } finally {
      child.kill('SIGKILL');
      await tmp.cleanup();
    }
  });

  it('fs put: an interrupted upload leaves nothing under the final name, nor a temp file', async () => {
    const tmp = await tempDir();
    const { child, url } = await serve(['--listen', 'ws://127.0.0.1:0', '--permissions', ':workspace', '--workspace', tmp.dir]);
    try {
      // The source is a FIFO the test feeds: the upload is mid-way for as long as the test wants.
      const fifo = path.join(tmp.dir, 'source');
      const remote = path.join(tmp.dir, 'remote', 'upload.bin');
      await mkdir(path.dirname(remote));
      await bash(`mkfifo ${fifo}`);
      const put = spawn(process.execPath, [CLI, 'fs', 'put', '--url', url, fifo, remote], {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      put.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<string | null>((resolve) => put.once('exit', (code, signal) => resolve(signal ?? String(code))));
      const writer = await open(fifo, 'w');
      await writer.write(randomBytes(256 * 1024));
      await eventually(() => readdirSync(path.dirname(remote)).length > 0, 20_000, 'the upload started');
      put.kill('SIGINT');
      assert.equal(await exited, 'SIGINT', 'it cleans up, then dies of the signal');
      await writer.close();
      assert.deepEqual(readdirSync(path.dirname(remote)), [], 'no partial file, no temp file');
      assert.equal(stderr, '');
      // Uninterrupted, it lands under its name, with its mode; and comes back with it.
      const whole = path.join(tmp.dir, 'whole.bin');
      await writeFile(whole, randomBytes(1000), { mode: 0o750 });
      const ok = await bash(
        `$CORDON fs put --url ${url} ${whole} ${remote} && stat -c %a ${remote} && chmod 604 ${remote} && $CORDON fs get --url ${url} ${remote} ${tmp.dir}/back.bin`,
      );
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout, '750\n', 'put keeps the mode');
      assert.deepEqual(readFileSync(remote), readFileSync(whole));
      assert.deepEqual(readdirSync(path.dirname(remote)), ['upload.bin']);
      assert.deepEqual(readFileSync(path.join(tmp.dir, 'back.bin')), readFileSync(whole));
      assert.equal(statSync(path.join(tmp.dir, 'back.bin')).mode & 0o777, 0o604, 'get keeps the mode');
    } finally {
      child.kill('SIGKILL');
      await tmp.cleanup();
    }
  });

  it('exec --url: a server that goes away is reported at once, then exits 255 after the stated reconnect window', async () => {
    const { child, url } = await serve(['--listen', 'ws://127.0.0.1:0', '--permissions', ':danger-full-access']);
    try {
      // cat ends by itself when the dead server's end of its stdin closes.
      const exec = spawn(
        process.execPath,
        [CLI, 'exec', '--url', url, '--reconnect-window-ms', '1000', '--', 'sh', '-c', 'echo started; exec cat'],
        {
          cwd: ROOT,
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      exec.stdout.on('data', (d) => (stdout += d));
      exec.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => exec.once('exit', (code) => resolve(code)));
      await eventually(() => stdout === 'started\n', 20_000, 'the command started');
      child.kill('SIGKILL');
      await eventually(() => /reconnecting/.test(stderr), 10_000, 'the drop is reported before the window ends');
      assert.equal(await exited, 255);
      assert.match(stderr, /^cordon exec: lost the connection to ws:\/\/127\.0\.0\.1:\d+; reconnecting \(up to 10 attempts within 1 s\)\n/);
      assert.match(
        stderr,
        /cordon exec: exec-server connection lost and not recovered: \d+ attempt\(s\) in [\d.]+ s failed \(last: .*ECONNREFUSED.*\); giving up \(exit 255\)\n$/,
      );
    } finally {
      child.kill('SIGKILL');
    }
  });
});
