import type { WalkOptions } from '../environment/types.js';
import type { OpenFileMode } from '../protocol/methods-0171.js';

/** The line protocol between the server and a sandboxed fs worker: one JSON object per line. */

export type FsWorkerOp =
  | { op: 'readFile'; path: string }
  | { op: 'writeFile'; path: string; data: string }
  | { op: 'createDirectory'; path: string; recursive: boolean }
  | { op: 'getMetadata'; path: string }
  | { op: 'readDirectory'; path: string }
  | { op: 'remove'; path: string; recursive: boolean; force: boolean }
  | { op: 'copy'; sourcePath: string; destinationPath: string; recursive: boolean }
  | { op: 'canonicalize'; path: string }
  | { op: 'rename'; sourcePath: string; destinationPath: string }
  | { op: 'open'; path: string; mode: 'read' | 'write'; permissions: number | null }
  | { op: 'readBlock'; handle: string; offset: number; length: number }
  | { op: 'writeBlock'; handle: string; offset: number; data: string }
  | { op: 'close'; handle: string }
  | { op: 'watch'; path: string; recursive: boolean }
  | { op: 'unwatch'; watchId: string }
  | { op: 'walk'; path: string; options: WalkOptions }
  | { op: 'openFile'; handleId: string; path: string; mode: OpenFileMode }
  | { op: 'readFileBlock'; handleId: string; offset: number; length: number }
  | { op: 'writeFileBlock'; handleId: string; offset: number; data: string }
  | { op: 'closeFile'; handleId: string };

export type FsWorkerRequest = FsWorkerOp & { id: number };

export type FsWorkerMessage =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; code: number; message: string }
  | { event: 'change'; watchId: string; path: string; kind: string }
  | { event: 'ready' };
