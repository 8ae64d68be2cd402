import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the OpenAI Responses API (`POST /v1/responses`, streamed as server-sent events)
 * that answers each request with the next scripted turn. The Codex CLI sends one request per
 * model turn; after a tool call it sends the next request carrying the tool's output, which the
 * test reads back from `requests`.
 */

export type Json = Record<string, any>;

/**
 * One model turn: the output items the model "produces" before the response completes, or a
 * function choosing them from the request (e.g. to call a tool under the name the CLI listed).
 */
export type Turn = Json[] | ((request: Json) => Json[]);

export interface MockModel {
  readonly url: string;
  /** Bodies of every `POST /v1/responses`, in order. */
  readonly requests: Json[];
  /** Every request line the CLI sent (method and path), to spot unexpected calls. */
  readonly seen: string[];
  close(): Promise<void>;
}

export function functionCall(callId: string, name: string, args: Json): Json {
  return { type: 'function_call', id: `fc_${callId}`, call_id: callId, name, arguments: JSON.stringify(args) };
}

export function customToolCall(callId: string, name: string, input: string): Json {
  return { type: 'custom_tool_call', id: `ctc_${callId}`, call_id: callId, name, input };
}

export function assistantMessage(text: string): Json {
  return { type: 'message', role: 'assistant', id: `msg_${text.length}`, content: [{ type: 'output_text', text }] };
}

function sseEvent(data: Json): string {
  return `event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

function turnStream(responseId: string, items: Json[]): string {
  const usage = { input_tokens: 1, input_tokens_details: null, output_tokens: 1, output_tokens_details: null, total_tokens: 2 };
  return [
    sseEvent({ type: 'response.created', response: { id: responseId } }),
    ...items.map((item) => sseEvent({ type: 'response.output_item.done', item })),
    sseEvent({ type: 'response.completed', response: { id: responseId, usage } }),
  ].join('');
}

/**
 * Starts the mock on 127.0.0.1. `turns` are played in order; once they run out every further
 * request gets a plain "done" message, so a CLI that asks again still finishes its run.
 */
export async function startMockModel(turns: Turn[]): Promise<MockModel> {
  const requests: Json[] = [];
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url?.endsWith('/responses')) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json;
        requests.push(body);
        const turn = turns[requests.length - 1] ?? [assistantMessage('done')];
        let items: Json[];
        try {
          items = typeof turn === 'function' ? turn(body) : turn;
        } catch (err) {
          items = [assistantMessage(`mock model: ${(err as Error).message}`)];
        }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.end(turnStream(`resp_${requests.length}`, items));
        return;
      }
      if (req.method === 'GET' && req.url?.includes('/models')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ models: [] }));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `mock model: no route for ${req.method} ${req.url}` } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The output the CLI sent back for tool call `callId` (function or custom tool), if any. */
export function toolOutput(requests: Json[], callId: string): string | undefined {
  for (const body of requests) {
    for (const item of (body.input ?? []) as Json[]) {
      if ((item.type === 'function_call_output' || item.type === 'custom_tool_call_output') && item.call_id === callId) {
        const out = item.output;
        if (typeof out === 'string') return out;
        if (Array.isArray(out)) return out.map((p: Json) => p.text ?? '').join('');
        if (out && typeof out.content === 'string') return out.content;
        return JSON.stringify(out);
      }
    }
  }
  return undefined;
}
