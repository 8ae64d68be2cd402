import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { type WebSocket, WebSocketServer } from 'ws';
import { ExecServerClient } from '../src/client/exec-server-client.js';
import type { ProcessEvent } from '../src/environment/types.js';
import { eventually } from './helpers.js';

/**
 * The client's resume against a scripted server, so that a drop lands exactly where a random one
 * only sometimes does: during the catch-up read, after the resumed connection already carried a
 * live event newer than what the read is to recover.
 */

const output = (seq: number): { seq: number; stream: 'stdout'; chunk: string } => ({
  seq,
  stream: 'stdout',
  chunk: Buffer.from(`line ${seq}\n`).toString('base64'),
});

describe('client resume', () => {
  it('a drop during the catch-up read loses none of the output the read was to recover', async () => {
    const produced = 7; // seqs 1..7: 1-3 before the first drop, 4-6 while detached, 7 live on the resumed connection
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((r) => wss.once('listening', r));
    let connection = 0;
    const reads: number[] = [];
    wss.on('connection', (ws: WebSocket) => {
      const n = ++connection;
      const reply = (id: unknown, result: unknown): void => ws.send(JSON.stringify({ id, result }));
      ws.on('message', (raw) => {
        const msg = JSON.parse(String(raw)) as { id?: unknown; method: string; params: Record<string, unknown> };
        if (msg.method === 'initialize') {
          reply(msg.id, { sessionId: 'session-1' });
          // The resumed connection carries output produced after the resume at once.
          if (n === 2) ws.send(JSON.stringify({ method: 'process/output', params: { processId: 'p', ...output(7) } }));
        } else if (msg.method === 'process/start') {
          reply(msg.id, { processId: 'p' });
          for (let seq = 1; seq <= 3; seq++)
            ws.send(JSON.stringify({ method: 'process/output', params: { processId: 'p', ...output(seq) } }));
          ws.close(); // after the three notifications, in order
        } else if (msg.method === 'process/read') {
          const afterSeq = msg.params.afterSeq as number;
          reads.push(afterSeq);
          if (n === 2) return void ws.close(); // cut before the catch-up read is answered
          const chunks = Array.from({ length: produced - afterSeq }, (_, i) => output(afterSeq + 1 + i));
          reply(msg.id, {
            chunks,
            nextSeq: produced + 1,
            exited: false,
            exitCode: null,
            closed: false,
            failure: null,
            sandboxDenied: false,
          });
        }
      });
    });
    const client = await ExecServerClient.connect({
      url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
      reconnectAttempts: 5,
      reconnectDelayMs: 10,
    });
    const events: ProcessEvent[] = [];
    const gaps: unknown[] = [];
    let reconnected = 0;
    client.onEvent((e) => events.push(e));
    client.on('gap', (g) => gaps.push(g));
    client.on('reconnected', () => reconnected++);
    try {
      await client.startProcess({ processId: 'p', argv: ['true'], cwd: '/' });
      await eventually(() => reconnected === 1, 20_000, 'resumed on the third connection');
      assert.equal(connection, 3);
      assert.equal(reads[0], 3, 'the first catch-up read asks for what came after seq 3');
      assert.deepEqual(gaps, []);
      assert.deepEqual(
        events.map((e) => e.seq),
        [1, 2, 3, 4, 5, 6, 7],
        `every seq delivered once and in order (catch-up reads after: ${reads.join(', ')})`,
      );
      const text = Buffer.concat(events.flatMap((e) => (e.type === 'output' ? [e.data] : []))).toString();
      assert.equal(text, Array.from({ length: produced }, (_, i) => `line ${i + 1}\n`).join(''));
    } finally {
      await client.close();
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });
});
