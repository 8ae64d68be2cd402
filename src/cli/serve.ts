import { readFile } from 'node:fs/promises';
import pino from 'pino';
import { CordonServer } from '../server/index.js';

export interface ServeOptions {
  listen: string;
  tokenFile?: string;
  insecureNoAuth?: boolean;
  sessionGraceMs: number;
  retainBytes: number;
  retainExitedMs: number;
  maxProcesses: number;
  logLevel: string;
}

export async function readToken(file: string): Promise<string> {
  const token = (await readFile(file, 'utf8')).trim();
  if (!token) throw new Error(`token file ${file} is empty`);
  return token;
}

function parseListen(listen: string): { host: string; port: number } | 'stdio' {
  if (listen === 'stdio' || listen === 'stdio://') return 'stdio';
  let url: URL;
  try {
    url = new URL(listen);
  } catch {
    throw new Error(`--listen must be ws://HOST:PORT or stdio, not ${listen}`);
  }
  if (url.protocol !== 'ws:') throw new Error(`--listen must be ws://HOST:PORT or stdio, not ${listen}`);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port === '' ? 80 : Number(url.port) };
}

/** `cordon serve`: returns the exit code. */
export async function runServe(opts: ServeOptions): Promise<number> {
  const logger = pino({ level: opts.logLevel, base: undefined }, pino.destination(2));
  let where: ReturnType<typeof parseListen>;
  let token: string | undefined;
  try {
    where = parseListen(opts.listen);
    token = opts.tokenFile ? await readToken(opts.tokenFile) : undefined;
  } catch (err) {
    process.stderr.write(`cordon serve: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const server = new CordonServer({
    token,
    sessionGraceMs: opts.sessionGraceMs,
    logger,
    environment: { retainBytesPerProcess: opts.retainBytes, retainExitedMs: opts.retainExitedMs, maxProcesses: opts.maxProcesses },
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= server.close());
  const done = new Promise<number>((resolve) => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        logger.info({ signal: sig }, 'shutting down');
        void stop().then(() => resolve(0));
      });
    }
  });
  if (where === 'stdio') {
    const served = server.serveStdio(process.stdin, process.stdout).then(async () => {
      await stop();
      return 0;
    });
    logger.info('serving on stdio');
    return Promise.race([served, done]);
  }
  try {
    const url = await server.listen({ host: where.host, port: where.port, insecureNoAuth: opts.insecureNoAuth ?? false });
    process.stdout.write(`${url}\n`);
    logger.info({ url, auth: token ? 'bearer' : 'none' }, 'listening');
  } catch (err) {
    process.stderr.write(`cordon serve: ${err instanceof Error ? err.message : String(err)}\n`);
    await stop();
    return 1;
  }
  return done;
}
