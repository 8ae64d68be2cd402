import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, realpathSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { SandboxRequest } from '../environment/permissions.js';
import { hasGlibcText } from '../protocol/os-error.js';
import { fsHelperEnv, wrapFsHelper } from './fs-helper-sandbox.js';
import type { FsWorkerOp } from './fs-worker-protocol.js';
import type { LinuxSandbox } from './linux-sandbox.js';

/**
 * One write (a file, a directory, a removal, a rename) in a sandbox of its own that ends with it:
 * bubblewrap running a few lines of Perl.
 *
 * A sandbox that masks a missing protected name in a project root (`.codex` in most projects)
 * leaves empty mount targets there while it lives, so the fs worker of such a profile stops after
 * each call, and each call paid a bubblewrap and a Node start (about 110 ms on a 2-vCPU VM). This
 * runs the same bubblewrap, with the same profile and seccomp program, around Perl instead (about
 * 30 ms). Perl does exactly what the worker's code does for these operations (`writeSmallFile`,
 * `mkdirpSync`, `remove` of anything but a directory tree, `renameSync` in local/) and reports the
 * errno; whatever it cannot answer the same way (a FIFO or device, a tree to remove, an errno
 * without the reference's text, Perl failing to start) sends the call to the worker.
 */

export type OneShotOp = Extract<FsWorkerOp, { op: 'writeFile' } | { op: 'createDirectory' } | { op: 'remove' } | { op: 'rename' }>;

/** Writes larger than this go to the worker (its start is small next to their transfer). */
const MAX_ONE_SHOT_BYTES = 8 * 1024 * 1024;

const PERL = '/usr/bin/perl';

// Linux's generic flags (x86_64 and aarch64 alike): O_WRONLY|O_CREAT|O_TRUNC, and O_NONBLOCK up to
// 64 KiB, as writeSmallFile opens; above that the worker checks the target with stat first
// (writeUnsized) and opens it blocking (fs.promises.writeFile), and so does this. ENXIO (6) is a
// FIFO without a reader, EAGAIN 11 (a lease), EEXIST 17, ENOENT 2. The answer is one line on
// stdout: OK, "E <errno>", or FALLBACK.
export const ONE_SHOT_SCRIPT = String.raw`
my ($op, $p) = @ARGV;
sub answer { print STDOUT $_[0], "\n"; exit 0 }
sub fail { answer("E " . ($! + 0)) }
sub parent { my $d = shift; $d =~ s{/+[^/]*/*$}{}; $d eq '' ? '/' : $d }
sub mkp {
  my $d = shift;
  return 1 if mkdir($d, 0777);
  my $e = $! + 0;
  if ($e == 17) { my @s = stat($d); return 0 unless @s; return 1 if -d _; $! = 17; return 0 }
  my $up = parent($d);
  if ($e != 2 || $up eq $d) { $! = $e; return 0 }
  mkp($up) or return 0;
  return 1 if mkdir($d, 0777);
  $e = $! + 0;
  if ($e == 17) { my @s = stat($d); return 0 unless @s; return 1 if -d _; $! = 17 }
  return 0;
}
if ($op eq 'write') {
  # All the data first: a server gone mid-transfer leaves the file as it was.
  my ($len, $data, $got) = ($ARGV[2], '', 0);
  binmode STDIN;
  while (length($data) < $len) { $got = sysread(STDIN, $data, $len - length($data), length($data)); answer('FALLBACK') unless $got }
  my $small = $len <= 65536;
  answer('FALLBACK') if !$small && stat($p) && !-f _ && !-d _;
  sysopen(my $fh, $p, 0x1 | 0x40 | 0x200 | ($small ? 0x800 : 0), 0666) or do { answer('FALLBACK') if $! + 0 == 6 || $! + 0 == 11; fail() };
  if ($small) { my @s = stat($fh) or fail(); answer('FALLBACK') unless -f _ }
  for (my $off = 0; $off < $len;) { my $w = syswrite($fh, $data, $len - $off, $off); defined $w or fail(); $off += $w }
  close($fh) or fail();
  answer('OK');
}
if ($op eq 'mkdir') { mkdir($p, 0777) or fail(); answer('OK') }
if ($op eq 'mkdirp') { mkp($p) or fail(); answer('OK') }
if ($op eq 'remove') {
  my ($force, $recursive) = @ARGV[2, 3];
  my @s = lstat($p);
  unless (@s) { answer('OK') if $! + 0 == 2 && $force; fail() }
  unless (-d _) { unlink($p) or fail(); answer('OK') }
  answer('FALLBACK') if $recursive;
  rmdir($p) or fail();
  answer('OK');
}
if ($op eq 'rename') { rename($p, $ARGV[2]) or fail(); answer('OK') }
answer('FALLBACK');
`;

/** Error names by number; of two names for one number (EAGAIN, EWOULDBLOCK), one with the reference's text. */
function errnoName(errno: number): string | undefined {
  const names = Object.entries(osConstants.errno)
    .filter(([, n]) => n === errno)
    .map(([name]) => name);
  return names.find(hasGlibcText) ?? names[0];
}

/** Whether a one-shot can run `op` at all (Perl present, the operation one it does, the data small). */
export function oneShotCandidate(op: FsWorkerOp): op is OneShotOp {
  // The script's O_ flags are those of x86_64 and aarch64.
  if (process.arch !== 'x64' && process.arch !== 'arm64') return false;
  if (op.op !== 'writeFile' && op.op !== 'createDirectory' && op.op !== 'remove' && op.op !== 'rename') return false;
  // A NUL cannot be an argument; the worker gives such a path its own error.
  const paths = op.op === 'rename' ? [op.sourcePath, op.destinationPath] : [op.path];
  if (paths.some((p) => p.includes('\0'))) return false;
  if (op.op === 'writeFile' && op.data.length > (MAX_ONE_SHOT_BYTES / 3) * 4) return false;
  try {
    accessSync(PERL, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function oneShotArgs(op: OneShotOp, payload: Buffer | undefined): string[] {
  switch (op.op) {
    case 'writeFile':
      return ['write', op.path, String(payload?.length ?? 0)];
    case 'createDirectory':
      return [op.recursive ? 'mkdirp' : 'mkdir', op.path];
    case 'remove':
      return ['remove', op.path, op.force ? '1' : '', op.recursive ? '1' : ''];
    case 'rename':
      return ['rename', op.sourcePath, op.destinationPath];
  }
}

/** What a one-shot answered: done, an OS error as Node would throw it, or "ask the worker". */
export type OneShotOutcome = { done: true } | { error: NodeJS.ErrnoException } | undefined;

/**
 * Runs `op` in a one-shot sandbox, but only when the profile's sandbox leaves mount targets on the
 * host (otherwise a warm worker is the faster way): undefined means "use the worker".
 */
export async function runOneShot(
  sandbox: LinuxSandbox,
  request: SandboxRequest,
  op: OneShotOp,
  options: {
    serverEnv: Readonly<Record<string, string | undefined>>;
    /** The read entries the worker's profile gets for its own program: the one-shot's sandbox must be the worker's. */
    workerReads: readonly string[];
  },
): Promise<OneShotOutcome> {
  const { serverEnv } = options;
  const rootReadable =
    request.profile.fileSystem.kind !== 'restricted' ||
    request.profile.fileSystem.entries.some((e) => e.path.type === 'special' && e.path.kind === 'root' && e.access !== 'deny');
  // Perl's own files only where the root is not readable anyway: an entry under a writable root
  // would make that path read-only, and the sandbox would no longer be the worker's.
  const perl = rootReadable ? [] : [...new Set([PERL, realpathSync(PERL)])];
  const payload = op.op === 'writeFile' ? Buffer.from(op.data, 'base64') : undefined;
  const command = await wrapFsHelper(sandbox, request, [PERL, '-e', ONE_SHOT_SCRIPT, ...oneShotArgs(op, payload)], {
    programReads: [...options.workerReads, ...perl],
    passDescriptors: true,
  });
  try {
    if (!command.leavesTrace) return undefined;
    const fds = (command.descriptors ?? []).map((f) => openSync(f, 'r'));
    let answer: string;
    try {
      answer = await new Promise<string>((resolve) => {
        const child = spawn(command.file, command.args, {
          cwd: '/',
          env: fsHelperEnv(serverEnv, command),
          stdio: ['pipe', 'pipe', 'ignore', ...fds],
        });
        let out = '';
        child.stdout?.on('data', (d: Buffer) => {
          out = (out + d.toString('latin1')).slice(0, 256);
        });
        child.stdin?.on('error', () => undefined);
        child.on('error', () => resolve(''));
        child.on('close', (code) => resolve(code === 0 ? out.trim() : ''));
        child.stdin?.end(payload);
      });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    if (answer === 'OK') return { done: true };
    const errno = /^E (\d+)$/.exec(answer)?.[1];
    const name = errno === undefined ? undefined : errnoName(Number(errno));
    // Only errors whose message is the reference's fixed text: Node's own text of others names the
    // system call and path, which the worker's answer would carry.
    if (!name || !hasGlibcText(name)) return undefined;
    return { error: Object.assign(new Error(name), { code: name, errno: -Number(errno) }) };
  } finally {
    await command.cleanup();
  }
}
