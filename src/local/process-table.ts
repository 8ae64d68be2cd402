import { existsSync } from 'node:fs';
import type {
  ExecBackend,
  OutputFlowControl,
  ProcessEvent,
  ProcessEventListener,
  ProcessSignal,
  ReadRequest,
  ReadResult,
  StartProcessRequest,
  StartProcessResult,
  WriteRequest,
  WriteStatus,
} from '../environment/types.js';
import { ErrorCode, internalError, invalidRequest, processMessages, RpcError, spawnErrorFromOs, withKind } from '../protocol/index.js';
import { applyCeiling } from '../sandbox/ceiling.js';
import { buildChildEnv } from '../sandbox/env-policy.js';
import { type SandboxedCommand, SandboxPreparationError, SandboxUnavailableError } from '../sandbox/linux-sandbox.js';
import { profileNeedsNoSandbox } from '../sandbox/profile.js';
import type { ChildHandle, ChildSpec } from './child.js';
import { ManagedProcess } from './managed-process.js';
import type { LocalEnvironmentOptions } from './options.js';
import { spawnPipeChild } from './pipe-child.js';
import type { PtyHost } from './pty-host.js';
import { checkExecFormat, checkWorkingDirectory, resolveExecutable } from './resolve-executable.js';

const BASH = '/bin/bash';

export const MANAGED_NETWORK_UNSUPPORTED =
  'enforceManagedNetwork needs a managed network proxy for the process (send `networkProxy`): Cordon will not run the process with its network unenforced';

/** The processes of one session, keyed by the client's processId. */
export class ProcessTable implements ExecBackend, OutputFlowControl {
  private readonly processes = new Map<string, ManagedProcess>();
  private readonly listeners = new Set<ProcessEventListener>();
  private readonly expiryTimers = new Set<NodeJS.Timeout>();
  /** Every child not yet gone, including exited ones whose descendants live on: all end with the session. */
  private readonly live = new Set<ChildHandle>();
  private paused = false;
  private closing = false;

  constructor(private readonly options: LocalEnvironmentOptions) {}

  subscribe(listener: ProcessEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit = (event: ProcessEvent): void => {
    for (const l of this.listeners) l(event);
  };

  async start(request: StartProcessRequest): Promise<StartProcessResult> {
    const { processId } = request;
    if (this.closing) throw invalidRequest('environment is shutting down');
    if (request.argv.length === 0) throw invalidRequest('argv must not be empty');
    if (this.processes.has(processId)) throw invalidRequest(processMessages.duplicate(processId));
    if (this.processes.size >= this.options.maxProcesses) {
      throw invalidRequest(`too many processes in this session (limit ${this.options.maxProcesses})`);
    }
    if (request.enforceManagedNetwork && !request.network)
      throw new RpcError(ErrorCode.InvalidParams, MANAGED_NETWORK_UNSUPPORTED, { kind: 'sandboxUnavailable' });
    let sandboxed: SandboxedCommand | undefined;
    const proc = new ManagedProcess(processId, this.options.retainBytesPerProcess, this.emit, (p) => this.scheduleExpiry(p));
    // Reserve the id before any await so a concurrent duplicate start is refused.
    this.processes.set(processId, proc);
    try {
      const env = buildChildEnv(request.env, request.envPolicy, this.options.serverEnv);
      const cwd = request.cwd;
      await checkWorkingDirectory(cwd);
      const command = request.argv[0] as string;
      const file = await resolveExecutable(command, env.PATH, cwd);
      await checkExecFormat(file);
      const spec: ChildSpec = {
        file,
        args: request.argv.slice(1),
        argv0: request.arg0 ?? command,
        cwd,
        env,
        pipeStdin: request.pipeStdin ?? false,
        rows: request.rows ?? 24,
        cols: request.cols ?? 80,
        maxChunkBytes: this.options.maxChunkBytes,
        keeper: this.options.containChildren,
      };
      let sandbox = applyCeiling(this.options.ceiling, request.sandbox, cwd);
      let sandboxNeeded = !!sandbox && !profileNeedsNoSandbox(sandbox.profile);
      const network = request.network ?? undefined;
      if (network && !sandboxNeeded) {
        if (network.enforce) {
          // Enforcing the proxy needs a network namespace: a sandbox that restricts nothing else.
          sandbox = {
            profile: { enforcement: 'managed', network: 'enabled', fileSystem: { kind: 'unrestricted' } },
            cwd: sandbox?.cwd ?? cwd,
          };
          sandboxNeeded = true;
        } else {
          spec.env = { ...spec.env, ...(await network.listen()) };
        }
      }
      // Checked before anything is prepared: an environment that cannot be routed is refused.
      const route = network && sandboxNeeded ? network.route(env) : undefined;
      let commandArgv = [file, ...spec.args];
      if (request.arg0 != null && request.arg0 !== command && (request.tty || sandboxNeeded)) {
        // node-pty and bubblewrap 0.8 cannot set argv[0]; bash's `exec -a` can, keeping the pid.
        if (!existsSync(BASH)) throw internalError(`arg0 on a terminal or in a sandbox needs ${BASH} (for exec -a), which is missing`);
        commandArgv = [BASH, '-c', 'exec -a "$0" "$@"', request.arg0, ...commandArgv];
        spec.file = BASH;
        spec.args = commandArgv.slice(1);
      }
      if (sandbox && sandboxNeeded) {
        if (!this.options.sandbox)
          throw withKind(
            internalError('sandboxed processes are not available in this environment; Cordon will not run the process unsandboxed'),
            'sandboxUnavailable',
          );
        sandboxed = await this.options.sandbox.wrap({
          profile: sandbox.profile,
          policyCwd: sandbox.cwd ?? cwd,
          commandCwd: cwd,
          command: commandArgv,
          tty: request.tty,
          network: route && network ? { route, accept: (endpoint, stream) => network.accept(endpoint, stream) } : null,
          processId,
          workspaceRoots: sandbox.workspaceRoots ?? undefined,
          passDescriptors: !request.tty,
        });
        spec.file = sandboxed.file;
        spec.args = sandboxed.args;
        spec.argv0 = sandboxed.file;
        spec.env = { ...env, ...sandboxed.env };
        if (sandboxed.descriptors) spec.descriptors = sandboxed.descriptors;
        if (sandboxed.interruptGroup) spec.interruptGroup = sandboxed.interruptGroup;
        // bubblewrap is never spawned by Node itself: its --die-with-parent is set only once bwrap
        // runs, so a server killed in the moment between spawn and that would leave the sandbox
        // running for good (test/process-lifetime.test.ts). The spawn helper's child asks for
        // SIGKILL at its parent's death (checked against that parent) before it execs bwrap.
        if (sandboxed.containsDescendants) spec.containsDescendants = true;
      }
      // As the reference: a request that carried a sandbox counts as sandboxed even when its profile
      // needed no enforcement; so does one Cordon sandboxed on its own (the operator's ceiling).
      if (request.sandbox || sandboxed) proc.watchForSandboxDenial();
      const listener = proc.listener();
      const sandboxCleanup = sandboxed?.cleanup;
      const cleanup = network
        ? async () => {
            network.close();
            await sandboxCleanup?.();
          }
        : sandboxCleanup;
      // `closed` also means the sandbox's mount targets are gone from the host.
      if (cleanup) listener.closed = () => void cleanup().finally(() => proc.markClosed());
      if (request.tty && !this.options.ptyHost) throw internalError('terminals are not available in this environment');
      const child = await (request.tty
        ? (this.options.ptyHost as PtyHost).spawn(spec, listener)
        : spawnPipeChild(spec, listener, this.options.spawner));
      proc.child = child;
      this.live.add(child);
      void child.gone.then(() => this.live.delete(child));
      if (this.paused) proc.child.pause();
      if (this.closing) proc.terminate();
    } catch (err) {
      this.processes.delete(processId);
      void sandboxed?.cleanup();
      request.network?.close();
      if (err instanceof SandboxPreparationError) throw withKind(internalError(err.message), 'sandboxPreparation');
      if (err instanceof SandboxUnavailableError) throw withKind(internalError(err.message), 'sandboxUnavailable');
      throw spawnErrorFromOs(err);
    }
    return { processId, sandboxType: request.sandbox || sandboxed ? 'linuxSeccomp' : 'none' };
  }

  private scheduleExpiry(proc: ManagedProcess): void {
    const timer = setTimeout(() => {
      this.expiryTimers.delete(timer);
      if (this.processes.get(proc.processId) === proc) this.processes.delete(proc.processId);
    }, this.options.retainExitedMs);
    timer.unref();
    this.expiryTimers.add(timer);
  }

  private get(processId: string): ManagedProcess {
    const proc = this.processes.get(processId);
    if (!proc) throw invalidRequest(processMessages.unknown(processId));
    return proc;
  }

  async read(processId: string, request?: ReadRequest): Promise<ReadResult> {
    const proc = this.get(processId);
    if (!proc.child) return { chunks: [], nextSeq: 1, exited: false, exitCode: null, closed: false, failure: null, sandboxDenied: false };
    return proc.read(request);
  }

  async write(request: WriteRequest): Promise<WriteStatus> {
    const proc = this.processes.get(request.processId);
    if (!proc) return 'unknownProcess';
    if (!proc.child) return 'starting';
    return proc.write(request.data, request.writeId, request.closeStdin ?? false);
  }

  async terminate(processId: string): Promise<{ running: boolean }> {
    const proc = this.processes.get(processId);
    if (!proc || !proc.child) return { running: false };
    return { running: proc.terminate() };
  }

  async signal(processId: string, signal: ProcessSignal): Promise<void> {
    const proc = this.processes.get(processId);
    if (!proc?.child || proc.exited) return;
    if (signal === 'interrupt') proc.child.interrupt();
  }

  async resize(processId: string, rows: number, cols: number): Promise<void> {
    const proc = this.get(processId);
    if (!proc.child?.tty) throw invalidRequest(processMessages.notTty(processId));
    proc.child.resize(rows, cols);
  }

  pauseOutput(): void {
    if (this.paused) return;
    this.paused = true;
    for (const p of this.processes.values()) if (!p.closed) p.child?.pause();
  }

  resumeOutput(): void {
    if (!this.paused) return;
    this.paused = false;
    for (const p of this.processes.values()) if (!p.closed) p.child?.resume();
  }

  /** Process groups still alive. */
  get runningCount(): number {
    let n = 0;
    for (const p of this.processes.values()) if (!p.closed) n++;
    return n;
  }

  /** Kills every process group and waits (bounded) for them to be reaped. */
  async close(): Promise<void> {
    this.closing = true;
    this.resumeOutput();
    const pending: Promise<void>[] = [];
    for (const p of this.processes.values()) {
      if (p.closed) continue;
      p.terminate();
      pending.push(p.read({ waitMs: 2000 }).then(() => undefined));
    }
    // Exited processes may have left descendants (a daemon, a background job): they go too.
    for (const child of this.live) child.terminate();
    await Promise.all(pending);
    for (const t of this.expiryTimers) clearTimeout(t);
    this.expiryTimers.clear();
  }
}
