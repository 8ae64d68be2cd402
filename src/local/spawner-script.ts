import { KILL_DESCENDANTS } from './keeper.js';

/**
 * The spawn helper's program (Perl: perl-base is part of every Debian system, and Node cannot call
 * prctl(2) or fork without copying its whole heap). One helper runs per server; it forks a keeper
 * for each command from its already-running interpreter (3.5 ms for fork+exec+wait of `true` on the
 * 2-vCPU VM of docs/performance.md, against 17.5 ms for starting a fresh perl keeper and 7.3 ms for
 * a bare spawn from Node).
 *
 * Requests arrive on stdin as `<byte length>\n<fields separated by NUL>`:
 * - `S id stdin cwd file argc argv... descc desc... env...`: start a command (`stdin` 1 = a pipe,
 *   0 = /dev/null; each `desc` a file opened read-only as the command's fd 3, 4, ...);
 * - `D id ...` (same fields): start a command that contains its descendants itself (bubblewrap with
 *   its PID namespace) without a keeper: forked by the helper, watched through a pidfd;
 * - `C id`: the server has opened its ends of the command's pipes; the helper closes its copies;
 * - `K id signal`: signal the command's keeper (INT: forwarded to the command's process group;
 *   TERM: the keeper kills the group and every descendant, then exits); without a keeper, INT goes
 *   to the command's group and TERM becomes SIGKILL to it.
 *
 * Reports go to stdout, one line each (one write, shorter than PIPE_BUF, so lines never mix),
 * `id word value...`; the keepers write theirs there directly:
 * - `0 probe FD PIDFD` first: a pipe the server tries to open, to learn whether it can open the
 *   others, and whether `D` is available (1: pidfd_open works here);
 * - `ready KEEPER IN OUT ERR`: the keeper runs (without one: KEEPER is the command's pid); the server's ends of the pipes are the helper's
 *   descriptors IN (-1: no stdin pipe), OUT and ERR, to be opened through /proc/HELPER/fd/N;
 * - `pid N` once the command runs (after exec succeeded), or `fail ERRNO` when it could not start
 *   (either may come before `ready`);
 * - `exit STATUS` when the command exits (the raw wait status);
 * - `gone STATUS` when the keeper has exited (no descendant left, or killed), with its wait status.
 *
 * Each keeper is a child subreaper that asks for SIGTERM when the helper dies (the helper asks for
 * it when the server dies, so `kill -9` of the server still ends every command), runs the command
 * as leader of a session of its own, and stays while descendants live: as local/keeper.ts, whose
 * terminal-mode keeper this one matches in every other respect.
 */
export const SPAWNER_SCRIPT = String.raw`
use strict; no warnings;
my ($NR, $SETSID, $EXIT, $CLOSE, $DUP3, $PIDFD_OPEN, $server) = @ARGV;
$SIG{PIPE} = 'IGNORE';
$SIG{INT} = $SIG{QUIT} = $SIG{TSTP} = 'IGNORE';
${KILL_DESCENDANTS}
# Kills every child, round after round (each one's children come back here, a subreaper), for two
# seconds at most: a process stuck in the kernel must not keep this process from ending.
sub end_within {
  for (1 .. 200) {
    my @k = kids();
    last unless @k;
    kill('KILL', @k);
    my $left = grep { waitpid($_, 1) == 0 } @k;
    select(undef, undef, undef, 0.01) if $left;
  }
  syscall($EXIT, 0);
}

# The guard: the process the server started, a subreaper above the helper that asks for SIGTERM
# when the server dies. Should the helper itself die (SIGKILL, the OOM killer), what it ran comes
# back here and is killed: a sandbox whose bubblewrap died before its child asked to die with it
# included, which nothing else would end. The guard then exits, which the server sees as the
# helper's end. It holds nothing of the server's pipes.
syscall($NR, 1, 15, 0, 0, 0);
exit 0 if getppid() != $server;
syscall($NR, 36, 1, 0, 0, 0);
my $guard = $$;
my $worker = fork();
exit 1 unless defined $worker;
if ($worker) {
  $0 = 'cordon-spawn-helper: guard';
  open(STDIN, '<', '/dev/null'); open(STDOUT, '>', '/dev/null');
  $SIG{TERM} = $SIG{HUP} = \&end_within;
  while (1) { my $w = waitpid(-1, 0); last if $w == $worker || ($w < 0 && $! == 10) }
  end_within();
}
syscall($NR, 1, 15, 0, 0, 0);
exit 0 if getppid() != $guard;
my $helper = $$;
# A subreaper too: what a direct start's bubblewrap leaves when it is killed before its child asked
# to die with it (or what a keeper killed from outside leaves) comes back here, to be ended.
syscall($NR, 36, 1, 0, 0, 0);
# A short name in ps (the -e program would otherwise fill the command line).
$0 = 'cordon-spawn-helper';
# Whatever the server inherited without close-on-exec stays out of the commands (Perl's own handles
# are not open yet; closing theirs behind Perl's back would leave them half open).
if (opendir(my $fds, '/proc/self/fd')) { my @fds = grep { /^\d+$/ && $_ > 2 } readdir($fds); closedir($fds); syscall($CLOSE, $_ + 0) for @fds }
my (%keeper, %status, %held, %direct, %strays, $spare);
my $in = '';
my $stdin_open = 1;
binmode STDIN; binmode STDOUT;
# The server no longer reads (it is gone): nothing may outlive it.
sub report { my $l = shift; my $o = 0; while ($o < length $l) { my $w = syswrite(STDOUT, $l, length($l) - $o, $o); end_all() unless defined $w; $o += $w } }
pipe(my $probe_r, my $probe_w) or exit 1;
# Whether children can be watched through a pidfd (Linux 5.3+), which starts without a keeper need.
my $pidfd = syscall($PIDFD_OPEN, $$ + 0, 0);
syscall($CLOSE, $pidfd) if $pidfd >= 0;
report("0 probe " . fileno($probe_r) . ' ' . ($pidfd >= 0 ? 1 : 0) . " $$\n");

# Killed with SIGKILL, a keeper leaves the command's processes to the helper, which ends them too.
sub end_all { end_within() }
$SIG{TERM} = $SIG{HUP} = \&end_all;

# Children that are no start's: a direct start's PID namespace init (bubblewrap exits as soon as
# the init reported the command's status, and the init, dying with it, comes back here), what a
# bubblewrap killed before its child asked to die with it leaves, or the processes of a keeper
# killed from outside. Nobody owns them any more: they are killed and reaped without waiting (a
# process stuck in the kernel must not stall the helper); the main loop comes back every 50 ms
# while one is left to reap, and for what it leaves in turn.
sub end_strays {
  for (1 .. 100) {
    my %known = map { $_ => 1 } (values %keeper, (map { $_->{pid} } values %direct), $spare ? $spare->{pid} : ());
    for my $pid (grep { !$known{$_} && !$strays{$_} } kids()) { kill('KILL', $pid); $strays{$pid} = 1 }
    # A stray reaped has handed its own children to the helper before it died: look again.
    my $reaped = grep { waitpid($_, 1) != 0 && delete $strays{$_} } keys %strays;
    last unless $reaped;
  }
}
sub write_all { my ($fh, $l) = @_; my $o = 0; while ($o < length $l) { my $w = syswrite($fh, $l, length($l) - $o, $o); if (!defined $w) { next if $! == 4; return 0 } $o += $w } 1 }
sub read_msg {
  my $fh = shift;
  my $buf = '';
  while (index($buf, "\n") < 0) { my $r = sysread($fh, $buf, 4096, length $buf); next if !defined $r && $! == 4; return undef unless $r }
  my $nl = index($buf, "\n");
  my $len = substr($buf, 0, $nl);
  $buf = substr($buf, $nl + 1);
  while (length($buf) < $len) { my $r = sysread($fh, $buf, $len - length($buf), length $buf); next if !defined $r && $! == 4; return undef unless $r }
  return $buf;
}

# In a forked child: sets up and execs the command of a start request (the fields after its op),
# on the pipes of $p; a failure is reported as its errno on $x_w (close-on-exec: end of file there
# means the exec succeeded).
sub exec_command {
  my ($m, $p, $x_w) = @_;
  my ($id, $pipe_stdin, $cwd, $file, $argc, @rest) = split(/\0/, $m, -1);
  my @argv = splice(@rest, 0, $argc);
  my $descc = shift @rest;
  my @desc = splice(@rest, 0, $descc);
  my @env = @rest;
  # Failures are reported on a copy of x_w far above the descriptors placed at 3, 4, ... below.
  my $xfd = fcntl($x_w, 1030, 200);
  my $xw = $x_w;
  if (defined $xfd && open(my $moved, '>&=', $xfd)) { $xw = $moved }
  syscall($SETSID);
  if ($pipe_stdin) { open(STDIN, '<&', $p->{in_r}) or goto FAIL } else { open(STDIN, '<', '/dev/null') or goto FAIL }
  open(STDOUT, '>&', $p->{out_w}) or goto FAIL;
  open(STDERR, '>&', $p->{err_w}) or goto FAIL;
  chdir($cwd) or goto FAIL;
  # Files the command gets as fds 3, 4, ... (bubblewrap's seccomp program, read from its offset):
  # each opened now, moved out of the way, then placed.
  my @high;
  for my $i (0 .. $#desc) { open(my $h, '<', $desc[$i]) or goto FAIL; my $hi = fcntl($h, 1030, 100 + $i) or goto FAIL; push @high, $hi }
  for my $i (0 .. $#high) { syscall($DUP3, $high[$i] + 0, 3 + $i, 0) >= 0 or goto FAIL }
  %ENV = ();
  for (@env) { my $e = index($_, '='); $ENV{substr($_, 0, $e)} = substr($_, $e + 1) if $e > 0 }
  exec { $file } @argv;
  FAIL:
  syswrite($xw, ($! + 0) || 8);
  syscall($EXIT, 127);
}

# A spare keeper, forked before it is needed together with the child that will exec the command,
# so that neither fork (each ~2-4 ms on a small VM) is paid while a start waits. It gets the start
# request on $req_r and passes it on to that child.
sub spare_keeper {
  my ($req_r, $p) = @_;
  $0 = 'cordon-spawn-helper: spare keeper';
  syscall($NR, 36, 1, 0, 0, 0);
  syscall($NR, 1, 15, 0, 0, 0);
  syscall($EXIT, 137) if getppid() != $helper;
  # Nothing but its own pipes: not the other commands' (a held stdin would never reach end of file).
  close($probe_r); close($probe_w);
  for my $h (values %held) { close($_) for grep { defined } @$h }
  close($_) for values %status;
  for my $d (values %direct) { close($_) for grep { defined } @$d{qw(x pidfd)} }
  close($_) for ($p->{in_w}, $p->{out_r}, $p->{err_r}, $p->{st_r});
  # Reports go straight to the server, on the helper's stdout (each line one atomic write); the
  # helper learns of the keeper's end from st_w, which nothing writes to.
  open(my $ev, '>&', \*STDOUT) or syscall($EXIT, 126);
  open(STDIN, '<', '/dev/null'); open(STDOUT, '>', '/dev/null'); open(STDERR, '>', '/dev/null');
  my $child = 0;
  $SIG{TERM} = $SIG{HUP} = sub { kill('KILL', -$child) if $child; kill_kids(); syscall($EXIT, 137) };
  $SIG{INT} = sub { kill('INT', -$child) || kill('INT', $child) if $child };
  $SIG{QUIT} = $SIG{TSTP} = 'IGNORE';
  (pipe(my $x_r, my $x_w) && pipe(my $go_r, my $go_w)) or syscall($EXIT, 126);
  $child = fork();
  my $fork_errno = $! + 0;
  if (defined $child && $child == 0) {
    $0 = 'cordon-spawn-helper: spare child';
    $SIG{$_} = 'DEFAULT' for qw(TERM HUP INT QUIT TSTP PIPE);
    close($x_r); close($p->{st_w}); close($ev); close($req_r); close($go_w);
    my $m = read_msg($go_r);
    syscall($EXIT, 0) unless defined $m;
    close($go_r);
    exec_command($m, $p, $x_w);
  }
  $child = 0 unless defined $child;
  close($_) for ($x_w, $go_r, $p->{in_r}, $p->{out_w}, $p->{err_w});
  my $m = read_msg($req_r);
  # The helper dropped this spare (it is shutting down).
  if (!defined $m) { if ($child) { kill('KILL', $child); waitpid($child, 0) } syscall($EXIT, 0) }
  close($req_r);
  my ($id) = split(/\0/, $m, 2);
  $0 = "cordon-keeper $id";
  if (!$child) { syswrite($ev, "$id fail " . ($fork_errno || 11) . "\n"); syscall($EXIT, 0) }
  write_all($go_w, length($m) . "\n" . $m);
  close($go_w);
  my $errno = '';
  1 while !defined sysread($x_r, $errno, 32) && $! == 4;
  close($x_r);
  if ($errno ne '') { waitpid($child, 0); $child = 0; syswrite($ev, "$id fail $errno\n"); syscall($EXIT, 0) }
  syswrite($ev, "$id pid $child\n");
  while (1) {
    my $w = waitpid(-1, 0);
    if ($w > 0) { syswrite($ev, "$id exit $?\n") if $w == $child; next }
    last if $! == 10;
  }
  syscall($EXIT, 0);
}

sub make_spare {
  my (%p, $req_r, $req_w);
  my $ok = pipe($p{in_r}, $p{in_w}) && pipe($p{out_r}, $p{out_w}) && pipe($p{err_r}, $p{err_w}) && pipe($p{st_r}, $p{st_w}) && pipe($req_r, $req_w);
  my $pid = $ok ? fork() : undef;
  if (!defined $pid) { close($_) for grep { defined } (values %p, $req_r, $req_w); return undef }
  if ($pid == 0) { close($req_w); spare_keeper($req_r, \%p) }
  close($_) for ($req_r, $p{out_w}, $p{err_w}, $p{st_w});
  return { pid => $pid, req => $req_w, in_r => $p{in_r}, in_w => $p{in_w}, out_r => $p{out_r}, err_r => $p{err_r}, st_r => $p{st_r} };
}
sub drop_spare {
  my $k = shift;
  close($k->{req});
  kill('KILL', $k->{pid});
  1 while waitpid($k->{pid}, 0) < 0 && $! == 4;
  close($_) for @$k{qw(in_r in_w out_r err_r st_r)};
}

sub start {
  my ($id, $pipe_stdin) = @_;
  my $payload = join("\0", @_);
  for my $try (1, 2) {
    my $k = $spare || make_spare();
    $spare = undef;
    if (!$k) { report("$id fail " . (($! + 0) || 11) . "\n$id gone 0\n"); return }
    if (write_all($k->{req}, length($payload) . "\n" . $payload)) {
      close($k->{req});
      $keeper{$id} = $k->{pid};
      $status{$id} = $k->{st_r};
      # Held until the server has opened its ends (C); stdin's read end too, so that its open for
      # writing finds a reader even when the command has already exited.
      $held{$id} = [$k->{in_r}, $k->{in_w}, $k->{out_r}, $k->{err_r}];
      report("$id ready $k->{pid} " . ($pipe_stdin ? fileno($k->{in_w}) : -1) . ' ' . fileno($k->{out_r}) . ' ' . fileno($k->{err_r}) . "\n");
      return;
    }
    # That spare died before it was used (killed from outside): a fresh one.
    drop_spare($k);
  }
  report("$id fail 5\n$id gone 0\n");
}

# A start without a keeper (D), for a command that contains its descendants itself (bubblewrap: its
# PID namespace dies with it): forked from the helper and watched through a pidfd. It asks for
# SIGKILL when the helper dies; bubblewrap's --die-with-parent passes that on to the sandbox.
sub start_direct {
  my ($id, $pipe_stdin) = @_;
  my $payload = join("\0", @_);
  my %p;
  my $ok = pipe($p{in_r}, $p{in_w}) && pipe($p{out_r}, $p{out_w}) && pipe($p{err_r}, $p{err_w}) && pipe($p{x_r}, $p{x_w});
  my $pid = $ok ? fork() : undef;
  if (!defined $pid) { my $e = ($! + 0) || 11; close($_) for grep { defined } values %p; report("$id fail $e\n$id gone 0\n"); return }
  if ($pid == 0) {
    syscall($NR, 1, 9, 0, 0, 0);
    syscall($EXIT, 137) if getppid() != $helper;
    $SIG{$_} = 'DEFAULT' for qw(TERM HUP INT QUIT TSTP PIPE);
    close($p{x_r});
    exec_command($payload, \%p, $p{x_w});
  }
  close($_) for @p{qw(in_r out_w err_w x_w)};
  my $fd = syscall($PIDFD_OPEN, $pid + 0, 0);
  my $watch;
  if ($fd < 0 || !open($watch, '<&=', $fd)) {
    my $e = ($! + 0) || 24;
    syscall($CLOSE, $fd) if $fd >= 0;
    kill('KILL', $pid);
    1 while waitpid($pid, 0) < 0 && $! == 4;
    close($_) for @p{qw(in_r in_w out_r err_r x_r)};
    report("$id fail $e\n$id gone 0\n");
    return;
  }
  $direct{$id} = { pid => $pid, x => $p{x_r}, pidfd => $watch };
  $held{$id} = [$p{in_r}, $p{in_w}, $p{out_r}, $p{err_r}];
  report("$id ready $pid " . ($pipe_stdin ? fileno($p{in_w}) : -1) . ' ' . fileno($p{out_r}) . ' ' . fileno($p{err_r}) . "\n");
}

# The exec of a direct start succeeded (end of file) or failed (its errno).
sub direct_exec_readable {
  my ($id, $d) = @_;
  my $errno = '';
  my $r = sysread($d->{x}, $errno, 32);
  return if !defined $r && $! == 4;
  close(delete $d->{x});
  if ($errno ne '') { $d->{failed} = 1; report("$id fail $errno\n") }
  else { report("$id pid $d->{pid}\n") }
}

# A direct start's process exited: with it, everything it ran.
sub direct_exited {
  my ($id, $d) = @_;
  # Its end closed the exec pipe, if the exec had not already.
  direct_exec_readable($id, $d) while $d->{x};
  1 while waitpid($d->{pid}, 0) < 0 && $! == 4;
  my $status = $?;
  close($d->{pidfd});
  delete $direct{$id};
  report($d->{failed} ? "$id gone $status\n" : "$id exit $status\n$id gone $status\n");
  end_strays();
}

sub request {
  my @f = split(/\0/, shift, -1);
  my $op = shift @f;
  if ($op eq 'S') { start(@f) }
  elsif ($op eq 'D') { start_direct(@f) }
  elsif ($op eq 'C') { my $h = delete $held{$f[0]}; close($_) for grep { defined } @{ $h || [] } }
  elsif ($op eq 'K' && $keeper{$f[0]}) { kill($f[1], $keeper{$f[0]}) }
  elsif ($op eq 'K' && $direct{$f[0]}) {
    # Its own group (it ran setsid): TERM ends it with everything in it, INT is passed on.
    my $pid = $direct{$f[0]}{pid};
    my $sig = $f[1] eq 'TERM' ? 'KILL' : $f[1];
    kill($sig, -$pid) || kill($sig, $pid);
  }
}

sub status_readable {
  my $id = shift;
  my $r = sysread($status{$id}, my $ignored, 64);
  return if !defined $r && $! == 4;
  return if $r;
  close(delete $status{$id});
  my $pid = delete $keeper{$id};
  1 while waitpid($pid, 0) < 0 && $! == 4;
  # The pipes stay held until the server says it opened them (C), which may come after this.
  report("$id gone $?\n");
  end_strays();
}

while ($stdin_open || %keeper || %direct) {
  $spare ||= make_spare() if $stdin_open;
  my $rin = '';
  vec($rin, 0, 1) = 1 if $stdin_open;
  vec($rin, fileno($status{$_}), 1) = 1 for keys %status;
  # Only these are looked at below: a start made meanwhile has descriptors select did not watch.
  my @watched = keys %direct;
  for my $d (values %direct) { vec($rin, fileno($d->{pidfd}), 1) = 1; vec($rin, fileno($d->{x}), 1) = 1 if $d->{x} }
  my $rout;
  # Finite: a SIGTERM that lands just before select is handled within a second.
  my $n = select($rout = $rin, undef, undef, %strays ? 0.05 : 1);
  end_strays() if %strays;
  if ($n < 0) { next if $! == 4; last }
  if ($stdin_open && vec($rout, 0, 1)) {
    my $r = sysread(STDIN, $in, 65536, length $in);
    if (!$r) {
      next if !defined $r && $! == 4;
      $stdin_open = 0;
      kill('TERM', $_) for values %keeper;
      kill('KILL', $_->{pid}) for values %direct;
      drop_spare($spare) if $spare;
      $spare = undef;
    }
    while ((my $nl = index($in, "\n")) >= 0) {
      my $len = substr($in, 0, $nl);
      last if length($in) < $nl + 1 + $len;
      my $msg = substr($in, $nl + 1, $len);
      substr($in, 0, $nl + 1 + $len) = '';
      request($msg);
    }
  }
  for my $id (keys %status) { status_readable($id) if $status{$id} && vec($rout, fileno($status{$id}), 1) }
  for my $id (@watched) {
    my $d = $direct{$id} or next;
    direct_exec_readable($id, $d) if $d->{x} && vec($rout, fileno($d->{x}), 1);
    direct_exited($id, $d) if vec($rout, fileno($d->{pidfd}), 1);
  }
}
exit 0;
`;
