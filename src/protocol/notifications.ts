import type { Stream } from './process.js';

/**
 * The three process notifications, encoded by hand: output chunks are the hot path and their base64
 * payload never needs JSON escaping, so it is spliced in rather than run through JSON.stringify.
 */
export function encodeOutput(processId: string, seq: number, stream: Stream, base64: string): string {
  return `{"method":"process/output","params":{"processId":${JSON.stringify(processId)},"seq":${seq},"stream":"${stream}","chunk":"${base64}"}}`;
}

export function encodeExited(processId: string, seq: number, exitCode: number): string {
  return `{"method":"process/exited","params":{"processId":${JSON.stringify(processId)},"seq":${seq},"exitCode":${exitCode}}}`;
}

export function encodeClosed(processId: string, seq: number): string {
  return `{"method":"process/closed","params":{"processId":${JSON.stringify(processId)},"seq":${seq}}}`;
}
