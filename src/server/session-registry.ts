import type { Logger } from 'pino';
import type { LocalEnvironmentOptions } from '../local/options.js';
import { ErrorCode, invalidRequest, messages, RpcError } from '../protocol/index.js';
import { Session, type SessionSink } from './session.js';

/**
 * The server's sessions. A session is attached to at most one connection; when that connection goes
 * away it waits `graceMs` to be resumed, then its process groups are killed and it is forgotten.
 */
export class SessionRegistry {
  private readonly sessions = new Map<string, Session>();
  private closing = false;

  constructor(
    private readonly graceMs: number,
    private readonly environmentOptions: Partial<LocalEnvironmentOptions>,
    private readonly logger: Logger,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  create(sink: SessionSink): Session {
    if (this.closing) throw invalidRequest('server is shutting down');
    const session = new Session(this.environmentOptions);
    session.sink = sink;
    this.sessions.set(session.id, session);
    this.logger.info({ sessionId: session.id }, 'session created');
    return session;
  }

  resume(id: string, sink: SessionSink): Session {
    const session = this.sessions.get(id);
    if (!session) throw invalidRequest(messages.unknownSession(id));
    // Only resuming clients see this, and only 0.171+ CLIs resume: they get the 0.171 code, which
    // tells a client that reconnected before the server noticed the old connection drop to retry.
    if (session.sink) throw new RpcError(ErrorCode.SessionAttached, messages.sessionAttached(id));
    clearTimeout(session.expiry);
    session.expiry = undefined;
    session.sink = sink;
    this.logger.info({ sessionId: id }, 'session resumed');
    return session;
  }

  detach(session: Session, sink: SessionSink): void {
    if (session.sink !== sink) return;
    session.sink = null;
    // Nobody reads the notifications now; output is only retained, so keep the children flowing.
    session.environment.resumeOutput();
    if (this.closing) return;
    session.expiry = setTimeout(() => void this.expire(session), this.graceMs);
    session.expiry.unref();
    this.logger.info({ sessionId: session.id, graceMs: this.graceMs }, 'session detached');
  }

  private async expire(session: Session): Promise<void> {
    if (session.sink || this.sessions.get(session.id) !== session) return;
    this.sessions.delete(session.id);
    this.logger.info({ sessionId: session.id }, 'session expired; killing its processes');
    await session.close();
  }

  async closeAll(): Promise<void> {
    this.closing = true;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.close()));
  }
}
