import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { PERL, SYSCALLS } from './keeper.js';
import { SPAWNER_SCRIPT } from './spawner-script.js';

export interface SpawnRequest {
  file: string;
  /** argv[0] first. */
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  pipeStdin: boolean;
  /** Files opened read-only as the command's fds 3, 4, ... */
  descriptors?: string[];
  /**
   * false: the command contains its descendants itself (bubblewrap, whose PID namespace dies with
   * it), so it runs without a keeper where the helper can watch it through a pidfd: one fork of a
   * Perl process fewer per start.
   */
  keeper?: boolean;
}

/** What the helper tells about one command after it started. */
export interface SpawnEvents {
  /** The command exited with this raw wait status (its descendants may live on). */
  exit(status: number): void;
  /** Its keeper exited (nothing of the command is left), with the keeper's raw wait status; null when the helper itself died. */
  gone(status: number | null): void;
}

/** A command the helper started, under its keeper. */
export interface SpawnedCommand {
  /** The keeper's pid. */
  readonly pid: number;
  /** The command's pid, which leads its own session and process group. */
  readonly commandPid: number;
  readonly stdin: Socket | undefined;
  readonly stdout: Socket;
  readonly stderr: Socket;
  /** SIGINT goes to the command's process group; SIGTERM makes the keeper kill everything the command started. */
  signal(signal: 'INT' | 'TERM'): void;
}

interface CommandPipes {
  stdin: Socket | undefined;
  stdout: Socket;
  stderr: Socket;
}

/** The server's own descriptors of a command's pipes, opened from the helper's. */
interface CommandFds {
  stdin: number | undefined;
  stdout: number;
  stderr: number;
}

interface Pending {
  file: string;
  events: SpawnEvents;
  resolve(command: SpawnedCommand): void;
  reject(err: Error): void;
  keeperPid: number;
  /** The command's pid, once its keeper reported it. */
  commandPid?: number;
  fds?: CommandFds;
  started: boolean;
}

const ERRNO_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

function errnoError(errno: number, file: string): NodeJS.ErrnoException {
  const code = ERRNO_NAMES.get(errno) ?? 'EIO';
  const err: NodeJS.ErrnoException = new Error(`spawn ${file} ${code}`);
  err.code = code;
  err.errno = -errno;
  err.syscall = 'spawn';
  err.path = file;
  return err;
}

/**
 * The spawn helper (spawner-script.ts): one long-lived Perl process per server that forks a keeper
 * for each pipe command, or, for one that contains its descendants itself (`keeper: false`:
 * bubblewrap), the command's process alone. The command's pipes are created by the helper; the
 * server opens its ends through /proc/HELPER/fd/N, which gives it descriptors of its own on the
 * same pipes.
 *
 * The helper starts with the first command and does not keep the server alive while no command
 * runs. Should it die, every command it started is killed (by its keeper, or by the death signal
 * a keeperless one asked for), reported exited and gone, and the next start runs a new helper.
 */
export class Spawner {
  private helper: ChildProcess | undefined;
  private readonly commands = new Map<number, Pending>();
  private nextId = 1;
  private disposed = false;
  /** Whether the server can open the helper's descriptors: learnt once, from the first helper's probe pipe. */
  private usable: Promise<boolean> | undefined;
  private settleProbe: ((usable: boolean) => void) | undefined;
  /** Whether the helper can start a command without a keeper (its probe said pidfd_open works). */
  private keeperless = false;
  /** The helper's own pid, from its probe: the process started is its guard (spawner-script.ts). */
  private workerPid: number | undefined;

  /** Whether commands can be started here (Linux x64/arm64 with perl, and /proc/PID/fd can be opened). */
  available(): Promise<boolean> {
    if (!this.usable) {
      if (this.disposed || process.platform !== 'linux' || SYSCALLS[process.arch] === undefined) this.usable = Promise.resolve(false);
      else {
        this.usable = new Promise<boolean>((resolve) => (this.settleProbe = resolve));
        try {
          this.ensureHelper();
        } catch {
          this.settleProbe?.(false);
        }
      }
    }
    return this.usable;
  }

  /** The running helper's pid (not its guard's), once it reported it. */
  get helperPid(): number | undefined {
    return this.helper ? this.workerPid : undefined;
  }

  spawn(request: SpawnRequest, events: SpawnEvents): Promise<SpawnedCommand> {
    if (this.disposed) return Promise.reject(new Error('the spawn helper has been shut down'));
    const descriptors = request.descriptors ?? [];
    const op = request.keeper === false && this.keeperless ? 'D' : 'S';
    const fields = [op, '', request.pipeStdin ? '1' : '0', request.cwd, request.file, String(request.argv.length), ...request.argv];
    fields.push(String(descriptors.length), ...descriptors);
    for (const [k, v] of Object.entries(request.env)) fields.push(`${k}=${v}`);
    const bad = fields.find((f) => f.includes('\0'));
    if (bad !== undefined)
      return Promise.reject(new TypeError(`argv, cwd and env must not contain null bytes (${JSON.stringify(bad.slice(0, 80))})`));
    let helper: ChildProcess;
    try {
      helper = this.ensureHelper();
    } catch (err) {
      return Promise.reject(err);
    }
    const id = this.nextId++;
    fields[1] = String(id);
    return new Promise<SpawnedCommand>((resolve, reject) => {
      this.commands.set(id, {
        file: request.file,
        events,
        resolve,
        reject,
        keeperPid: 0,
        started: false,
      });
      this.ref();
      this.send(helper, fields);
    });
  }

  /** Ends the helper; its keepers kill what they run. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const helper = this.helper;
    if (!helper || helper.exitCode !== null || helper.signalCode !== null) return;
    const exited = new Promise<void>((done) => helper.once('exit', () => done()));
    helper.stdin?.end();
    const timer = setTimeout(() => helper.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }

  private send(helper: ChildProcess, fields: string[]): void {
    const payload = Buffer.from(fields.join('\0'));
    helper.stdin?.write(Buffer.concat([Buffer.from(`${payload.length}\n`), payload]));
  }

  private ensureHelper(): ChildProcess {
    if (this.helper) return this.helper;
    const nr = SYSCALLS[process.arch];
    if (!nr) throw new Error(`the spawn helper does not support ${process.arch}`);
    const helper = spawn(PERL, ['-e', SPAWNER_SCRIPT, '--', ...nr.map(String), String(process.pid)], {
      // Perl's own variables (PERL5OPT, PERL5LIB) from the server's environment must not reach it.
      env: { PERL_BADLANG: '0' },
      // Its own session: a terminal's ^C meant for the server does not reach it (the server's end
      // reaches it through PR_SET_PDEATHSIG).
      detached: true,
      stdio: ['pipe', 'pipe', 'ignore'],
      windowsHide: true,
    });
    const pid = helper.pid;
    if (pid === undefined) {
      helper.on('error', () => undefined);
      throw new Error(`cannot start the spawn helper (${PERL})`);
    }
    this.helper = helper;
    helper.on('error', () => undefined);
    helper.stdin?.on('error', () => undefined);
    helper.stdout?.setEncoding('latin1');
    let lines = '';
    helper.stdout?.on('data', (text: string) => {
      // A helper that died may still have reports in flight from its keepers: they are ignored.
      if (this.helper !== helper) return;
      lines += text;
      for (let nl = lines.indexOf('\n'); nl !== -1; nl = lines.indexOf('\n')) {
        this.onLine(lines.slice(0, nl));
        lines = lines.slice(nl + 1);
      }
    });
    helper.once('exit', () => this.onHelperExit(helper));
    // Kept referenced while its probe is awaited.
    if (!this.settleProbe) this.unref();
    return helper;
  }

  private onLine(line: string): void {
    const [idText, word, ...values] = line.split(' ');
    const id = Number(idText);
    if (id === 0 && word === 'probe') {
      this.workerPid = Number(values[2]);
      this.onProbe(Number(values[0]), values[1] === '1');
    }
    const command = this.commands.get(id);
    if (command) this.onReport(id, command, word ?? '', values.map(Number));
  }

  private onProbe(fd: number, pidfds: boolean): void {
    const settle = this.settleProbe;
    const pid = this.workerPid;
    if (!settle || !pid) return;
    this.settleProbe = undefined;
    this.keeperless = pidfds;
    try {
      closeSync(openSync(`/proc/${pid}/fd/${fd}`, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK));
      settle(true);
      if (this.commands.size === 0) this.unref();
    } catch {
      settle(false);
      void this.dispose();
    }
  }

  private onReport(id: number, command: Pending, word: string, values: number[]): void {
    const helper = this.helper;
    const workerPid = this.workerPid;
    if (!helper || !workerPid) return;
    if (word === 'ready') {
      const [keeperPid = 0, stdinFd = -1, stdoutFd = -1, stderrFd = -1] = values;
      command.keeperPid = keeperPid;
      if (!command.started) {
        try {
          command.fds = openPipes(workerPid, stdinFd, stdoutFd, stderrFd);
        } catch (err) {
          this.send(helper, ['K', String(id), 'TERM']);
          command.started = true;
          // Not the command's error (an ENOENT here is no missing program): a plain internal failure.
          command.reject(new Error(`cannot open the command's pipes held by the spawn helper: ${(err as Error).message}`));
        }
      }
      this.send(helper, ['C', String(id)]);
      if (command.commandPid !== undefined) this.resolve(id, command, helper);
    } else if (word === 'pid') {
      // The keeper's report may overtake the helper's `ready`.
      command.commandPid = values[0] ?? 0;
      if (command.fds) this.resolve(id, command, helper);
    } else if (word === 'fail' && !command.started) {
      command.started = true;
      closeFds(command);
      command.reject(errnoError(values[0] ?? 5, command.file));
    } else if (word === 'exit') command.events.exit(values[0] ?? 0);
    else if (word === 'gone') {
      this.commands.delete(id);
      if (!command.started) {
        command.started = true;
        closeFds(command);
        command.reject(new Error('the command could not be started'));
      }
      command.events.gone(values[0] ?? 0);
      if (this.commands.size === 0) this.unref();
    }
  }

  private resolve(id: number, command: Pending, helper: ChildProcess): void {
    if (command.started || !command.fds) return;
    command.started = true;
    // Made only now, as the caller takes them: a stream that ends before anyone listens (a command
    // that writes nothing) would emit its end to nobody.
    const { stdin, stdout, stderr } = pipeSockets(command.fds);
    command.fds = undefined;
    command.resolve({
      pid: command.keeperPid,
      commandPid: command.commandPid ?? 0,
      stdin,
      stdout,
      stderr,
      signal: (signal) => {
        if (this.commands.has(id) && this.helper === helper) this.send(helper, ['K', String(id), signal]);
      },
    });
  }

  private onHelperExit(helper: ChildProcess): void {
    if (this.helper === helper) {
      this.helper = undefined;
      this.workerPid = undefined;
    }
    this.settleProbe?.(false);
    this.settleProbe = undefined;
    const commands = [...this.commands.values()];
    this.commands.clear();
    for (const command of commands) {
      if (!command.started) {
        command.started = true;
        closeFds(command);
        command.reject(new Error('the spawn helper exited'));
      }
      command.events.gone(null);
    }
  }

  /** While commands run, the helper's reports keep the server's event loop alive. */
  private ref(): void {
    const helper = this.helper;
    helper?.ref();
    (helper?.stdout as Socket | null)?.ref?.();
  }

  private unref(): void {
    const helper = this.helper;
    helper?.unref();
    (helper?.stdout as Socket | null)?.unref?.();
    (helper?.stdin as Socket | null)?.unref?.();
  }
}

/** Opens the server's ends of a command's pipes, held by the helper as its descriptors. */
function openPipes(helperPid: number, stdinFd: number, stdoutFd: number, stderrFd: number): CommandFds {
  const opened: number[] = [];
  const open = (fd: number, flags: number): number => {
    const own = openSync(`/proc/${helperPid}/fd/${fd}`, flags | fsConstants.O_NONBLOCK);
    opened.push(own);
    return own;
  };
  try {
    const stdout = open(stdoutFd, fsConstants.O_RDONLY);
    const stderr = open(stderrFd, fsConstants.O_RDONLY);
    const stdin = stdinFd >= 0 ? open(stdinFd, fsConstants.O_WRONLY) : undefined;
    return { stdout, stderr, stdin };
  } catch (err) {
    for (const fd of opened) closeSync(fd);
    throw err;
  }
}

function pipeSockets(fds: CommandFds): CommandPipes {
  return {
    stdout: new Socket({ fd: fds.stdout, readable: true, writable: false }),
    stderr: new Socket({ fd: fds.stderr, readable: true, writable: false }),
    stdin: fds.stdin === undefined ? undefined : new Socket({ fd: fds.stdin, readable: false, writable: true }),
  };
}

function closeFds(command: Pending): void {
  const fds = command.fds;
  command.fds = undefined;
  if (!fds) return;
  for (const fd of [fds.stdin, fds.stdout, fds.stderr]) if (fd !== undefined) closeSync(fd);
}
