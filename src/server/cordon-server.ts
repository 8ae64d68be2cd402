import type { Readable, Writable } from 'node:stream';
import { defaultFsWorkerPool, defaultLinuxSandbox } from '../local/local-environment.js';
import { PtyHost } from '../local/pty-host.js';
import { Spawner } from '../local/spawner.js';
import { ErrorCode, encodeError } from '../protocol/index.js';
import type { FsWorkerPool } from '../sandbox/fs-worker-pool.js';
import type { LinuxSandbox } from '../sandbox/linux-sandbox.js';
import { Dispatcher } from './dispatcher.js';
import { isLoopbackHost } from './loopback.js';
import { defaultServerOptions, type ServerOptions } from './options.js';
import { SessionRegistry } from './session-registry.js';
import { serveLines } from './stdio-listener.js';
import type { ServerTransport } from './transport.js';
import { WebSocketListener } from './websocket-listener.js';

export interface ListenOptions {
  host?: string;
  port?: number;
  /** Allow a non-loopback address without a token. */
  insecureNoAuth?: boolean;
}

/** A Cordon server instance: its sessions and its listeners. Many may live in one process. */
export class CordonServer {
  readonly options: ServerOptions;
  readonly sessions: SessionRegistry;
  private readonly listeners: WebSocketListener[] = [];
  private readonly connections = new Set<Dispatcher>();
  private closed = false;
  private readonly sandbox: LinuxSandbox;
  private readonly fsWorkers: FsWorkerPool;
  private readonly ptyHost: PtyHost;
  private readonly spawner: Spawner;

  constructor(options: Partial<ServerOptions> = {}) {
    this.options = { ...defaultServerOptions(), ...options };
    this.sandbox = this.options.environment.sandbox ?? defaultLinuxSandbox(this.options.environment.serverEnv ?? process.env);
    const serverEnv = this.options.environment.serverEnv ?? process.env;
    this.fsWorkers = this.options.environment.fsWorkers ?? defaultFsWorkerPool(this.sandbox, serverEnv);
    this.ptyHost =
      this.options.environment.ptyHost ??
      new PtyHost((err) => this.options.logger.error({ err }, 'the terminal thread died; its processes were killed'));
    this.spawner = this.options.environment.spawner ?? new Spawner();
    this.sessions = new SessionRegistry(
      this.options.sessionGraceMs,
      { ...this.options.environment, sandbox: this.sandbox, fsWorkers: this.fsWorkers, ptyHost: this.ptyHost, spawner: this.spawner },
      this.options.logger,
    );
  }

  /**
   * Starts, in the background, what a fresh server's first command waits for otherwise: the spawn
   * helper (about 30 ms) and the sandbox's probe and seccomp programs (about 50 ms more for a
   * sandboxed one). Anything that fails here fails again, with its message, at that first command.
   */
  warmUp(): void {
    if (this.closed) return;
    void this.spawner.available().catch(() => undefined);
    void this.sandbox.prepare().catch(() => undefined);
  }

  private connect(transport: ServerTransport): Dispatcher {
    const conn = new Dispatcher(transport, this.sessions, this.options, this.options.logger);
    this.connections.add(conn);
    return conn;
  }

  private disconnect(conn: Dispatcher): void {
    this.connections.delete(conn);
    conn.handleClose();
  }

  /** Listens for WebSocket clients; resolves with the `ws://host:port` URL actually bound. */
  async listen(options: ListenOptions = {}): Promise<string> {
    const host = options.host ?? '127.0.0.1';
    if (!isLoopbackHost(host) && this.options.token === undefined && !options.insecureNoAuth) {
      throw new Error(
        `refusing to listen on non-loopback address ${host} without authentication: pass --token-file, or --insecure-no-auth to accept anyone who can reach it`,
      );
    }
    const listener = new WebSocketListener({
      host,
      port: options.port ?? 0,
      token: this.options.token,
      maxFrameBytes: this.options.maxFrameBytes,
      maxMessageBytes: this.options.maxMessageBytes,
      maxPendingPongs: this.options.maxPendingPongs,
      logger: this.options.logger,
      accept: (transport) => {
        const conn = this.connect(transport);
        return { message: (data) => conn.handleBytes(data), close: () => this.disconnect(conn) };
      },
    });
    const url = await listener.listen();
    this.listeners.push(listener);
    return url;
  }

  /** Serves one client over newline-delimited streams until the input ends. */
  serveStdio(input: Readable, output: Writable): Promise<void> {
    return serveLines(input, output, this.options.maxMessageBytes, (transport) => {
      const conn = this.connect(transport);
      return {
        message: (text) => conn.handleText(text),
        oversized: (bytes) =>
          transport.send(
            encodeError(
              -1,
              ErrorCode.InvalidRequest,
              `message of ${bytes} bytes exceeds the limit of ${this.options.maxMessageBytes} bytes`,
            ),
            () => undefined,
          ),
        close: () => this.disconnect(conn),
      };
    });
  }

  /** Stops accepting, closes connections and kills every session's process groups. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.listeners.map((l) => l.close()));
    for (const conn of [...this.connections]) this.disconnect(conn);
    await this.sessions.closeAll();
    if (!this.options.environment.fsWorkers) await this.fsWorkers.dispose();
    if (!this.options.environment.ptyHost) await this.ptyHost.dispose();
    if (!this.options.environment.spawner) await this.spawner.dispose();
    if (!this.options.environment.sandbox) this.sandbox.dispose();
  }
}
