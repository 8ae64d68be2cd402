import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { RemoteEnvironment } from '../src/client/remote-environment.js';
import { LocalEnvironment } from '../src/local/local-environment.js';
import { FsWorkerPool } from '../src/sandbox/fs-worker-pool.js';
import { LinuxSandbox } from '../src/sandbox/linux-sandbox.js';
import { CordonServer, type ServerOptions } from '../src/server/index.js';
import { ensureBuilt, sourcePath } from './built-cli.js';

export const SH_ENV = { PATH: '/usr/local/bin:/usr/bin:/bin' };

/** Whether this test process holds any effective capability (root, usually), which every sandbox drops. */
export function holdsCapabilities(): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? BigInt(`0x${m[1]}`) !== 0n : false;
}

export async function tempDir(prefix = 'cordon-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function startServer(options: Partial<ServerOptions> = {}): Promise<{ server: CordonServer; url: string }> {
  const server = new CordonServer(options);
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  return { server, url };
}

export type Json = Record<string, any>;

/** A bare WebSocket peer speaking raw JSON, for protocol-level tests. */
export class RawClient {
  readonly received: Json[] = [];
  private waiters: { pred: (m: Json) => boolean; resolve: (m: Json) => void }[] = [];
  private nextId = 1000;
  closeCode: number | undefined;
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as Json;
      this.received.push(msg);
      for (const w of [...this.waiters]) {
        if (w.pred(msg)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(msg);
        }
      }
    });
    this.closed = new Promise((resolve) =>
      ws.once('close', (code) => {
        this.closeCode = code;
        resolve(code);
      }),
    );
    ws.on('error', () => undefined);
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<RawClient> {
    const ws = new WebSocket(url, { headers, maxPayload: 1024 * 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new RawClient(ws);
  }

  /** Opens, initializes (optionally resuming) and sends `initialized`. */
  static async ready(url: string, resumeSessionId?: string): Promise<{ client: RawClient; sessionId: string }> {
    const client = await RawClient.open(url);
    const res = await client.request('initialize', { clientName: 'test', resumeSessionId: resumeSessionId ?? null });
    if (res.error) throw new Error(`initialize failed: ${res.error.message}`);
    client.send({ method: 'initialized', params: {} });
    return { client, sessionId: res.result.sessionId as string };
  }

  send(msg: Json | string): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  next(pred: (m: Json) => boolean, timeoutMs = 10_000): Promise<Json> {
    const found = this.received.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for a message; got ${JSON.stringify(this.received.slice(-5))}`)),
        timeoutMs,
      );
      this.waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  async request(method: string, params?: unknown, timeoutMs?: number): Promise<Json> {
    const id = this.nextId++;
    this.send(params === undefined ? { id, method } : { id, method, params });
    return this.next((m) => m.id === id && !('method' in m), timeoutMs);
  }

  /** Resolves once `process/closed` arrives for processId; returns that process's notifications. */
  async untilClosed(processId: string, timeoutMs = 10_000): Promise<Json[]> {
    await this.next((m) => m.method === 'process/closed' && m.params.processId === processId, timeoutMs);
    return this.received.filter((m) => m.method?.startsWith('process/') && m.params?.processId === processId);
  }

  close(): void {
    this.ws.close();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * RawClient.ready resuming `sessionId` once the server has noticed that the session's previous
 * connection is gone: until then it answers -32010 (still attached), which this retries.
 */
export async function resumeWhenDetached(
  url: string,
  sessionId: string,
  timeoutMs = 10_000,
): Promise<{ client: RawClient; sessionId: string }> {
  const client = await RawClient.open(url);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await client.request('initialize', { clientName: 'test', resumeSessionId: sessionId });
    if (!res.error) {
      client.send({ method: 'initialized', params: {} });
      return { client, sessionId: res.result.sessionId as string };
    }
    if (res.error.code !== -32010 || Date.now() > deadline) {
      client.close();
      throw new Error(`initialize failed: ${res.error.message}`);
    }
    await sleep(20);
  }
}

/** Polls `check` until it returns true or the deadline passes. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A RemoteEnvironment on a fresh in-process server, for the conformance suites. */
export async function remoteFixture(options: Partial<ServerOptions> = {}): Promise<{ env: RemoteEnvironment; cleanup(): Promise<void> }> {
  const { server, url } = await startServer(options);
  const env = await RemoteEnvironment.connect({ url });
  return {
    env,
    cleanup: async () => {
      await env.close();
      await server.close();
    },
  };
}

const SERVER_PROCESS = sourcePath('test', 'fixtures', 'server-process.mjs');

/** A server in a child process (the test survives the server stalling or being killed); the built one, from dist/. */
export async function startServerProcess(
  options: Json = {},
): Promise<{ child: ChildProcess; url: string; stop(): Promise<number | null> }> {
  ensureBuilt();
  const child = spawn(process.execPath, [SERVER_PROCESS, JSON.stringify(options)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
      const m = /ws:\/\/\S+/.exec(out);
      if (m) resolve(m[0]);
    });
    void exited.then((code) => reject(new Error(`server process exited early with ${code}`)));
  });
  return {
    child,
    url,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/**
 * A local environment with its own bubblewrap sandbox and fs worker pool, whose worker calls are
 * counted (`workerCalls()`): how the direct-read tests see whether a call went to a worker.
 */
export function sandboxedFs(maxWorkers = 4): {
  sandbox: LinuxSandbox;
  pool: FsWorkerPool;
  env: LocalEnvironment;
  workerCalls(): number;
  close(): Promise<void>;
} {
  const sandbox = new LinuxSandbox({ searchPath: process.env.PATH, tmpdir: undefined, maxGlobMatches: 8192 });
  const pool = new FsWorkerPool({ sandbox, maxWorkers, idleMs: 60_000, serverEnv: { PATH: process.env.PATH } });
  let calls = 0;
  const call = pool.call.bind(pool);
  pool.call = (request, op) => {
    calls++;
    return call(request, op);
  };
  const env = new LocalEnvironment({ sandbox, fsWorkers: pool });
  return {
    sandbox,
    pool,
    env,
    workerCalls: () => calls,
    close: async () => {
      await env.close();
      await pool.dispose();
      sandbox.dispose();
    },
  };
}
