/** JSON-RPC envelopes as the reference frames them: no `"jsonrpc"` key, ids echoed verbatim. */

export type RequestId = string | number;

export type IncomingMessage =
  | { kind: 'request'; id: RequestId; method: string; params: unknown }
  | { kind: 'notification'; method: string; params: unknown }
  | { kind: 'response'; id: RequestId | null }
  | { kind: 'invalid'; reason: string };

const NO_VARIANT = 'data did not match any variant of untagged enum JSONRPCMessage';

const isId = (v: unknown): v is RequestId => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

/** Classifies one decoded JSON value. Never throws. */
export function classifyMessage(value: unknown): IncomingMessage {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { kind: 'invalid', reason: NO_VARIANT };
  const msg = value as Record<string, unknown>;
  if (typeof msg.method === 'string') {
    if ('id' in msg && msg.id !== undefined) {
      if (msg.id === null) return { kind: 'invalid', reason: 'request id must be a string or an integer, not null' };
      if (!isId(msg.id)) return { kind: 'invalid', reason: NO_VARIANT };
      return { kind: 'request', id: msg.id, method: msg.method, params: msg.params };
    }
    return { kind: 'notification', method: msg.method, params: msg.params };
  }
  if ('result' in msg || 'error' in msg) return { kind: 'response', id: isId(msg.id) ? msg.id : null };
  return { kind: 'invalid', reason: NO_VARIANT };
}

/** Parses one frame's text. Returns the parser's complaint instead of throwing. */
export function parseMessage(text: string): IncomingMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { kind: 'invalid', reason: err instanceof Error ? err.message : String(err) };
  }
  return classifyMessage(value);
}

export function encodeResult(id: RequestId, result: unknown): string {
  return `{"id":${JSON.stringify(id)},"result":${JSON.stringify(result)}}`;
}

export function encodeError(id: RequestId, code: number, message: string): string {
  return `{"error":{"code":${code},"message":${JSON.stringify(message)}},"id":${JSON.stringify(id)}}`;
}

export function encodeNotification(method: string, params: unknown): string {
  return `{"method":${JSON.stringify(method)},"params":${JSON.stringify(params)}}`;
}

export function encodeRequest(id: RequestId, method: string, params: unknown): string {
  return `{"id":${JSON.stringify(id)},"method":${JSON.stringify(method)},"params":${JSON.stringify(params ?? null)}}`;
}
