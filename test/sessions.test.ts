import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DisconnectedError } from '../src/client/errors.js';
import type { ClientProcessEvent } from '../src/client/exec-server-client.js';
import { ExecServerClient } from '../src/client/exec-server-client.js';
import { eventually, isAlive, type Json, RawClient, resumeWhenDetached, SH_ENV, sleep, startServer, tempDir } from './helpers.js';

describe('sessions: detach, resume, expiry', () => {
  it('keeps processes running across a disconnect; a resumed connection reads, writes and terminates them', async () => {
    const { server, url } = await startServer();
    try {
      const { client: a, sessionId } = await RawClient.ready(url);
      await a.request('process/start', {
        processId: 'bg',
        argv: ['sh', '-c', 'echo before; read x; echo after:$x; exit 4'],
        cwd: '/tmp',
        env: SH_ENV,
        tty: false,
        pipeStdin: true,
      });
      await a.next((m) => m.method === 'process/output');
      await a.request('process/start', { processId: 'long', argv: ['sleep', '30'], cwd: '/tmp', env: SH_ENV, tty: false });
      a.ws.terminate();
      await a.closed;
      const { client: b, sessionId: resumed } = await resumeWhenDetached(url, sessionId);
      assert.equal(resumed, sessionId);
      assert.deepEqual((await b.request('process/write', { processId: 'bg', chunk: Buffer.from('later\n').toString('base64') })).result, {
        status: 'accepted',
      });
      await b.untilClosed('bg');
      const read = await b.request('process/read', { processId: 'bg', afterSeq: null });
      assert.equal(
        Buffer.concat(read.result.chunks.map((c: { chunk: string }) => Buffer.from(c.chunk, 'base64'))).toString(),
        'before\nafter:later\n',
      );
      assert.equal(read.result.exitCode, 4);
      assert.deepEqual(
        (await b.request('process/start', { processId: 'bg', argv: ['true'], cwd: '/tmp', env: SH_ENV, tty: false })).error,
        {
          code: -32600,
          message: 'process bg already exists',
        },
      );
      assert.deepEqual((await b.request('process/terminate', { processId: 'long' })).result, { running: true });
      await b.untilClosed('long');
      b.close();
    } finally {
      await server.close();
    }
  });

  it('refuses to resume a session attached to a live connection, and unknown sessions', async () => {
    const { server, url } = await startServer();
    try {
      const { client: a, sessionId } = await RawClient.ready(url);
      const b = await RawClient.open(url);
      assert.deepEqual((await b.request('initialize', { clientName: 'b', resumeSessionId: sessionId })).error, {
        code: -32010,
        message: `session ${sessionId} is already attached to another connection`,
      });
      a.close();
      await a.closed;
      // Until the server has noticed the first connection is gone, the session is still attached (-32010).
      let retry: Json = {};
      await eventually(
        async () => {
          retry = await b.request('initialize', { clientName: 'b', resumeSessionId: sessionId });
          return retry.error?.code !== -32010;
        },
        10_000,
        'the server to notice the first connection is gone',
      );
      assert.equal(retry.result.sessionId, sessionId, 'retry after the failure works once the first connection is gone');
      b.close();
    } finally {
      await server.close();
    }
  });

  it('kills every process group of a session whose grace period ends, and forgets the session', async () => {
    const { server, url } = await startServer({ sessionGraceMs: 300 });
    const tmp = await tempDir();
    try {
      const { client: a, sessionId } = await RawClient.ready(url);
      const pidFile = path.join(tmp.dir, 'pids');
      await a.request('process/start', {
        processId: 'g',
        argv: ['sh', '-c', `sleep 60 & echo $$ $! > ${pidFile}; trap '' TERM HUP INT; wait`],
        cwd: '/tmp',
        env: SH_ENV,
        tty: false,
      });
      await a.request('process/start', {
        processId: 't',
        argv: ['sh', '-c', `echo $$ > ${pidFile}.tty; sleep 60`],
        cwd: '/tmp',
        env: SH_ENV,
        tty: true,
      });
      await eventually(
        () => existsSync(pidFile) && existsSync(`${pidFile}.tty`) && readFileSync(`${pidFile}.tty`, 'utf8').includes('\n'),
        5000,
        'pid files',
      );
      const pids = [...readFileSync(pidFile, 'utf8').trim().split(' '), readFileSync(`${pidFile}.tty`, 'utf8').trim()].map(Number);
      assert.ok(pids.every(isAlive));
      a.ws.terminate();
      await sleep(150);
      assert.ok(pids.every(isAlive), 'still alive within the grace period');
      await eventually(() => pids.every((p) => !isAlive(p)), 5000, 'processes to be killed after the grace period');
      const b = await RawClient.open(url);
      assert.deepEqual((await b.request('initialize', { clientName: 'b', resumeSessionId: sessionId })).error, {
        code: -32600,
        message: `unknown session id ${sessionId}`,
      });
      b.close();
    } finally {
      await server.close();
      await tmp.cleanup();
    }
  });

  it('resumes as the 0.171 CLI does: read after the last seq, then notifications continue; watches and open files survive', async () => {
    const { server, url } = await startServer();
    const tmp = await tempDir('cordon-resume-');
    try {
      const go = path.join(tmp.dir, 'go');
      const wroteTwo = path.join(tmp.dir, 'wrote-two');
      const script = `echo one; while [ ! -e ${go} ]; do sleep 0.02; done; echo two; : > ${wroteTwo}; while [ ! -e ${go}2 ]; do sleep 0.02; done; echo three; exit 5`;
      writeFileSync(path.join(tmp.dir, 'data.txt'), 'HANDLE-DATA');
      mkdirSync(path.join(tmp.dir, 'watched'));
      const { client: a, sessionId } = await RawClient.ready(url);
      const processId = '18279-ddde6b16-d7bd-45c0-9fbd-2bf6659110d8';
      assert.ok(
        (await a.request('process/start', { processId, argv: ['/bin/sh', '-c', script], cwd: tmp.dir, env: SH_ENV, tty: false })).result,
      );
      const first = await a.next((m) => m.method === 'process/output');
      assert.equal(first.params.seq, 1);
      const { watchId } = (await a.request('fs/watch', { path: path.join(tmp.dir, 'watched'), recursive: false })).result;
      const { handle } = (await a.request('fs/open', { path: path.join(tmp.dir, 'data.txt'), mode: 'read' })).result;
      a.ws.terminate();
      await a.closed;
      // Output produced while no connection is attached is retained for the resume.
      writeFileSync(go, '');
      writeFileSync(path.join(tmp.dir, 'watched', 'while-away.txt'), 'x');
      await eventually(() => existsSync(wroteTwo), 10_000, 'the process to print while detached');
      const b = await RawClient.open(url);
      const init = await b.request('initialize', { clientName: 'codex-environment', resumeSessionId: sessionId });
      assert.equal(init.result.sessionId, sessionId);
      b.send({ method: 'initialized', params: {} });
      const away = await b.next((m) => m.method === 'fs/changed' && m.params.path === path.join(tmp.dir, 'watched', 'while-away.txt'));
      assert.equal(away.params.watchId, watchId, 'a change made while detached is delivered after the resume');
      assert.ok(b.received.indexOf(init) < b.received.indexOf(away), 'after the initialize answer');
      const caughtUp = await b.request('process/read', { processId, afterSeq: 1, maxBytes: null, waitMs: 0 });
      assert.deepEqual(
        caughtUp.result.chunks.map((c: { seq: number; chunk: string }) => [c.seq, Buffer.from(c.chunk, 'base64').toString()]),
        [[2, 'two\n']],
      );
      assert.equal(caughtUp.result.nextSeq, 3);
      assert.equal(caughtUp.result.exited, false);
      writeFileSync(`${go}2`, '');
      const notes = await b.untilClosed(processId);
      assert.deepEqual(
        notes.map((m) => [m.method, m.params.seq]),
        [
          ['process/output', 3],
          ['process/exited', 4],
          ['process/closed', 5],
        ],
      );
      assert.equal(Buffer.from(notes[0]!.params.chunk, 'base64').toString(), 'three\n');
      assert.equal(notes[1]!.params.exitCode, 5);
      // The watch registered on the first connection reports to the second.
      writeFileSync(path.join(tmp.dir, 'watched', 'new.txt'), 'x');
      const change = await b.next((m) => m.method === 'fs/changed' && m.params.watchId === watchId && m.params.path.endsWith('new.txt'));
      assert.equal(change.params.path, path.join(tmp.dir, 'watched', 'new.txt'));
      // The file opened on the first connection still reads.
      const block = await b.request('fs/readBlock', { handle, offset: 0, length: 64 });
      assert.equal(Buffer.from(block.result.dataBase64, 'base64').toString(), 'HANDLE-DATA');
      assert.deepEqual((await b.request('fs/close', { handle })).result, {});
      b.close();
    } finally {
      await server.close();
      await tmp.cleanup();
    }
  });

  it('client: after a dropped connection it resumes and delivers every byte exactly once, in order', async () => {
    const { server, url } = await startServer();
    try {
      const client = await ExecServerClient.connect({ url });
      const lines = 3000;
      const { events } = await client.spawn({
        processId: 'stream',
        argv: [
          'sh',
          '-c',
          `i=1; while [ $i -le ${lines} ]; do echo "line $i"; i=$((i+1)); [ $((i % 200)) -eq 0 ] && sleep 0.02; done; exit 0`,
        ],
        cwd: '/tmp',
        env: SH_ENV,
      });
      const seen: ClientProcessEvent[] = [];
      let reconnected = 0;
      client.on('reconnected', () => reconnected++);
      for await (const e of events) {
        seen.push(e);
        if (seen.length === 5 || seen.length === 40) client.dropConnection();
      }
      const seqs = seen.map((e) => e.seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((x, y) => x - y),
        'in seq order',
      );
      assert.equal(new Set(seqs).size, seqs.length, 'no duplicates');
      const text = Buffer.concat(seen.flatMap((e) => (e.type === 'output' ? [e.data] : []))).toString();
      const expected = Array.from({ length: lines }, (_, i) => `line ${i + 1}\n`).join('');
      assert.equal(text, expected);
      assert.equal(seen.at(-1)?.type, 'closed');
      const exited = seen.find((e) => e.type === 'exited');
      assert.ok(exited && exited.type === 'exited' && exited.exitCode === 0);
      assert.ok(reconnected >= 1, 'it did reconnect');
      await client.close();
    } finally {
      await server.close();
    }
  });

  it('client: requests in flight when the connection drops fail promptly with a disconnected error', async () => {
    const { server, url } = await startServer();
    try {
      const client = await ExecServerClient.connect({ url, reconnect: false });
      await client.startProcess({ processId: 's', argv: ['sleep', '30'], cwd: '/tmp', env: SH_ENV });
      const t0 = Date.now();
      const poll = client.read('s', { afterSeq: 0, waitMs: 20_000 });
      await sleep(50);
      client.dropConnection();
      await assert.rejects(poll, DisconnectedError);
      assert.ok(Date.now() - t0 < 15_000, 'failed only when the 20 s poll would have ended');
      await assert.rejects(client.environmentInfo(), DisconnectedError);
    } finally {
      await server.close();
    }
  });
});
