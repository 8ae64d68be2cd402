/**
 * Approvals of network destinations for Cordon's own clients (docs/network.md): the server asks
 * (`network/policyRequest`) about hosts its allow list does not cover; this decides what to
 * answer. One prompt per destination at a time (concurrent identical asks share it), a session
 * cache for `allowForSession`, and a deadline after which the answer is deny.
 */

export type ApprovalDecision = 'allowOnce' | 'allowForSession' | 'deny';

export interface ApprovalRequest {
  host: string;
  /** The proxy's protocol name: `http`, `https_connect`, `socks5_tcp`, `socks5_udp`. */
  protocol: string;
  port: number;
  processId: string;
}

export type ApprovalHandler = (request: ApprovalRequest) => ApprovalDecision | Promise<ApprovalDecision>;

export interface NetworkApprovalsOptions {
  /** How long the handler may take; past it the request is denied (default 60 s). */
  timeoutMs?: number;
}

export interface ApprovalAnswer {
  type: 'allow' | 'deny';
  reason?: string;
}

const key = (r: ApprovalRequest): string => `${r.protocol}|${r.host.toLowerCase()}|${r.port}`;

export class NetworkApprovals {
  private readonly approved = new Set<string>();
  private readonly inFlight = new Map<string, Promise<ApprovalDecision>>();
  private readonly timeoutMs: number;

  constructor(
    private readonly handler: ApprovalHandler,
    options: NetworkApprovalsOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  /** What to answer the server for one request. */
  async decide(request: ApprovalRequest): Promise<ApprovalAnswer> {
    const k = key(request);
    if (this.approved.has(k)) return { type: 'allow' };
    let pending = this.inFlight.get(k);
    if (!pending) {
      pending = this.ask(request).finally(() => this.inFlight.delete(k));
      this.inFlight.set(k, pending);
    }
    const decision = await pending;
    if (decision === 'allowForSession') this.approved.add(k);
    if (decision === 'deny') return { type: 'deny', reason: 'user_denied' };
    return { type: 'allow' };
  }

  private ask(request: ApprovalRequest): Promise<ApprovalDecision> {
    return new Promise<ApprovalDecision>((resolve) => {
      const timer = setTimeout(() => resolve('deny'), this.timeoutMs);
      timer.unref?.();
      Promise.resolve()
        .then(() => this.handler({ ...request }))
        .then(
          (d) => resolve(d === 'allowOnce' || d === 'allowForSession' ? d : 'deny'),
          () => resolve('deny'),
        )
        .finally(() => clearTimeout(timer));
    });
  }

  /** Forgets every session approval. */
  clear(): void {
    this.approved.clear();
  }
}

/** The text shown when a running process is stopped because a destination was denied. */
export const deferredDenialMessage = (r: Pick<ApprovalRequest, 'host' | 'protocol' | 'port'>): string =>
  `Network access to "${r.protocol}://${r.host}:${r.port}" was denied; the process was terminated`;
