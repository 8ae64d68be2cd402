import { z } from 'zod';
import { invalidParams } from './errors.js';
import { ManagedNetworkFacts, NetworkProxyLaunch } from './network.js';
import { uuidProblem } from './uuid.js';
import { parseParams, struct, u64 } from './validate.js';

const processId = () => z.string();

export const EnvPolicy = struct('EnvPolicy', {
  inherit: z.enum(['core', 'all', 'none']),
  ignoreDefaultExcludes: z.boolean(),
  exclude: z.array(z.string()),
  set: z.record(z.string()),
  includeOnly: z.array(z.string()),
});
export type EnvPolicy = z.infer<typeof EnvPolicy>;

export const StartParams = struct('ExecParams', {
  processId: processId(),
  argv: z.array(z.string()).min(1, 'argv must not be empty'),
  cwd: z.string(),
  env: z.record(z.string()),
  tty: z.boolean(),
  pipeStdin: z.boolean().nullish(),
  arg0: z.string().nullish(),
  envPolicy: EnvPolicy.nullish(),
  /** Cordon extension: initial terminal size for `tty` processes. */
  rows: z.number().int().min(1).max(65535).nullish(),
  cols: z.number().int().min(1).max(65535).nullish(),
  sandbox: z.unknown().optional(),
  /** 0.155+: `{threadId: UUID, toolCallId}`, checked by parseExecMetadata (kept out of the fast parser). */
  metadata: z.unknown().optional(),
  /** 0.142+: the process must run behind a managed network proxy (docs/network.md). */
  enforceManagedNetwork: z.boolean().nullish(),
  /** Launch a managed network proxy for this process (docs/network.md). */
  networkProxy: NetworkProxyLaunch.nullish(),
  managedNetwork: ManagedNetworkFacts.nullish(),
  /** 0.150+: accepted and ignored. */
  shellSnapshot: z.unknown().optional(),
});
export type StartParams = z.infer<typeof StartParams>;

export const ReadParams = struct('ReadParams', {
  processId: processId(),
  afterSeq: u64().nullish(),
  maxBytes: u64().nullish(),
  waitMs: u64().nullish(),
});
export type ReadParams = z.infer<typeof ReadParams>;

export const WriteParams = struct('WriteParams', {
  processId: processId(),
  chunk: z.string(),
  writeId: z.string().nullish(),
  /** Cordon extension: close the child's stdin after writing `chunk` (PROTOCOL.md §13.9). */
  closeStdin: z.boolean().nullish(),
});
export type WriteParams = z.infer<typeof WriteParams>;

export const TerminateParams = struct('TerminateParams', { processId: processId() });
export const SignalParams = struct('SignalParams', { processId: processId(), signal: z.enum(['interrupt']) });
export const ResizeParams = struct('ResizeParams', {
  processId: processId(),
  rows: z.number().int().min(1).max(65535),
  cols: z.number().int().min(1).max(65535),
});

export type Stream = 'stdout' | 'stderr' | 'pty';

export interface WireChunk {
  seq: number;
  stream: Stream;
  chunk: string;
}

export interface WireReadResult {
  chunks: WireChunk[];
  nextSeq: number;
  exited: boolean;
  exitCode: number | null;
  closed: boolean;
  failure: string | null;
  /** 0.142+: the process ran sandboxed and its failure looks like a sandbox denial (PROTOCOL-0171 §3.4). */
  sandboxDenied: boolean;
  /** Cordon extension (docs/protocol-extensions.md): output seqs skipped because they were not retained. */
  droppedOutput?: { fromSeq: number; toSeq: number };
}

export const ExecMetadata = struct('ExecMetadata', {
  threadId: z.string().nullish(),
  toolCallId: z.string().nullish(),
});
export type ExecMetadata = z.infer<typeof ExecMetadata>;

/** Validates `process/start.metadata` as the reference does (threadId must be a UUID); null/absent gives null. */
export function parseExecMetadata(value: unknown): ExecMetadata | null {
  if (value === undefined || value === null) return null;
  const m = parseParams(ExecMetadata, value, 'ExecMetadata');
  if (m.threadId != null) {
    const problem = uuidProblem(m.threadId);
    if (problem) throw invalidParams(problem);
  }
  return m;
}

export type WriteStatus = 'accepted' | 'stdinClosed' | 'unknownProcess' | 'starting';

export const processMessages = {
  duplicate: (id: string) => `process ${id} already exists`,
  unknown: (id: string) => `unknown process id ${id}`,
  writeFailed: 'failed to write to process stdin',
  notTty: (id: string) => `process ${id} is not a tty`,
} as const;
