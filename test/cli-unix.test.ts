import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { bash, bashAll, CLI, ROOT } from './cli-helpers.js';
import { eventually, isAlive, tempDir } from './helpers.js';

// Issue 15 §1, in-process: pipes, signals, a pty's end of input, clear errors. Each scenario runs the CLI once.
describe('cli: a good Unix citizen', () => {
  it("exec: every byte reaches a slow pipe reader, and the exit code is the command's", async () => {
    const r = await bash('$CORDON exec -- seq 1 200000 | (sleep 1; wc -l); echo "status ${PIPESTATUS[0]}"');
    assert.equal(r.stdout, '200000\nstatus 0\n');
    assert.equal(r.stderr, '');
  });

  it('exec: a reader that goes away (| head) ends the command quietly with 141', async () => {
    const r = await bash('$CORDON exec -- yes | head -2; echo "status ${PIPESTATUS[0]}"');
    assert.equal(r.stdout, 'y\ny\nstatus 141\n');
    assert.equal(r.stderr, '');
  });

  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    it(`exec (in-process): ${signal} ends the command's process group too`, async () => {
      const tmp = await tempDir();
      let pid = 0;
      try {
        const pidFile = path.join(tmp.dir, 'pid');
        // A grandchild too: the command's whole process group must go.
        const exec = spawn(process.execPath, [CLI, 'exec', '--', 'sh', '-c', `sleep 300 & echo $! > ${pidFile}; wait`], {
          cwd: ROOT,
          stdio: 'ignore',
        });
        const exited = new Promise<number | null>((resolve) => exec.once('exit', (code) => resolve(code)));
        await eventually(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'), 20_000, 'pid file');
        pid = Number(readFileSync(pidFile, 'utf8'));
        assert.ok(isAlive(pid));
        exec.kill(signal);
        assert.equal(await exited, signal === 'SIGTERM' ? 143 : 129);
        await eventually(() => !isAlive(pid), 10_000, 'the command died with cordon');
      } finally {
        if (pid && isAlive(pid)) process.kill(pid, 'SIGKILL');
        await tmp.cleanup();
      }
    });
  }

  it('exec --tty: the end of stdin reaches the command', async () => {
    const r = await bash('printf "one\\ntwo" | $CORDON exec --tty -- cat; echo "status $?"');
    assert.match(r.stdout, /status 0\n$/);
    assert.match(r.stdout, /two/);
  });

  it('clear errors: a missing --cwd, extra or missing arguments, an unknown --log-level, a missing --workspace', async () => {
    const r = await bashAll([
      '$CORDON exec --cwd /no/such/dir -- true; echo "cwd $?"',
      '$CORDON fs cat; echo "cat $?"',
      '$CORDON fs put a b c; echo "put $?"',
      '$CORDON serve --log-level loud; echo "level $?"',
      '$CORDON serve --listen ws://127.0.0.1:0 --workspace /no/such/workspace; echo "workspace $?"',
    ]);
    assert.equal(r.stdout, 'cwd 125\ncat 2\nput 2\nlevel 2\nworkspace 2\n');
    assert.match(r.stderr, /cordon exec: --cwd \/no\/such\/dir: No such file or directory/);
    assert.match(r.stderr, /cordon fs cat: missing arguments\nusage: cordon fs cat FILE\.\.\./);
    assert.match(r.stderr, /cordon fs put: too many arguments\nusage: cordon fs put LOCAL REMOTE/);
    assert.match(r.stderr, /argument 'loud' is invalid\. Allowed choices are fatal, error, warn, info, debug, trace, silent/);
    assert.match(r.stderr, /cordon serve: workspace \/no\/such\/workspace: no such directory/);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
  });
});
