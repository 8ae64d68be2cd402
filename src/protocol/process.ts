import { z } from 'zod';
import { invalidParams } from './errors.js';
import type { WireEnvironmentInfo } from './initialize.js';
import { method, methodWith } from './method-spec.js';
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

/**
 * Bounds on one process/start, checked before anything else looks at its params: exec(2) refuses an
 * argv and environment above ARG_MAX anyway (2 MiB with the usual 8 MiB stack), and without a
 * bound a request of a million variables froze the server for seconds while it was validated and
 * built. Env patterns are matched against every variable, so they are bounded too.
 */
export const START_LIMITS = {
  /** argv entries plus env entries (params.env and envPolicy.set together). */
  maxEntries: 32 * 1024,
  /** Bytes of argv, env names and values (UTF-8) together. */
  maxBytes: 4 * 1024 * 1024,
  /** envPolicy.exclude plus envPolicy.includeOnly patterns. */
  maxEnvPatterns: 1024,
} as const;

/** Refuses (-32602) a process/start above START_LIMITS, in work bounded by the limits themselves. */
export function checkStartBounds(raw: unknown): void {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return;
  const params = raw as { argv?: unknown; env?: unknown; envPolicy?: unknown };
  let entries = 0;
  let bytes = 0;
  const tooMany = (): never => {
    throw invalidParams(`process/start is too large: more than ${START_LIMITS.maxEntries} argv and env entries`);
  };
  const tooBig = (): never => {
    throw invalidParams(`process/start is too large: argv and env take more than ${START_LIMITS.maxBytes} bytes`);
  };
  const add = (s: unknown): void => {
    // UTF-16 units: never more than the string's UTF-8 bytes, which are counted exactly below if need be.
    if (typeof s === 'string') bytes += s.length;
    if (bytes > START_LIMITS.maxBytes) tooBig();
  };
  const countRecord = (record: unknown): void => {
    if (record === null || typeof record !== 'object' || Array.isArray(record)) return;
    for (const key in record) {
      if (++entries > START_LIMITS.maxEntries) tooMany();
      add(key);
      add((record as Record<string, unknown>)[key]);
    }
  };
  if (Array.isArray(params.argv)) {
    if (params.argv.length > START_LIMITS.maxEntries) tooMany();
    entries += params.argv.length;
    for (const a of params.argv) add(a);
  }
  countRecord(params.env);
  const policy = params.envPolicy as { set?: unknown; exclude?: unknown; includeOnly?: unknown } | null | undefined;
  if (policy !== null && typeof policy === 'object') {
    countRecord(policy.set);
    const patterns =
      (Array.isArray(policy.exclude) ? policy.exclude.length : 0) + (Array.isArray(policy.includeOnly) ? policy.includeOnly.length : 0);
    if (patterns > START_LIMITS.maxEnvPatterns)
      throw invalidParams(
        `process/start is too large: more than ${START_LIMITS.maxEnvPatterns} envPolicy exclude and includeOnly patterns`,
      );
  }
  if (bytes > START_LIMITS.maxBytes / 3) {
    // Near the bound: count UTF-8 bytes exactly (at most maxBytes characters to look at).
    let exact = 0;
    const utf8 = (s: unknown): void => {
      if (typeof s === 'string') exact += Buffer.byteLength(s);
    };
    if (Array.isArray(params.argv)) for (const a of params.argv) utf8(a);
    for (const record of [params.env, policy?.set]) {
      if (record === null || typeof record !== 'object' || Array.isArray(record)) continue;
      for (const key in record) {
        utf8(key);
        utf8((record as Record<string, unknown>)[key]);
      }
    }
    if (exact > START_LIMITS.maxBytes) tooBig();
  }
}

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
  /** Cordon extension: close the child's stdin after writing `chunk` (docs/protocol.md §7.3). */
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
  /** 0.142+: the process ran sandboxed and failed like a sandbox denial (docs/protocol.md §7.2). */
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

type Empty = Record<string, never>;

/** The `process/*` and `environment/*` request methods: params as the server reads them, and their results. */
export const processMethods = {
  'process/start': methodWith<StartParams, z.input<typeof StartParams>, { processId: string; sandboxType: string }>((raw) => {
    checkStartBounds(raw);
    return parseParams(StartParams, raw, 'ExecParams');
  }),
  'process/read': method(ReadParams, 'ReadParams')<WireReadResult>(),
  'process/write': method(WriteParams, 'WriteParams')<{ status: WriteStatus }>(),
  'process/terminate': method(TerminateParams, 'TerminateParams')<{ running: boolean }>(),
  'process/signal': method(SignalParams, 'SignalParams')<Empty>(),
  'process/resize': method(ResizeParams, 'ResizeParams')<Empty>(),
  /** Params are ignored, as the reference does. */
  'environment/info': methodWith<undefined, Empty | null, WireEnvironmentInfo>(() => undefined),
  'environment/status': methodWith<undefined, Empty | null, { status: 'ready' }>(() => undefined),
};
