/**
 * What a blocked request gets (docs/network.md, "What a refused request gets"): status 403,
 * `x-proxy-error` and a message per reason.
 */
export interface BlockedShape {
  header: string;
  message: string;
}

const SHAPES: Readonly<Record<string, BlockedShape>> = {
  not_allowed: { header: 'blocked-by-allowlist', message: 'Domain not in allowlist.' },
  not_allowed_local: { header: 'blocked-by-allowlist', message: 'Sandbox policy blocks local/private network addresses.' },
  denied: { header: 'blocked-by-denylist', message: 'Domain denied by the sandbox policy.' },
  method_not_allowed: { header: 'blocked-by-method-policy', message: 'Method not allowed in limited mode.' },
  mitm_required: { header: 'blocked-by-mitm-required', message: 'MITM required for limited HTTPS.' },
  mitm_hook_denied: { header: 'blocked-by-mitm-hook', message: 'HTTPS request denied by MITM hook policy.' },
  proxy_disabled: { header: 'blocked-by-policy', message: 'network proxy is disabled' },
};

export const blockedShape = (reason: string): BlockedShape =>
  SHAPES[reason] ?? { header: 'blocked-by-policy', message: 'Request blocked by network policy.' };

export interface BlockedBody {
  host: string;
  reason: string;
  decision: string;
  source: string;
  protocol: string;
  port: number;
}

/** The JSON body of a blocked plain-HTTP request, fields in the reference's order. */
export function blockedJson(b: BlockedBody): string {
  return JSON.stringify({
    status: 'blocked',
    host: b.host,
    reason: b.reason,
    decision: b.decision,
    source: b.source,
    protocol: b.protocol,
    port: b.port,
    message: blockedShape(b.reason).message,
  });
}
