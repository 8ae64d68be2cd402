import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Environment, FileSystem } from '../environment/types.js';
import { type ConnectionFlags, connectRemote } from './connect.js';
import { EXIT_BROKEN_PIPE, flushStdio } from './stdio.js';

export type FsCommandOptions = ConnectionFlags;

/** Exit codes: 1 an operation failed, 2 a usage error, 141 stdout's reader went away, 128+n a stop signal. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const SIGNAL_NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
type StopSignal = keyof typeof SIGNAL_NUMBERS;

const BLOCK = 4 * 1024 * 1024;

/** How many paths each verb takes: [min, max]. */
const ARITY: Record<string, [number, number, string]> = {
  ls: [0, Infinity, 'ls [DIR...]'],
  cat: [1, Infinity, 'cat FILE...'],
  stat: [1, Infinity, 'stat PATH...'],
  rm: [1, Infinity, 'rm PATH...'],
  put: [2, 2, 'put LOCAL REMOTE'],
  get: [2, 2, 'get REMOTE LOCAL'],
};

class BrokenPipe extends Error {}
class Interrupted extends Error {
  constructor(readonly signal: StopSignal) {
    super(`interrupted by ${signal}`);
  }
}

/** A one-line progress bar on stderr, only when stderr is a terminal. */
function progress(label: string, total: number | undefined): { tick(n: number): void; done(): void } {
  if (!process.stderr.isTTY) return { tick: () => undefined, done: () => undefined };
  let seen = 0;
  const draw = (): void => {
    const pct = total ? Math.min(100, Math.floor((seen / total) * 100)) : undefined;
    const width = 30;
    const bar = pct === undefined ? '' : `[${'#'.repeat(Math.floor((pct / 100) * width)).padEnd(width)}] ${pct}% `;
    process.stderr.write(`\r${label} ${bar}${(seen / 1e6).toFixed(1)} MB`);
  };
  return {
    tick: (n) => {
      seen += n;
      draw();
    },
    done: () => process.stderr.write('\n'),
  };
}

/** Writes to stdout at the reader's pace (each write waits until it is taken); BrokenPipe once the reader is gone. */
function stdoutWriter(): { write(data: Uint8Array | string): Promise<void>; detach(): void } {
  const onError = (): void => undefined; // reported to the write's callback
  process.stdout.on('error', onError);
  return {
    write: (data) =>
      new Promise<void>((resolve, reject) => {
        if (process.stdout.destroyed) return reject(new BrokenPipe());
        process.stdout.write(data, (err) => (err ? reject(new BrokenPipe()) : resolve()));
      }),
    detach: () => process.stdout.off('error', onError),
  };
}

/** A stop signal (SIGINT, SIGTERM, SIGHUP) while a transfer runs: remembered, checked between blocks. */
function watchSignals(): { check(): void; promise: Promise<never>; detach(): void } {
  let caught: StopSignal | undefined;
  let reject!: (err: Error) => void;
  const promise = new Promise<never>((_, r) => (reject = r));
  promise.catch(() => undefined);
  const offs = (Object.keys(SIGNAL_NUMBERS) as StopSignal[]).map((signal) => {
    const handler = (): void => {
      caught ??= signal;
      reject(new Interrupted(signal));
    };
    process.on(signal, handler);
    return () => process.off(signal, handler);
  });
  return {
    check: () => {
      if (caught) throw new Interrupted(caught);
    },
    promise,
    detach: () => offs.forEach((off) => off()),
  };
}

const abs = (p: string): string => (p.startsWith('file:') ? p : path.resolve(p));

/** A name next to `target` for the file being written, renamed onto `target` when complete. */
const partialName = (target: string): string =>
  path.join(path.dirname(target), `.${path.basename(target)}.cordon-${randomBytes(4).toString('hex')}.part`);

async function put(fs: FileSystem, local: string, remote: string, signals: ReturnType<typeof watchSignals>): Promise<void> {
  const source = await stat(local);
  if (source.isDirectory()) throw new Error(`${local} is a directory`);
  const bar = progress(`put ${path.basename(local)}`, source.size);
  // Onto a directory: into it, under the local file's name (as cp does).
  const target = await fs.getMetadata(abs(remote)).then(
    (m) => (m.isDirectory ? path.join(abs(remote), path.basename(local)) : abs(remote)),
    () => abs(remote),
  );
  const partial = partialName(target);
  // The copy keeps the source's permission bits.
  const { handle } = await fs.openWithMode(partial, 'write', { permissions: source.mode & 0o777 });
  let complete = false;
  const input = createReadStream(local, { highWaterMark: BLOCK });
  try {
    let offset = 0;
    try {
      const chunks = input[Symbol.asyncIterator]();
      for (;;) {
        // Waiting for input (a pipe, a FIFO) is interruptible too.
        const next = await Promise.race([chunks.next(), signals.promise]);
        if (next.done) break;
        const chunk = next.value as Buffer;
        signals.check();
        await Promise.race([fs.writeBlock(handle, offset, chunk), signals.promise]);
        offset += chunk.length;
        bar.tick(chunk.length);
      }
    } finally {
      input.destroy();
      await fs.close(handle).catch(() => undefined);
      bar.done();
    }
    signals.check();
    await fs.rename(partial, target);
    complete = true;
  } finally {
    if (!complete) await fs.remove(partial, { recursive: false, force: true }).catch(() => undefined);
  }
}

async function get(fs: FileSystem, remote: string, local: string, signals: ReturnType<typeof watchSignals>): Promise<void> {
  const source = abs(remote);
  // Onto a directory: into it, under the remote file's name (as cp does).
  const into = await stat(local).then(
    (s) => s.isDirectory(),
    () => false,
  );
  const target = into ? path.join(local, path.basename(source)) : local;
  const meta = await fs.getMetadata(source);
  if (meta.isDirectory) throw new Error(`${source} is a directory`);
  const bar = progress(`get ${path.basename(source)}`, meta.size);
  const { handle, permissions } = await fs.openWithMode(source, 'read', {});
  const partial = partialName(target);
  let complete = false;
  try {
    const out = await open(partial, 'wx');
    try {
      // The copy keeps the source's permission bits (a server that does not say: the umask's default).
      if (!Number.isNaN(permissions)) await out.chmod(permissions);
      for (let offset = 0; ; ) {
        signals.check();
        const { data, eof } = await Promise.race([fs.readBlock(handle, offset, BLOCK), signals.promise]);
        if (data.length) await out.write(data, 0, data.length, offset);
        offset += data.length;
        bar.tick(data.length);
        if (eof || data.length === 0) break;
      }
    } finally {
      await out.close();
      bar.done();
    }
    signals.check();
    await rename(partial, target);
    complete = true;
  } finally {
    await fs.close(handle).catch(() => undefined);
    if (!complete) await rm(partial, { force: true });
  }
}

/** `cordon fs ls|cat|put|get|rm|stat`: poke at a remote executor's files by hand. */
export async function runFs(verb: string, paths: string[], opts: FsCommandOptions): Promise<number> {
  const complain = (text: string): void => void process.stderr.write(`cordon fs ${verb}: ${text}\n`);
  const arity = ARITY[verb];
  if (!arity) {
    process.stderr.write(`cordon fs: unknown command ${verb}: use ls, cat, stat, rm, put or get\n`);
    return EXIT_USAGE;
  }
  const [min, max, usage] = arity;
  if (paths.length < min || paths.length > max) {
    complain(`${paths.length < min ? 'missing' : 'too many'} arguments\nusage: cordon fs ${usage}`);
    return EXIT_USAGE;
  }
  let env: Environment | undefined;
  let reraise: StopSignal | undefined;
  const out = stdoutWriter();
  const signals = watchSignals();
  try {
    // No resume: a request in flight fails with the connection anyway, so say so at once.
    env = opts.url
      ? await connectRemote({ url: opts.url, ...(opts.tokenFile ? { tokenFile: opts.tokenFile } : {}) }, 'cordon-fs', { reconnect: false })
      : new (await import('../local/local-environment.js')).LocalEnvironment();
    const fs = env.fs;
    const work = async (): Promise<void> => {
      switch (verb) {
        case 'ls':
          for (const p of paths.length ? paths : ['.']) {
            const entries = await fs.readDirectory(abs(p));
            for (const e of entries.sort((a, b) => a.fileName.localeCompare(b.fileName)))
              await out.write(`${e.fileName}${e.isDirectory ? '/' : ''}\n`);
          }
          break;
        case 'cat':
          for (const p of paths) {
            const handle = await fs.open(abs(p), 'read');
            try {
              for (let offset = 0; ; ) {
                signals.check();
                const { data, eof } = await Promise.race([fs.readBlock(handle, offset, BLOCK), signals.promise]);
                if (data.length) await out.write(data);
                offset += data.length;
                if (eof || data.length === 0) break;
              }
            } finally {
              await fs.close(handle).catch(() => undefined);
            }
          }
          break;
        case 'stat':
          for (const p of paths) await out.write(`${JSON.stringify({ path: abs(p), ...(await fs.getMetadata(abs(p))) })}\n`);
          break;
        case 'rm':
          for (const p of paths) await fs.remove(abs(p), { recursive: true, force: false });
          break;
        case 'put':
          await put(fs, paths[0] as string, paths[1] as string, signals);
          break;
        case 'get':
          await get(fs, paths[0] as string, paths[1] as string, signals);
          break;
      }
    };
    // put and get stop between blocks and clean up after themselves; the rest stop at once.
    await (verb === 'put' || verb === 'get' ? work() : Promise.race([work(), signals.promise]));
    return 0;
  } catch (err) {
    if (err instanceof BrokenPipe) return EXIT_BROKEN_PIPE;
    if (err instanceof Interrupted) {
      reraise = err.signal;
      return 128 + SIGNAL_NUMBERS[err.signal];
    }
    complain(err instanceof Error ? err.message : String(err));
    return EXIT_FAILED;
  } finally {
    signals.detach();
    out.detach();
    await env?.close();
    if (reraise) {
      // Cleaned up: now die of the signal, as an interrupted command does (the shell shows 128+n).
      // Exiting normally could wait forever on a read blocked in the thread pool (a FIFO's).
      await flushStdio();
      process.kill(process.pid, reraise);
    }
  }
}
