import type {
  Environment,
  EnvironmentInfo,
  ExecBackend,
  ProcessEventListener,
  ProcessSignal,
  ReadRequest,
  ReadResult,
  StartProcessRequest,
  WriteRequest,
  WriteStatus,
} from '../environment/types.js';
import { ExecServerClient, type ClientOptions } from './exec-server-client.js';

/** An Environment whose processes run on a Cordon server; indistinguishable from a local one. */
export class RemoteEnvironment implements Environment {
  readonly exec: ExecBackend;

  constructor(readonly client: ExecServerClient) {
    this.exec = {
      start: (r: StartProcessRequest) =>
        client.startProcess({
          processId: r.processId,
          argv: r.argv,
          cwd: r.cwd,
          env: r.env,
          tty: r.tty,
          pipeStdin: r.pipeStdin ?? false,
          arg0: r.arg0 ?? null,
          envPolicy: r.envPolicy ?? null,
          ...(r.rows ? { rows: r.rows } : {}),
          ...(r.cols ? { cols: r.cols } : {}),
        }),
      read: (processId: string, r: ReadRequest = {}): Promise<ReadResult> =>
        client.read(processId, { afterSeq: r.afterSeq ?? null, maxBytes: r.maxBytes ?? null, waitMs: r.waitMs ?? null }),
      write: (r: WriteRequest): Promise<WriteStatus> =>
        client.write(r.processId, r.data, {
          ...(r.writeId ? { writeId: r.writeId } : {}),
          ...(r.closeStdin ? { closeStdin: true } : {}),
        }),
      terminate: (processId: string) => client.terminate(processId),
      signal: (processId: string, signal: ProcessSignal) => client.signal(processId, signal),
      resize: (processId: string, rows: number, cols: number) => client.resize(processId, rows, cols),
      subscribe: (listener: ProcessEventListener) => client.onEvent(listener),
    };
  }

  static async connect(options: ClientOptions): Promise<RemoteEnvironment> {
    return new RemoteEnvironment(await ExecServerClient.connect(options));
  }

  info(): Promise<EnvironmentInfo> {
    return this.client.environmentInfo();
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
