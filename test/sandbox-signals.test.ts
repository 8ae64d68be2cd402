// Signals and terminals in the sandbox (issue #15 §4): an interrupt reaches the sandboxed command's
// own handler as it does unsandboxed, and a sandboxed terminal process cannot push input into its
// terminal (TIOCSTI, TIOCLINUX) while ordinary terminal ioctls work.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { FsEntry, SandboxRequest } from '../src/environment/permissions.js';
import type { ProcessEvent } from '../src/environment/types.js';
import { LocalEnvironment } from '../src/local/local-environment.js';
import { eventually, SH_ENV, tempDir } from './helpers.js';

const special = (kind: 'root' | 'project_roots', access: FsEntry['access']): FsEntry => ({ path: { type: 'special', kind }, access });

describe('sandbox: signals and terminals', {
  skip: !existsSync('/usr/bin/bwrap') && !process.env.CI ? 'bubblewrap is not installed' : false,
}, () => {
  let env: LocalEnvironment;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let n = 0;

  before(async () => {
    env = new LocalEnvironment();
    tmp = await tempDir('cordon-sandbox-signals-');
  });
  after(async () => {
    await env.close();
    await tmp.cleanup();
  });

  const workspace = (): SandboxRequest => ({
    profile: {
      enforcement: 'managed',
      network: 'restricted',
      fileSystem: { kind: 'restricted', entries: [special('root', 'read'), special('project_roots', 'write')] },
    },
    cwd: tmp.dir,
  });

  async function launch(argv: string[], sandbox: SandboxRequest | undefined, tty: boolean) {
    const processId = `sig-${++n}`;
    let out = '';
    let code = -1;
    const done = new Promise<{ code: number; out: string }>((resolve) => {
      const off = env.exec.subscribe((e: ProcessEvent) => {
        if (e.processId !== processId) return;
        if (e.type === 'output') out += e.data.toString();
        if (e.type === 'exited') code = e.exitCode;
        if (e.type === 'closed') {
          off();
          resolve({ code, out });
        }
      });
    });
    const started = await env.exec.start({ processId, argv, cwd: tmp.dir, env: SH_ENV, tty, ...(sandbox ? { sandbox } : {}) });
    if (sandbox) assert.notEqual(started.sandboxType, 'none');
    else assert.equal(started.sandboxType, 'none');
    return { processId, out: () => out, done };
  }

  for (const tty of [false, true]) {
    for (const sandboxed of [false, true]) {
      it(`process/signal interrupt runs the command's SIGINT handler (${sandboxed ? 'sandboxed' : 'unsandboxed'}, ${tty ? 'tty' : 'pipes'})`, async () => {
        const p = await launch(
          ['/bin/sh', '-c', 'trap "echo caught-int; exit 42" INT; echo ready; while :; do sleep 0.1; done'],
          sandboxed ? workspace() : undefined,
          tty,
        );
        await eventually(() => p.out().includes('ready'), 30_000, 'ready');
        await env.exec.signal(p.processId, 'interrupt');
        const r = await p.done;
        assert.match(r.out, /caught-int/);
        assert.equal(r.code, 42);
      });
    }
  }

  for (const sandboxed of [false, true]) {
    it(`process/signal interrupt ends a command with no SIGINT handler with 130 (${sandboxed ? 'sandboxed' : 'unsandboxed'}, pipes)`, async () => {
      const p = await launch(['/bin/sh', '-c', 'echo ready; exec sleep 600'], sandboxed ? workspace() : undefined, false);
      await eventually(() => p.out().includes('ready'), 30_000, 'ready');
      // The exec may not have happened yet when `ready` arrives: interrupt until the command ends.
      let ended = false;
      void p.done.then(() => (ended = true));
      await eventually(
        () => {
          if (!ended) void env.exec.signal(p.processId, 'interrupt');
          return ended;
        },
        30_000,
        'ended by the interrupt',
      );
      assert.equal((await p.done).code, 130);
    });
  }

  it("refuses TIOCSTI and TIOCLINUX on the sandbox's terminal; TIOCGWINSZ works", async () => {
    const script = [
      'my $c = "x"; my $r = ioctl(STDIN, 0x5412, $c); print defined $r ? "sti-allowed\\n" : "sti-refused: $!\\n";',
      '$c = "\\x{0c}"; $r = ioctl(STDIN, 0x541c, $c); print defined $r ? "linux-allowed\\n" : "linux-refused: $!\\n";',
      'my $w = "\\0" x 8; $r = ioctl(STDIN, 0x5413, $w); my ($rows, $cols) = unpack("S2", $w); print defined $r ? "winsz $rows x $cols\\n" : "winsz-failed: $!\\n";',
    ].join(' ');
    const r = await (await launch(['/usr/bin/perl', '-e', script], workspace(), true)).done;
    assert.match(r.out, /sti-refused: Operation not permitted/);
    assert.match(r.out, /linux-refused: Operation not permitted/);
    assert.match(r.out, /winsz 24 x 80/);
  });
});
