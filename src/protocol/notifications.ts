import { frameWithBase64, type OutgoingMessage } from './envelope.js';
import type { Stream } from './process.js';

/** The three process notifications, in the reference's key order. */

/** The same notification as one frame, with the chunk's base64 written straight into it. */
export function encodeOutputFrame(processId: string, seq: number, stream: Stream, data: Buffer): OutgoingMessage {
  return frameWithBase64(
    `{"method":"process/output","params":{"processId":${JSON.stringify(processId)},"seq":${seq},"stream":"${stream}","chunk":"`,
    data,
    '"}}',
  );
}

/** `sandboxDenied` (0.143+) is sent to every client: older ones ignore it, as they ignore unknown fields. */
export function encodeExited(processId: string, seq: number, exitCode: number, sandboxDenied: boolean): string {
  return `{"method":"process/exited","params":{"processId":${JSON.stringify(processId)},"seq":${seq},"exitCode":${exitCode},"sandboxDenied":${sandboxDenied}}}`;
}

export function encodeClosed(processId: string, seq: number): string {
  return `{"method":"process/closed","params":{"processId":${JSON.stringify(processId)},"seq":${seq}}}`;
}
