import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A minimal MCP server over streamable HTTP (JSON-RPC in a POST, answered with a JSON body) on
 * 127.0.0.1, with one tool, `http_probe`. It records the JSON-RPC methods it was called with.
 */

type Json = Record<string, any>;

export interface McpHttpServer {
  readonly url: string;
  readonly methods: string[];
  close(): Promise<void>;
}

function answer(msg: Json): Json | undefined {
  switch (msg.method) {
    case 'initialize':
      return {
        protocolVersion: msg.params?.protocolVersion ?? '2025-06-18',
        capabilities: { tools: {} },
        serverInfo: { name: 'cordon-e2e-http', version: '1.0.0' },
      };
    case 'tools/list':
      return {
        tools: [
          {
            name: 'http_probe',
            description: 'Echoes its text argument.',
            inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
          },
        ],
      };
    case 'tools/call':
      return { content: [{ type: 'text', text: `http probe: ${msg.params?.arguments?.text}` }] };
    case 'ping':
      return {};
    default:
      return undefined;
  }
}

export async function startMcpHttpServer(): Promise<McpHttpServer> {
  const methods: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      let msg: Json;
      try {
        msg = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json;
      } catch {
        res.writeHead(400).end();
        return;
      }
      methods.push(String(msg.method));
      if (msg.id === undefined) {
        res.writeHead(202).end();
        return;
      }
      const result = answer(msg);
      const reply =
        result === undefined
          ? { jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: `method not found: ${msg.method}` } }
          : { jsonrpc: '2.0', id: msg.id, result };
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'e2e-session' });
      res.end(JSON.stringify(reply));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    methods,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
