import type { EnvPolicy, Stream, WriteStatus } from '../protocol/process.js';

export type { EnvPolicy, Stream, WriteStatus };

export interface StartProcessRequest {
  processId: string;
  argv: string[];
  /** Absolute directory. */
  cwd: string;
  env: Record<string, string>;
  tty: boolean;
  pipeStdin?: boolean;
  arg0?: string | null;
  envPolicy?: EnvPolicy | null;
  rows?: number | null;
  cols?: number | null;
}

export interface OutputChunk {
  seq: number;
  stream: Stream;
  data: Buffer;
}

export interface ReadRequest {
  afterSeq?: number | null;
  maxBytes?: number | null;
  waitMs?: number | null;
  /** Abandons a long-poll early (e.g. when the asking connection goes away). */
  signal?: AbortSignal;
}

export interface ReadResult {
  chunks: OutputChunk[];
  nextSeq: number;
  exited: boolean;
  exitCode: number | null;
  closed: boolean;
  failure: string | null;
}

export interface WriteRequest {
  processId: string;
  data: Uint8Array;
  writeId?: string | null;
  closeStdin?: boolean;
}

export type ProcessEvent =
  | { type: 'output'; processId: string; seq: number; stream: Stream; data: Buffer }
  | { type: 'exited'; processId: string; seq: number; exitCode: number }
  | { type: 'closed'; processId: string; seq: number };

export type ProcessEventListener = (event: ProcessEvent) => void;

export type ProcessSignal = 'interrupt';

/** Running processes: the `process/*` capability. */
export interface ExecBackend {
  start(request: StartProcessRequest): Promise<{ processId: string }>;
  read(processId: string, request?: ReadRequest): Promise<ReadResult>;
  write(request: WriteRequest): Promise<WriteStatus>;
  terminate(processId: string): Promise<{ running: boolean }>;
  signal(processId: string, signal: ProcessSignal): Promise<void>;
  resize(processId: string, rows: number, cols: number): Promise<void>;
  /** Every event of every process of this environment, in seq order per process. */
  subscribe(listener: ProcessEventListener): () => void;
}

export interface EnvironmentInfo {
  shell: { name: string; path: string };
}

/** Lets a transport slow the producers down when its peer reads slowly. */
export interface OutputFlowControl {
  pauseOutput(): void;
  resumeOutput(): void;
}

export interface Environment {
  readonly exec: ExecBackend;
  info(): Promise<EnvironmentInfo>;
  /** Kills every process (whole process groups) and releases resources. */
  close(): Promise<void>;
}
