import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ExecServerClient } from '../src/client/exec-server-client.js';
import type { CordonServer } from '../src/server/index.js';
import { eventually, RawClient, startServer, tempDir } from './helpers.js';

describe('fs over the wire', () => {
  let server: CordonServer;
  let url: string;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  before(async () => {
    ({ server, url } = await startServer());
    tmp = await tempDir('cordon-fsw-');
  });
  after(async () => {
    await server.close();
    await tmp.cleanup();
  });

  it('gates fs methods on the handshake with the filesystem wording', async () => {
    const c = await RawClient.open(url);
    assert.deepEqual((await c.request('fs/readFile', { path: '/etc/hostname' })).error, {
      code: -32600,
      message: 'client must call initialize before using filesystem methods',
    });
    await c.request('initialize', { clientName: 'x' });
    assert.deepEqual((await c.request('fs/getMetadata', { path: '/' })).error, {
      code: -32600,
      message: 'client must send initialized before using filesystem methods',
    });
    c.close();
  });

  it('answers parameter, path, base64 and sandbox errors in the reference wording', async () => {
    const { client: c } = await RawClient.ready(url);
    const file = path.join(tmp.dir, 'w.txt');
    const err = async (method: string, params: unknown) => (await c.request(method, params)).error;
    assert.deepEqual(await err('fs/readFile', { path: 'relative/path.txt' }), {
      code: -32602,
      message: 'path is not absolute: relative/path.txt',
    });
    assert.deepEqual(await err('fs/readFile', { path: '' }), { code: -32602, message: 'path is not absolute: ' });
    assert.deepEqual(await err('fs/readFile', { path: null }), { code: -32602, message: 'invalid type: null, expected a string' });
    assert.deepEqual(await err('fs/readFile', {}), { code: -32602, message: 'missing field `path`' });
    assert.deepEqual(await err('fs/writeFile', { path: file }), { code: -32602, message: 'missing field `dataBase64`' });
    assert.deepEqual(await err('fs/writeFile', { path: file, dataBase64: '!!' }), {
      code: -32600,
      message: 'fs/writeFile requires valid base64 dataBase64: Invalid symbol 33, offset 0.',
    });
    assert.equal(existsSync(file), false);
    assert.deepEqual(await err('fs/copy', { sourcePath: file, destinationPath: file }), {
      code: -32602,
      message: 'missing field `recursive`',
    });
    const sandboxed = (sandbox: unknown) => err('fs/readFile', { path: '/etc/hostname', sandbox });
    assert.deepEqual(await sandboxed({ permissions: { type: 'bogus' }, windowsSandboxLevel: 'disabled' }), {
      code: -32602,
      message: 'data did not match any variant of untagged enum PermissionProfileDe',
    });
    assert.deepEqual(await sandboxed({ permissions: { type: 'disabled' } }), {
      code: -32602,
      message: 'missing field `windowsSandboxLevel`',
    });
    assert.deepEqual(await sandboxed({ windowsSandboxLevel: 'disabled' }), { code: -32602, message: 'missing field `permissions`' });
    assert.deepEqual(await sandboxed({ permissions: { type: 'disabled' }, windowsSandboxLevel: 'restrictedToken' }), {
      code: -32602,
      message: 'unknown variant `restrictedToken`, expected one of `disabled`, `restricted-token`, `elevated`, `mxc`',
    });
    const entry = (access: string) => ({
      type: 'managed',
      network: 'restricted',
      file_system: { type: 'restricted', entries: [{ path: { type: 'special', value: { kind: 'root' } }, access }] },
    });
    assert.equal((await sandboxed({ permissions: entry('bogus'), windowsSandboxLevel: 'disabled' }))?.code, -32602);
    assert.equal(
      (
        await sandboxed({
          permissions: { type: 'managed', network: 'restricted', file_system: { type: 'restricted', entries: [], glob_scan_max_depth: 0 } },
          windowsSandboxLevel: 'disabled',
        })
      )?.code,
      -32602,
    );
    const denied = await sandboxed({ permissions: entry('none'), windowsSandboxLevel: 'disabled' });
    assert.ok(denied && [-32600, -32004].includes(denied.code), `root denied: the read is refused (${JSON.stringify(denied)})`);
    assert.equal(
      await sandboxed({ permissions: { file_system: { read: ['/'] } }, windowsSandboxLevel: 'disabled' }),
      undefined,
      'legacy untagged form parses and reads',
    );
    assert.deepEqual(
      (
        await c.request('fs/readFile', {
          path: '/etc/hostname',
          sandbox: { permissions: { type: 'disabled' }, windowsSandboxLevel: 'disabled' },
        })
      ).error,
      undefined,
    );
    assert.deepEqual((await c.request('fs/readFile', { path: '/etc/hostname', sandbox: null })).error, undefined);
    c.close();
  });

  it('accepts file:// URIs in every path field and answers in the form asked (URI for a URI, as 0.141+)', async () => {
    const { client: c } = await RawClient.ready(url);
    await mkdir(path.join(tmp.dir, 'uri'));
    await writeFile(path.join(tmp.dir, 'uri', 'a b.txt'), 'x');
    const uri = (p: string) => new URL(`file://${p.split('/').map(encodeURIComponent).join('/')}`).href;
    const r = await c.request('fs/readFile', { path: uri(path.join(tmp.dir, 'uri', 'a b.txt')) });
    assert.equal(Buffer.from(r.result.dataBase64, 'base64').toString(), 'x');
    await c.request('fs/copy', {
      sourcePath: uri(path.join(tmp.dir, 'uri', 'a b.txt')),
      destinationPath: uri(path.join(tmp.dir, 'uri', 'c.txt')),
      recursive: false,
    });
    assert.ok(existsSync(path.join(tmp.dir, 'uri', 'c.txt')));
    const canon = await c.request('fs/canonicalize', { path: uri(path.join(tmp.dir, 'uri')) });
    assert.equal(canon.result.path, pathToFileURL(realpathSync(path.join(tmp.dir, 'uri'))).href);
    const plain = await c.request('fs/canonicalize', { path: path.join(tmp.dir, 'uri') });
    assert.equal(plain.result.path, realpathSync(path.join(tmp.dir, 'uri')));
    c.close();
  });

  it('writes a large fs/writeFile exactly, and answers bad large base64 like small', async () => {
    const { client: c } = await RawClient.ready(url);
    const data = randomBytes(3 * 1024 * 1024 + 2);
    const b64 = data.toString('base64');
    const file = path.join(tmp.dir, 'large.bin');
    assert.deepEqual((await c.request('fs/writeFile', { path: file, dataBase64: b64 })).result, {});
    assert.ok((await readFile(file)).equals(data));
    // The same through a file:// URI, with the fields in another order and an escaped slash.
    const escaped = `{"id":9001,"method":"fs/writeFile","params":{"dataBase64":"${b64.replaceAll('/', '\\/')}","path":"file://${file}2"}}`;
    c.send(escaped);
    assert.deepEqual((await c.next((m) => m.id === 9001)).result, {});
    assert.ok((await readFile(`${file}2`)).equals(data));
    const bad = path.join(tmp.dir, 'bad.bin');
    const err = async (dataBase64: string) => (await c.request('fs/writeFile', { path: bad, dataBase64 })).error;
    const at = 2_500_001;
    assert.deepEqual(await err(`${b64.slice(0, at)}!${b64.slice(at + 1)}`), {
      code: -32600,
      message: `fs/writeFile requires valid base64 dataBase64: Invalid symbol 33, offset ${at}.`,
    });
    assert.deepEqual(await err(`${b64.slice(0, at)}-${b64.slice(at + 1)}`), {
      code: -32600,
      message: `fs/writeFile requires valid base64 dataBase64: Invalid symbol 45, offset ${at}.`,
    });
    assert.deepEqual(await err(b64.slice(0, -1)), {
      code: -32600,
      message: 'fs/writeFile requires valid base64 dataBase64: Invalid padding',
    });
    assert.equal(existsSync(bad), false);
    assert.deepEqual((await c.request('fs/writeFile', { path: 'relative.bin', dataBase64: b64 })).error, {
      code: -32602,
      message: 'path is not absolute: relative.bin',
    });
    c.close();
  });

  it('moves a 72 MiB file in blocks both ways with its hash intact', async () => {
    const client = await ExecServerClient.connect({ url });
    try {
      // Above every single-message bound (16 MiB frames, 48 MiB unsized reads), in many blocks.
      const size = 72 * 1024 * 1024 + 3;
      const data = randomBytes(size);
      const expected = createHash('sha256').update(data).digest('hex');
      const remotePath = path.join(tmp.dir, 'big.bin');
      const written = await client.fs.writeFileChunks(remotePath, data);
      assert.equal(written, size);
      const onDisk = createHash('sha256');
      for await (const chunk of createReadStream(remotePath)) onDisk.update(chunk as Buffer);
      assert.equal(onDisk.digest('hex'), expected, 'the server wrote every byte');
      const back = createHash('sha256');
      let total = 0;
      for await (const chunk of client.fs.readFileChunks(remotePath)) {
        back.update(chunk);
        total += chunk.length;
      }
      assert.equal(total, size);
      assert.equal(back.digest('hex'), expected, 'every byte came back');
    } finally {
      await client.close();
    }
  });

  it('streams a large fs/readFile as one message while a process floods output on the same connection', async () => {
    const size = 3 * 256 * 1024 * 13 + 2; // many read chunks, the last not a multiple of 3
    const data = randomBytes(size);
    const file = path.join(tmp.dir, 'streamed.bin');
    await writeFile(file, data);
    const client = await ExecServerClient.connect({ url });
    const { client: raw } = await RawClient.ready(url);
    try {
      const flood = 8 * 1024 * 1024;
      const { events } = await client.spawn({
        processId: 'flood',
        argv: ['head', '-c', String(flood), '/dev/zero'],
        cwd: '/tmp',
        env: { PATH: '/usr/bin:/bin' },
      });
      const output = (async () => {
        let bytes = 0;
        let lastSeq = 0;
        for await (const e of events) {
          assert.equal(e.seq, lastSeq + 1, 'seqs arrive in order, none lost');
          lastSeq = e.seq;
          if (e.type === 'output') bytes += e.data.length;
        }
        return bytes;
      })();
      const [a, b, meta] = await Promise.all([client.fs.readFile(file), client.fs.readFile(file), client.fs.getMetadata(file)]);
      assert.ok(a.equals(data) && b.equals(data), 'both reads returned the file exactly');
      assert.equal(meta.size, size);
      assert.equal(await output, flood);
      // A request larger than the server's 16 MiB frame bound goes out in fragments.
      const big = randomBytes(20 * 1024 * 1024);
      await client.fs.writeFile(file, big);
      assert.ok((await readFile(file)).equals(big));
      await writeFile(file, data);
      // A plain JSON client sees one well-formed message.
      const r = await raw.request('fs/readFile', { path: file });
      assert.ok(Buffer.from(r.result.dataBase64, 'base64').equals(data));
      // Small and /proc files (size 0) are read whole.
      const status = await client.fs.readFile('/proc/self/status');
      assert.match(status.toString(), /^Name:/);
      await writeFile(file, 'x');
      assert.equal((await client.fs.readFile(file)).toString(), 'x');
    } finally {
      await client.close();
      raw.close();
    }
  });

  it('closes the file of a streamed fs/readFile whose client went away midway', async () => {
    const file = path.join(tmp.dir, 'abandoned.bin');
    await writeFile(file, Buffer.alloc(96 * 1024 * 1024, 7));
    const openHere = () =>
      readdirSync('/proc/self/fd').some((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === file;
        } catch {
          return false;
        }
      });
    const { client: raw } = await RawClient.ready(url);
    raw.send({ id: 1, method: 'fs/readFile', params: { path: file } });
    await eventually(openHere, 5000, 'the server opened the file');
    raw.ws.terminate();
    await eventually(() => !openHere(), 5000, 'the server closed the file');
    // The server still answers others.
    const client = await ExecServerClient.connect({ url });
    try {
      assert.equal((await client.fs.getMetadata(file)).size, 96 * 1024 * 1024);
    } finally {
      await client.close();
    }
  });

  it('reads a FIFO without stalling other requests while it waits for a writer', async () => {
    const fifo = path.join(tmp.dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const client = await ExecServerClient.connect({ url });
    try {
      const reading = client.fs.readFile(fifo);
      // The server keeps answering while the read waits for a writer.
      assert.equal((await client.fs.getMetadata(tmp.dir)).isDirectory, true);
      const writer = spawn('sh', ['-c', `printf 'through a fifo' > '${fifo}'`]);
      const written = new Promise((resolve) => writer.once('exit', resolve));
      assert.equal((await reading).toString(), 'through a fifo');
      assert.equal(await written, 0);
      // And written to: with no reader yet the write waits (without stalling the server), then lands.
      const writing = client.fs.writeFile(fifo, Buffer.from('into a fifo'));
      assert.equal((await client.fs.getMetadata(fifo)).isFile, false);
      const reader = spawn('cat', [fifo]);
      let got = '';
      reader.stdout.on('data', (d: Buffer) => (got += d));
      const readerDone = new Promise((resolve) => reader.once('exit', resolve));
      await writing;
      await readerDone;
      assert.equal(got, 'into a fifo');
    } finally {
      await client.close();
    }
  });

  it('delivers fs/changed notifications and ends watches with the session', async () => {
    const client = await ExecServerClient.connect({ url });
    const dir = path.join(tmp.dir, 'watched');
    await mkdir(dir);
    const watch = await client.fs.watch(dir, { recursive: true });
    await writeFile(path.join(dir, 'new.txt'), 'x');
    const iterator = watch.events[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.deepEqual(first.value, { watchId: watch.watchId, path: path.join(dir, 'new.txt'), kind: 'created' });
    await watch.unwatch();
    assert.equal((await iterator.next()).done, true);
    await client.close();
  });
});
