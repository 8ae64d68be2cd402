import { accessSync, constants } from 'node:fs';

/**
 * Perl shared by the keepers (this one and spawner-script.ts's): `kids()` lists the children of
 * this process (re-parented descendants included, as it is a subreaper) and `kill_kids()` kills
 * them, round after round, until none is left.
 */
export const KILL_DESCENDANTS = String.raw`
sub kids {
  if (open(my $f, '<', "/proc/$$/task/$$/children")) { local $/; my $l = <$f>; return split(' ', defined $l ? $l : '') }
  my @k;
  opendir(my $d, '/proc') or return ();
  for (readdir $d) { next unless /^\d+$/; open(my $s, '<', "/proc/$_/stat") or next; my $l = <$s>; push @k, $_ if defined $l && $l =~ /\) \S+ (\d+)/ && $1 == $$ }
  return @k;
}
sub kill_kids { for (1 .. 100000) { my @k = kids(); last unless @k; kill('KILL', @k); waitpid($_, 0) for @k } }
`;

/**
 * The terminal keeper: a small Perl program (perl-base is part of every Debian system) that stands
 * between node-pty and each unsandboxed terminal child, because Node cannot call prctl(2) itself.
 * (Pipe children get the same keeper from the spawn helper, spawner-script.ts, which forks it
 * instead of starting a perl for each.) It
 *
 * - marks itself a child subreaper, so whatever the command starts and abandons (a daemon that
 *   double-forks, a `setsid` child) is re-parented to it rather than to init;
 * - asks for SIGTERM when the server dies (PR_SET_PDEATHSIG, also after `kill -9` of the server);
 * - on SIGTERM (the server gone, or the process terminated) kills every remaining descendant,
 *   round after round, then exits;
 * - leads the terminal's session, with the command in its process group, so the terminal's ^C
 *   reaches the command (the keeper's own handlers do nothing); when the command exits, the keeper
 *   kills what it left (as the terminal's hangup would) and exits with the command's status, which
 *   node-pty reports.
 *
 * Perl's own startup variables (PERL5OPT, ...) are moved aside for the keeper and restored for the
 * command.
 */
const SCRIPT = String.raw`
my ($nr, $server, $file, @argv) = @ARGV;
syscall($nr, 36, 1, 0, 0, 0);
syscall($nr, 1, 15, 0, 0, 0);
my $child = 0;
${KILL_DESCENDANTS}
sub end_all { kill_kids(); exit 137 }
sub finish {
  my $st = shift;
  $child = 0;
  kill_kids();
  if ($st & 127) { $SIG{$_} = 'DEFAULT' for qw(TERM HUP INT QUIT TSTP); kill($st & 127, $$); exit(128 + ($st & 127)) }
  exit($st >> 8);
}
$SIG{TERM} = $SIG{HUP} = \&end_all;
$SIG{INT} = $SIG{QUIT} = $SIG{TSTP} = sub { };
end_all() if getppid() != $server;
$child = fork();
exit 126 unless defined $child;
if ($child == 0) {
  $SIG{$_} = 'DEFAULT' for qw(TERM HUP INT QUIT TSTP);
  delete $ENV{PERL_BADLANG};
  for (keys %ENV) { $ENV{$1} = delete $ENV{$_} if /^__CORDON_KEEPER_(PERL.*)$/ }
  exec { $file } @argv;
  exit 127;
}
while (1) {
  my $w = waitpid(-1, 0);
  if ($w > 0) {
    finish($?) if $w == $child;
    next;
  }
  last if $! == 10;
}
exit 0;
`;

/** prctl(2)'s, setsid(2)'s, exit_group(2)'s, close(2)'s, dup3(2)'s and pidfd_open(2)'s syscall numbers, for the architectures Cordon supports. */
export const SYSCALLS: Partial<Record<NodeJS.Architecture, [number, number, number, number, number, number]>> = {
  x64: [157, 112, 231, 3, 292, 434],
  arm64: [167, 157, 94, 57, 24, 434],
};

export const PERL = '/usr/bin/perl';

/** The terminal keeper's command line for `file argv...`, or undefined where it cannot run (no perl, not Linux x64/arm64). */
export function keeperCommand(file: string, argv: string[]): { file: string; args: string[] } | undefined {
  const nr = SYSCALLS[process.arch];
  if (process.platform !== 'linux' || nr === undefined) return undefined;
  try {
    accessSync(PERL, constants.X_OK);
  } catch {
    return undefined;
  }
  return { file: PERL, args: ['-e', SCRIPT, '--', String(nr[0]), String(process.pid), file, ...argv] };
}

/** Whether children can run under the keeper here. */
export const keeperAvailable = (): boolean => keeperCommand('/bin/true', ['true']) !== undefined;

/** The keeper's environment: the command's, with Perl's own variables moved aside (restored for the command). */
export function keeperEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith('PERL')) out[`__CORDON_KEEPER_${k}`] = v;
    else out[k] = v;
  }
  out.PERL_BADLANG = '0';
  return out;
}

/** A raw wait status as the exit code the protocol reports (128 + signal when killed). */
export function waitStatusExitCode(status: number): number {
  const signal = status & 0x7f;
  return signal !== 0 ? 128 + signal : (status >> 8) & 0xff;
}
