import { createReadStream, createWriteStream, statSync } from 'node:fs';
import path from 'node:path';
import { RemoteEnvironment } from '../client/remote-environment.js';
import type { Environment } from '../environment/types.js';
import { LocalEnvironment } from '../local/local-environment.js';
import { readToken } from './serve.js';

export interface FsCommandOptions {
  url?: string;
  tokenFile?: string;
}

const BLOCK = 4 * 1024 * 1024;

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

async function environmentFor(opts: FsCommandOptions): Promise<{ env: Environment }> {
  if (!opts.url) return { env: new LocalEnvironment() };
  const token = opts.tokenFile ? await readToken(opts.tokenFile) : undefined;
  const remote = await RemoteEnvironment.connect({ url: opts.url, clientName: 'cordon-fs', ...(token ? { token } : {}) });
  return { env: remote };
}

const abs = (p: string): string => (p.startsWith('file:') ? p : path.resolve(p));

/** `cordon fs ls|cat|put|get|rm|stat`: poke at a remote executor's files by hand. */
export async function runFs(verb: string, paths: string[], opts: FsCommandOptions): Promise<number> {
  let env: Environment | undefined;
  try {
    const connected = await environmentFor(opts);
    env = connected.env;
    const fs = env.fs;
    switch (verb) {
      case 'ls':
        for (const p of paths.length ? paths : ['.']) {
          const entries = await fs.readDirectory(abs(p));
          for (const e of entries.sort((a, b) => a.fileName.localeCompare(b.fileName))) process.stdout.write(`${e.fileName}${e.isDirectory ? '/' : ''}\n`);
        }
        return 0;
      case 'cat':
        for (const p of paths) {
          const handle = await fs.open(abs(p), 'read');
          try {
            for (let offset = 0; ; ) {
              const { data, eof } = await fs.readBlock(handle, offset, BLOCK);
              if (data.length) process.stdout.write(data);
              offset += data.length;
              if (eof || data.length === 0) break;
            }
          } finally {
            await fs.close(handle);
          }
        }
        return 0;
      case 'stat':
        for (const p of paths) process.stdout.write(`${JSON.stringify({ path: abs(p), ...(await fs.getMetadata(abs(p))) })}\n`);
        return 0;
      case 'rm':
        for (const p of paths) await fs.remove(abs(p), { recursive: true, force: false });
        return 0;
      case 'put': {
        const [local, remote] = paths;
        if (!local || !remote) throw new Error('usage: cordon fs put LOCAL REMOTE');
        const bar = progress(`put ${path.basename(local)}`, statSync(local).size);
        const handle = await fs.open(abs(remote), 'write');
        let offset = 0;
        try {
          for await (const chunk of createReadStream(local, { highWaterMark: BLOCK })) {
            await fs.writeBlock(handle, offset, chunk as Buffer);
            offset += (chunk as Buffer).length;
            bar.tick((chunk as Buffer).length);
          }
        } finally {
          await fs.close(handle);
          bar.done();
        }
        return 0;
      }
      case 'get': {
        const [remote, local] = paths;
        if (!remote || !local) throw new Error('usage: cordon fs get REMOTE LOCAL');
        const meta = await fs.getMetadata(abs(remote));
        const bar = progress(`get ${path.basename(remote)}`, meta.size);
        const out = createWriteStream(local);
        const handle = await fs.open(abs(remote), 'read');
        try {
          for (let offset = 0; ; ) {
            const { data, eof } = await fs.readBlock(handle, offset, BLOCK);
            if (data.length && !out.write(data)) await new Promise<void>((r) => out.once('drain', () => r()));
            offset += data.length;
            bar.tick(data.length);
            if (eof || data.length === 0) break;
          }
        } finally {
          await fs.close(handle);
          await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
          bar.done();
        }
        return 0;
      }
      default:
        throw new Error(`unknown fs command ${verb}: use ls, cat, put, get, rm or stat`);
    }
  } catch (err) {
    process.stderr.write(`cordon fs ${verb}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await env?.close();
  }
}
