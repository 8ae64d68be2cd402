import { createInterface } from 'node:readline';
import { ErrorCode, RpcError } from '../protocol/errors.js';
import type { FsWorkerMessage, FsWorkerRequest } from '../sandbox/fs-worker-protocol.js';
import { ClientFileHandles } from './client-file-handles.js';
import { getMetadataSync, LocalFileSystem } from './file-system.js';

/**
 * A sandboxed fs worker: runs under bubblewrap with a client's profile and performs file operations
 * for the server, so the kernel decides what they may touch. Requests arrive on stdin, answers and
 * watch events leave on stdout, one JSON object per line.
 */
const fs = new LocalFileSystem({
  maxOpenFiles: 256,
  maxBlockBytes: 16 * 1024 * 1024,
  maxWatches: 256,
  watchCoalesceMs: 50,
  maxPendingWatchPaths: 10_000,
});
/** Client-named handles of every session this worker serves (each session bounds its own). */
const files = new ClientFileHandles(4096);
const send = (m: FsWorkerMessage): void => void process.stdout.write(`${JSON.stringify(m)}\n`);
fs.subscribeChanges((c) => send({ event: 'change', watchId: c.watchId, path: c.path, kind: c.kind }));

async function perform(r: FsWorkerRequest): Promise<unknown> {
  switch (r.op) {
    case 'readFile':
      return (await fs.readFile(r.path)).toString('base64');
    case 'writeFile':
      return fs.writeFile(r.path, Buffer.from(r.data, 'base64'));
    case 'createDirectory':
      return fs.createDirectory(r.path, { recursive: r.recursive });
    case 'getMetadata':
      return getMetadataSync(r.path);
    case 'readDirectory':
      return fs.readDirectory(r.path);
    case 'remove':
      return fs.remove(r.path, { recursive: r.recursive, force: r.force });
    case 'copy':
      return fs.copy(r.sourcePath, r.destinationPath, { recursive: r.recursive });
    case 'canonicalize':
      return fs.canonicalize(r.path);
    case 'rename':
      return fs.rename(r.sourcePath, r.destinationPath);
    case 'open':
      return fs.openWithMode(r.path, r.mode, { permissions: r.permissions });
    case 'readBlock': {
      const { data, eof } = await fs.readBlock(r.handle, r.offset, r.length);
      return { data: data.toString('base64'), eof };
    }
    case 'writeBlock':
      return fs.writeBlock(r.handle, r.offset, Buffer.from(r.data, 'base64'));
    case 'close':
      return fs.close(r.handle);
    case 'watch':
      return fs.watch(r.path, { recursive: r.recursive });
    case 'unwatch':
      return fs.unwatch(r.watchId);
    case 'walk':
      return fs.walk(r.path, r.options);
    case 'openFile':
      return files.open(r.handleId, r.path, r.mode);
    case 'readFileBlock': {
      const { data, eof } = await files.readBlock(r.handleId, r.offset, r.length);
      return { data: data.toString('base64'), eof };
    }
    case 'writeFileBlock':
      return files.writeBlock(r.handleId, r.offset, Buffer.from(r.data, 'base64'));
    case 'closeFile':
      return files.close(r.handleId);
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  let request: FsWorkerRequest;
  try {
    request = JSON.parse(line) as FsWorkerRequest;
  } catch {
    return;
  }
  perform(request).then(
    (result) => send({ id: request.id, ok: true, result: result ?? null }),
    (err: unknown) => {
      const e = err instanceof RpcError ? err : new RpcError(ErrorCode.Internal, err instanceof Error ? err.message : String(err));
      send({ id: request.id, ok: false, code: e.code, message: e.message });
    },
  );
});
lines.on('close', () => process.exit(0));
send({ event: 'ready' });
