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
 * - `C id`: the server has opened its ends of the command's pipes; the helper closes its copies;
 * - `K id signal`: signal the command's keeper (INT: forwarded to the command's process group;
 *   TERM: the keeper kills the group and every descendant, then exits).
 *
 * Reports go to stdout, one line each (one write, shorter than PIPE_BUF, so lines never mix),
 * `id word value...`; the keepers write theirs there directly:
 * - `0 probe FD` first: a pipe the server tries to open, to learn whether it can open the others;
 * - `ready KEEPER IN OUT ERR`: the keeper runs; the server's ends of the pipes are the helper's
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
my ($NR, $SETSID, $EXIT, $CLOSE, $DUP3, $server) = @ARGV;
syscall($NR, 1, 15, 0, 0, 0);
exit 0 if getppid() != $server;
$SIG{PIPE} = 'IGNORE';
$SIG{INT} = $SIG{QUIT} = $SIG{TSTP} = 'IGNORE';
my $helper = $$;
# A short name in ps (the -e program would otherwise fill the command line).
$0 = 'cordon-spawn-helper';
# Whatever the server inherited without close-on-exec stays out of the commands (Perl's own handles
# are not open yet; closing theirs behind Perl's back would leave them half open).
if (opendir(my $fds, '/proc/self/fd')) { my @fds = grep { /^\d+$/ && $_ > 2 } readdir($fds); closedir($fds); syscall($CLOSE, $_ + 0) for @fds }
my (%keeper, %status, %held);
my $in = '';
my $stdin_open = 1;
binmode STDIN; binmode STDOUT;
sub report { my $l = shift; my $o = 0; while ($o < length $l) { my $w = syswrite(STDOUT, $l, length($l) - $o, $o); exit 0 unless defined $w; $o += $w } }
pipe(my $probe_r, my $probe_w) or exit 1;
report("0 probe " . fileno($probe_r) . "\n");

${KILL_DESCENDANTS}
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
    for my $i (0 .. $#desc) { open(my $h, '<', $desc[$i]) or goto FAIL; my $hi = fcntl($h, 0, 100 + $i) or goto FAIL; push @high, $hi }
    for my $i (0 .. $#high) { syscall($DUP3, $high[$i] + 0, 3 + $i, 0) >= 0 or goto FAIL }
    %ENV = ();
    for (@env) { my $e = index($_, '='); $ENV{substr($_, 0, $e)} = substr($_, $e + 1) if $e > 0 }
    exec { $file } @argv;
    FAIL:
    syswrite($xw, ($! + 0) || 8);
    syscall($EXIT, 127);
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

my $spare;
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

sub request {
  my @f = split(/\0/, shift, -1);
  my $op = shift @f;
  if ($op eq 'S') { start(@f) }
  elsif ($op eq 'C') { my $h = delete $held{$f[0]}; close($_) for grep { defined } @{ $h || [] } }
  elsif ($op eq 'K') { kill($f[1], $keeper{$f[0]}) if $keeper{$f[0]} }
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
}

while ($stdin_open || %keeper) {
  $spare ||= make_spare() if $stdin_open;
  my $rin = '';
  vec($rin, 0, 1) = 1 if $stdin_open;
  vec($rin, fileno($status{$_}), 1) = 1 for keys %status;
  my $rout;
  my $n = select($rout = $rin, undef, undef, undef);
  if ($n < 0) { next if $! == 4; last }
  if ($stdin_open && vec($rout, 0, 1)) {
    my $r = sysread(STDIN, $in, 65536, length $in);
    if (!$r) {
      next if !defined $r && $! == 4;
      $stdin_open = 0;
      kill('TERM', $_) for values %keeper;
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
}
exit 0;
`;
